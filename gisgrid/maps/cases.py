"""Case maps: the map an intake form is clicked on (the case page draws its own light Leaflet map,
static/case_map.js, from GeoJSON PostGIS makes: no Folium render per case view).

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


def intake_map(
    bounds: Sequence[float], *, streets: gpd.GeoDataFrame | None = None, attribution: str, lang: str = "zh_CN"
) -> folium.Map:
    """The map a clerk clicks to place a new case: the user's area with its streets (the page adds the click)."""
    m = base_map(bounds, attribution=attribution, lang=lang)
    _streets(m, streets)
    return m
