"""The coverage audit map (/audit): where nobody manages (没人管) and where several bodies do (多头管).

One layer per problem type (gaps red, overlaps orange, slivers purple, vacant
units grey, reports outside every owner's area as black dots) over the
jurisdiction's outline and its cells.  The problem names, table columns and
cell text are here too, so the page's tables and the map's popups say the
same.  Every text reaching the map is HTML-escaped.
"""

from __future__ import annotations

import logging
from html import escape

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode

from gisgrid.maps._base import COORDINATE_DECIMALS, HtmlControl, add_layer_control, base_map, translator

LOGGER = logging.getLogger(__name__)

#: Map style per problem layer: colour and the CSS class of its SVG paths.
STYLES = {
    "gaps": ("#d62728", "gg-gap"),
    "overlaps": ("#ff7f0e", "gg-overlap"),
    "slivers": ("#9467bd", "gg-sliver"),
    "vacant": ("#8c8c8c", "gg-vacant"),
    "reports": ("#000000", "gg-report"),
}
#: Drawing order: the wash of vacant units first, the sharp problems on top.
DRAW_ORDER = ("vacant", "slivers", "overlaps", "gaps", "reports")
_BIND = JsCode("""
    function (feature, layer) {
        layer.bindPopup(feature.properties.popup_html, {maxWidth: 360});
        layer.bindTooltip(feature.properties.label_html, {sticky: true});
    }
""")


def problem_titles(lang: str) -> dict[str, str]:
    """Problem type -> its title in ``lang``."""
    _ = translator(lang)
    return {
        "gaps": _("Gaps"),
        "overlaps": _("Overlaps"),
        "slivers": _("Slivers"),
        "vacant": _("Vacant units"),
        "expiring": _("Expiring assignments"),
        "over_limit": _("Owners over the limit"),
        "reports": _("Reports outside every owner's area"),
    }


