"""Reading the units the ``/plan`` editor edits: cells and segment areas of a town, with their owners.

:func:`load_units` and :func:`units_geojson` feed the editor; the private readers (a unit's town, boundary,
neighbours, metric CRS, community) serve the checks in :mod:`gisgrid.grid.edit_check`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from gisgrid import crs
from gisgrid.config import Settings
from gisgrid.db import sql as dbsql
from gisgrid.errors import InputError, NotFound
from gisgrid.io.order import sort_frame

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Layer:
    name: str
    table: str
    column: str
    label: str  # SQL expression of the unit's code / name, table alias u


_LAYERS = {
    "cell": _Layer("cell", "grid_cell", "geom", "u.code"),
    "segment": _Layer("segment", "segment", "area", "u.name"),
}


def _wkb(value) -> BaseGeometry | None:
    return None if value is None else shapely.from_wkb(bytes(value))


def _town(conn: sa.Connection, code: str):
    row = conn.execute(
        sa.text("""
        SELECT id, code, name, metric_epsg, ST_AsBinary(geom) AS geom FROM jurisdiction
        WHERE code = :c AND level = 'town'"""),
        {"c": code},
    ).first()
    if row is None:
        raise NotFound(f"no town with code {code!r}")
    return row


def _owner_text_sql(layer: str) -> str:
    return f"""(SELECT string_agg(a.role || ' ' || a.owner_name, '; ' ORDER BY a.role, a.id)
                FROM {dbsql.owner_on(":day")} a WHERE a.target_type = '{layer}' AND a.target_id = u.id)"""


def _units_sql(layer: _Layer, where: str) -> str:
    town = (
        (
            "(SELECT CASE WHEN j.level = 'town' THEN j.id ELSE j.parent_id END FROM jurisdiction j "
            "WHERE j.id = u.jurisdiction_id)"
        )
        if layer.name == "cell"
        else "(SELECT s.jurisdiction_id FROM street s WHERE s.id = u.street_id)"
    )
    jur = "u.jurisdiction_id" if layer.name == "cell" else town
    return f"""
        SELECT u.id AS unit_id, {layer.label} AS code, u.revision, {jur} AS jurisdiction_id, {town} AS town_id,
               {_owner_text_sql(layer.name)} AS owners, ST_AsBinary(u.{layer.column}) AS geom
        FROM {layer.table} u WHERE u.{layer.column} IS NOT NULL AND ({where})"""


def _frame(conn: sa.Connection, sql: str, params: dict) -> gpd.GeoDataFrame:
    table = pd.read_sql_query(sa.text(sql), conn, params=params)
    geoms = [_wkb(v) for v in table.pop("geom")]
    return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, crs=crs.STORAGE_SRID, index=table.index))


def load_units(
    conn: sa.Connection, town_code: str, layer: str = "cell", *, day: dt.date | None = None
) -> gpd.GeoDataFrame:
    """The cells (or segment areas) of a town: ``unit_id``, ``code``, ``revision``, ``owners``, geometry."""
    if layer not in _LAYERS:
        raise InputError(f"layer must be one of {', '.join(_LAYERS)}, got {layer!r}")
    town = _town(conn, town_code)
    lay = _LAYERS[layer]
    where = (
        "u.jurisdiction_id = :tid OR u.jurisdiction_id IN (SELECT id FROM jurisdiction WHERE parent_id = :tid)"
        if layer == "cell"
        else "u.street_id IN (SELECT id FROM street WHERE jurisdiction_id = :tid)"
    )
    frame = _frame(conn, _units_sql(lay, where) + " ORDER BY 2", {"tid": town.id, "day": day or dt.date.today()})
    frame = sort_frame(frame, "code", natural=["code"]).reset_index(drop=True)  # 第2段 before 第10段
    return frame.drop(columns=["town_id"])


def units_geojson(units: gpd.GeoDataFrame) -> dict:
    """Full-precision GeoJSON of :func:`load_units` (the editor snaps to these exact vertices)."""
    features = []
    for rec, geom in zip(units.drop(columns="geometry").to_dict("records"), units.geometry):
        props = {
            k: (None if isinstance(v, float) and np.isnan(v) else v.item() if isinstance(v, np.generic) else v)
            for k, v in rec.items()
        }
        if geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1:
            geom = geom.geoms[0]  # the editor reshapes single polygons
        features.append(
            {"type": "Feature", "id": props["unit_id"], "properties": props, "geometry": shapely.geometry.mapping(geom)}
        )
    return {"type": "FeatureCollection", "features": features}


def _locked_units(conn: sa.Connection, lay: _Layer, ids: list[int], day: dt.date, lock: bool) -> gpd.GeoDataFrame:
    if not ids:
        return _frame(conn, _units_sql(lay, "false"), {"day": day})
    if lock:
        conn.execute(sa.text(f"SELECT id FROM {lay.table} WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": ids})
    units = _frame(conn, _units_sql(lay, "u.id = ANY(:ids)"), {"ids": ids, "day": day})
    return units.set_index("unit_id", drop=False)


def _boundary(conn: sa.Connection, jurisdiction_id: int):
    row = conn.execute(
        sa.text("SELECT name, ST_AsBinary(geom) AS geom FROM jurisdiction WHERE id = :i"), {"i": jurisdiction_id}
    ).first()
    if row is None:
        raise NotFound(f"jurisdiction {jurisdiction_id} no longer exists")
    return row.name, _wkb(row.geom)


def _neighbours(
    conn: sa.Connection, lay: _Layer, town_id: int, around: BaseGeometry, exclude: list[int], day: dt.date
) -> gpd.GeoDataFrame:
    where = (
        f"u.{lay.column} && ST_Expand(ST_SetSRID(ST_GeomFromWKB(:env), {crs.STORAGE_SRID}), 0.0005) "
        "AND NOT (u.id = ANY(:ex)) AND "
        + (
            "(u.jurisdiction_id = :tid OR u.jurisdiction_id IN (SELECT id FROM jurisdiction WHERE parent_id = :tid))"
            if lay.name == "cell"
            else "u.street_id IN (SELECT id FROM street WHERE jurisdiction_id = :tid)"
        )
    )
    return _frame(
        conn,
        _units_sql(lay, where),
        {"env": shapely.to_wkb(shapely.envelope(around)), "ex": exclude, "tid": town_id, "day": day},
    )


def _metric(settings: Settings, conn: sa.Connection, town_id: int, geom: BaseGeometry) -> int:
    stored = conn.execute(sa.text("SELECT metric_epsg FROM jurisdiction WHERE id = :i"), {"i": town_id}).scalar()
    return crs.jurisdiction_metric_crs(stored, settings.metric_crs, geom)


def _community_of(conn: sa.Connection, town, poly: BaseGeometry) -> int:
    """The community of the town holding most of ``poly`` (the town itself if it has none)."""
    row = conn.execute(
        sa.text(f"""
        SELECT id FROM jurisdiction WHERE parent_id = :tid AND level = 'community'
          AND geom && ST_SetSRID(ST_GeomFromWKB(:g), {crs.STORAGE_SRID})
        ORDER BY ST_Area(ST_Intersection(geom, ST_SetSRID(ST_GeomFromWKB(:g), {crs.STORAGE_SRID}))) DESC LIMIT 1"""),
        {"tid": town.id, "g": shapely.to_wkb(poly)},
    ).first()
    return row.id if row else town.id


def _segment_rows(conn: sa.Connection, ids: list[int]) -> dict[int, dict]:
    rows = conn.execute(
        sa.text("""
        SELECT id, street_id, seq, name, road_class, ST_AsBinary(geom) AS geom FROM segment WHERE id = ANY(:ids)"""),
        {"ids": ids},
    ).all()
    return {
        r.id: {
            "street_id": r.street_id,
            "seq": r.seq,
            "name": r.name,
            "road_class": r.road_class,
            "centerline": _wkb(r.geom),
        }
        for r in rows
    }
