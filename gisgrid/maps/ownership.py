"""Folium map builders: data in, :class:`folium.Map` out.

Pure functions: no Flask, no database.  Maps have no online tile server
(offices sit on intranets), so they draw on a plain light background; the web
layer makes Folium load Leaflet from the vendored copies
(:func:`gisgrid.web.vendor.use_local_assets`).

Every string that reaches a map comes from users (street names, owner names,
phone numbers), so it is HTML-escaped here before it becomes popup, tooltip,
legend or title markup.  Maps use Leaflet's SVG renderer so that segment areas
are DOM paths carrying the class :data:`SEGMENT_CLASS`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from html import escape

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template
from folium.utilities import JsCode

from gisgrid.crs import STORAGE_SRID
from gisgrid.errors import CRSError, InputError

LOGGER = logging.getLogger(__name__)

#: CSS class of every segment-area path (the hook for styling and browser tests).
SEGMENT_CLASS = "gg-segment"
#: Extra CSS class of segment areas that have no owner.
UNASSIGNED_CLASS = "gg-unassigned"
#: CSS class of centerline paths.
CENTERLINE_CLASS = "gg-centerline"

BACKGROUND_COLOUR = "#f4f3ef"
UNASSIGNED_COLOUR = "#9e9e9e"
#: Qualitative palette for owners: Tableau 20 without its two greys, which are
#: kept for unassigned segments.
OWNER_PALETTE = (
    "#1f77b4",
    "#aec7e8",
    "#ff7f0e",
    "#ffbb78",
    "#2ca02c",
    "#98df8a",
    "#d62728",
    "#ff9896",
    "#9467bd",
    "#c5b0d5",
    "#8c564b",
    "#c49c94",
    "#e377c2",
    "#f7b6d2",
    "#bcbd22",
    "#dbdb8d",
    "#17becf",
    "#9edae5",
)

#: Decimal places kept in lon/lat coordinates drawn on maps (1e-6 deg ~ 0.1 m).
COORDINATE_DECIMALS = 6
CHAIN_SEPARATOR = " → "

REQUIRED_COLUMNS = ("street_name", "segment_name", "owner_name")

_LABELS = {
    "zh_CN": {
        "street": "道路",
        "segment": "路段",
        "chain": "责任链",
        "phone": "电话",
        "owner": "责任人",
        "unassigned": "未分配",
        "legend": "路段责任人",
        "segments_layer": "路段责任区",
        "centerlines_layer": "道路中心线",
    },
    "en": {
        "street": "Street",
        "segment": "Segment",
        "chain": "Chain of chiefs",
        "phone": "Phone",
        "owner": "Owner",
        "unassigned": "Unassigned",
        "legend": "Segment owners",
        "segments_layer": "Segment areas",
        "centerlines_layer": "Centerlines",
    },
}

_CSS = f"""
.leaflet-container {{ background: {BACKGROUND_COLOUR}; }}
.gg-panel {{ background: rgba(255,255,255,.92); padding: 6px 10px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 13px; line-height: 1.4; }}
.gg-title {{ font-size: 15px; font-weight: 600; }}
.gg-legend {{ max-height: 40vh; max-width: 260px; overflow-y: auto; }}
.gg-legend h4 {{ font-size: 13px; font-weight: 600; margin: 0 0 4px; }}
.gg-legend-row {{ display: flex; align-items: center; gap: 6px; white-space: nowrap; }}
.gg-legend-row .gg-count {{ color: #666; margin-left: auto; padding-left: 8px; }}
.gg-swatch {{ flex: none; width: 14px; height: 14px; border: 1px solid rgba(0,0,0,.45); }}
.gg-swatch.gg-unassigned {{ border: 1.5px dashed #616161; }}
.gg-popup dt {{ font-weight: 600; margin: 0; }}
.gg-popup dd {{ margin: 0 0 4px; }}
"""


# --------------------------------------------------------------------------- map chrome


class _Chrome(MacroElement):
    """Page CSS, container language and attribution of a gisgrid map."""

    _template = Template("""
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.getContainer().setAttribute("lang", {{ this.lang_tag|tojson }});
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.attribution_html|tojson }});
        {% endmacro %}
    """)

    def __init__(self, *, attribution: str, lang: str):
        super().__init__()
        self._name = "GisgridChrome"
        self.css = _CSS
        self.lang_tag = lang.replace("_", "-")
        self.attribution_html = escape(attribution)


class _HtmlControl(MacroElement):
    """A Leaflet control showing fixed HTML (already escaped by the caller)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html: str, *, position: str, css_class: str):
        super().__init__()
        self._name = "HtmlControl"
        self.html = html
        self.position = position
        self.css_class = css_class


