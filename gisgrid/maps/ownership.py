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
import shapely
from folium.utilities import JsCode

from gisgrid.crs import STORAGE_SRID
from gisgrid.errors import CRSError, InputError
from gisgrid.maps._base import HtmlControl, add_layer_control, base_map, language, rounded, translator
from gisgrid.ownership.history import say_roles

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


#: Units closer than this (degrees, about a metre) count as touching when owners are coloured.
TOUCH_TOLERANCE_DEG = 1e-5


def _preferred_slot(key: str, n: int) -> int:
    """The palette slot ``key`` hashes to (a stable hash, not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % n


def owner_neighbours(owner_keys, geometries, *, tolerance_deg: float = TOUCH_TOLERANCE_DEG) -> dict[str, set[str]]:
    """Which owners hold units that touch (or lie within ``tolerance_deg``) a unit of another owner.

    Parameters
    ----------
    owner_keys : sequence of str
        The owner of each unit (``""``: unassigned, left out).
    geometries : sequence of shapely geometry
        Each unit's area, EPSG:4326, in the same order.

    Returns
    -------
    dict
        Owner key -> the keys of the owners next to them (never themselves).
    """
    keys = np.asarray(list(owner_keys), dtype=object)
    geoms = np.asarray(rounded(gpd.GeoSeries(list(geometries))) if len(keys) else [], dtype=object)
    neighbours: dict[str, set[str]] = {k: set() for k in set(keys.tolist()) - {""}}
    if len(keys) < 2:
        return neighbours
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=tolerance_deg)
    for a, b in zip(keys[left], keys[right]):  # pairs of touching units, filtered to pairs of owners
        if a and b and a != b:
            neighbours[a].add(b)
    return neighbours


def owner_colours(owner_keys, geometries=None) -> dict[str, str]:
    """Colour of each owner on one map: no two owners whose units touch share a colour.

    A greedy graph colouring (Welsh–Powell): owners are served by how many
    neighbours they have, most first (ties by key, so every run gives the same
    colours).  Each takes the palette colour its key hashes to when no
    neighbour has it, so an owner tends to keep a colour from map to map; else
    the least-used colour no neighbour has.  Only when every colour of
    :data:`OWNER_PALETTE` is taken around an owner (more than 17 neighbours)
    does it share one, with the fewest neighbours possible.  Without
    ``geometries`` nobody touches and owners just spread over the palette.

    Parameters
    ----------
    owner_keys : sequence of str
        Stable owner identities, one per unit (``owner_id``, else name and
        phone); the empty key means unassigned and gets :data:`UNASSIGNED_COLOUR`.
    geometries : sequence of shapely geometry, optional
        Each unit's area (EPSG:4326), in the order of ``owner_keys``.

    Returns
    -------
    dict
        Owner key -> ``"#rrggbb"``.
    """
    keys = list(owner_keys)
    if geometries is None:
        neighbours = {k: set() for k in set(keys) - {""}}
    else:
        neighbours = owner_neighbours(keys, geometries)
    n = len(OWNER_PALETTE)
    uses = [0] * n
    slot_of: dict[str, int] = {}
    for key in sorted(neighbours, key=lambda k: (-len(neighbours[k]), k)):
        taken = [0] * n
        for other in neighbours[key]:
            if other in slot_of:
                taken[slot_of[other]] += 1
        start = _preferred_slot(key, n)
        # free of neighbours first, then least used on the map, then nearest the preferred slot
        slot = min(range(n), key=lambda s: (taken[s], uses[s] if taken[start] or uses[start] else 0, (s - start) % n))
        slot_of[key] = slot
        uses[slot] += 1
    colours = {"": UNASSIGNED_COLOUR}
    colours.update({k: OWNER_PALETTE[s] for k, s in slot_of.items()})
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


def _token(key: str) -> str:
    """An opaque, stable handle of an owner key for the page script (the key may hold a name and phone)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest() if key else ""


def _legend_html(owners: pd.DataFrame, labels: dict) -> str:
    """Legend rows, one per owner (colour, name, segment count), unassigned last.

    Each row carries its owner's key (``data-owner``), which the map tools use to highlight that owner's
    units on a click.  A name that two owners share is told apart by the place of their units and the id.
    """
    repeated = owners.loc[~owners["unassigned"], "name"].duplicated(keep=False)
    rows = []
    for key, owner in owners.iterrows():  # one row per owner, not per segment
        swatch_class = "gg-swatch gg-unassigned" if owner.unassigned else "gg-swatch"
        name = labels["unassigned"] if owner.unassigned else owner["name"]
        title = f' title="{escape(owner.phone)}"' if owner.phone else ""
        data = "" if owner.unassigned else f' data-owner="{_token(str(key))}"'
        note = ""
        if not owner.unassigned and bool(repeated.get(key, False)):
            ident = str(key).split(":", 1)[1] if ":" in str(key) else ""
            parts = [p for p in (owner.place, f"#{ident}" if ident else owner.phone) if p]
            note = f' <span class="gg-legend-note">{escape(" · ".join(parts))}</span>'
        rows.append(
            f'<div class="gg-legend-row"{data}{title}><span class="{swatch_class}" '
            f'style="background:{owner.colour}"></span><span>{escape(name)}{note}</span>'
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
          ``owner_id``, else name and phone), ``owner_place`` (optional: the
          jurisdiction shown beside a name two owners share);
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
    if lang == "en":  # the roles (stored as the office writes them, in Chinese) in the map's language
        say = translator(lang)
        chains = [say_roles(c, say) for c in chains]
    places = [_text(v) for v in segments["owner_place"]] if "owner_place" in segments.columns else [""] * len(names)
    keys = _owner_keys(segments, names, phones)
    palette = owner_colours(keys, area.values)
    colours = [palette[k] for k in keys]

    layer = gpd.GeoDataFrame(
        {
            "colour": colours,
            "owner_key": [_token(k) for k in keys],
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
        pd.DataFrame({"key": keys, "name": names, "phone": phones, "place": places, "colour": colours})
        .assign(unassigned=lambda d: d["key"] == "")
        .groupby("key", sort=False)
        .agg(
            name=("name", "first"),
            phone=("phone", "first"),
            place=("place", "first"),
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
