"""OGC API – Features over PostGIS: one query per items page, every row limited by the caller's sight.

Each collection of :data:`gisgrid.interop.features.COLLECTIONS` is a row
source here (:data:`_SOURCES`): its table, its visibility term (the one
predicate, :mod:`gisgrid.accounts.scope`), its properties and its time.  The
page is cut in SQL (``ORDER BY id LIMIT … OFFSET …``), the owners of the
page's segments and cells are read on the asked day with the one owner rules
(:func:`gisgrid.db.sql.owner_chain_on`, :func:`gisgrid.db.sql.owner_on`), and
coordinates leave PostGIS in the asked CRS and axis order.  Audit problems are
computed (:func:`gisgrid.audit.store.audit_store`), not stored: that
collection is paged in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

import shapely
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.config import Settings
from gisgrid.crs import STORAGE_SRID
from gisgrid.db import sql
from gisgrid.interop.features import COLLECTIONS, GEOGRAPHIC, FeaturesError, ItemsQuery, axes_swapped
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturePage:
    """A page of features: ``text`` their JSON array as PostgreSQL wrote it (the answer splices it in, never
    parsed and written again), ``returned`` how many, ``matched`` how many match in all (None: not counted)."""

    text: str
    returned: int
    matched: int | None

    @property
    def features(self) -> list[dict]:
        return json.loads(self.text)


@dataclass(frozen=True)
class _Source:
    """How a collection is read: ``from_`` names the row ``x``; ``columns`` are ``name → SQL``."""

    from_: str
    geom: str
    columns: dict[str, str]
    visible: str  # a scope kind, or "appointment" / "case"
    time: tuple[str, str] | None = None  # (start, end) SQL of the row's validity; None: datetime picks a day


_SOURCES: dict[str, _Source] = {
    "jurisdictions": _Source(
        "jurisdiction x LEFT JOIN jurisdiction xp ON xp.id = x.parent_id",
        "x.geom",
        {"code": "x.code", "name": "x.name", "level": "x.level", "parent_code": "xp.code"},
        "jurisdiction",
    ),
    "streets": _Source(
        "street x LEFT JOIN jurisdiction xj ON xj.id = x.jurisdiction_id",
        "x.geom",
        {"name": "x.name", "road_class": "x.road_class", "jurisdiction": "xj.code"},
        "street",
    ),
    "segments": _Source(
        "segment x JOIN street xs ON xs.id = x.street_id LEFT JOIN jurisdiction xj ON xj.id = xs.jurisdiction_id",
        "x.geom",
        {
            "street_id": "x.street_id",
            "street": "xs.name",
            "name": "x.name",
            "from_name": "x.from_name",
            "to_name": "x.to_name",
            "road_class": "x.road_class",
            "length_m": "round(CAST(x.length_m AS numeric), 2)",
            "jurisdiction": "xj.code",
        },
        "segment",
    ),
    "cells": _Source(
        "grid_cell x LEFT JOIN jurisdiction xj ON xj.id = x.jurisdiction_id",
        "x.geom",
        {"code": "x.code", "jurisdiction": "xj.code"},
        "cell",
    ),
    "appointments": _Source(
        """owner_assignment x
        LEFT JOIN person xp ON xp.id = x.person_id LEFT JOIN department xd ON xd.id = x.department_id
        LEFT JOIN segment us ON x.target_type = 'segment' AND us.id = x.target_id
        LEFT JOIN street ut ON x.target_type = 'street' AND ut.id = x.target_id
        LEFT JOIN grid_cell uc ON x.target_type = 'cell' AND uc.id = x.target_id
        LEFT JOIN jurisdiction uj ON x.target_type = 'jurisdiction' AND uj.id = x.target_id""",
        "ST_PointOnSurface(COALESCE(us.geom, ut.geom, uc.geom, uj.geom))",
        {
            "role": "x.role",
            "target_type": "x.target_type",
            "target_id": "x.target_id",
            "owner": "COALESCE(xp.name, xd.name)",
            "owner_kind": "CASE WHEN x.person_id IS NOT NULL THEN 'person' ELSE 'department' END",
            "valid_from": "x.valid_from",
            "valid_to": "x.valid_to",
        },
        "appointment",
        time=("CAST(x.valid_from AS timestamptz)", "CAST(x.valid_to AS timestamptz)"),
    ),
    "cases": _Source(
        """report x LEFT JOIN category xc ON xc.id = x.category_id
        LEFT JOIN jurisdiction xj ON xj.id = x.jurisdiction_id
        LEFT JOIN person xp ON xp.id = x.assignee_person_id
        LEFT JOIN department xd ON xd.id = x.assignee_department_id""",
        "x.geom",
        {
            "category": "xc.code",
            "category_name": "xc.name",
            "status": "x.status",
            "open311_status": f"CASE WHEN {sql.report_is_open('x')} THEN 'open' ELSE 'closed' END",
            "reported_at": "x.reported_at",
            "due_at": "x.due_at",
            "closed_at": "x.closed_at",
            "address": "x.address",
            "assignee": "COALESCE(xp.name, xd.name)",
            "jurisdiction": "xj.code",
        },
        "case",
        time=("x.reported_at", "x.reported_at"),
    ),
}


def _visible(kind: str, scope: Scope) -> str:
    if scope.unlimited:
        return "true"
    if kind == "case":
        return scope.case_sql("x")
    if kind == "appointment":
        return (
            f"(CASE x.target_type WHEN 'segment' THEN EXISTS (SELECT 1 FROM segment va WHERE va.id = x.target_id "
            f"AND {scope.sql('segment', 'va')}) "
            f"WHEN 'street' THEN EXISTS (SELECT 1 FROM street vb WHERE vb.id = x.target_id AND {scope.sql('street', 'vb')}) "
            f"WHEN 'cell' THEN EXISTS (SELECT 1 FROM grid_cell vc WHERE vc.id = x.target_id AND {scope.sql('cell', 'vc')}) "
            f"ELSE EXISTS (SELECT 1 FROM jurisdiction vd WHERE vd.id = x.target_id "
            f"AND {scope.sql('jurisdiction', 'vd')}) END)"
        )
    return scope.sql(kind, "x")


def _out_geometry(expr: str, crs: int | None) -> tuple[str, int]:
    """SQL of ``expr`` (storage CRS) in ``crs`` and its axis order, and the decimals to write."""
    out = expr if crs is None or crs in GEOGRAPHIC else f"ST_Transform({expr}, {int(crs)})"
    if axes_swapped(crs):
        out = f"ST_FlipCoordinates({out})"
    return out, (7 if crs is None or crs in GEOGRAPHIC else 3)


def _where(name: str, src: _Source, query: ItemsQuery, scope: Scope) -> tuple[list[str], dict]:
    where = [_visible(src.visible, scope)]
    params: dict = dict(scope.params())
    if query.bbox is not None:
        x0, y0, x1, y1 = query.bbox_lonlat_order()
        srid = STORAGE_SRID if query.bbox_crs is None or query.bbox_crs in GEOGRAPHIC else int(query.bbox_crs)
        env = f"ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, {srid})"
        if srid != STORAGE_SRID:
            env = f"ST_Transform({env}, {STORAGE_SRID})"
        where.append(f"{src.geom} && {env} AND ST_Intersects({src.geom}, {env})")
        params.update(bx0=x0, by0=y0, bx1=x1, by1=y1)
    if src.time is not None and (query.start is not None or query.end is not None):
        start_sql, end_sql = src.time
        if query.end is not None:
            where.append(f"{start_sql} <= :t_end")
            params["t_end"] = query.end
        if query.start is not None:
            if src.visible == "appointment":  # valid until (exclusive) valid_to; open while NULL
                where.append(f"({end_sql} IS NULL OR {end_sql} > :t_start)")
            else:
                where.append(f"{end_sql} >= :t_start")
            params["t_start"] = query.start
    for i, (prop, value) in enumerate(sorted(query.properties.items())):
        column = src.columns[prop]
        if COLLECTIONS[name].properties[prop] == "integer":
            where.append(f"{column} = :p{i}")
            params[f"p{i}"] = int(value)
        elif COLLECTIONS[name].properties[prop] == "number":
            where.append(f"{column} = :p{i}")
            params[f"p{i}"] = float(value)
        else:
            where.append(f"CAST({column} AS text) = :p{i}")
            params[f"p{i}"] = value
    return where, params


def _plain(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "__float__") and not isinstance(value, (int, float, bool)):
        return float(value)
    return value


def items(
    conn: sa.Connection,
    scope: Scope,
    name: str,
    query: ItemsQuery,
    settings: Settings,
    *,
    feature_id: int | None = None,
    count: bool = True,
) -> FeaturePage:
    """One page of a collection as GeoJSON features, and how many match (None when not counted).

    Parameters
    ----------
    scope : Scope
        The caller's sight on the day asked (the ``datetime`` day for owners).
    feature_id : int, optional
        Only this feature (``/items/{featureId}``).
    """
    if name == "audit-problems":
        return _audit_items(conn, scope, query, settings, feature_id=feature_id)
    src = _SOURCES[name]
    where, params = _where(name, src, query, scope)
    if feature_id is not None:
        where.append("x.id = :fid")
        params["fid"] = feature_id
    where_sql = " AND ".join(f"({w})" for w in where)
    geom_sql, digits = _out_geometry("p.g", query.crs)
    columns = ", ".join(f"{expr} AS {json.dumps(col)}" for col, expr in src.columns.items())
    props = ", ".join(f"'{col}', p.{json.dumps(col)}" for col in src.columns)
    owners_cte, owners_join, owners_props = _owners_sql(name)
    # the page's ids first (the filters and the order), then its rows, and its owners for those ids only;
    # PostgreSQL writes the features' JSON
    page_sql = f"SELECT x.id FROM {src.from_} WHERE {where_sql} ORDER BY x.id LIMIT :limit OFFSET :offset"
    text = f"""
        WITH page AS (SELECT x.id AS fid, {src.geom} AS g, {columns} FROM {src.from_} WHERE x.id = ANY(:ids)){owners_cte}
        SELECT COALESCE(json_agg(json_build_object(
                   'type', 'Feature', 'id', p.fid, 'geometry', CAST(ST_AsGeoJSON({geom_sql}, {digits}) AS json),
                   'properties', jsonb_build_object({props}){owners_props}) ORDER BY p.fid), '[]')
        FROM page p{owners_join}"""
    with sql.no_jit(conn):
        ids = list(conn.execute(sa.text(page_sql), {**params, "limit": query.limit, "offset": query.offset}).scalars())
        found = conn.execute(sa.text(text), {"ids": ids, "day": query.day or scope.day}).scalar() if ids else []
        matched = None
        if count and feature_id is None:
            matched = int(conn.execute(sa.text(f"SELECT count(*) FROM {src.from_} WHERE {where_sql}"), params).scalar())
    text = found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)
    return FeaturePage(text, len(ids), matched)


#: The owner columns of the collections that carry owners on the day, all present (null: nobody).
_OWNER_COLUMNS = {
    "segments": ("段长", "二级街长", "一级街长", "总街长"),
    "cells": ("网格员", "网格长"),
}


def _owners_sql(name: str) -> tuple[str, str, str]:
    """(CTE, join, properties term) adding the page's owners on ``:day``: a segment's chain (段长 … 总街长,
    :func:`gisgrid.db.sql.owner_chain_on`), a cell's 网格员 and 网格长 (:func:`gisgrid.db.sql.owner_on`), with
    the phone of the first role; several owners of one role are joined by 、."""
    if name not in _OWNER_COLUMNS:
        return "", "", ""
    roles = _OWNER_COLUMNS[name]
    if name == "segments":
        source = f"""SELECT c.segment_id AS id, c.role, c.owner_name, c.owner_phone
                     FROM {sql.owner_chain_on(":day", ":ids")} c"""
    else:
        source = f"""SELECT a.target_id AS id, a.role, a.owner_name, a.owner_phone FROM {sql.owner_on(":day")} a
                     WHERE a.target_type = 'cell' AND a.target_id = ANY(:ids)"""
    pairs = ", ".join(f"'{r}', max(t.names) FILTER (WHERE t.role = '{r}')" for r in roles)
    cte = f""",
        owners AS (
            SELECT t.id, jsonb_build_object({pairs},
                   'owner_phone', max(t.phones) FILTER (WHERE t.role = '{roles[0]}')) AS props
            FROM (SELECT o.id, o.role, string_agg(o.owner_name, '、' ORDER BY o.owner_name) AS names,
                         string_agg(o.owner_phone, '、' ORDER BY o.owner_name) AS phones
                  FROM ({source}) o GROUP BY o.id, o.role) t
            GROUP BY t.id)"""
    empty = json.dumps({**dict.fromkeys(roles), "owner_phone": None}, ensure_ascii=False)
    return cte, " LEFT JOIN owners o ON o.id = p.fid", f" || COALESCE(o.props, CAST('{empty}' AS jsonb))"


def _audit_items(
    conn: sa.Connection, scope: Scope, query: ItemsQuery, settings: Settings, *, feature_id: int | None
) -> FeaturePage:
    """The coverage audit of every town the caller sees whole, its problems numbered from 1."""
    import geopandas as gpd
    import pandas as pd

    from gisgrid.accounts.store import list_towns
    from gisgrid.audit.store import audit_features, audit_store

    if scope.unlimited:
        codes = [None]
    else:
        codes = [t["code"] for t in list_towns(conn, scope, whole=True)]
    frames = []
    for code in codes:
        try:
            frame = audit_features(audit_store(conn, settings, code, scope=scope))
        except LookupError:  # no towns yet
            continue
        frame["jurisdiction"] = code
        frames.append(frame)
    if not frames:
        return FeaturePage("[]", 0, 0)
    problems = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=STORAGE_SRID)
    problems.index = range(1, len(problems) + 1)
    problems = problems[problems.geometry.notna()]
    if query.bbox is not None:
        x0, y0, x1, y1 = query.bbox_lonlat_order()
        box = shapely.box(x0, y0, x1, y1)
        if query.bbox_crs is not None and query.bbox_crs not in GEOGRAPHIC:
            box = gpd.GeoSeries([box], crs=query.bbox_crs).to_crs(STORAGE_SRID).iloc[0]
        problems = problems[problems.intersects(box)]
    for prop, value in query.properties.items():
        problems = problems[problems[prop].astype(str) == value]
    if feature_id is not None:
        problems = problems[problems.index == feature_id]
    matched = len(problems)
    page = problems.iloc[query.offset : query.offset + query.limit]
    if query.crs is not None and query.crs not in GEOGRAPHIC:
        page = page.to_crs(query.crs)
    features = []
    for fid, row in page.iterrows():  # at most one page of computed problems
        geom = row.geometry
        if axes_swapped(query.crs):
            geom = shapely.transform(geom, lambda c: c[:, ::-1])
        props = {k: _plain(None if _isna(v) else v) for k, v in row.items() if k != "geometry"}
        features.append(
            {"type": "Feature", "id": int(fid), "geometry": json.loads(shapely.to_geojson(geom)), "properties": props}
        )
    return FeaturePage(json.dumps(features, ensure_ascii=False), len(features), matched)


def _isna(value) -> bool:
    try:
        import pandas as pd

        return not isinstance(value, (list, tuple, dict)) and bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def extent(conn: sa.Connection, scope: Scope, name: str) -> dict:
    """A collection's extent: its bounding box in CRS84 (of the rows the caller sees, for the unit layers;
    of the jurisdictions they see, for cases and problems) and, for cases, the time span."""
    if name in ("jurisdictions", "streets", "segments", "cells"):
        src = _SOURCES[name]
        text = f"SELECT ST_Extent({src.geom}) FROM {src.from_} WHERE {_visible(src.visible, scope)}"
    else:
        text = f"SELECT ST_Extent(x.geom) FROM jurisdiction x WHERE {_visible('jurisdiction', scope)}"
    with sql.no_jit(conn):
        box = conn.execute(
            sa.text(f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({text}) t(b)"), scope.params()
        ).first()
    bbox = [round(float(v), 7) for v in box] if box is not None and box[0] is not None else [-180, -90, 180, 90]
    out = {"spatial": {"bbox": [bbox], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}
    if COLLECTIONS[name].temporal:
        out["temporal"] = {"interval": [[None, None]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return out


def metric_epsgs(conn: sa.Connection, settings: Settings) -> list[int]:
    """The deployment's metric CRSs: every jurisdiction's, and the setting when it names one."""
    codes = [
        int(c)
        for (c,) in conn.execute(sa.text("SELECT DISTINCT metric_epsg FROM jurisdiction WHERE metric_epsg IS NOT NULL"))
    ]
    setting = str(settings.metric_crs or "").upper().removeprefix("EPSG:")
    if setting.isdigit():
        codes.append(int(setting))
    return sorted(set(codes))


def check_feature_exists(page: FeaturePage, name: str, feature_id: int) -> dict:
    """The one feature of ``page``; FeaturesError 404 when there is none."""
    features = page.features
    if not features:
        raise FeaturesError(
            404, "NotFound", N_("no feature %(id)s in %(name)s (or not within your sight)", id=feature_id, name=name)
        )
    return features[0]


__all__ = ["FeaturePage", "check_feature_exists", "extent", "items", "metric_epsgs"]
