"""The manager map (/map): where problems concentrate, come back and have no owner.

Layers: ownership (segment areas coloured by owner, :func:`gisgrid.maps.ownership.ownership_map`),
reports (clustered markers, or hexagons when there are many), heatmap (hexagon
centres weighted by count), Gi* hotspots, a choropleth of the child
jurisdictions (reports per km of street), recurring places (易反弹), coverage
gaps and overdue reports.  The data comes from
:func:`gisgrid.analytics.store.manager_map_data`; this module only draws.
"""

from __future__ import annotations

import logging
from html import escape

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.utilities import JsCode

from gisgrid import timeutil
from gisgrid.crs import STORAGE_SRID
from gisgrid.maps._base import add_layer_control, base_map, drop_layer_control, round_coordinate, rounded, translator
from gisgrid.maps.ownership import ownership_map

LOGGER = logging.getLogger(__name__)

#: Gi* class -> fill colour (ColorBrewer RdBu, 7 classes), strongest first.
HOTSPOT_COLOURS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
}
_COLD = {HOTSPOT_COLOURS[k] for k in ("cold_90", "cold_95", "cold_99")}
DENSITY_COLOURS = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
#: Choropleth by child jurisdiction (ColorBrewer Purples, 5 equal-interval classes).
CHOROPLETH_COLOURS = ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f")
GAP_COLOUR = "#6a1b9a"
OVERDUE_COLOUR = "#e65100"
RECURRING_COLOUR = "#00695c"


def hotspot_labels(lang: str) -> dict[str, str]:
    """Gi* class -> its name in ``lang`` (legend and popups)."""
    _ = translator(lang)
    return {
        "hot_99": _("Hot spot, confidence 99%"),
        "hot_95": _("Hot spot, confidence 95%"),
        "hot_90": _("Hot spot, confidence 90%"),
        "cold_90": _("Cold spot, confidence 90%"),
        "cold_95": _("Cold spot, confidence 95%"),
        "cold_99": _("Cold spot, confidence 99%"),
    }


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def hotspot_popup(row, labels: dict[str, str], _) -> str:
    """What a hotspot hexagon's numbers mean, in the page's language (escaped HTML)."""
    lines = [
        f"<b>{escape(labels[row.hotspot])}</b>",
        escape(
            _(
                "%(total)s reports in this hexagon and its %(k)s neighbours; the map's average would put "
                "%(expected)s there (%(own)s in this hexagon).",
                total=int(row.neighbourhood_count),
                k=int(row.n_neighbours),
                expected=f"{row.expected_count:.1f}",
                own=int(row.count),
            )
        ),
        escape(
            _(
                "Gi* z = %(z)s: the difference in standard deviations. Chance of a concentration this strong "
                "in random reports, corrected for testing every hexagon (FDR): p = %(p)s.",
                z=f"{row.gi_z:.2f}",
                p=_p_text(row.p_fdr),
            )
        ),
    ]
    return "<br>".join(lines)


# --------------------------------------------------------------------------- layers

_POINT_POPUP = JsCode("""
    function (feature, layer) { layer.bindPopup(feature.properties.popup_html, {maxWidth: 360}); }
""")


def status_labels(_) -> dict[str, str]:
    """A report's status in the page's language."""
    return {
        "reported": _("reported"),
        "accepted": _("accepted"),
        "dispatched": _("dispatched"),
        "handled": _("handled"),
        "verified": _("verified"),
        "closed": _("closed"),
        "returned": _("returned"),
        "rejected": _("rejected (not accepted)"),
        "suspended": _("suspended"),
        "merged": _("merged into another case"),
    }


def late_text(hours: float, _) -> str:
    """How late, in the unit that fits: hours up to two days, then days."""
    if hours < 48:
        return _("%(n)s hours", n=f"{hours:.0f}")
    return _("%(n)s days", n=f"{hours / 24:.0f}")