def _language(lang: str) -> str:
    """The canonical key in ``_LABELS`` for ``lang`` ("zh_CN", "zh-CN", "zh", "en", ...)."""
    key = str(lang).replace("-", "_")
    key = {"zh": "zh_CN", "en_US": "en", "en_GB": "en"}.get(key, key)
    if key not in _LABELS:
        raise InputError(f"unsupported map language {lang!r}; use one of {sorted(_LABELS)}")
    return key


def _validate_bounds(bounds) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in bounds)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bounds must be (min_lon, min_lat, max_lon, max_lat), got {bounds!r}") from exc
    problems = []
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        problems.append("values must be finite")
    else:
        if not (-180 <= minx <= maxx <= 180):
            problems.append("need -180 <= min_lon <= max_lon <= 180")
        if not (-90 <= miny <= maxy <= 90):
            problems.append("need -90 <= min_lat <= max_lat <= 90")
    if problems:
        raise InputError(f"bad lon/lat bounds {bounds!r}: {'; '.join(problems)}")
    return minx, miny, maxx, maxy


def base_map(bounds: Sequence[float], *, attribution: str, lang: str = "zh_CN") -> folium.Map:
    """An empty map with no tile server, fitted to ``bounds``.

    Parameters
    ----------
    bounds : sequence of 4 float
        ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326 degrees.
    attribution : str
        Plain text shown in the attribution control (escaped here), e.g.
        ``"© OpenStreetMap contributors (ODbL)"`` for OSM-derived data.
    lang : str, default "zh_CN"
        Language of the map's labels (``"zh_CN"`` or ``"en"``); also set as
        the ``lang`` attribute of the map container so CJK text gets CJK fonts.

    Returns
    -------
    folium.Map
        A map with a plain light background, a scale bar and the attribution,
        drawing vectors as SVG.

    Raises
    ------
    InputError
        For malformed bounds or an unsupported language.
    """
    lang = _language(lang)
    minx, miny, maxx, maxy = _validate_bounds(bounds)
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=15,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,  # SVG: segment paths stay DOM elements with our CSS class
        max_zoom=21,
    )
    m.add_child(_Chrome(attribution=attribution, lang=lang))
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(12, 12), max_zoom=19)
    return m


# --------------------------------------------------------------------------- ownership map


def _text(value) -> str:
    """Display text of a cell: '' for missing values, lists joined as a chain."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return CHAIN_SEPARATOR.join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, float) and math.isnan(value):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


def owner_colours(owner_keys) -> dict[str, str]:
    """Colour of each owner on one map, the same on every run.

    Each owner prefers the palette colour its key hashes to (a stable hash,
    not Python's salted ``hash``), so an owner keeps its colour from map to map.
    Owners are served in key order; one whose colour is taken on this map gets
    the next least-used colour, so up to ``len(OWNER_PALETTE)`` owners never
    share a colour.

    Parameters
    ----------
    owner_keys : iterable of str
        Stable owner identities (``owner_id``, else name and phone); repeats
        are fine.  The empty key means unassigned and gets
        :data:`UNASSIGNED_COLOUR`.

    Returns
    -------
    dict
        Owner key -> ``"#rrggbb"``.
    """
    n = len(OWNER_PALETTE)
    uses = [0] * n
    colours = {"": UNASSIGNED_COLOUR}
    for key in sorted(set(owner_keys) - {""}):
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        start = int.from_bytes(digest, "big") % n
        step = min(range(n), key=lambda j: uses[(start + j) % n])  # first least-used slot from start
        slot = (start + step) % n
        uses[slot] += 1
        colours[key] = OWNER_PALETTE[slot]
    return colours


def _darker(colour: str, factor: float = 0.7) -> str:
    """``colour`` (``#rrggbb``) with each channel scaled by ``factor``: outlines of pale fills."""
    rgb = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c * factor):02x}" for c in rgb)


def _is_lonlat_storage(crs) -> bool:
    """True for EPSG:4326 and OGC:CRS84 (the same datum, lon/lat order in GeoPandas)."""
    return crs is not None and (crs.to_epsg() == STORAGE_SRID or crs.to_string() == "OGC:CRS84")


