"""The coverage audit page ``/audit``: where nobody manages (没人管) and where several bodies do (多头管).

A map with one layer per problem type (:func:`gisgrid.maps.audit.audit_map`),
a table per problem type, and downloads of the same result as GeoJSON and
XLSX.  The work is :func:`gisgrid.audit.store.audit_store`.  Every text
reaching the page is HTML-escaped (Jinja autoescaping for tables; the map
builder escapes its popups).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from gisgrid.accounts.store import list_towns, visible_jurisdiction
from gisgrid.audit.store import audit_geojson_bytes, audit_store, audit_xlsx_bytes, cells_meeting, frontage_audit
from gisgrid.db import layers
from gisgrid.errors import InputError, NotFound
from gisgrid.maps import map_parts
from gisgrid.maps.audit import (
    STYLES,
    audit_map,
    cell_text,
    problem_columns,
    problem_titles,
    with_words,
    workbook_labels,
)
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn
from gisgrid.web.i18n import map_language

LOGGER = logging.getLogger(__name__)

bp = Blueprint("audit", __name__, url_prefix="/audit")

#: Rows shown per table on the page (the exports hold all).
MAX_ROWS = 200


def _params() -> tuple[str | None, int]:
    code = (request.args.get("jurisdiction") or "").strip() or None
    raw = request.args.get("days", "30")
    try:
        days = int(raw)
    except ValueError:
        raise InputError(_("days must be a whole number, got %(v)s", v=raw)) from None
    if not 0 <= days <= 3660:
        raise InputError(_("days must be between 0 and 3660, got %(v)s", v=days))
    return code, days


def _tables(result, lang: str) -> list[dict]:
    titles, columns = problem_titles(lang), problem_columns(lang)
    tables = result.to_tables()
    out = []
    for name in ("gaps", "overlaps", "slivers", "vacant", "expiring", "over_limit", "reports"):
        table = with_words(tables[name], lang)
        cols = [(c, h) for c, h in columns[name] if c in table.columns]
        rows = [
            [cell_text(v, lang) for v in row]
            for row in table[[c for c, _h in cols]].head(MAX_ROWS).itertuples(index=False)
        ]
        # where to look: a link that zooms the map to the row (a point inside it)
        zoom = (
            [(float(x), float(y)) for x, y in table[["lon", "lat"]].head(MAX_ROWS).itertuples(index=False)]
            if {"lon", "lat"} <= set(table.columns)
            else []
        )
        total = None
        if "area_m2" in table.columns and len(table):
            total = cell_text(float(table["area_m2"].sum()), lang)
        out.append(
            {
                "name": name,
                "title": titles[name],
                "headers": [h for _c, h in cols],
                "rows": rows,
                "zoom": zoom,
                "count": len(table),
                "hidden": max(0, len(table) - MAX_ROWS),
                "total_m2": total,
                "colour": STYLES.get(name, ("#444", ""))[0],
            }
        )
    return out


def _run(code: str | None, days: int):
    conn = get_conn()
    scope = current_scope()
    if code is None and not scope.unlimited:  # "everything" is only everything for those who see everything
        towns = list_towns(conn, scope, whole=True)
        if not towns:
            raise NotFound(_("No jurisdiction of yours to show."))
        code = towns[0]["code"]
    if code is not None:
        visible_jurisdiction(conn, scope, code)
    settings = current_app.config["GISGRID_SETTINGS"]
    return conn, audit_store(conn, settings, code, days=days, scope=current_scope()), code


@bp.get("")
def audit_page():
    code, days = _params()
    conn = get_conn()
    towns = list_towns(conn, current_scope(), whole=True)
    if not towns:
        return render_template("audit.html", towns=[], jurisdiction=None)
    code = code or towns[0]["code"]
    visible_jurisdiction(conn, current_scope(), code)  # another's: 404
    found = layers.fetch_layer(conn, "jurisdictions", jurisdiction_code=code)
    if not len(found):
        raise NotFound(_("No jurisdiction with code %(code)s.", code=code))
    jurisdiction = found.iloc[0]
    _conn, result, _code = _run(code, days)
    cells = cells_meeting(conn, code)
    lang = map_language()
    m = audit_map(
        jurisdiction.geometry,
        cells,
        result,
        attribution=current_app.config["GISGRID_SETTINGS"].attribution,
        lang=lang,
    )
    tables = _tables(result, lang)
    summary = result.summary()
    frontage = frontage_audit(conn, current_app.config["GISGRID_SETTINGS"], code)
    return render_template(
        "audit.html",
        towns=towns,
        jurisdiction={"code": jurisdiction["code"], "name": jurisdiction["name"]},
        days=days,
        tables=tables,
        summary=summary,
        clean=result.clean,
        n_cells=len(cells),
        no_problems=all(t["count"] == 0 for t in tables),
        frontage=frontage.to_tables(),
        frontage_state=lambda s: {
            "expired": _("expired"),
            "expiring": _("expiring soon"),
            "none": _("no agreement"),
        }.get(s, s),
        **map_parts(m),
    )


def _download(data: bytes, mimetype: str, code: str | None, ext: str) -> Response:
    name = f"audit-{re.sub(r'[^0-9A-Za-z_-]', '_', code or 'all')}.{ext}"
    return Response(data, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/export.geojson")
def export_geojson():
    code, days = _params()
    _conn, result, _code = _run(code, days)
    return _download(audit_geojson_bytes(result), "application/geo+json", code, "geojson")


@bp.get("/export.xlsx")
def export_xlsx():
    code, days = _params()
    conn, result, code = _run(code, days)
    frontage = frontage_audit(conn, current_app.config["GISGRID_SETTINGS"], code)
    # sheets, columns and summary items in the page's language, like the page's tables
    data = audit_xlsx_bytes(result, extra=frontage.to_tables(), labels=workbook_labels(map_language()))
    return _download(data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", code, "xlsx")