def _report_popup(row, _, labels: dict[str, str] | None = None) -> str:
    """A report's popup; ``labels`` are :func:`status_labels` (made once per map by the layers)."""
    labels = labels if labels is not None else status_labels(_)
    fields = [
        (_("Report"), f"#{row.id}"),
        (_("Category"), f"{row.category or ''} {row.category_name or ''}"),
        (_("Status"), labels.get(row.status, row.status)),
        (_("Reported"), timeutil.local_text(row.reported_at, getattr(_, "timezone", None) or "UTC")),
        (_("Address"), row.address),
        (_("Description"), row.description),
        (_("Owner"), row.owner_name),
    ]
    if getattr(row, "hours_late", None) is not None and not pd.isna(row.hours_late):
        fields.append((_("Late by"), late_text(float(row.hours_late), _)))
    body = "".join(
        f"<dt>{escape(k)}</dt><dd>{escape('' if v is None or v is pd.NA else str(v))}</dd>"
        for k, v in fields
        if v is not None and not (isinstance(v, float) and np.isnan(v))
    )
    return f'<dl class="gg-popup">{body}</dl>'


def _density_layer(bins: gpd.GeoDataFrame, _) -> folium.GeoJson:
    edges = np.unique(np.quantile(bins["count"], [0.2, 0.4, 0.6, 0.8])) if len(bins) else np.array([])
    cls = np.searchsorted(edges, bins["count"].to_numpy(), side="left")
    frame = gpd.GeoDataFrame(
        {
            "colour": [DENSITY_COLOURS[min(c, 4)] for c in cls],
            "popup_html": [escape(_("%(n)s reports", n=int(n))) for n in bins["count"]],
        },
        geometry=rounded(bins.geometry),
        crs=STORAGE_SRID,
    )
    return folium.GeoJson(
        frame.to_geo_dict(show_bbox=False),
        name=_("Reports (per hexagon)"),
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#7f0000",
            "weight": 0.5,
            "fillOpacity": 0.7,
            "className": "gg-density",
        },
        on_each_feature=_POINT_POPUP,
    )


_CLUSTER_CALLBACK = """
function (row) {
    var m = L.circleMarker(new L.LatLng(row[0], row[1]),
        {radius: 6, color: "#0d47a1", weight: 1, fillColor: "#1e88e5", fillOpacity: 0.85,
         className: "gg-report"});
    m.bindPopup(row[2], {maxWidth: 360});
    return m;
}
"""


def _points_layer(pts: gpd.GeoDataFrame, _) -> folium.plugins.FastMarkerCluster:
    labels = status_labels(_)
    data = [
        [round_coordinate(g.y), round_coordinate(g.x), _report_popup(r, _, labels)]
        for g, r in zip(pts.geometry, pts.itertuples())
    ]
    return folium.plugins.FastMarkerCluster(data, callback=_CLUSTER_CALLBACK, name=_("Reports"))


def _circles_layer(pts: gpd.GeoDataFrame, name: str, colour: str, css: str, _, show: bool = True) -> folium.GeoJson:
    labels = status_labels(_)
    popups = (
        [_report_popup(r, _, labels) for r in pts.itertuples()]
        if "status" in pts.columns
        else [escape(_("%(cat)s: %(n)s recurrences", cat=r.category, n=r.n_recurrences)) for r in pts.itertuples()]
    )
    frame = gpd.GeoDataFrame({"popup_html": popups}, geometry=rounded(pts.geometry), crs=STORAGE_SRID)
    return folium.GeoJson(
        frame.to_geo_dict(show_bbox=False),
        name=name,
        show=show,
        marker=folium.CircleMarker(
            radius=7, color=colour, weight=2, fill=True, fill_color=colour, fill_opacity=0.6, class_name=css
        ),
        on_each_feature=_POINT_POPUP,
    )


