"""Export every layer: ``GET /export/<layer>.<fmt>`` with fmt geojson, gpkg, csv or xlsx."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from flask import Blueprint, Response, request

from gisgrid.accounts.store import visible_jurisdiction
from gisgrid.db import layers
from gisgrid.errors import InputError, NotFound
from gisgrid.io import to_geojson_bytes, write_layer
from gisgrid.ownership.store import with_owner_chains
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn

bp = Blueprint("export", __name__, url_prefix="/export")


def parse_day(text: str | None) -> dt.date:
    """``?date=``: a YYYY-MM-DD day (default today); InputError otherwise."""
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"date must be YYYY-MM-DD, not {text[:20]!r}") from None


MIMETYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@bp.get("/<name>.<fmt>")
def export_layer(name: str, fmt: str):
    """``?jurisdiction=CODE``: only the rows filed under that jurisdiction or below it; segments carry
    their owner chain on ``?date=YYYY-MM-DD`` (default today)."""
    if fmt not in MIMETYPES:
        raise NotFound(f"unknown export format {fmt!r}; formats: {', '.join(MIMETYPES)}")
    conn = get_conn()
    code = (request.args.get("jurisdiction") or "").strip() or None
    day = parse_day(request.args.get("date"))
    if code is not None:
        visible_jurisdiction(conn, current_scope(day), code, partly=True)  # unknown or out of sight: 404
    # only the rows the user sees
    frame = layers.fetch_layer(conn, name, scope=current_scope(day), under_jurisdiction=code)
    if name == "segments":
        frame = with_owner_chains(conn, frame, day)
    if fmt == "geojson":
        if not hasattr(frame, "geometry"):
            raise NotFound(f"layer {name!r} has no geometry; export it as csv or xlsx")
        return Response(
            to_geojson_bytes(frame),
            mimetype=MIMETYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}.geojson"'},
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.{fmt}"
        write_layer(frame, path)
        data = path.read_bytes()
    return Response(
        data, mimetype=MIMETYPES[fmt], headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    )
