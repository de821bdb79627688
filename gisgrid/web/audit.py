"""The coverage audit page ``/audit``: where nobody manages (没人管) and where several bodies do (多头管).

A Folium map with one layer per problem type (gaps red, overlaps orange,
slivers purple, vacant units grey, reports outside every owner's area as
black dots), a table per problem type, and downloads of the same result as
GeoJSON and XLSX.  The work is :func:`gisgrid.audit.store.audit_store`; this
module only draws.  Every text reaching the page or the map is HTML-escaped
(Jinja autoescaping for tables; :func:`html.escape` for map popups).
"""

from __future__ import annotations

import logging
import re
from html import escape

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from folium.utilities import JsCode

from gisgrid.accounts.store import list_towns, visible_jurisdiction
from gisgrid.audit.store import audit_geojson_bytes, audit_store, audit_xlsx_bytes
from gisgrid.demo import ATTRIBUTION
from gisgrid.errors import InputError, NotFound
from gisgrid.maps import ownership as maps
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn

LOGGER = logging.getLogger(__name__)

bp = Blueprint("audit", __name__, url_prefix="/audit")

#: Map style per problem layer: colour and the CSS class of its SVG paths.
STYLES = {
    "gaps": ("#d62728", "gg-gap"),
    "overlaps": ("#ff7f0e", "gg-overlap"),
    "slivers": ("#9467bd", "gg-sliver"),
    "vacant": ("#8c8c8c", "gg-vacant"),
    "reports": ("#000000", "gg-report"),
}
#: Rows shown per table on the page (the exports hold all).
MAX_ROWS = 200
_BIND = JsCode("""
    function (feature, layer) {
        layer.bindPopup(feature.properties.popup_html, {maxWidth: 360});
        layer.bindTooltip(feature.properties.label_html, {sticky: true});
    }
""")


def _titles() -> dict[str, str]:
    return {
        "gaps": _("Gaps"),
        "overlaps": _("Overlaps"),
        "slivers": _("Slivers"),
        "vacant": _("Vacant units"),
        "expiring": _("Expiring assignments"),
        "over_limit": _("Owners over the limit"),
        "reports": _("Reports outside every owner's area"),
    }


def _columns() -> dict[str, list[tuple[str, str]]]:
    """Shown columns of each table: (column, header)."""
    area, owners, unit, layer = _("Area (m²)"), _("Owners"), _("Unit"), _("Layer")
    return {
        "gaps": [("layer", layer), ("area_m2", area), ("thinness", _("Thinness")), ("sliver", _("Sliver"))],
        "overlaps": [("layer", layer), ("units", _("Units")), ("owners", owners), ("area_m2", area)],
        "slivers": [
            ("kind", _("Kind")),
            ("unit", unit),
            ("owners", owners),
            ("area_m2", area),
            ("thinness", _("Thinness")),
        ],
        "vacant": [("layer", layer), ("unit", unit), ("area_m2", area)],
        "expiring": [
            ("layer", layer),
            ("unit", unit),
            ("role", _("Role")),
            ("owner_name", _("Owner")),
            ("valid_to", _("Ends")),
            ("days_left", _("Days left")),
        ],
        "over_limit": [("owner_name", _("Owner")), ("n_units", _("Units owned")), ("units", _("Units"))],
        "reports": [
            ("report_id", _("Report")),
            ("reported_at", _("Reported")),
            ("rule", _("Rule")),
            ("reason", _("Reason")),
        ],
    }


def _text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return _("yes") if value else ""
    if isinstance(value, (float, np.floating)):
        return f"{value:,.1f}"
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ", timespec="minutes") if hasattr(value, "hour") else value.isoformat()
    return str(value)


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


def _popup(title: str, rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows if v)
    return f'<strong>{escape(title)}</strong><dl class="gg-popup">{body}</dl>'


def _feature_text(name: str, rec: dict, titles: dict, columns: dict) -> tuple[str, str]:
    """(popup HTML, tooltip HTML) of one problem feature, all escaped."""
    rows = [(header, _text(rec.get(col))) for col, header in columns[name]]
    rows = [(k, v + (" m²" if k == _("Area (m²)") and v else "")) for k, v in rows]
    label = titles[name]
    main = rec.get("unit") or rec.get("units") or rec.get("report_id")
    if rec.get("area_m2") is not None and name != "reports":
        label += f" · {_text(rec.get('area_m2'))} m²"
    if main not in (None, ""):
        label += f" · {_text(main)}"
    return _popup(titles[name], rows), escape(label)


def _style(name: str):
    colour, css = STYLES[name]
    if name == "reports":
        return lambda f: {
            "color": "#ffffff",
            "weight": 1,
            "fillColor": colour,
            "fillOpacity": 0.9,
            "radius": 5,
            "className": css,
        }
    if name == "vacant":  # often most units: a light wash that leaves the other problems visible
        return lambda f: {
            "color": "#6e6e6e",
            "weight": 1,
            "opacity": 0.8,
            "dashArray": "3 3",
            "fillColor": colour,
            "fillOpacity": 0.18,
            "className": css,
        }
    return lambda f: {
        "color": colour,
        "weight": 3,
        "opacity": 1.0,
        "fillColor": colour,
        "fillOpacity": 0.6,
        "className": css,
    }


#: Drawing order: the wash of vacant units first, the sharp problems on top.
DRAW_ORDER = ("vacant", "slivers", "overlaps", "gaps", "reports")


def _legend_html(titles: dict, counts: dict) -> str:
    rows = []
    for name, (colour, _css) in STYLES.items():
        shape = "border-radius:50%;" if name == "reports" else ""
        rows.append(
            f'<div class="gg-legend-row"><span class="gg-swatch" style="background:{colour};{shape}">'
            f'</span><span>{escape(titles[name])}</span><span class="gg-count">{counts[name]}</span></div>'
        )
    return f"<h4>{escape(_('Coverage problems'))}</h4>" + "".join(rows)


