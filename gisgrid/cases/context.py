"""What the case pages draw and offer around a case: context streets, the routed unit's area, where an
intake map opens, and whom a dispatcher may send a case to.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import User
from gisgrid.db import sql

LOGGER = logging.getLogger(__name__)


# --- what the pages draw ----------------------------------------------------------------------
def context_streets(conn: sa.Connection, bounds: Sequence[float], *, limit: int = 3000):
    """Segment centerlines (``name``: street · segment) meeting a lon/lat box, for a map's context."""
    import geopandas as gpd
    import shapely

    x0, y0, x1, y1 = (float(v) for v in bounds)
    frame = pd.read_sql_query(
        sa.text("""
        SELECT s.name || CASE WHEN g.name <> s.name THEN ' · ' || g.name ELSE '' END AS name,
               ST_AsBinary(g.geom) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id
        WHERE g.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) LIMIT :limit"""),
        conn,
        params={"x0": x0, "y0": y0, "x1": x1, "y1": y1, "limit": int(limit)},
    )
    geoms = shapely.from_wkb([bytes(g) for g in frame.pop("geom")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326))


def streets_geojson(conn: sa.Connection, bounds: Sequence[float], *, limit: int = 3000) -> dict:
    """Segment centerlines (``name``: street · segment) meeting a lon/lat box, as a GeoJSON FeatureCollection
    made by PostGIS (a page's context lines; names are data, set as text by the page's script)."""
    x0, y0, x1, y1 = (float(v) for v in bounds)
    return conn.execute(
        sa.text("""
        SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object(
                   'type', 'Feature', 'properties', json_build_object('name', t.name),
                   'geometry', ST_AsGeoJSON(t.geom, 6)::json)), '[]'::json))
        FROM (SELECT s.name || CASE WHEN g.name <> s.name THEN ' · ' || g.name ELSE '' END AS name, g.geom
              FROM segment g JOIN street s ON s.id = g.street_id
              WHERE g.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) LIMIT :limit) t"""),
        {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "limit": int(limit)},
    ).scalar()


def case_map_data(conn: sa.Connection, case: dict, *, radius_deg: float = 0.0025, limit: int = 300) -> dict:
    """What the case page's map draws, as GeoJSON made by PostGIS (no Python geometry per page view).

    ``{"lon", "lat", "bounds": [w, s, e, n], "area": Feature or None, "streets": FeatureCollection}``:
    the routed segment's frontage area or cell, and the centerlines (``name``: street · segment) within
    ``radius_deg`` of the case.  Names are data: the page's script sets them as text, never as markup.
    """
    lon, lat = float(case["lon"]), float(case["lat"])
    x0, y0, x1, y1 = lon - radius_deg, lat - radius_deg * 0.8, lon + radius_deg, lat + radius_deg * 0.8
    streets = streets_geojson(conn, (x0, y0, x1, y1), limit=limit)
    area = None
    table = {"segment": ("segment", "area"), "cell": ("grid_cell", "geom")}.get(case.get("assigned_type") or "")
    if table is not None and case.get("assigned_id") is not None:
        geojson = conn.execute(
            sa.text(f"SELECT ST_AsGeoJSON({table[1]}, 6)::json FROM {table[0]} WHERE id = :i"),
            {"i": int(case["assigned_id"])},
        ).scalar()
        if geojson is not None:
            area = {"type": "Feature", "properties": {}, "geometry": geojson}
    return {"lon": lon, "lat": lat, "bounds": [x0, y0, x1, y1], "area": area, "streets": streets}


def unit_area(conn: sa.Connection, assigned_type: str | None, assigned_id: int | None):
    """The area of the unit a case was routed to (a segment's frontage area, a cell), or None."""
    import shapely

    table = {"segment": "segment", "cell": "grid_cell"}.get(assigned_type or "")
    if table is None or assigned_id is None:
        return None
    column = "area" if table == "segment" else "geom"
    wkb = conn.execute(
        sa.text(f"SELECT ST_AsBinary({column}) FROM {table} WHERE id = :i"), {"i": int(assigned_id)}
    ).scalar()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None


def scope_bounds(conn: sa.Connection, scope: Scope) -> tuple[float, float, float, float] | None:
    """The lon/lat box of the jurisdictions (else segments) ``scope`` sees: where an intake map opens."""
    row = conn.execute(
        sa.text(f"""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
            SELECT COALESCE(
                (SELECT ST_Extent(j.geom) FROM jurisdiction j WHERE j.level <> 'county' AND {scope.sql("jurisdiction", "j")}),
                (SELECT ST_Extent(g.geom) FROM segment g WHERE {scope.sql("segment", "g")})) AS e) b"""),
        scope.params(),
    ).first()
    if row is None or row[0] is None:
        return None
    return tuple(float(v) for v in row)


def home_jurisdiction(user: User) -> int | None:
    """Where an unassigned case taken in by ``user`` belongs when the point is in no jurisdiction: the
    jurisdiction of their first area grant (a clerk's town), else None."""
    from gisgrid.accounts.roles import AREA_ROLES

    return next((g.jurisdiction_id for g in user.grants if g.role in AREA_ROLES and g.jurisdiction_id), None)


def owner_choices(conn: sa.Connection, case: dict, *, day: dt.date | None = None) -> list[dict]:
    """Whom a dispatcher may send a case to: the routed owner first, the chiefs of its segment's chain,
    the owners of its jurisdiction, then every department (``key`` as :class:`StepInput` ``owner`` takes it)."""
    day = day or dt.date.today()
    out: list[dict] = []
    seen: set[str] = set()

    def add(key, label):
        if key and key not in seen:
            seen.add(key)
            out.append({"key": key, "label": label})

    if case.get("assignee_person_id"):
        add(f"person:{case['assignee_person_id']}", f"{case.get('assignee_name') or ''} (routed)")
    if case.get("assignee_department_id"):
        add(f"department:{case['assignee_department_id']}", f"{case.get('assignee_department') or ''} (routed)")
    if case.get("assigned_segment_id"):
        for role, pid, name in conn.execute(
            sa.text(f"""SELECT role, person_id, owner_name FROM {sql.owner_chain_on(":day", ":segs")}
                        WHERE person_id IS NOT NULL ORDER BY level_rank"""),
            {"day": day, "segs": [int(case["assigned_segment_id"])]},
        ):
            add(f"person:{pid}", f"{name} ({role})")
    if case.get("jurisdiction_id"):
        for role, pid, name in conn.execute(
            sa.text(f"""SELECT a.role, a.person_id, a.owner_name FROM {sql.owner_on(":day")} a
                        WHERE a.target_type = 'jurisdiction' AND a.target_id = :j AND a.person_id IS NOT NULL
                        ORDER BY a.role"""),
            {"day": day, "j": int(case["jurisdiction_id"])},
        ):
            add(f"person:{pid}", f"{name} ({role})")
    for did, name in conn.execute(sa.text("SELECT id, name FROM department ORDER BY name")):
        add(f"department:{did}", name)
    return out