def _hotspot_layer(hot: gpd.GeoDataFrame, _, labels: dict[str, str]) -> folium.GeoJson:
    sig = hot[hot["hotspot"] != "not_significant"]
    frame = gpd.GeoDataFrame(
        {
            "colour": sig["hotspot"].map(HOTSPOT_COLOURS).to_list(),
            "popup_html": [hotspot_popup(row, labels, _) for row in sig.itertuples()],
        },
        geometry=rounded(sig.geometry),
        crs=STORAGE_SRID,
    )
    return folium.GeoJson(
        frame.to_geo_dict(show_bbox=False),
        name=_("Hotspots (Gi*)"),
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#555",
            "weight": 0.4,
            "fillOpacity": 0.3 if f["properties"]["colour"] in _COLD else 0.65,
            "className": "gg-hotspot",
        },
        on_each_feature=_POINT_POPUP,
    )


def _gaps_layer(gaps: gpd.GeoDataFrame, _) -> folium.GeoJson:
    frame = gpd.GeoDataFrame(
        {"popup_html": [escape(f"{_('No current owner')}: {k} {n}") for k, n in zip(gaps["kind"], gaps["name"])]},
        geometry=rounded(gaps.geometry),
        crs=STORAGE_SRID,
    )
    return folium.GeoJson(
        frame.to_geo_dict(show_bbox=False),
        name=_("Coverage gaps"),
        style_function=lambda f: {
            "fillColor": GAP_COLOUR,
            "color": GAP_COLOUR,
            "weight": 2,
            "dashArray": "5 4",
            "fillOpacity": 0.35,
            "className": "gg-gap",
        },
        on_each_feature=_POINT_POPUP,
    )


_TOOLTIP = JsCode("""
    function (feature, layer) { layer.bindTooltip(feature.properties.tooltip_html, {sticky: true}); }
""")


def _choropleth_layer(kids: gpd.GeoDataFrame, _) -> tuple[folium.GeoJson, dict]:
    """Child jurisdictions coloured by reports per km of street (per jurisdiction without streets).

    Returns the layer and its legend: the measure's label and (colour, low, high) per class.
    """
    per_km = kids["street_km"].fillna(0).gt(0).any()
    values = (kids["per_km"] if per_km else kids["reports"]).astype(float).fillna(0).to_numpy()
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    k = len(CHOROPLETH_COLOURS)
    edges = np.linspace(lo, hi, k + 1)
    cls = (
        np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, k - 1)
        if hi > lo
        else np.zeros(len(values), dtype=int)
    )
    tips = []
    for row in kids.itertuples():
        rate = "—" if row.per_km is None or np.isnan(row.per_km) else f"{row.per_km:.2f}"
        km = "—" if row.street_km is None or np.isnan(row.street_km) else f"{row.street_km:.2f}"
        tips.append(
            escape(
                f"{row.name} ({row.code}) · {_('Reports')}: {int(row.reports)} · "
                f"{_('Street km')}: {km} · {_('Reports per km')}: {rate}"
            )
        )
    frame = gpd.GeoDataFrame(
        {"colour": [CHOROPLETH_COLOURS[c] for c in cls], "tooltip_html": tips},
        geometry=rounded(kids.geometry),
        crs=STORAGE_SRID,
    )
    layer = folium.GeoJson(
        frame.to_geo_dict(show_bbox=False),
        name=_("Reports by jurisdiction (choropleth)"),
        show=False,
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#3f007d",
            "weight": 1.2,
            "fillOpacity": 0.6,
            "className": "gg-choropleth",
        },
        on_each_feature=_TOOLTIP,
    )
    decimals = 2 if per_km else 0
    legend = {
        "label": _("Reports per km of street") if per_km else _("Reports per jurisdiction"),
        "classes": [
            (c, round(float(a), decimals), round(float(b), decimals))
            for c, a, b in zip(CHOROPLETH_COLOURS, edges[:-1], edges[1:])
        ]
        if hi > lo
        else [(CHOROPLETH_COLOURS[0], round(lo, decimals), round(hi, decimals))],
    }
    return layer, legend


