"""The light basemap drawn from gisgrid's own layers: what lies in a map view, as GeoJSON.

With no tile service configured and no tile package installed, the pages draw jurisdiction boundaries with
their names, streets (named along their centerline at street zooms) and, closer in, the buildings an office
imported, from the database, for the view the user is looking at.  These are the same lines a tile basemap would show (street names and boundaries are the
place's geography, not anyone's assignment), so they are read for any signed-in user; the units, owners and
cases drawn on top stay limited by :mod:`gisgrid.accounts.scope`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence

import sqlalchemy as sa

from gisgrid.crs import STORAGE_SRID
from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)

#: Streets are drawn from this zoom on (a town fills the screen); below it only boundaries.
STREETS_FROM_ZOOM = 13
#: Buildings (``gisgrid import buildings``) are drawn from this zoom on (a few blocks fill the screen).
BUILDINGS_FROM_ZOOM = 16
#: The most features one view returns of each kind (a county-wide view at street zoom is not a view).
MAX_FEATURES = 4000
#: Largest view answered, degrees of longitude × latitude (about 100 km × 100 km).
MAX_VIEW_DEG2 = 1.0


def parse_view(bbox: str | None, zoom: str | None) -> tuple[tuple[float, float, float, float], int]:
    """``"min_lon,min_lat,max_lon,max_lat"`` and a zoom from a request, checked.

    Raises
    ------
    InputError
        Not four finite numbers in lon/lat range, min above max, or a zoom outside 0–24.
    """
    try:
        west, south, east, north = (float(v) for v in (bbox or "").split(","))
        z = math.floor(float(zoom or ""))  # a map with fractional zoom steps asks for 13.75: draw as 13
    except (ValueError, OverflowError):
        raise InputError(
            f"bbox must be min_lon,min_lat,max_lon,max_lat and zoom an integer, got {bbox!r}, {zoom!r}"
        ) from None
    values = (west, south, east, north)
    if not all(math.isfinite(v) for v in values) or not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InputError(f"bad bbox {bbox!r}: need -180 <= min_lon <= max_lon <= 180, -90 <= min_lat <= max_lat <= 90")
    if not 0 <= z <= 24:
        raise InputError(f"zoom must be 0–24, got {z}")
    return values, z


def _tolerance_deg(zoom: int) -> float:
    """Half a screen pixel at ``zoom``, degrees: finer detail is invisible, so it is not sent."""
    return 360.0 / (256 * 2**zoom) / 2


def context_layers(conn: sa.Connection, bbox: Sequence[float], zoom: int) -> dict:
    """Jurisdiction boundaries, streets and buildings in the view ``bbox`` (EPSG:4326) at ``zoom``.

    Returns
    -------
    dict
        ``{"boundaries": FeatureCollection, "streets": FeatureCollection, "buildings": FeatureCollection}``:
        boundaries as lines with ``name``, ``level``, ``code`` and a label point ``label`` ([lon, lat],
        inside the area); streets (from zoom :data:`STREETS_FROM_ZOOM`) as lines with ``name`` and
        ``road_class``; buildings (from zoom :data:`BUILDINGS_FROM_ZOOM`) as polygons with ``name``; all
        simplified to half a pixel.  Coordinates in EPSG:4326.
    """
    west, south, east, north = bbox
    if (east - west) * (north - south) > MAX_VIEW_DEG2:
        # a whole-province view: boundaries of the towns only would still be thousands of lines
        west, south, east, north = _shrink((west, south, east, north))
    params = {
        "w": west,
        "s": south,
        "e": east,
        "n": north,
        "srid": STORAGE_SRID,
        "tol": _tolerance_deg(zoom),
        "limit": MAX_FEATURES,
    }
    view = "ST_MakeEnvelope(:w, :s, :e, :n, :srid)"
    boundaries = conn.execute(
        sa.text(
            f"""
            SELECT j.name, j.level, j.code,
                   ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Boundary(j.geom), :tol), 6) AS geom,
                   ST_X(ST_PointOnSurface(j.geom)) AS lon, ST_Y(ST_PointOnSurface(j.geom)) AS lat
            FROM jurisdiction j
            WHERE j.geom && {view} AND j.level IN ('town', 'community', 'county')
            ORDER BY j.level, j.code LIMIT :limit"""
        ),
        params,
    ).all()
    streets = []
    if zoom >= STREETS_FROM_ZOOM:
        streets = conn.execute(
            sa.text(
                f"""
                SELECT s.name, s.road_class, ST_AsGeoJSON(ST_SimplifyPreserveTopology(s.geom, :tol), 6) AS geom
                FROM street s WHERE s.geom && {view}
                ORDER BY s.id LIMIT :limit"""
            ),
            params,
        ).all()
    buildings = []
    if zoom >= BUILDINGS_FROM_ZOOM:
        buildings = conn.execute(
            sa.text(
                f"""
                SELECT b.name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(b.geom, :tol), 6) AS geom
                FROM building b WHERE b.geom && {view}
                ORDER BY b.id LIMIT :limit"""
            ),
            params,
        ).all()
    return {
        "boundaries": {
            "type": "FeatureCollection",
            "features": [
                _feature(
                    r.geom,
                    {"name": r.name, "level": r.level, "code": r.code, "label": [round(r.lon, 6), round(r.lat, 6)]},
                )
                for r in boundaries
                if r.geom
            ],
        },
        "streets": {
            "type": "FeatureCollection",
            "features": [_feature(r.geom, {"name": r.name, "road_class": r.road_class}) for r in streets if r.geom],
        },
        "buildings": {
            "type": "FeatureCollection",
            "features": [_feature(r.geom, {"name": r.name}) for r in buildings if r.geom],
        },
    }


def _shrink(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    west, south, east, north = bbox
    cx, cy, half = (west + east) / 2, (south + north) / 2, math.sqrt(MAX_VIEW_DEG2) / 2
    return cx - half, cy - half, cx + half, cy + half


def _feature(geometry_json: str, properties: dict) -> dict:
    return {"type": "Feature", "geometry": json.loads(geometry_json), "properties": properties}
