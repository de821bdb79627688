"""The ownership map (home page, and the first layer of the manager map): segment areas coloured by owner.

Pure functions: no Flask, no database; the base map and its chrome are in
:mod:`gisgrid.maps._base`.

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
from folium.utilities import JsCode

from gisgrid.crs import STORAGE_SRID
from gisgrid.errors import CRSError, InputError
from gisgrid.maps._base import HtmlControl, add_layer_control, base_map, language, rounded

LOGGER = logging.getLogger(__name__)

#: CSS class of every segment-area path (the hook for styling and browser tests).
SEGMENT_CLASS = "gg-segment"
#: Extra CSS class of segment areas that have no owner.
UNASSIGNED_CLASS = "gg-unassigned"
#: CSS class of centerline paths.
CENTERLINE_CLASS = "gg-centerline"

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
    lang = language(lang)
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
        geometry=rounded(area),
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
                gpd.GeoDataFrame(geometry=rounded(lines), crs=lines.crs).to_geo_dict(show_bbox=False),
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
        HtmlControl(_legend_html(owners, labels), position="bottomright", css_class="gg-panel gg-legend").add_to(m)
    if title:
        m.get_root().title = escape(title)
        HtmlControl(escape(title), position="topright", css_class="gg-panel gg-title").add_to(m)
    add_layer_control(m)
    LOGGER.debug("ownership map: %d segments, %d owners", len(layer), len(owners))
    return m
