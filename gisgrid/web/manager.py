"""The manager map (/map): where problems concentrate, come back and have no owner.

Layers: ownership (segment areas coloured by owner, :func:`gisgrid.maps.ownership.ownership_map`),
reports (clustered markers up to :data:`gisgrid.analytics.store.MAX_POINTS`, else hexagons
aggregated in PostGIS), heatmap (hexagon centres weighted by count), Gi* hotspots, a choropleth of the child
jurisdictions (reports per km of street, counted in PostGIS),
recurring places (易反弹), coverage gaps and overdue reports.  Exports: a standalone
offline HTML file, a PNG (headless Chromium) and the summaries as XLSX.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import re
from html import escape
from pathlib import Path

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import sqlalchemy as sa
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from folium.utilities import JsCode

from gisgrid.accounts.store import list_jurisdictions, list_towns, visible_jurisdiction
from gisgrid.analytics import store as manager
from gisgrid.analytics.hotspots import METHOD_TEXT, METHOD_TEXT_ZH
from gisgrid.crs import STORAGE_SRID
from gisgrid.db import layers
from gisgrid.demo import ATTRIBUTION
from gisgrid.errors import InputError, NotFound
from gisgrid.io import write_workbook
from gisgrid.maps import ownership as maps
from gisgrid.ownership.store import search_people, segment_owner_chains
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn
from gisgrid.web.vendor import VENDOR_DIR

LOGGER = logging.getLogger(__name__)

bp = Blueprint("manager", __name__, url_prefix="/map")

HEX_SIZE_M = 100.0
#: At most this many overdue reports and recurring places are drawn (the worst); counts are of all.
MAX_DRAWN = 300
#: Recurring places are searched in memory (pairs of nearby reports): only up to this many reports.
MAX_RECURRING_REPORTS = 50_000
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


def _lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh_CN"


def _parse_day(value: str | None, what: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{what} must be a date YYYY-MM-DD, not {value!r}") from None


def _filters(conn) -> manager.ReportFilters:
    """Filters from the query string; the jurisdiction defaults to the first town."""
    args = request.args
    jurisdiction = args.get("jurisdiction")
    scope = current_scope()
    if jurisdiction is None or (not jurisdiction and not scope.unlimited):
        towns = list_towns(conn, scope, whole=True)  # what the user sees whole
        jurisdiction = towns[0]["code"] if towns else None
        if jurisdiction is None and not scope.unlimited:
            raise NotFound(_("No jurisdiction of yours to show."))
    if jurisdiction:
        visible_jurisdiction(conn, scope, jurisdiction)  # another's: 404
    return manager.ReportFilters(
        date_from=_parse_day(args.get("from"), "date from"),
        date_to=_parse_day(args.get("to"), "date to"),
        categories=tuple(v for v in args.getlist("category") if v),
        statuses=tuple(v for v in args.getlist("status") if v),
        jurisdiction=jurisdiction or None,
        owner=_owner(conn, args.get("owner")),
    )


def _owner(conn, text: str | None) -> str | None:
    """The owner filter as ``person:ID``/``department:ID``.  A typed name that is exactly one owner's is
    taken; another is dropped with a message naming it (not a bare 400): people are told apart by id."""
    text = (text or "").strip()
    if not text or manager.OWNER_KEY.fullmatch(text):
        return text or None
    found = search_people(conn, text, limit=50)
    exact = found[found["name"] == text]
    if len(exact) == 1:
        return f"{exact.iloc[0]['kind']}:{int(exact.iloc[0]['id'])}"
    if len(exact) > 1:
        flash(_("%(n)s owners are named %(name)s: pick one from the list as you type.", n=len(exact), name=text))
    else:
        flash(_("No owner is named %(name)s: pick one from the list as you type.", name=text))
    return None


# --------------------------------------------------------------------------- layers

_POINT_POPUP = JsCode("""
    function (feature, layer) { layer.bindPopup(feature.properties.popup_html, {maxWidth: 360}); }
