"""Layers: the tables users import and export, as GeoDataFrames in EPSG:4326.

``fetch_layer`` reads a layer for export or maps; ``insert_frame`` writes
rows in one statement per batch.  Both take a SQLAlchemy connection; the
caller owns the transaction, so an import is all-or-nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid.crs import STORAGE_SRID
from gisgrid.errors import InputError, NotFound

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layer:
    name: str
    sql: str  # SELECT producing the export columns; geometry as WKB in column "geom"
    geometry: str | None = "geom"


LAYERS: dict[str, Layer] = {
    "jurisdictions": Layer(
        "jurisdictions",
        """
        SELECT j.id, j.code, j.level, j.name, p.code AS parent_code, j.metric_epsg,
               ST_AsBinary(j.geom) AS geom
        FROM jurisdiction j LEFT JOIN jurisdiction p ON p.id = j.parent_id ORDER BY j.code""",
    ),
    "streets": Layer(
        "streets",
        """
        SELECT s.id, s.name, array_to_string(s.aliases, ';') AS aliases, s.road_class, j.code AS jurisdiction,
               s.source_id, ST_AsBinary(s.geom) AS geom
        FROM street s LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id ORDER BY s.id""",
    ),
    "segments": Layer(
        "segments",
        """
        SELECT g.id, g.street_id, s.name AS street, g.seq, g.name, g.from_name, g.to_name, g.road_class,
               round(g.length_m::numeric, 2)::float AS length_m, ST_AsText(g.geom) AS centerline_wkt,
               ST_AsBinary(g.area) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id WHERE g.area IS NOT NULL ORDER BY g.id""",
    ),
    "centerlines": Layer(
        "centerlines",
        """
        SELECT g.id, g.street_id, s.name AS street, g.seq, g.name, g.road_class,
               round(g.length_m::numeric, 2)::float AS length_m, ST_AsBinary(g.geom) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id ORDER BY g.id""",
    ),
    "cells": Layer(
        "cells",
        """
        SELECT c.id, c.code, j.code AS jurisdiction, ST_AsBinary(c.geom) AS geom
        FROM grid_cell c LEFT JOIN jurisdiction j ON j.id = c.jurisdiction_id ORDER BY c.code""",
    ),
    "owners": Layer(
        "owners",
        """
        SELECT a.id, a.target_type,
               COALESCE(j.code, st.name, sg.name, c.code) AS target, a.target_id, a.role,
               p.name AS person, p.phone AS person_phone, d.code AS department, d.name AS department_name,
               a.valid_from, a.valid_to
        FROM owner_assignment a
        LEFT JOIN person p ON p.id = a.person_id
        LEFT JOIN department d ON d.id = a.department_id
        LEFT JOIN jurisdiction j ON a.target_type = 'jurisdiction' AND j.id = a.target_id
        LEFT JOIN street st ON a.target_type = 'street' AND st.id = a.target_id
        LEFT JOIN segment sg ON a.target_type = 'segment' AND sg.id = a.target_id
        LEFT JOIN grid_cell c ON a.target_type = 'cell' AND c.id = a.target_id
        ORDER BY a.id""",
        geometry=None,
    ),
    "categories": Layer(
        "categories",
        """
        SELECT c.code, c.name, c.name_en, c.kind, d.code AS department, c.deadline_hours, c.working_time
        FROM category c LEFT JOIN department d ON d.id = c.department_id ORDER BY c.code""",
        geometry=None,
    ),
    "departments": Layer("departments", "SELECT code, name, phone FROM department ORDER BY code", geometry=None),
    "reports": Layer(
        "reports",
        """
        SELECT r.id, r.external_id, c.code AS category, c.name AS category_name, r.reported_at, r.closed_at,
               r.source, r.address, r.description, r.status, r.is_demo, a.rule, a.target_type, a.target_id,
               a.distance_m, a.owner_name, a.reason, a.ruleset_version, ST_AsBinary(r.geom) AS geom
        FROM report r LEFT JOIN category c ON c.id = r.category_id
        LEFT JOIN (SELECT DISTINCT ON (report_id) * FROM report_assignment ORDER BY report_id, id DESC) a
               ON a.report_id = r.id
        ORDER BY r.id""",
    ),
}


def layer(name: str) -> Layer:
    try:
        return LAYERS[name]
    except KeyError:
        raise NotFound(f"unknown layer {name!r}; layers: {', '.join(LAYERS)}") from None


def _units(scope, kind: str, table: str) -> str:
    return f"SELECT u.id FROM {table} u WHERE {scope.sql(kind, 'u')}"


def _scope_condition(name: str, scope) -> str:
    """Condition on a layer row ``t``: the user of ``scope`` may see it (reference tables: always)."""
    units = {"jurisdiction": "jurisdiction", "street": "street", "segment": "segment", "cell": "grid_cell"}
    kind = {
        "jurisdictions": "jurisdiction",
        "streets": "street",
        "segments": "segment",
        "centerlines": "segment",
        "cells": "cell",
    }.get(name)
    if kind:
        return f"t.id IN ({_units(scope, kind, units[kind])})"
    if name == "owners":
        return (
            "("
            + " OR ".join(
                f"(t.target_type = '{k}' AND t.target_id IN ({_units(scope, k, table)}))" for k, table in units.items()
            )
            + ")"
        )
    if name == "reports":  # routed to a unit the user sees, or inside a jurisdiction they see
        return (
            f"((t.target_type = 'segment' AND t.target_id IN ({_units(scope, 'segment', 'segment')})) "
            f"OR (t.target_type = 'cell' AND t.target_id IN ({_units(scope, 'cell', 'grid_cell')})) "
            "OR t.id IN (SELECT r.id FROM report r JOIN jurisdiction rj ON rj.geom && r.geom "
            f"AND ST_Intersects(rj.geom, r.geom) WHERE rj.id IN ({_units(scope, 'jurisdiction', 'jurisdiction')})))"
        )
    return "true"


def fetch_layer(conn: sa.Connection, name: str, *, where: str | None = None, params: dict | None = None, scope=None):
    """Read a layer as a GeoDataFrame (EPSG:4326) or, for tables without geometry, a DataFrame.

    ``scope`` (a :class:`gisgrid.accounts.scope.Scope`, passed in by the
    caller: this module sits below accounts) keeps only the rows its user may
    see, by the one visibility predicate.
    """
    lay = layer(name)
    conditions = [f"({where})"] if where else []
    params = dict(params or {})
    if scope is not None and not scope.unlimited:
        conditions.append(_scope_condition(name, scope))
        params.update(scope.params())
    if conditions:  # a subquery's order is not kept: the layer's order again, outside
        order = "code" if name in ("jurisdictions", "cells", "categories", "departments") else "id"
        sql = f"SELECT * FROM ({lay.sql}) AS t WHERE {' AND '.join(conditions)} ORDER BY t.{order}"
    else:
        sql = lay.sql
    frame = pd.read_sql_query(sa.text(sql), conn, params=params)
    if lay.geometry is None:
        return frame
    wkb = frame.pop(lay.geometry)
    geoms = (
        shapely.from_wkb(wkb.map(lambda v: None if v is None else bytes(v)).to_numpy())
        if len(frame)
        else np.array([], dtype=object)
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID, index=frame.index))


def insert_frame(
    conn: sa.Connection, table: str, frame: pd.DataFrame, *, geometry_columns=("geom",), returning: str | None = "id"
) -> list:
    """Insert every row of ``frame`` into ``table``; geometry columns hold shapely objects in EPSG:4326.

    Returns the values of ``returning`` in row order.
    """
    if frame.empty:
        return []
    cols = list(frame.columns)
    values = []
    for c in cols:
        if c in geometry_columns:
            values.append(f"ST_SetSRID(ST_GeomFromWKB(:{c}), {STORAGE_SRID})")
        else:
            values.append(f":{c}")
    stmt = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(values)})"
    if returning:
        stmt += f" RETURNING {returning}"
    rows = []
    for rec in frame.to_dict("records"):
        for c in cols:
            v = rec[c]
            if c in geometry_columns:
                rec[c] = None if v is None else shapely.to_wkb(v)
            elif isinstance(v, float) and np.isnan(v):
                rec[c] = None
            elif v is pd.NaT:
                rec[c] = None
            elif isinstance(v, np.generic):
                rec[c] = v.item()
        rows.append(rec)
    if returning:
        # one round trip per row: used for parent tables whose new ids the caller needs
        return [conn.execute(sa.text(stmt), rec).scalar_one() for rec in rows]
    conn.execute(sa.text(stmt), rows)
    return []


def require_columns(frame: pd.DataFrame, required: list[str], *, what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what}: missing column(s) {', '.join(missing)}; columns present: {', '.join(map(str, frame.columns))}"
        )