def _check_segments(segments: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Validate ``segments``; return the area polygons (``area`` column or the geometry)."""
    if not isinstance(segments, gpd.GeoDataFrame):
        raise InputError(f"segments must be a GeoDataFrame, got {type(segments).__name__}")
    problems = [f"missing column {c!r}" for c in REQUIRED_COLUMNS if c not in segments.columns]
    area = segments["area"] if isinstance(segments.get("area"), gpd.GeoSeries) else segments.geometry
    if not _is_lonlat_storage(area.crs):
        raise CRSError(
            f"segment areas must be in EPSG:{STORAGE_SRID} lon/lat, got {area.crs}; reproject before mapping"
        )
    missing = area.index[area.isna() | area.is_empty].tolist()
    if missing:
        problems.append(f"{len(missing)} segment(s) without an area polygon (index {missing[:10]})")
    not_polygon = area.index[area.notna() & ~area.is_empty & ~area.geom_type.isin(["Polygon", "MultiPolygon"])].tolist()
    if not_polygon:
        problems.append(f"{len(not_polygon)} segment area(s) are not polygons (index {not_polygon[:10]})")
    if "centerline" in segments.columns:
        centerline = segments["centerline"]
        if not isinstance(centerline, gpd.GeoSeries) or not _is_lonlat_storage(centerline.crs):
            problems.append(f"column 'centerline' must be a geometry column in EPSG:{STORAGE_SRID}")
    if problems:
        raise InputError("cannot map segments: " + "; ".join(problems))
    return area


def _rounded(geoms: gpd.GeoSeries) -> np.ndarray:
    """Geometries with coordinates rounded for drawing (smaller pages, same picture)."""
    return shapely.transform(geoms.values, lambda xy: np.round(xy, COORDINATE_DECIMALS))


def _owner_keys(segments: gpd.GeoDataFrame, names: list[str], phones: list[str]) -> list[str]:
    ids = [_text(v) for v in segments["owner_id"]] if "owner_id" in segments.columns else [""] * len(names)
    # An owner is known by id when there is one, else by name and phone (two
    # people may share a name); no name means the segment is unassigned.
    return [(i or f"{n}\x1f{p}") if n else "" for i, n, p in zip(ids, names, phones)]


def _popup_html(street: str, segment: str, chain: str, phone: str, labels: dict) -> str:
    rows = [(labels["street"], street), (labels["segment"], segment), (labels["chain"], chain or labels["unassigned"])]
    if phone:
        rows.append((labels["phone"], phone))
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f'<dl class="gg-popup">{body}</dl>'


def _legend_html(owners: pd.DataFrame, labels: dict) -> str:
    """Legend rows, one per owner (name, colour, segment count), unassigned last."""
    rows = []
    for owner in owners.itertuples(index=False):  # one row per owner, not per segment
        swatch_class = "gg-swatch gg-unassigned" if owner.unassigned else "gg-swatch"
        name = labels["unassigned"] if owner.unassigned else owner.name
        title = f' title="{escape(owner.phone)}"' if owner.phone else ""
        rows.append(
            f'<div class="gg-legend-row"{title}><span class="{swatch_class}" '
            f'style="background:{owner.colour}"></span><span>{escape(name)}</span>'
            f'<span class="gg-count">{owner.n_segments}</span></div>'
        )
    return f"<h4>{escape(labels['legend'])}</h4>" + "".join(rows)


def _segment_style(feature: dict) -> dict:
    props = feature["properties"]
    if props["unassigned"]:
        return {
            "fillColor": UNASSIGNED_COLOUR,
            "color": "#616161",
            "weight": 1.5,
            "dashArray": "4 3",
            "opacity": 0.9,
            "fillOpacity": 0.35,
            "className": f"{SEGMENT_CLASS} {UNASSIGNED_CLASS}",
        }
    return {
        "fillColor": props["colour"],
        "color": _darker(props["colour"]),
        "weight": 1,
        "opacity": 0.9,
        "fillOpacity": 0.6,
        "className": SEGMENT_CLASS,
    }


def _segment_highlight(feature: dict) -> dict:
    return {"weight": 3, "fillOpacity": 0.8}


def _centerline_style(feature: dict) -> dict:
    return {"color": "#37474f", "weight": 1.2, "opacity": 0.9, "className": CENTERLINE_CLASS}


_BIND_POPUP = JsCode("""
    function (feature, layer) {
        layer.bindPopup(feature.properties.popup_html, {maxWidth: 360});
        layer.bindTooltip(feature.properties.label_html, {sticky: true});
    }
""")


def ownership_map(
    segments: gpd.GeoDataFrame,
    *,
    bounds: Sequence[float] | None = None,
    attribution: str,
    title: str | None = None,
    lang: str = "zh_CN",
) -> folium.Map:
    """Map of segment areas coloured by owner, with popups, legend and layer control.

    Parameters
    ----------
    segments : GeoDataFrame
        One row per segment, EPSG:4326.  Area polygons come from an ``area``
        geometry column if present, else the active geometry.  Columns:

        * ``street_name``, ``segment_name``, ``owner_name`` (required; a
          missing owner name means the segment is unassigned, 未分配);
        * ``owner_phone``, ``owner_id`` (optional; the colour follows
          ``owner_id``, else name and phone);
        * ``chain`` (optional): the chain of chiefs, a list (lowest first,
          e.g. ``["段长 张三", "二级街长 李四", "一级街长 …", "总街长 …"]``) or
          a string; when absent the owner name is shown;
        * ``centerline`` (optional geometry column, EPSG:4326): drawn thin on top.

        Not modified.
    bounds : sequence of 4 float, optional
        ``(min_lon, min_lat, max_lon, max_lat)`` to fit; default: the areas' extent.
    attribution : str
        Plain-text attribution of the data, e.g. ``"© OpenStreetMap contributors (ODbL)"``.
    title : str, optional
        Shown top right and as the page title.
    lang : str, default "zh_CN"
        Label language, ``"zh_CN"`` or ``"en"``.

    Returns
    -------
    folium.Map
        Segment paths carry the CSS class :data:`SEGMENT_CLASS` (plus
        :data:`UNASSIGNED_CLASS` when unowned); each has a popup with street,
        segment, chain of chiefs and phone, all HTML-escaped.

    Raises
    ------
    InputError
        Missing columns, segments without an area, an empty table without
        ``bounds``, or bad ``bounds``/``lang``.
    CRSError
        Areas or centerlines not in EPSG:4326.
    """
    lang = _language(lang)
    labels = _LABELS[lang]
    area = _check_segments(segments)
    if bounds is None:
        if len(segments) == 0:
            raise InputError("no segments to map and no bounds given")
        bounds = tuple(area.total_bounds)
    m = base_map(bounds, attribution=attribution, lang=lang)

    # Per-row text: string building has no vectorised form; one pass per column.
    streets = [_text(v) for v in segments["street_name"]]
    segment_names = [_text(v) for v in segments["segment_name"]]
    names = [_text(v) for v in segments["owner_name"]]
    phones = [_text(v) for v in segments["owner_phone"]] if "owner_phone" in segments.columns else [""] * len(names)
    chains = [_text(v) for v in segments["chain"]] if "chain" in segments.columns else [""] * len(names)
    chains = [c or n for c, n in zip(chains, names)]  # no chain given: the owner alone
    keys = _owner_keys(segments, names, phones)
    palette = owner_colours(keys)
    colours = [palette[k] for k in keys]

    layer = gpd.GeoDataFrame(
        {
            "colour": colours,
            "unassigned": [not k for k in keys],
            "popup_html": [
                _popup_html(s, g, c, p, labels) for s, g, c, p in zip(streets, segment_names, chains, phones)
            ],
            "label_html": [escape(f"{s} · {g}" if g else s) for s, g in zip(streets, segment_names)],
        },
        geometry=_rounded(area),
        crs=area.crs,
    )
    folium.GeoJson(
        layer.to_geo_dict(drop_id=False, show_bbox=False),
        name=labels["segments_layer"],
        style_function=_segment_style,
        highlight_function=_segment_highlight,
        on_each_feature=_BIND_POPUP,
    ).add_to(m)

    if "centerline" in segments.columns:
        lines = segments["centerline"]
        lines = lines[lines.notna() & ~lines.is_empty]
        if len(lines):
            folium.GeoJson(
                gpd.GeoDataFrame(geometry=_rounded(lines), crs=lines.crs).to_geo_dict(show_bbox=False),
                name=labels["centerlines_layer"],
                style_function=_centerline_style,
                interactive=False,  # clicks fall through to the segment area below
            ).add_to(m)

    owners = (
        pd.DataFrame({"key": keys, "name": names, "phone": phones, "colour": colours})
        .assign(unassigned=lambda d: d["key"] == "")
        .groupby("key", sort=False)
        .agg(
            name=("name", "first"),
            phone=("phone", "first"),
            colour=("colour", "first"),
            unassigned=("unassigned", "first"),
            n_segments=("name", "size"),
        )
        .sort_values(["unassigned", "name", "phone"])
    )
    if len(owners):
        _HtmlControl(_legend_html(owners, labels), position="bottomright", css_class="gg-panel gg-legend").add_to(m)
    if title:
        m.get_root().title = escape(title)
        _HtmlControl(escape(title), position="topright", css_class="gg-panel gg-title").add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    LOGGER.debug("ownership map: %d segments, %d owners", len(layer), len(owners))
    return m


def render(m: folium.Map) -> str:
    """The complete HTML page of ``m``."""
    return m.get_root().render()