def _audit_map(boundary, cells: gpd.GeoDataFrame, result, lang: str) -> folium.Map:
    titles, columns = _titles(), _columns()
    m = maps.base_map(boundary.bounds, attribution=ATTRIBUTION, lang=lang)
    folium.GeoJson(
        gpd.GeoSeries([boundary], crs=4326).__geo_interface__,
        name=_("Jurisdiction"),
        style_function=lambda f: {"color": "#17324d", "weight": 2, "fill": False, "className": "gg-jurisdiction"},
        interactive=False,
    ).add_to(m)
    if len(cells):
        folium.GeoJson(
            gpd.GeoDataFrame(geometry=cells.geometry.boundary, crs=4326).__geo_interface__,
            name=_("Cells"),
            interactive=False,
            style_function=lambda f: {"color": "#5b6b7b", "weight": 0.7, "opacity": 0.6, "className": "gg-cell"},
        ).add_to(m)
    m.options["zoomSnap"] = 0.25  # fit the jurisdiction snugly
    layers = result.layers()
    counts = {name: len(layer) for name, layer in layers.items()}
    for name in DRAW_ORDER:
        layer = layers[name]
        group = folium.FeatureGroup(name=f"{titles[name]} ({len(layer)})", show=name != "vacant" or len(layer) < 500)
        if len(layer):
            records = layer.drop(columns="geometry").to_dict("records")
            texts = [_feature_text(name, rec, titles, columns) for rec in records]
            geoms = shapely.transform(layer.geometry.values, lambda xy: np.round(xy, maps.COORDINATE_DECIMALS))
            frame = gpd.GeoDataFrame(
                {"popup_html": [t[0] for t in texts], "label_html": [t[1] for t in texts]},
                geometry=gpd.GeoSeries(geoms, crs=4326),
            )
            point = name == "reports"
            folium.GeoJson(
                frame.to_geo_dict(show_bbox=False),
                name=titles[name],
                style_function=_style(name),
                marker=folium.CircleMarker() if point else None,
                on_each_feature=_BIND,
            ).add_to(group)
        group.add_to(m)
    maps._HtmlControl(_legend_html(titles, counts), position="bottomright", css_class="gg-panel gg-legend").add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    return m


def _tables(result) -> list[dict]:
    titles, columns = _titles(), _columns()
    tables = result.to_tables()
    out = []
    for name in ("gaps", "overlaps", "slivers", "vacant", "expiring", "over_limit", "reports"):
        table = tables[name]
        cols = [(c, h) for c, h in columns[name] if c in table.columns]
        rows = [[_text(v) for v in row] for row in table[[c for c, _h in cols]].head(MAX_ROWS).itertuples(index=False)]
        total = None
        if "area_m2" in table.columns and len(table):
            total = _text(float(table["area_m2"].sum()))
        out.append(
            {
                "name": name,
                "title": titles[name],
                "headers": [h for _c, h in cols],
                "rows": rows,
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
    return conn, audit_store(conn, settings, code, days=days)


@bp.get("")
def audit_page():
    code, days = _params()
    conn = get_conn()
    towns = list_towns(conn, current_scope(), whole=True)
    if not towns:
        return render_template("audit.html", towns=[], jurisdiction=None)
    code = code or towns[0]["code"]
    visible_jurisdiction(conn, current_scope(), code)  # another's: 404
    row = conn.execute(
        sa.text("SELECT id, code, name, ST_AsBinary(geom) AS geom FROM jurisdiction WHERE code = :c"), {"c": code}
    ).first()
    if row is None:
        raise NotFound(_("No jurisdiction with code %(code)s.", code=code))
    _conn, result = _run(code, days)
    boundary = shapely.from_wkb(bytes(row.geom))
    cells = gpd.GeoDataFrame(
        geometry=gpd.GeoSeries(
            shapely.from_wkb(
                [
                    bytes(g)
                    for (g,) in conn.execute(
                        sa.text(
                            "SELECT ST_AsBinary(c.geom) FROM grid_cell c, jurisdiction j WHERE j.id = :j AND c.geom && j.geom "
                            "AND ST_Relate(c.geom, j.geom, 'T********')"
                        ),
                        {"j": row.id},
                    )
                ]
            ),
            crs=4326,
        )
    )
    lang = "en" if str(get_locale()).startswith("en") else "zh_CN"
    m = _audit_map(boundary, cells, result, lang)
    root = m.get_root()
    root.render()
    tables = _tables(result)
    summary = result.summary()
    return render_template(
        "audit.html",
        towns=towns,
        jurisdiction={"code": row.code, "name": row.name},
        days=days,
        tables=tables,
        summary=summary,
        clean=result.clean,
        n_cells=len(cells),
        no_problems=all(t["count"] == 0 for t in tables),
        map_header=root.header.render(),
        map_html=root.html.render(),
        map_script=root.script.render(),
    )


def _download(data: bytes, mimetype: str, code: str | None, ext: str) -> Response:
    name = f"audit-{re.sub(r'[^0-9A-Za-z_-]', '_', code or 'all')}.{ext}"
    return Response(data, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/export.geojson")
def export_geojson():
    code, days = _params()
    _conn, result = _run(code, days)
    return _download(audit_geojson_bytes(result), "application/geo+json", code, "geojson")


@bp.get("/export.xlsx")
def export_xlsx():
    code, days = _params()
    _conn, result = _run(code, days)
    return _download(
        audit_xlsx_bytes(result), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", code, "xlsx"
    )
