"""The map of a geocoding job (/geocode/<job>): each located row as a dot coloured by match quality.

Thin grey street centerlines around the results show a clerk where to click
to place a row by hand (``static/geocode.js``).  Every text reaching the map
is HTML-escaped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape

import folium
import geopandas as gpd
import pandas as pd

from gisgrid.maps._base import base_map, translator

LOGGER = logging.getLogger(__name__)

MANUAL_QUALITY = "manual"
QUALITY_COLOURS = {
    "address_point": "#1a7f37",
    "interpolated": "#2f81f7",
    "intersection": "#8250df",
    "street": "#d29922",
    "jurisdiction": "#cf222e",
    MANUAL_QUALITY: "#0a3069",
}
#: Whole-world box, when nothing is located and the deployment has no extent.
WORLD = (-180.0, -85.0, 180.0, 85.0)


def quality_labels(lang: str) -> dict[str, str]:
    """Quality codes as the page shows them (in zh: 地址点, 失败 …); the files keep the codes."""
    _ = translator(lang)
    return {
        "address_point": _("address_point"),
        "interpolated": _("interpolated"),
        "intersection": _("intersection"),
        "street": _("street"),
        "jurisdiction": _("jurisdiction"),
        "failed": _("failed"),
        MANUAL_QUALITY: _("manual"),
    }


def located_points(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The rows of a job's result that have a point: ``lon``, ``lat`` (EPSG:4326), indexed as ``frame``."""
    lon = pd.to_numeric(frame[names["lon"]], errors="coerce")
    lat = pd.to_numeric(frame[names["lat"]], errors="coerce")
    ok = lon.notna() & lat.notna()
    return pd.DataFrame({"lon": lon[ok], "lat": lat[ok]})


def result_bounds(points: pd.DataFrame, fallback: Sequence[float] | None = None) -> tuple[float, float, float, float]:
    """The box to show: the points plus a small margin, else ``fallback`` (e.g. the deployment's extent)."""
    if len(points):
        lon, lat = points["lon"], points["lat"]
        pad = 0.001
        return (
            max(lon.min() - pad, -180),
            max(lat.min() - pad, -90),
            min(lon.max() + pad, 180),
            min(lat.max() + pad, 90),
        )
    return fallback or WORLD


def context_box(bounds: Sequence[float]) -> tuple[float, float, float, float]:
    """The box whose streets are drawn around ``bounds``: half as wide again on each side, at least ~300 m."""
    minx, miny, maxx, maxy = bounds
    pad_x, pad_y = max((maxx - minx) * 0.5, 0.003), max((maxy - miny) * 0.5, 0.003)
    return (minx - pad_x, miny - pad_y, maxx + pad_x, maxy + pad_y)


def _street_context(streets: gpd.GeoDataFrame, _) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=_("Streets"))
    if len(streets):
        folium.GeoJson(
            streets[["geometry"]].to_json(),
            interactive=False,
            style_function=lambda _f: {"color": "#7d8793", "weight": 2, "opacity": 0.8},
        ).add_to(group)
    return group


def result_map(
    frame: pd.DataFrame,
    names: dict[str, str],
    address: pd.Series,
    *,
    points: pd.DataFrame,
    bounds: Sequence[float],
    streets: gpd.GeoDataFrame,
    max_points: int,
    attribution: str,
    lang: str = "zh_CN",
) -> folium.Map:
    """The job's map.

    Parameters
    ----------
    frame : DataFrame
        The job's result (every row, as stored: text).
    names : dict
        Added column -> its name in ``frame`` (``quality``, ``owner_name`` …).
    address : Series
        The written address of each row.
    points : DataFrame
        The located rows (:func:`located_points`).
    bounds : sequence of 4 float
        The box to fit (:func:`result_bounds`), EPSG:4326.
    streets : GeoDataFrame
        Street centerlines around it, EPSG:4326.
    max_points : int
        Only the first this many located rows are drawn.
    attribution : str
        Plain-text credit of the map data.
    lang : str, default "zh_CN"
        ``"zh_CN"`` or ``"en"``.
    """
    _ = translator(lang)
    m = base_map(bounds, attribution=attribution, lang=lang)
    _street_context(streets, _).add_to(m)
    layer = folium.FeatureGroup(name=_("Geocoded rows"))
    labels = quality_labels(lang)
    for i in points.index[:max_points]:
        quality, owner = frame.at[i, names["quality"]], frame.at[i, names["owner_name"]]
        tip = f"#{int(i) + 1} {escape(address[i])}<br>{escape(labels.get(quality, quality))} · {escape(owner or '—')}"
        folium.CircleMarker(
            [float(points.at[i, "lat"]), float(points.at[i, "lon"])],
            radius=6,
            weight=1,
            color="#333",
            fill=True,
            fill_opacity=0.85,
            fill_color=QUALITY_COLOURS.get(quality, "#888"),
            tooltip=folium.Tooltip(tip),
            class_name=f"gg-geocoded gg-q-{quality} gg-row-{int(i)}",
        ).add_to(layer)
    layer.add_to(m)
    return m