def _heat_layer(bins: gpd.GeoDataFrame, epsg: int, _) -> folium.plugins.HeatMap:
    """Hexagon centres (computed in the metric CRS ``epsg``) weighted by count."""
    centres = bins.to_crs(epsg).centroid.to_crs(STORAGE_SRID)
    top = float(bins["count"].max())
    heat = [
        [round_coordinate(p.y), round_coordinate(p.x), round(float(c) / top, 4)] for p, c in zip(centres, bins["count"])
    ]
    return folium.plugins.HeatMap(heat, name=_("Heatmap"), radius=25, blur=18, min_opacity=0.3, max_zoom=17, show=False)


# --------------------------------------------------------------------------- the map


def manager_map(data, *, attribution: str, lang: str = "zh_CN", timezone: str | None = None) -> tuple[folium.Map, dict]:
    """The manager map of ``data`` and the figures shown beside it.

    Parameters
    ----------
    data : gisgrid.analytics.store.ManagerMapData
        What :func:`gisgrid.analytics.store.manager_map_data` read: the
        segments with their owners, the matched reports (as points, or
        hexagon counts), hotspots, recurring places, overdue reports, the
        choropleth and the coverage gaps, all EPSG:4326.
    attribution : str
        Plain-text credit of the map data.
    lang : str, default "zh_CN"
        Language of layer names, popups and legends (``"zh_CN"`` or ``"en"``).
    timezone : str, optional
        IANA zone the popups' times are shown in (the deployment's); default UTC.

    Returns
    -------
    (folium.Map, dict)
        The map, and ``n``, ``mode`` ("none", "points" or "hexes"),
        ``hexes``, ``hot``, ``cold``, ``overdue``, ``gaps``, ``recurring``
        (None when there were too many reports to search) and ``choropleth``
        (its legend, or None).
    """
    _ = translator(lang)
    _.timezone = timezone  # read by the report popups
    if data.segments is None or len(data.segments) == 0:
        m = base_map(data.bounds, attribution=attribution, lang=lang)
    else:
        # ownership_map ends with its own layer control; the manager map adds layers, then one control
        m = drop_layer_control(ownership_map(data.segments, bounds=data.bounds, attribution=attribution, lang=lang))
    # with no tile layer Leaflet has no maxZoom, which the marker cluster needs
    m.options["max_zoom"] = 21
    stats = {
        "n": data.n,
        "mode": "none",
        "hexes": 0,
        "hot": 0,
        "cold": 0,
        "overdue": 0,
        "gaps": 0,
        "recurring": 0,
        "choropleth": None,
    }
    if data.n:
        stats["hexes"] = len(data.bins)
        if data.points is not None:
            _points_layer(data.points, _).add_to(m)
            stats["mode"] = "points"
        else:
            _density_layer(data.bins, _).add_to(m)
            stats["mode"] = "hexes"
        _heat_layer(data.bins, data.epsg, _).add_to(m)
        hot = data.hotspots
        if hot is not None and len(hot):
            stats["hot"] = int(hot["hotspot"].str.startswith("hot").sum())
            stats["cold"] = int(hot["hotspot"].str.startswith("cold").sum())
            _hotspot_layer(hot, _, hotspot_labels(lang)).add_to(m)
        stats["recurring"] = data.recurring_count
        if data.recurring is not None and len(data.recurring):
            _circles_layer(
                data.recurring, _("Recurring places"), RECURRING_COLOUR, "gg-recurring", _, show=False
            ).add_to(m)
        stats["overdue"] = data.overdue_count
        if len(data.overdue):
            _circles_layer(data.overdue, _("Overdue reports"), OVERDUE_COLOUR, "gg-overdue", _).add_to(m)
        if data.choropleth is not None and len(data.choropleth):
            layer, stats["choropleth"] = _choropleth_layer(data.choropleth, _)
            layer.add_to(m)
    stats["gaps"] = len(data.gaps)
    if len(data.gaps):
        _gaps_layer(data.gaps, _).add_to(m)
    add_layer_control(m)
    LOGGER.debug("manager map: %s", stats)
    return m, stats
