"""Frontage maps (门前三包): a segment's units and their frontages; one unit's frontage.

Pure: data in, :class:`folium.Map` out.  Text from users is escaped here.
"""

from __future__ import annotations

from html import escape

import folium
import geopandas as gpd

from gisgrid.maps.ownership import base_map

#: Fill colour of a frontage by its unit's agreement state.
STATE_COLOURS = {
    "valid": "#2e7d32",
    "expiring": "#f9a825",
    "expired": "#c62828",
    "none": "#c62828",
    "future": "#757575",
}
FRONTAGE_CLASS = "gg-frontage"


def frontage_map(
    *,
    area,
    centerline,
    frontages: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    attribution: str,
    lang: str = "zh_CN",
    margin_deg: float = 0.0006,
) -> folium.Map:
    """The segment's area (blue), its centerline, each unit's frontage coloured by agreement state, the units.

    ``frontages`` and ``units``: EPSG:4326 with ``name`` and ``agreement``; ``area`` and ``centerline`` shapely
    geometries in EPSG:4326.
    """
    x0, y0, x1, y1 = area.bounds if area is not None and not area.is_empty else centerline.bounds
    m = base_map(
        (x0 - margin_deg, y0 - margin_deg, x1 + margin_deg, y1 + margin_deg), attribution=attribution, lang=lang
    )
    if area is not None and not area.is_empty:
        folium.GeoJson(
            gpd.GeoSeries([area], crs=4326).to_json(),
            name="area",
            style_function=lambda _f: {"color": "#3a6ea5", "weight": 1, "fillColor": "#9ecae1", "fillOpacity": 0.15},
        ).add_to(m)
    folium.GeoJson(
        gpd.GeoSeries([centerline], crs=4326).to_json(),
        name="centerline",
        style_function=lambda _f: {"color": "#555", "weight": 3, "dashArray": "6 4"},
    ).add_to(m)
    if len(frontages):
        shown = frontages[["name", "agreement", "geometry"]].copy()
        shown["name"] = shown["name"].fillna("").map(escape)
        folium.GeoJson(
            shown.to_json(),
            name="frontages",
            style_function=lambda f: {
                "color": STATE_COLOURS.get(f["properties"]["agreement"], "#555"),
                "weight": 1,
                "fillColor": STATE_COLOURS.get(f["properties"]["agreement"], "#555"),
                "fillOpacity": 0.45,
                "className": FRONTAGE_CLASS,
            },
            tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
        ).add_to(m)
    for row in units.itertuples():
        where = row.geometry.representative_point()
        folium.CircleMarker(
            (where.y, where.x), radius=4, color="#17324d", fill=True, fill_opacity=0.9, tooltip=escape(row.name or "")
        ).add_to(m)
    return m
