"""Geometry shapes as gisgrid stores them.  Pure: shapely only."""

from __future__ import annotations

import shapely


def as_multi(geom):
    """``geom`` in the multi form of its stored column: a Polygon as a one-part MultiPolygon, a LineString as
    a one-part MultiLineString; anything else (already multi, a point, None) as it is."""
    if geom is None:
        return None
    if geom.geom_type == "Polygon":
        return shapely.geometry.MultiPolygon([geom])
    if geom.geom_type == "LineString":
        return shapely.geometry.MultiLineString([geom])
    return geom