""")


def _report_popup(row) -> str:
    fields = [
        (_("Report"), f"#{row.id}"),
        (_("Category"), f"{row.category or ''} {row.category_name or ''}"),
        (_("Status"), row.status),
        (_("Reported"), str(row.reported_at)[:16]),
        (_("Address"), row.address),
        (_("Description"), row.description),
        (_("Owner"), row.owner_name),
    ]
    if getattr(row, "hours_late", None) is not None:
        fields.append((_("Hours late"), f"{row.hours_late:.1f}"))
    body = "".join(
        f"<dt>{escape(k)}</dt><dd>{escape('' if v is None or v is pd.NA else str(v))}</dd>"
        for k, v in fields
        if v is not None and not (isinstance(v, float) and np.isnan(v))
    )
    return f'<dl class="gg-popup">{body}</dl>'


def _round(v: float) -> float:
    return round(float(v), maps.COORDINATE_DECIMALS)


def _ownership(conn, filters, bounds, lang) -> folium.Map:
    where = "true"
    params = {}
    if filters.jurisdiction:
        where = (
            "id IN (SELECT g.id FROM segment g, jurisdiction j WHERE j.code = :code "
            "AND g.geom && j.geom AND ST_Intersects(g.geom, j.geom))"
        )
        params = {"code": filters.jurisdiction}
    segs = layers.fetch_layer(conn, "segments", where=where, params=params)
    if len(segs) == 0:
        return maps.base_map(bounds, attribution=ATTRIBUTION, lang=lang)
    chains = segment_owner_chains(conn, segment_ids=segs["id"].tolist())
    segs = segs.join(chains, on="id").rename(
        columns={"street": "street_name", "name": "segment_name", "owner_key": "owner_id"}
    )
    segs["centerline"] = gpd.GeoSeries.from_wkt(segs.pop("centerline_wkt"), crs=STORAGE_SRID)
    m = maps.ownership_map(segs, bounds=bounds, attribution=ATTRIBUTION, lang=lang)
    # ownership_map ends with its own LayerControl; the manager map adds layers, then one control
    for key in [k for k, child in m._children.items() if isinstance(child, folium.LayerControl)]:
        del m._children[key]
    return m


def _density_layer(bins: gpd.GeoDataFrame) -> folium.GeoJson:
    edges = np.unique(np.quantile(bins["count"], [0.2, 0.4, 0.6, 0.8])) if len(bins) else np.array([])
    cls = np.searchsorted(edges, bins["count"].to_numpy(), side="left")
    frame = gpd.GeoDataFrame(
        {
            "colour": [DENSITY_COLOURS[min(c, 4)] for c in cls],
            "popup_html": [escape(_("%(n)s reports", n=int(n))) for n in bins["count"]],
        },
        geometry=maps._rounded(bins.geometry),
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


def _points_layer(pts: gpd.GeoDataFrame) -> folium.plugins.FastMarkerCluster:
    data = [[_round(g.y), _round(g.x), _report_popup(r)] for g, r in zip(pts.geometry, pts.itertuples())]
    return folium.plugins.FastMarkerCluster(data, callback=_CLUSTER_CALLBACK, name=_("Reports"))


def _circles_layer(pts: gpd.GeoDataFrame, name: str, colour: str, css: str, show: bool = True) -> folium.GeoJson:
    popups = (
        [_report_popup(r) for r in pts.itertuples()]
        if "status" in pts.columns
        else [escape(_("%(cat)s: %(n)s recurrences", cat=r.category, n=r.n_recurrences)) for r in pts.itertuples()]
    )
    frame = gpd.GeoDataFrame({"popup_html": popups}, geometry=maps._rounded(pts.geometry), crs=STORAGE_SRID)
    return folium.GeoJson(
        frame.to_geo_dict(show_bbox=False),
        name=name,
        show=show,
        marker=folium.CircleMarker(
            radius=7, color=colour, weight=2, fill=True, fill_color=colour, fill_opacity=0.6, class_name=css
        ),
        on_each_feature=_POINT_POPUP,
    )


def _hotspot_layer(hot: gpd.GeoDataFrame) -> folium.GeoJson:
    sig = hot[hot["hotspot"] != "not_significant"]
    labels = _hotspot_labels()
    frame = gpd.GeoDataFrame(
        {
            "colour": sig["hotspot"].map(HOTSPOT_COLOURS).to_list(),
            "popup_html": [
                escape(f"{labels[c]} · Gi* z = {z:.2f} · p(FDR) = {p:.3f} · n = {int(n)}")
                for c, z, p, n in zip(sig["hotspot"], sig["gi_z"], sig["p_fdr"], sig["count"])
            ],
        },
        geometry=maps._rounded(sig.geometry),
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


def _gaps_layer(gaps: gpd.GeoDataFrame) -> folium.GeoJson:
    frame = gpd.GeoDataFrame(
        {"popup_html": [escape(f"{_('No current owner')}: {k} {n}") for k, n in zip(gaps["kind"], gaps["name"])]},
        geometry=maps._rounded(gaps.geometry),
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


def _choropleth_layer(kids: gpd.GeoDataFrame) -> tuple[folium.GeoJson, dict]:
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
        geometry=maps._rounded(kids.geometry),
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


def _status_labels() -> dict[str, str]:
    return {
        "open": _("open (not closed)"),
        "reported": _("reported"),
        "accepted": _("accepted"),
        "dispatched": _("dispatched"),
        "handled": _("handled"),
        "verified": _("verified"),
        "closed": _("closed"),
    }


def _hotspot_labels() -> dict[str, str]:
    return {
        "hot_99": _("Hot spot, confidence 99%"),
        "hot_95": _("Hot spot, confidence 95%"),
        "hot_90": _("Hot spot, confidence 90%"),
        "cold_90": _("Cold spot, confidence 90%"),
        "cold_95": _("Cold spot, confidence 95%"),
        "cold_99": _("Cold spot, confidence 99%"),
    }


def build_map(conn, filters: manager.ReportFilters, *, permutations: int = 9999) -> tuple[folium.Map, dict]:
    """The manager map for ``filters`` and the figures shown beside it."""
    lang = _lang()
    # one pass over the matched reports: count, overdue count and hexagon counts
    agg = manager.aggregate(conn, filters, size_m=HEX_SIZE_M)
    n = agg.n
    epsg, bounds = manager.study_area(conn, filters)
    if bounds is None:  # no jurisdiction: the reports' extent, else the whole data
        row = conn.execute(
            sa.text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom)::geometry AS e FROM jurisdiction) t"
            )
        ).one()
        bounds = tuple(float(v) for v in row) if row[0] is not None else (-180, -85, 180, 85)
    m = _ownership(conn, filters, bounds, lang)
    # with no tile layer Leaflet has no maxZoom, which the marker cluster needs
    m.options["max_zoom"] = 21
    stats = {
        "n": n,
        "mode": "none",
        "hexes": 0,
        "hot": 0,
        "cold": 0,
        "overdue": 0,
        "gaps": 0,
        "recurring": 0,
        "choropleth": None,
    }
    if n:
        bins = manager.density_bins(conn, filters, size_m=HEX_SIZE_M, agg=agg)
        stats["hexes"] = len(bins)
        if n <= manager.MAX_POINTS:
            _points_layer(manager.points(conn, filters)).add_to(m)
            stats["mode"] = "points"
        else:
            _density_layer(bins).add_to(m)
            stats["mode"] = "hexes"
        centres = bins.to_crs(epsg).centroid.to_crs(STORAGE_SRID)
        top = float(bins["count"].max())
        heat = [[_round(p.y), _round(p.x), round(float(c) / top, 4)] for p, c in zip(centres, bins["count"])]
        folium.plugins.HeatMap(
            heat, name=_("Heatmap"), radius=25, blur=18, min_opacity=0.3, max_zoom=17, show=False
        ).add_to(m)
        if filters.jurisdiction:
            hot = manager.hotspots(conn, filters, size_m=HEX_SIZE_M, permutations=permutations, agg=agg)
            if len(hot):
                stats["hot"] = int(hot["hotspot"].str.startswith("hot").sum())
                stats["cold"] = int(hot["hotspot"].str.startswith("cold").sum())
                _hotspot_layer(hot).add_to(m)
        if n <= MAX_RECURRING_REPORTS:
            rec = manager.recurring(conn, filters)
            stats["recurring"] = len(rec)
        else:  # the pairwise search runs in memory: too many reports (narrow the filters)
            stats["recurring"] = None
            rec = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=STORAGE_SRID))
        rec = rec.head(MAX_DRAWN)  # the places with most recurrences
        if len(rec):
            _circles_layer(rec, _("Recurring places"), RECURRING_COLOUR, "gg-recurring", show=False).add_to(m)
        late = manager.overdue(conn, filters, limit=MAX_DRAWN)  # the most late
        stats["overdue"] = agg.overdue
        if len(late):
            _circles_layer(late, _("Overdue reports"), OVERDUE_COLOUR, "gg-overdue").add_to(m)
        kids = manager.choropleth(conn, filters)
        if len(kids):
            layer, stats["choropleth"] = _choropleth_layer(kids)
            layer.add_to(m)
    gaps = manager.coverage_gaps(conn, filters)
    stats["gaps"] = len(gaps)
    if len(gaps):
        _gaps_layer(gaps).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    return m, stats


def _map_parts(m) -> dict:
    root = m.get_root()
    root.render()
    return {"map_header": root.header.render(), "map_html": root.html.render(), "map_script": root.script.render()}


def _options(conn) -> dict:
    cats = pd.read_sql_query(sa.text("SELECT code, name, name_en FROM category ORDER BY code"), conn)
    owners = []  # offered as the user types, by /owners/people.json (people are told apart by id)
    return {
        "categories": cats.to_dict("records"),
        "jurisdictions": list_jurisdictions(conn, current_scope()),
        "statuses": manager.STATUSES,
        "status_labels": _status_labels(),
        "owners": owners,
    }


@bp.get("")
@bp.get("/")
def manager_map():
    conn = get_conn()
    filters = _filters(conn)
    m, stats = build_map(conn, filters)
    return render_template(
        "manager.html",
        filters=filters,
        stats=stats,
        options=_options(conn),
        method_text=METHOD_TEXT if _lang() == "en" else METHOD_TEXT_ZH,
        hotspot_colours=HOTSPOT_COLOURS,
        hotspot_labels=_hotspot_labels(),
        density_colours=DENSITY_COLOURS,
        gap_colour=GAP_COLOUR,
        overdue_colour=OVERDUE_COLOUR,
        recurring_colour=RECURRING_COLOUR,
        query=request.query_string.decode(),
        **_map_parts(m),
    )


# --------------------------------------------------------------------------- exports

_ASSET = re.compile(
    r'<script src="(/static/vendor/[^"]+)"></script>|<link rel="stylesheet" href="(/static/vendor/[^"]+)"\s*/?>'
)
_CSS_URL = re.compile(r"url\((['\"]?)([^)'\"]+)\1\)")
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}


def _vendor_file(url: str) -> Path:
    path = (VENDOR_DIR / url.removeprefix("/static/vendor/")).resolve()
    if VENDOR_DIR not in path.parents:
        raise InputError(f"asset outside the vendor directory: {url}")
    return path


def _inline_css(path: Path) -> str:
    """The style sheet with its relative image URLs as data: URIs (fonts are left out)."""

    def image(match):
        ref = match.group(2)
        if ref.startswith(("data:", "http:", "https:", "//", "#")):
            return match.group(0) if ref.startswith(("data:", "#")) else "url()"
        target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
        kind = _IMAGE_TYPES.get(target.suffix.lower())
        if kind and target.is_file():
            return f"url(data:{kind};base64,{base64.b64encode(target.read_bytes()).decode()})"
        return "url()"

    return _CSS_URL.sub(image, path.read_text(encoding="utf-8"))


def standalone_html(html: str) -> str:
    """``html`` with every local vendored script and style sheet inlined: opens from a file, offline."""

    def inline(match):
        js, css = match.groups()
        if js:
            text = _vendor_file(js).read_text(encoding="utf-8").replace("</script", "<\\/script")
            return f"<script>{text}</script>"
        return f"<style>{_inline_css(_vendor_file(css))}</style>"

    return _ASSET.sub(inline, html)


def _standalone(conn, filters) -> str:
    m, stats = build_map(conn, filters)
    m.get_root().title = escape(_("Manager map") + f" · {filters.jurisdiction or ''} · {stats['n']}")
    return standalone_html(maps.render(m))


@bp.get("/export.html")
def export_html():
    conn = get_conn()
    html = _standalone(conn, _filters(conn))
    return Response(
        html,
        mimetype="text/html; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="gisgrid-map.html"'},
    )


@bp.get("/export.png")
def export_png():
    """The standalone map as PNG: rendered by headless Chromium in a background job; its progress page.

    The page is built here (as for the HTML export); the browser runs in the
    worker (:data:`gisgrid.jobs.MAP_PNG`), and the progress page links to the PNG.
    """
    from gisgrid.web.jobs import start_map_png

    conn = get_conn()
    job = start_map_png(_standalone(conn, _filters(conn)))
    return redirect(url_for("jobs.show", job=job), code=303)


@bp.get("/summary.xlsx")
def summary_xlsx():
    conn = get_conn()
    tables = manager.summaries(conn, _filters(conn))
    buf = io.BytesIO()
    write_workbook({"owners": tables["owner"], "jurisdictions": tables["jurisdiction"]}, buf)
    return Response(
        buf.getvalue(),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="gisgrid-summary.xlsx"'},
    )