def problem_columns(lang: str) -> dict[str, list[tuple[str, str]]]:
    """Shown columns of each problem table: (column, header in ``lang``)."""
    _ = translator(lang)
    area, owners, unit, layer = _("Area (m²)"), _("Owners"), _("Unit"), _("Layer")
    community, near, shape = _("Community"), _("Near"), _("Shape")
    return {
        "gaps": [
            ("community", community),
            ("near", near),
            ("layer", layer),
            ("area_m2", area),
            ("shape", shape),
        ],
        "overlaps": [
            ("community", community),
            ("near", near),
            ("layer", layer),
            ("units", _("Units")),
            ("owners", owners),
            ("area_m2", area),
        ],
        "slivers": [
            ("kind", _("Kind")),
            ("unit", unit),
            ("community", community),
            ("near", near),
            ("owners", owners),
            ("area_m2", area),
            ("shape", shape),
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


def shape_words(thinness, lang: str) -> str:
    """The Polsby–Popper compactness (4πA/P², 1 for a circle) in plain words."""
    _ = translator(lang)
    if thinness is None or (isinstance(thinness, float) and np.isnan(thinness)):
        return ""
    if thinness < 0.1:
        return _("a thin strip")
    if thinness < 0.3:
        return _("elongated")
    return _("compact")


def near_words(street, metres, lang: str) -> str:
    """``学院路 12 m`` (the nearest street and its distance), '' when unknown."""
    if not street or metres is None or (isinstance(metres, float) and np.isnan(metres)):
        return ""
    return translator(lang)("%(street)s, %(m)s m away", street=street, m=f"{metres:,.0f}")


def with_words(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``shape`` and ``near`` columns in words, from ``thinness``, ``near_street`` and ``near_m``."""
    out = table.copy()
    _ = translator(lang)
    kinds = {"cell": _("grid cell"), "segment": _("segment area")}
    for col in ("layer", "kind"):
        if col in out:
            out[col] = [kinds.get(v, v) for v in out[col]]
    if "thinness" in out:
        out["shape"] = [shape_words(v, lang) for v in out["thinness"]]
    if "near_street" in out:
        out["near"] = [near_words(s, m, lang) for s, m in zip(out["near_street"], out.get("near_m", [None] * len(out)))]
    return out


def cell_text(value, lang: str) -> str:
    """A table cell as shown: '' for missing, "yes" for true, 1,234.5 for floats, ISO dates."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return translator(lang)("yes") if value else ""
    if isinstance(value, (float, np.floating)):
        return f"{value:,.1f}"
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ", timespec="minutes") if hasattr(value, "hour") else value.isoformat()
    return str(value)


def _popup(title: str, rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows if v)
    return f'<strong>{escape(title)}</strong><dl class="gg-popup">{body}</dl>'


def _feature_text(name: str, rec: dict, titles: dict, columns: dict, lang: str) -> tuple[str, str]:
    """(popup HTML, tooltip HTML) of one problem feature, all escaped."""
    area_header = translator(lang)("Area (m²)")
    rows = [(header, cell_text(rec.get(col), lang)) for col, header in columns[name]]
    rows = [(k, v + (" m²" if k == area_header and v else "")) for k, v in rows]
    label = titles[name]
    main = rec.get("unit") or rec.get("units") or rec.get("report_id")
    if rec.get("area_m2") is not None and name != "reports":
        label += f" · {cell_text(rec.get('area_m2'), lang)} m²"
    if main not in (None, ""):
        label += f" · {cell_text(main, lang)}"
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


def _legend_html(titles: dict, counts: dict, heading: str) -> str:
    rows = []
    for name, (colour, _css) in STYLES.items():
        shape = "border-radius:50%;" if name == "reports" else ""
        rows.append(
            f'<div class="gg-legend-row"><span class="gg-swatch" style="background:{colour};{shape}">'
            f'</span><span>{escape(titles[name])}</span><span class="gg-count">{counts[name]}</span></div>'
        )
    return f"<h4>{escape(heading)}</h4>" + "".join(rows)


def audit_map(boundary, cells: gpd.GeoDataFrame, result, *, attribution: str, lang: str = "zh_CN") -> folium.Map:
    """The audit map of one jurisdiction.

    Parameters
    ----------
    boundary : shapely geometry
        The jurisdiction's polygon, EPSG:4326.
    cells : GeoDataFrame
        Its grid cells (EPSG:4326), drawn as thin outlines.
    result : gisgrid.audit.coverage.AuditResult
        The audit; ``result.layers()`` gives one GeoDataFrame per problem type.
    attribution : str
        Plain-text credit of the map data.
    lang : str, default "zh_CN"
        ``"zh_CN"`` or ``"en"``.
    """
    _ = translator(lang)
    titles, columns = problem_titles(lang), problem_columns(lang)
    m = base_map(boundary.bounds, attribution=attribution, lang=lang)
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
            texts = [_feature_text(name, rec, titles, columns, lang) for rec in records]
            geoms = shapely.transform(layer.geometry.values, lambda xy: np.round(xy, COORDINATE_DECIMALS))
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
    HtmlControl(
        _legend_html(titles, counts, _("Coverage problems")), position="bottomright", css_class="gg-panel gg-legend"
    ).add_to(m)
    add_layer_control(m)
    return m


def workbook_labels(lang: str) -> dict[str, str]:
    """Sheet, column and summary-item names of the audit workbook in ``lang`` (the XLSX download of /audit).

    The keys are the names :meth:`gisgrid.audit.coverage.AuditResult.to_tables` and
    :meth:`gisgrid.audit.frontage.FrontageAudit.to_tables` give their tables, columns and summary items.
    """
    _ = translator(lang)
    titles = problem_titles(lang)
    area, unit = _("Area (m²)"), _("Unit")
    return {
        # sheets (at most 31 characters)
        "summary": _("Summary"),
        **{k: v for k, v in titles.items() if k != "reports"},
        "reports": _("Reports outside all areas"),
        "frontage_gaps": _("Frontage gaps"),
        "agreements": _("Frontage agreements"),
        "frontage_overlaps": _("Overlapping frontages"),
        # the summary sheet: its columns and items
        "item": _("Item"),
        "value": _("Value"),
        "gaps_count": _("Gaps (number)"),
        "overlaps_count": _("Overlaps (number)"),
        "slivers_count": _("Slivers (number)"),
        "vacant_count": _("Vacant units (number)"),
        "expiring_count": _("Expiring assignments (number)"),
        "over_limit_count": _("Owners over the limit (number)"),
        "reports_count": _("Reports outside all areas (number)"),
        "gaps_cell_m2": _("Gaps between cells (m²)"),
        "gaps_segment_m2": _("Gaps between segment areas (m²)"),
        "gaps_frontage_m2": _("Frontage gaps (m²)"),
        "overlaps_cell_m2": _("Overlapping cells (m²)"),
        "overlaps_segment_m2": _("Overlapping segment areas (m²)"),
        "overlaps_frontage_m2": _("Overlapping frontages (m²)"),
        "slivers_m2": _("Slivers (m²)"),
        # the problem sheets' columns
        "layer": _("Layer"),
        "area_m2": area,
        "thinness": _("Compactness (1 = circle)"),
        "sliver": _("Sliver"),
        "community": _("Community"),
        "near_street": _("Nearest street"),
        "near_m": _("Distance to it (m)"),
        "lon": _("Longitude"),
        "lat": _("Latitude"),
        "n_units": _("Number of units"),
        "units": _("Units"),
        "unit_ids": _("Unit ids"),
        "owners": _("Owners"),
        "kind": _("Kind"),
        "unit": unit,
        "unit_id": _("Unit id"),
        "role": _("Role"),
        "owner_name": _("Owner"),
        "owner_key": _("Owner key"),
        "person_id": _("Person id"),
        "valid_from": _("Starts"),
        "valid_to": _("Ends"),
        "days_left": _("Days left"),
        "report_id": _("Report"),
        "reported_at": _("Reported"),
        "rule": _("Rule"),
        "reason": _("Reason"),
        # the frontage sheets' columns
        "segment_id": _("Segment id"),
        "segment": _("Segment"),
        "street": _("Street"),
        "side": _("Side"),
        "from_m": _("From (m)"),
        "to_m": _("To (m)"),
        "length_m": _("Length (m)"),
        "name": _("Unit name"),
        "signed_on": _("Signed"),
        "expires_on": _("Expires"),
        "state": _("Agreement state"),
        "unit_a": _("Unit A id"),
        "unit_b": _("Unit B id"),
        "name_a": _("Unit A"),
        "name_b": _("Unit B"),
    }
