"""Case maps: a case on its street (the case page) and the map an intake form is clicked on.

Pure: data in, :class:`folium.Map` out (no Flask, no database).  Like every
gisgrid map they draw on a plain background, with no tile server, and every
string from users is escaped here before it becomes markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import folium
import geopandas as gpd

from gisgrid.maps.ownership import base_map

#: Marker colours by deadline state (green / yellow / red; grey: not running against a deadline).
DEADLINE_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828", None: "#616161"}
#: CSS class of the case marker and of the context lines (hooks for styling and browser tests).
CASE_CLASS = "gg-case"
STREET_CLASS = "gg-context-street"


def _streets(m: folium.Map, streets: gpd.GeoDataFrame | None) -> None:
    if streets is None or streets.empty:
        return
    lines = streets[["name", "geometry"]].copy()
    lines["name"] = lines["name"].fillna("").map(escape)
    folium.GeoJson(
        lines.to_json(),
        name="streets",
        style_function=lambda _f: {"color": "#8a8f98", "weight": 3, "opacity": 0.8, "className": STREET_CLASS},
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
    ).add_to(m)


def case_map(
    lon: float,
    lat: float,
    *,
    colour: str | None,
    label: str,
    streets: gpd.GeoDataFrame | None = None,
    area=None,
    attribution: str,
    lang: str = "zh_CN",
    radius_deg: float = 0.0025,
) -> folium.Map:
    """The case's place: its marker coloured by deadline, the routed unit's area, the streets around.

    Parameters
    ----------
    lon, lat : float
        The case, EPSG:4326.
    colour : {"green", "yellow", "red"} or None
        :func:`gisgrid.cases.workflow.deadline_colour`.
    label : str
        Plain text for the marker's tooltip (escaped here).
    streets : GeoDataFrame, optional
        Centerlines around (``name``, geometry in EPSG:4326).
    area : shapely geometry, optional
        The routed segment's or cell's area (EPSG:4326).
    """
    bounds = (lon - radius_deg, lat - radius_deg * 0.8, lon + radius_deg, lat + radius_deg * 0.8)
    m = base_map(bounds, attribution=attribution, lang=lang)
    if area is not None and not area.is_empty:
        folium.GeoJson(
            gpd.GeoSeries([area], crs=4326).to_json(),
            name="area",
            style_function=lambda _f: {"color": "#3a6ea5", "weight": 1, "fillColor": "#9ecae1", "fillOpacity": 0.25},
        ).add_to(m)
    _streets(m, streets)
    folium.CircleMarker(
        (lat, lon),
        radius=9,
        color="#ffffff",
        weight=2,
        fill=True,
        fill_color=DEADLINE_COLOURS.get(colour, DEADLINE_COLOURS[None]),
        fill_opacity=1.0,
        tooltip=escape(label),
        class_name=CASE_CLASS,
    ).add_to(m)
    return m


def intake_map(
    bounds: Sequence[float], *, streets: gpd.GeoDataFrame | None = None, attribution: str, lang: str = "zh_CN"
) -> folium.Map:
    """The map a clerk clicks to place a new case: the user's area with its streets (the page adds the click)."""
    m = base_map(bounds, attribution=attribution, lang=lang)
    _streets(m, streets)
    return m
