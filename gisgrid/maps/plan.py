"""The planners' editor map (/plan): the base the editor draws on.

The page adds the vendored Leaflet-Geoman plugin and ``static/plan.js``,
which load the units through the JSON API; the map itself is the plain base
map fitted to the town.
"""

from __future__ import annotations

import folium

from gisgrid.maps._base import base_map


def plan_map(boundary, *, attribution: str, lang: str = "zh_CN") -> folium.Map:
    """An empty map fitted to ``boundary`` (a shapely geometry in EPSG:4326)."""
    return base_map(boundary.bounds, attribution=attribution, lang=lang)
