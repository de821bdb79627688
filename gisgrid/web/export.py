"""Export every layer: ``GET /export/<layer>.<fmt>`` with fmt geojson, gpkg, csv or xlsx."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, Response

from gisgrid.db import layers
from gisgrid.errors import NotFound
from gisgrid.io import to_geojson_bytes, write_layer
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn

bp = Blueprint("export", __name__, url_prefix="/export")

MIMETYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@bp.get("/<name>.<fmt>")
def export_layer(name: str, fmt: str):
    if fmt not in MIMETYPES:
        raise NotFound(f"unknown export format {fmt!r}; formats: {', '.join(MIMETYPES)}")
    frame = layers.fetch_layer(get_conn(), name, scope=current_scope())  # only the rows the user sees
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
