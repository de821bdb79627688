"""Layers: the tables users import and export, as GeoDataFrames in EPSG:4326.

``fetch_layer`` reads a layer for export or maps, filtered by typed
arguments (never SQL text); ``insert_frame`` writes rows in one statement per
batch of rows.  Both take a SQLAlchemy connection; the
caller owns the transaction, so an import is all-or-nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
    """A layer: the SELECT of its export columns and what its rows can be filtered by.

    ``base`` is the FROM clause of the layer's rows with the row table as ``x``
    (None: the layer has no filters); ``jurisdiction`` the SQL of a row's
    jurisdiction id and ``footprint`` of its geometry, both on ``base``.
    """

    name: str
    sql: str  # SELECT producing the export columns; geometry as WKB in column "geom"
    geometry: str | None = "geom"
    base: str | None = None
    jurisdiction: str | None = None
    footprint: str | None = None


LAYERS: dict[str, Layer] = {
    "jurisdictions": Layer(
        "jurisdictions",
        """
        SELECT j.id, j.code, j.level, j.name, p.code AS parent_code, j.metric_epsg,
               ST_AsBinary(j.geom) AS geom
        FROM jurisdiction j LEFT JOIN jurisdiction p ON p.id = j.parent_id ORDER BY j.code""",
        base="jurisdiction x",
        jurisdiction="x.id",
        footprint="x.geom",
    ),
    "streets": Layer(
        "streets",
        """
        SELECT s.id, s.name, array_to_string(s.aliases, ';') AS aliases, s.road_class, j.code AS jurisdiction,
               s.source_id, ST_AsBinary(s.geom) AS geom
        FROM street s LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id ORDER BY s.id""",
        base="street x",
        jurisdiction="x.jurisdiction_id",
        footprint="x.geom",
    ),
    "segments": Layer(
        "segments",
        """
        SELECT g.id, g.street_id, s.name AS street, g.seq, g.name, g.from_name, g.to_name, g.road_class,
               round(g.length_m::numeric, 2)::float AS length_m, ST_AsText(g.geom) AS centerline_wkt,
               ST_AsBinary(g.area) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id WHERE g.area IS NOT NULL ORDER BY g.id""",
        base="segment x JOIN street s ON s.id = x.street_id",
        jurisdiction="s.jurisdiction_id",
        footprint="x.geom",
    ),
    "centerlines": Layer(
        "centerlines",
        """
        SELECT g.id, g.street_id, s.name AS street, g.seq, g.name, g.road_class,
               round(g.length_m::numeric, 2)::float AS length_m, ST_AsBinary(g.geom) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id ORDER BY g.id""",
        base="segment x JOIN street s ON s.id = x.street_id",
        jurisdiction="s.jurisdiction_id",
        footprint="x.geom",
    ),
    "cells": Layer(
        "cells",
        """
        SELECT c.id, c.code, j.code AS jurisdiction, ST_AsBinary(c.geom) AS geom
        FROM grid_cell c LEFT JOIN jurisdiction j ON j.id = c.jurisdiction_id ORDER BY c.code""",
        base="grid_cell x",
        jurisdiction="x.jurisdiction_id",
        footprint="x.geom",
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
    "buildings": Layer(
        "buildings",
        """
        SELECT b.id, b.name, b.kind, b.source_id, j.code AS jurisdiction, ST_AsBinary(b.geom) AS geom
        FROM building b LEFT JOIN jurisdiction j ON j.id = b.jurisdiction_id ORDER BY b.id""",
        base="building x",
        jurisdiction="x.jurisdiction_id",
        footprint="x.geom",
    ),
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
        base="report x",
        footprint="x.geom",
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
    if name == "reports":  # the one report rule: routed to a unit the user sees (or to nobody, in their area)
        return f"t.id IN (SELECT r.id FROM report r WHERE {scope.sql('report', 'r')})"
    return "true"


#: The jurisdiction with code ``:code`` and every jurisdiction below it.
_SUBTREE = """
    WITH RECURSIVE sub AS (SELECT id FROM jurisdiction WHERE code = :under_jurisdiction
                           UNION ALL SELECT j.id FROM jurisdiction j JOIN sub ON j.parent_id = sub.id)
    SELECT id FROM sub"""


def _filters(
    lay: Layer,
    *,
    ids: Sequence[int] | None,
    jurisdiction_code: str | None,
    under_jurisdiction: str | None,
    in_area_of: str | None,
    bbox: Sequence[float] | None,
) -> tuple[list[str], dict]:
    """The conditions on the layer's rows (as ``t.id IN (…)``) and their parameters."""
    conditions, params = [], {}
    wanted = {
        "ids": ids is not None,
        "jurisdiction_code": jurisdiction_code is not None,
        "under_jurisdiction": under_jurisdiction is not None,
        "in_area_of": in_area_of is not None,
        "bbox": bbox is not None,
    }
    unsupported = [
        name
        for name, on in wanted.items()
        if on
        and (
            lay.base is None
            or (name in ("jurisdiction_code", "under_jurisdiction") and lay.jurisdiction is None)
            or (name in ("in_area_of", "bbox") and lay.footprint is None)
        )
    ]
    if unsupported:
        raise InputError(f"layer {lay.name!r} cannot be filtered by {', '.join(unsupported)}")

    def rows_where(condition: str) -> None:
        conditions.append(f"t.id IN (SELECT x.id FROM {lay.base} WHERE {condition})")

    if ids is not None:
        conditions.append("t.id = ANY(:ids)")
        params["ids"] = [int(i) for i in ids]
    if jurisdiction_code is not None:
        rows_where(f"{lay.jurisdiction} = (SELECT id FROM jurisdiction WHERE code = :jurisdiction_code)")
        params["jurisdiction_code"] = jurisdiction_code
    if under_jurisdiction is not None:
        rows_where(f"{lay.jurisdiction} IN ({_SUBTREE})")
        params["under_jurisdiction"] = under_jurisdiction
    if in_area_of is not None:
        # the index-friendly box test first, then the exact one
        conditions.append(
            f"t.id IN (SELECT x.id FROM {lay.base} JOIN jurisdiction a ON a.code = :in_area_of "
            f"AND {lay.footprint} && a.geom AND ST_Intersects({lay.footprint}, a.geom))"
        )
        params["in_area_of"] = in_area_of
    if bbox is not None:
        try:
            minx, miny, maxx, maxy = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise InputError(f"bbox must be (min_lon, min_lat, max_lon, max_lat), got {bbox!r}") from None
        rows_where(f"{lay.footprint} && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, {STORAGE_SRID})")
        params.update(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
    return conditions, params


def fetch_layer(
    conn: sa.Connection,
    name: str,
    *,
    ids: Sequence[int] | None = None,
    jurisdiction_code: str | None = None,
    under_jurisdiction: str | None = None,
    in_area_of: str | None = None,
    bbox: Sequence[float] | None = None,
    limit: int | None = None,
    scope=None,
):
    """Read a layer as a GeoDataFrame (EPSG:4326) or, for tables without geometry, a DataFrame.

    Filters combine with AND; rows keep the layer's order.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    name : str
        One of :data:`LAYERS` (``segments``, ``streets`` …).
    ids : sequence of int, optional
        Only the rows with these ids.
    jurisdiction_code : str, optional
        Only the rows filed under the jurisdiction with this division code
        itself (a segment by its street's jurisdiction; for ``jurisdictions``,
        that one row).
    under_jurisdiction : str, optional
        Only the rows filed under this jurisdiction or any jurisdiction below it.
    in_area_of : str, optional
        Only the rows whose geometry (a segment's centerline) intersects the
        boundary of the jurisdiction with this code.
    bbox : sequence of 4 float, optional
        Only the rows whose geometry's box overlaps ``(min_lon, min_lat,
        max_lon, max_lat)``, EPSG:4326 degrees.
    limit : int, optional
        At most this many rows (the first in the layer's order).
    scope : gisgrid.accounts.scope.Scope, optional
        Only the rows its user may see, by the one visibility predicate
        (passed in by the caller: this module sits below accounts).

    Raises
    ------
    NotFound
        For an unknown layer.
    InputError
        For a filter the layer does not have (e.g. ``bbox`` on ``departments``).
    """
    lay = layer(name)
    conditions, params = _filters(
        lay,
        ids=ids,
        jurisdiction_code=jurisdiction_code,
        under_jurisdiction=under_jurisdiction,
        in_area_of=in_area_of,
        bbox=bbox,
    )
    if scope is not None and not scope.unlimited:
        conditions.append(_scope_condition(name, scope))
        params.update(scope.params())
    if conditions or limit is not None:  # a subquery's order is not kept: the layer's order again, outside
        order = "code" if name in ("jurisdictions", "cells", "categories", "departments") else "id"
        sql = f"SELECT * FROM ({lay.sql}) AS t"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += f" ORDER BY t.{order}"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = int(limit)
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


def _plain(value, *, geometry: bool):
    """A cell as the driver takes it: WKB for geometries, None for NaN/NaT, Python scalars for numpy ones."""
    if geometry:
        return None if value is None else shapely.to_wkb(value)
    if isinstance(value, float) and np.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def insert_frame(
    conn: sa.Connection, table: str, frame: pd.DataFrame, *, geometry_columns=("geom",), returning: str | None = "id"
) -> list:
    """Insert every row of ``frame`` into ``table``; geometry columns hold shapely objects in EPSG:4326.

    The rows go in batches of many rows per statement (SQLAlchemy's
    "insertmanyvalues"), not one round trip per row.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        The caller owns the transaction.
    table : str
        Table name; its primary key is an integer ``id`` the database assigns.
    frame : DataFrame
        One column per table column.  NaN and NaT become NULL.
    geometry_columns : sequence of str
        Columns holding shapely geometries (EPSG:4326) or None.
    returning : str or None, default "id"
        Column whose new values to return, in row order; None returns nothing.

    Returns
    -------
    list
        The values of ``returning`` in the order of ``frame``'s rows.
    """
    if frame.empty:
        return []
    cols = [str(c) for c in frame.columns]
    # untyped columns: values bind as they did with text(), the database casts them to the column types
    target = sa.table(table, *(sa.column(c) for c in dict.fromkeys([*cols, returning or cols[0]])))
    # geometry values bind under another name: a bind parameter may not be named after its column
    values = {
        c: sa.func.ST_SetSRID(sa.func.ST_GeomFromWKB(sa.bindparam(f"{c}__wkb")), sa.literal_column(str(STORAGE_SRID)))
        for c in cols
        if c in geometry_columns
    }
    stmt = sa.insert(target)
    if values:
        stmt = stmt.values(values)
    geometry = {c: c in geometry_columns for c in cols}
    rows = [
        {(f"{c}__wkb" if geometry[c] else c): _plain(v, geometry=geometry[c]) for c, v in zip(cols, rec)}
        for rec in frame.itertuples(index=False, name=None)
    ]
    if returning:
        # batches of "INSERT … VALUES (…), (…) RETURNING": PostgreSQL inserts and returns the rows of a
        # VALUES list in its order (Django's bulk_create relies on the same), so the values come in row order
        stmt = stmt.returning(target.c[returning])
        return list(conn.execute(stmt, rows).scalars())
    conn.execute(stmt, rows)
    return []


def require_columns(frame: pd.DataFrame, required: list[str], *, what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what}: missing column(s) {', '.join(missing)}; columns present: {', '.join(map(str, frame.columns))}"
        )
