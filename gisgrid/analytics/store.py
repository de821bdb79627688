"""The manager map's data: filtered reports, density hexagons, hotspots, gaps, summaries.

Database functions only (a SQLAlchemy connection in, frames out); no Flask.
Every selection becomes one parameterised SQL ``WHERE`` over ``report r``
(:func:`gisgrid.analytics.filters.report_filter`).

Scale: density and hotspot counts are aggregated in PostGIS, never by shipping
every point.  Reports are binned on the same pointy-top hexagon lattice as
:func:`gisgrid.analytics.hotspots.hex_bins` (axial coordinates anchored at the origin of
the town's metric CRS, ``jurisdiction.metric_epsg``), computed arithmetically
in SQL and grouped: at 1,000,000 reports this is one sequential scan and a hash
aggregate, where a spatial join of the points with ``ST_HexagonGrid`` polygons
is several times slower (see ``bench/map.py``).  The hexagons come back as
``hex_bins``-compatible ids (``"{q}_{r}"``), so hotspots run
:func:`gisgrid.analytics.hotspots.getis_ord` on PostGIS counts with the zeros filled in
by ``hex_bins`` over the jurisdiction's extent.
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

from gisgrid.analytics import hotspots as hs
from gisgrid.analytics.filters import (
    ReportFilters,
    refused,
    report_filter,
    valid_values,
)
from gisgrid.crs import STORAGE_SRID
from gisgrid.db import sql
from gisgrid.errors import InputError
from gisgrid.ownership.store import segments_with_owners

LOGGER = logging.getLogger(__name__)

#: The hexagon edge whose axial coordinates each report keeps (migration 0014_map_bins), metres.
HEX_SIZE_M = 100.0
#: Above this many matched reports the map shows hexagons instead of markers.
MAX_POINTS = 2000
_SQRT3 = float(np.sqrt(3.0))

#: JIT off for the enclosed queries (:func:`gisgrid.db.sql.no_jit`).
_no_jit = sql.no_jit


def _place_crs(conn: sa.Connection, code: str) -> set[int | None]:
    """The metric CRS of every place in jurisdiction ``code``'s subtree (its own, else the nearest above)."""
    return set(
        conn.execute(
            sa.text(
                """
                WITH RECURSIVE up(id, parent_id, metric_epsg, depth) AS (
                    SELECT id, parent_id, metric_epsg, 0 FROM jurisdiction WHERE code = :c
                    UNION ALL SELECT j.id, j.parent_id, j.metric_epsg, up.depth + 1
                    FROM jurisdiction j JOIN up ON j.id = up.parent_id WHERE up.depth < 10),
                down(id, epsg) AS (
                    SELECT (SELECT id FROM jurisdiction WHERE code = :c),
                           (SELECT metric_epsg FROM up WHERE metric_epsg IS NOT NULL ORDER BY depth LIMIT 1)
                    UNION ALL SELECT j.id, COALESCE(j.metric_epsg, down.epsg)
                    FROM jurisdiction j JOIN down ON j.parent_id = down.id)
                SELECT DISTINCT epsg FROM down
                """
            ),
            {"c": code},
        ).scalars()
    )


def towns(conn: sa.Connection) -> pd.DataFrame:
    """Code, name, level and metric EPSG of every jurisdiction, towns first."""
    return pd.read_sql_query(
        sa.text(
            "SELECT code, name, level, metric_epsg FROM jurisdiction "
            "ORDER BY CASE level WHEN 'town' THEN 0 WHEN 'community' THEN 1 ELSE 2 END, code"
        ),
        conn,
    )


def study_area(conn: sa.Connection, filters: ReportFilters) -> tuple[int, tuple[float, float, float, float] | None]:
    """Metric EPSG and lon/lat bounds of the selection.

    The jurisdiction's own when one is selected; otherwise the first town's
    EPSG (by code) and no bounds, because towns may lie far apart.
    """
    if filters.jurisdiction:
        row = conn.execute(
            sa.text(
                "SELECT metric_epsg, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
                "FROM jurisdiction WHERE code = :c"
            ),
            {"c": filters.jurisdiction},
        ).one_or_none()
        if row is None:
            raise refused("jurisdiction", [filters.jurisdiction], valid_values(conn, "SELECT code FROM jurisdiction"))
        return int(row[0]), tuple(float(v) for v in row[1:])
    epsg = conn.execute(
        sa.text(
            "SELECT metric_epsg FROM jurisdiction WHERE metric_epsg IS NOT NULL ORDER BY level <> 'town', code LIMIT 1"
        )
    ).scalar()
    if epsg is None:
        raise InputError("no jurisdiction with a metric CRS: load a town first")
    return int(epsg), None


def count_reports(conn: sa.Connection, filters: ReportFilters) -> int:
    """Number of reports matching ``filters``."""
    where, params = report_filter(conn, filters)
    return int(conn.execute(sa.text(f"SELECT count(*) FROM report r WHERE {where}"), params).scalar())


def points(conn: sa.Connection, filters: ReportFilters, limit: int = MAX_POINTS) -> gpd.GeoDataFrame:
    """Up to ``limit`` matched reports (newest first) with their text, for markers.

    Columns: ``id``, ``category``, ``category_name``, ``status``,
    ``reported_at``, ``closed_at``, ``address``, ``description``,
    ``owner_name`` and the point geometry (EPSG:4326).
    """
    where, params = report_filter(conn, filters)
    query = f"""
        SELECT r.id, c.code AS category, c.name AS category_name, r.status, r.reported_at, r.closed_at,
               r.address, r.description, rc.owner_name, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat
        FROM report r LEFT JOIN category c ON c.id = r.category_id
        LEFT JOIN report_current rc ON rc.report_id = r.id
        WHERE r.geom IS NOT NULL AND {where}
        ORDER BY r.reported_at DESC, r.id LIMIT :f_limit"""
    frame = pd.read_sql_query(sa.text(query), conn, params={**params, "f_limit": int(limit)})
    geoms = (
        shapely.points(frame.pop("lon").to_numpy(float), frame.pop("lat").to_numpy(float))
        if len(frame)
        else np.array([], dtype=object)
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID, index=frame.index))


@dataclass(frozen=True)
class MapAggregate:
    """What one pass over the matched reports yields (:func:`aggregate`).

    ``n``: matched reports; ``overdue``: of them, open and past their deadline
    (as :func:`count_overdue`); ``counts``: reports per hexagon (q, r, count,
    overdue, lon, lat of the centre) for reports with a point.
    """

    n: int
    overdue: int
    counts: pd.DataFrame
    size_m: float
    epsg: int
    #: matched reports per place (``report.place_id``), for the choropleth
    places: pd.Series | None = None


def aggregate(
    conn: sa.Connection, filters: ReportFilters, *, size_m: float = 100.0, now: dt.datetime | None = None
) -> MapAggregate:
    """Matched count, overdue count and hexagon counts in one SQL pass over the reports.

    The map needs all three; computed separately they cost three scans of the
    matched reports (at 1,000,000 reports about a second each, plus the
    projection of every point for the hexagons).
    """
    epsg, _bounds = study_area(conn, filters)
    frame = _axial_counts(conn, filters, size_m, epsg, now=now, with_unlocated=True, by_place=True)
    places = frame.dropna(subset=["place"]).groupby("place")["count"].sum()
    places.index = places.index.astype(np.int64)
    located = frame["q"].notna().to_numpy()
    counts = frame[located].drop(columns="place")
    counts = (
        counts.groupby(["q", "r"], as_index=False, sort=False)
        .agg(count=("count", "sum"), overdue=("overdue", "sum"), lon=("lon", "first"), lat=("lat", "first"))
        .sort_values(["r", "q"])
        .reset_index(drop=True)
    )
    counts = counts.astype({"q": np.int64, "r": np.int64, "count": np.int64, "overdue": np.int64})
    return MapAggregate(
        n=int(frame["count"].sum()),
        overdue=int(frame["overdue"].sum()),
        counts=counts,
        size_m=float(size_m),
        epsg=epsg,
        places=places.astype(np.int64),
    )


def _axial_counts(
    conn: sa.Connection,
    filters: ReportFilters,
    size_m: float,
    epsg: int,
    *,
    now: dt.datetime | None = None,
    with_unlocated: bool = False,
    by_place: bool = False,
) -> pd.DataFrame:
    """Reports per hexagon (axial q, r of :func:`gisgrid.analytics.hotspots.hex_bins`), counted in PostGIS.

    Returns q, r, count, overdue (open and past the category's deadline at
    ``now``) and the hexagon centre in lon/lat (EPSG:4326).  With
    ``with_unlocated`` reports without a point come back as one row with
    q, r NULL.
    """
    size_m = float(size_m)
    if not (np.isfinite(size_m) and size_m > 0):
        raise InputError(f"hexagon size must be a positive number of metres, not {size_m!r}")
    where, params = report_filter(conn, filters)
    located = "true" if with_unlocated else "r.geom IS NOT NULL"
    # each report's 100 m hexagon in its place's metric CRS is kept by the trigger report_bin (migration
    # 0014_map_bins): those rows are counted from the covering index ix_report_place alone (no heap, no
    # projection); the others (another size or CRS, no point) by the same lattice arithmetic in SQL
    late = f"COALESCE({sql.report_is_overdue('r', ':f_now')}, false)"
    axial = "gisgrid_hex_axial(r.geom, CAST(:f_epsg AS integer), CAST(:f_size AS float8))"
    computed = (
        f"SELECT ({axial})[1] AS q, ({axial})[2] AS r, r.place_id AS place, {late} AS late "
        f"FROM report r WHERE {located} AND {where}"
    )
    rows = computed
    if size_m == HEX_SIZE_M:
        stored = (
            f"SELECT r.hex_q AS q, r.hex_r AS r, r.place_id AS place, {late} AS late FROM report r "
            f"WHERE r.hex_epsg = CAST(:f_epsg AS integer) AND {where}"
        )
        # a jurisdiction whose places all have the study CRS: every report it matches has its hexagon
        # stored (one scan of the covering index); otherwise the others are computed too
        rows = (
            stored
            if filters.jurisdiction and _place_crs(conn, filters.jurisdiction) == {epsg}
            else f"{stored} UNION ALL {computed} AND r.hex_epsg IS DISTINCT FROM CAST(:f_epsg AS integer)"
        )
    query = f"""
        WITH a AS ({rows})
        SELECT q::bigint AS q, r::bigint AS r, place, count(*) AS count, count(*) FILTER (WHERE late) AS overdue,
               ST_X(ST_Transform(ST_SetSRID(ST_MakePoint(:f_size * {_SQRT3!r} * (q + r / 2.0), :f_size * 1.5 * r),
                                            CAST(:f_epsg AS integer)), {STORAGE_SRID})) AS lon,
               ST_Y(ST_Transform(ST_SetSRID(ST_MakePoint(:f_size * {_SQRT3!r} * (q + r / 2.0), :f_size * 1.5 * r),
                                            CAST(:f_epsg AS integer)), {STORAGE_SRID})) AS lat
        FROM a GROUP BY q, r, place ORDER BY r, q"""
    now = now or dt.datetime.now(dt.timezone.utc)
    with _no_jit(conn):
        frame = pd.read_sql_query(
            sa.text(query), conn, params={**params, "f_epsg": epsg, "f_size": size_m, "f_now": now}
        )
    if not by_place:  # one row per hexagon
        frame = (
            frame.drop(columns="place")
            .groupby(["q", "r"], as_index=False, sort=False, dropna=False)
            .agg(count=("count", "sum"), overdue=("overdue", "sum"), lon=("lon", "first"), lat=("lat", "first"))
            .sort_values(["r", "q"])
            .reset_index(drop=True)
        )
    if not with_unlocated:
        frame = frame.astype({"q": np.int64, "r": np.int64})
    return frame


def _bins_from_counts(counts: pd.DataFrame, size_m: float, epsg: int, extent) -> gpd.GeoDataFrame:
    """hex_bins over ``extent`` (zeros included) carrying the PostGIS ``counts``."""
    centres = gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(counts["lon"], counts["lat"]), crs=STORAGE_SRID))
    bins = hs.hex_bins(centres, size_m=size_m, metric_epsg=epsg, extent=extent)
    ids = counts["q"].astype(str) + "_" + counts["r"].astype(str)
    by_id = pd.Series(counts["count"].to_numpy(np.int64), index=ids.to_numpy())
    bins["count"] = bins["hex_id"].map(by_id).fillna(0).astype(np.int64)
    return bins


def density_bins(
    conn: sa.Connection, filters: ReportFilters, *, size_m: float = 100.0, agg: MapAggregate | None = None
) -> gpd.GeoDataFrame:
    """Matched reports per hexagon, aggregated in PostGIS; only hexagons holding reports.

    Parameters
    ----------
    size_m : float, default 100
        Hexagon edge in metres, in the selection's metric CRS (:func:`study_area`).

    Returns
    -------
    GeoDataFrame
        EPSG:4326, columns ``hex_id``, ``q``, ``r``, ``count`` and the hexagon
        polygon; ``count`` sums to :func:`count_reports` (reports with a point).
        ``agg`` (from :func:`aggregate` with the same filters and size) saves the pass.
    """
    if agg is not None and agg.size_m == float(size_m):
        epsg, counts = agg.epsg, agg.counts
    else:
        epsg, _bounds = study_area(conn, filters)
        counts = _axial_counts(conn, filters, size_m, epsg)
    if counts.empty:
        return hs.hex_bins(
            gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=STORAGE_SRID)), size_m=size_m, metric_epsg=epsg
        )
    # only the occupied hexagons: the same lattice and ids as hex_bins, without its rectangle
    # of empty hexagons (which, for towns far apart, would be enormous)
    q = counts["q"].to_numpy(np.int64)
    r = counts["r"].to_numpy(np.int64)
    bins = gpd.GeoDataFrame(
        {"hex_id": hs._hex_ids(q, r), "q": q, "r": r, "count": counts["count"].to_numpy(np.int64)},
        geometry=gpd.GeoSeries(hs._hex_polygons(q, r, float(size_m), epsg), crs=STORAGE_SRID),
        crs=STORAGE_SRID,
    )
    bins.attrs.update(hex_size_m=float(size_m), metric_epsg=epsg)
    return bins


def hotspots(
    conn: sa.Connection,
    filters: ReportFilters,
    size_m: float = 100.0,
    *,
    permutations: int = 9999,
    seed: int = 0,
    agg: MapAggregate | None = None,
) -> gpd.GeoDataFrame:
    """Getis-Ord Gi* hot and cold spots of the matched reports over the jurisdiction.

    Counts come from PostGIS (:func:`density_bins`' lattice); the hexagons of
    the study area (:func:`study_area_shapes`: covered by the jurisdiction's
    streets or grid cells) take part, empty ones as 0, and so do hexagons
    holding a report anywhere; the FDR correction runs over exactly these, and
    :func:`gisgrid.analytics.hotspots.getis_ord` adds ``gi_z``, ``p_sim``, ``p_fdr`` and
    ``hotspot`` (``hot_99`` … ``cold_99``).  Needs a jurisdiction: towns lie
    far apart and a study area spanning them is meaningless.
    """
    if not filters.jurisdiction:
        raise InputError("hotspots need a jurisdiction: choose a town or community")
    if agg is not None and agg.size_m == float(size_m):
        counts = agg.counts
    else:
        epsg, _bounds = study_area(conn, filters)
        counts = _axial_counts(conn, filters, size_m, epsg)
    return hotspots_of_counts(conn, filters, counts, size_m, permutations=permutations, seed=seed)


def hotspots_of_counts(
    conn: sa.Connection,
    filters: ReportFilters,
    counts: pd.DataFrame,
    size_m: float = 100.0,
    *,
    permutations: int = 9999,
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """What :func:`hotspots` does once the reports are counted per hexagon, wherever they were counted.

    ``counts`` holds ``q``, ``r`` (axial, on ``size_m`` hexagons in the metric CRS of
    :func:`study_area`), ``count`` and the hexagon centre ``lon``, ``lat`` (EPSG:4326), one row per
    occupied hexagon: from PostGIS (:func:`hotspots`) or summed over the partitions of a
    dask.distributed cluster (:mod:`gisgrid.analytics.distributed`).
    """
    if not filters.jurisdiction:
        raise InputError("hotspots need a jurisdiction: choose a town or community")
    epsg, bounds = study_area(conn, filters)
    if counts.empty or counts["count"].sum() == 0:
        return gpd.GeoDataFrame(columns=[*hs.HEX_COLUMNS, *hs.GI_COLUMNS], geometry="geometry", crs=STORAGE_SRID)
    bins = _bins_from_counts(counts, size_m, epsg, extent=bounds)
    # the study area: hexagons the jurisdiction's street network or grid covers.  Hexagons
    # where no report can occur (fields, water, the rest of the bounding box) would all read
    # as cold spots and would dilute the FDR correction; hexagons holding reports always stay
    covered = study_area_shapes(conn, filters.jurisdiction)
    inside = np.zeros(len(bins), dtype=bool)
    if len(covered):
        tree = shapely.STRtree(bins.geometry.values)
        hit = tree.query(covered, predicate="intersects")
        inside[np.unique(hit[1])] = True
    bins = bins[inside | (bins["count"].to_numpy() > 0)].reset_index(drop=True)
    return hs.getis_ord(bins, permutations=permutations, seed=seed)


def study_area_shapes(conn: sa.Connection, code: str) -> np.ndarray:
    """What hotspots are tested over in jurisdiction ``code``: its streets' centerlines and its grid
    cells (of it and its communities), clipped to its polygon, as shapely geometries in EPSG:4326."""
    rows = conn.execute(
        sa.text(
            """
            WITH j AS (SELECT id, geom FROM jurisdiction WHERE code = :c)
            SELECT ST_AsBinary(ST_Intersection(s.geom, j.geom)) FROM street s, j
             WHERE s.geom && j.geom AND ST_Intersects(s.geom, j.geom)
            UNION ALL
            SELECT ST_AsBinary(ST_Intersection(g.geom, j.geom)) FROM grid_cell g, j
             WHERE g.geom && j.geom AND ST_Intersects(g.geom, j.geom)
            """
        ),
        {"c": code},
    ).scalars()
    shapes = shapely.from_wkb([bytes(r) for r in rows if r is not None])
    return shapes[~shapely.is_empty(shapes)] if len(shapes) else np.array([], dtype=object)


def recurring(
    conn: sa.Connection, filters: ReportFilters, *, within_days: int = 14, radius_m: float = 50.0
) -> gpd.GeoDataFrame:
    """易反弹 places among the matched reports (:func:`gisgrid.analytics.hotspots.recurring_hotspots`)."""
    epsg, _ = study_area(conn, filters)
    where, params = report_filter(conn, filters)
    frame = pd.read_sql_query(
        sa.text(f"""
        SELECT r.id, c.code AS category, r.reported_at, r.closed_at, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat
        FROM report r JOIN category c ON c.id = r.category_id
        WHERE r.geom IS NOT NULL AND {where}"""),
        conn,
        params=params,
    )
    geoms = (
        shapely.points(frame.pop("lon").to_numpy(float), frame.pop("lat").to_numpy(float))
        if len(frame)
        else np.array([], dtype=object)
    )
    reports = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID, index=frame.index))
    for col in ("reported_at", "closed_at"):
        reports[col] = pd.to_datetime(reports[col], utc=True)
    return hs.recurring_hotspots(reports, within_days=within_days, radius_m=radius_m, metric_epsg=epsg)


def overdue(
    conn: sa.Connection, filters: ReportFilters, *, now: dt.datetime | None = None, limit: int = MAX_POINTS
) -> gpd.GeoDataFrame:
    """Open matched reports past their deadline ``due_at`` (处置超时), most late first.

    The deadline counts working time where the category says so
    (:func:`gisgrid.cases.workflow.deadlines`).  Columns as :func:`points`
    plus ``due_at`` and ``hours_late`` (hours since the deadline).
    """
    where, params = report_filter(conn, filters)
    now = now or dt.datetime.now(dt.timezone.utc)
    with _no_jit(conn):
        frame = _overdue_frame(conn, where, params, now, limit)
    geoms = (
        shapely.points(frame.pop("lon").to_numpy(float), frame.pop("lat").to_numpy(float))
        if len(frame)
        else np.array([], dtype=object)
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID, index=frame.index))


def _overdue_frame(conn, where, params, now, limit) -> pd.DataFrame:
    return pd.read_sql_query(
        sa.text(f"""
        SELECT r.id, c.code AS category, c.name AS category_name, r.status, r.reported_at, r.closed_at,
               r.address, r.description, rc.owner_name, r.due_at,
               round((EXTRACT(EPOCH FROM (CAST(:f_now AS timestamptz) - r.due_at)) / 3600)::numeric, 1)::float
                   AS hours_late,
               ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat
        FROM report r LEFT JOIN category c ON c.id = r.category_id
        LEFT JOIN report_current rc ON rc.report_id = r.id
        WHERE r.geom IS NOT NULL AND {sql.report_is_overdue("r", ":f_now")} AND {where}
        ORDER BY due_at LIMIT :f_limit"""),
        conn,
        params={**params, "f_now": now, "f_limit": int(limit)},
    )


def count_overdue(conn: sa.Connection, filters: ReportFilters, *, now: dt.datetime | None = None) -> int:
    """Number of open matched reports past their deadline (see :func:`overdue`)."""
    where, params = report_filter(conn, filters)
    return int(
        conn.execute(
            sa.text(f"""
        SELECT count(*) FROM report r WHERE {sql.report_is_overdue("r", ":f_now")} AND {where}"""),
            {**params, "f_now": now or dt.datetime.now(dt.timezone.utc)},
        ).scalar()
    )


def coverage_gaps(conn: sa.Connection, filters: ReportFilters, *, day: dt.date | None = None) -> gpd.GeoDataFrame:
    """Segment areas and grid cells of the selection with no owner on ``day`` (无人负责).

    "Has no owner" is the one rule of :mod:`gisgrid.ownership.history` (SQL
    ``unit_has_owner``), as in the coverage audit: no 段长 of the segment's
    own, no 网格员/网格长 of the cell's own; owners inherited through the
    street or the town do not fill the gap.  Columns ``kind``
    ("segment"/"cell"), ``id``, ``name`` and the polygon (EPSG:4326).
    """
    day = day or dt.date.today()
    area = "true"
    params: dict = {"day": day, **filters.sight_params()}
    if filters.jurisdiction:
        area = "ST_Intersects(x.geom, (SELECT geom FROM jurisdiction WHERE code = :jur))"
        params["jur"] = filters.jurisdiction
    segs = pd.read_sql_query(
        sa.text(f"""
        SELECT g.id, s.name || ' · ' || g.name AS name, ST_AsBinary(g.area) AS wkb
        FROM segment g JOIN street s ON s.id = g.street_id, LATERAL (SELECT g.geom) AS x(geom)
        WHERE g.area IS NOT NULL AND {area} AND NOT {sql.unit_has_owner("'segment'", "g.id", ":day")}
          AND {filters.sight("segment", "g")}"""),
        conn,
        params=params,
    )
    segs = segs.assign(kind="segment")
    cells = pd.read_sql_query(
        sa.text(f"""
        SELECT c.id, c.code AS name, ST_AsBinary(c.geom) AS wkb FROM grid_cell c, LATERAL (SELECT c.geom) AS x(geom)
        WHERE {area} AND NOT {sql.unit_has_owner("'cell'", "c.id", ":day")} AND {filters.sight("cell", "c")}"""),
        conn,
        params=params,
    )
    frame = pd.concat([segs, cells.assign(kind="cell")], ignore_index=True)
    geoms = shapely.from_wkb([bytes(v) for v in frame.pop("wkb")]) if len(frame) else np.array([], dtype=object)
    return gpd.GeoDataFrame(
        frame[["kind", "id", "name"]], geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID, index=frame.index)
    )


_OWNER_SQL = f"""
WITH m AS (SELECT r.id, {sql.report_is_open("r")} AS is_open FROM report r WHERE {{where}}),
per_owner AS (
    SELECT rc.owner_name AS owner, count(*) AS reports, count(*) FILTER (WHERE m.is_open) AS open
    FROM m JOIN report_current rc ON rc.report_id = m.id GROUP BY rc.owner_name
),
owned AS (SELECT a.owner_name AS owner, a.target_type, a.target_id FROM {sql.owner_on(":day")} a),
km AS (
    SELECT o.owner, sum(g.length_m) / 1000.0 AS street_km FROM owned o
    JOIN segment g ON (o.target_type = 'segment' AND g.id = o.target_id)
                   OR (o.target_type = 'street' AND g.street_id = o.target_id)
    GROUP BY o.owner
),
cells AS (SELECT owner, count(DISTINCT target_id) AS cells FROM owned WHERE target_type = 'cell' GROUP BY owner)
SELECT COALESCE(po.owner, '(unassigned)') AS owner, po.reports, po.open, km.street_km, cells.cells
FROM per_owner po LEFT JOIN km ON km.owner = po.owner LEFT JOIN cells ON cells.owner = po.owner
ORDER BY po.reports DESC, 1
"""

_JURISDICTION_SQL = f"""
WITH j AS (
    SELECT id, code, name, level, geom FROM jurisdiction
    WHERE ((CAST(:jur AS text) IS NULL AND level IN ('town', 'community'))
       OR code = :jur OR parent_id = (SELECT id FROM jurisdiction WHERE code = :jur))
      AND {{sight}}
)
SELECT j.code, j.name, j.level,
       (SELECT count(*) FROM report r WHERE ST_Intersects(r.geom, j.geom) AND {{where}}) AS reports,
       (SELECT count(*) FROM report r WHERE ST_Intersects(r.geom, j.geom) AND {sql.report_is_open("r")}
               AND {{where}}) AS open,
       (SELECT sum(g.length_m) / 1000.0 FROM segment g
         WHERE g.geom && j.geom AND ST_Intersects(ST_PointOnSurface(g.geom), j.geom)) AS street_km,
       (SELECT count(*) FROM grid_cell c
         WHERE c.geom && j.geom AND ST_Intersects(ST_PointOnSurface(c.geom), j.geom)) AS cells
FROM j ORDER BY j.code
"""


def _rates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in ("reports", "open", "cells"):
        frame[col] = frame[col].fillna(0).astype(np.int64)
    frame["street_km"] = frame["street_km"].astype(float).round(3)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["per_km"] = (frame["reports"] / frame["street_km"].where(frame["street_km"] > 0)).round(2)
        frame["per_cell"] = (frame["reports"] / frame["cells"].where(frame["cells"] > 0)).round(2)
        frame["share_open"] = (frame["open"] / frame["reports"].where(frame["reports"] > 0)).round(3)
    return frame


def summaries(conn: sa.Connection, filters: ReportFilters, *, day: dt.date | None = None) -> dict[str, pd.DataFrame]:
    """Tables for meetings: per owner and per jurisdiction.

    Returns
    -------
    dict
        ``"owner"``: owner (current assignment's owner name; "(unassigned)"),
        reports, open, street_km (segments owned as 段长 or through a street
        on ``day``), cells (grid cells owned), per_km, per_cell, share_open.
        ``"jurisdiction"``: code, name, level, reports (inside its polygon),
        open, street_km (segments whose centreline lies inside), cells,
        per_km, per_cell, share_open — for the selected jurisdiction and its
        children, or every town and community.  Rates are NaN where the
        denominator is 0.
    """
    where, params = report_filter(conn, filters)
    params = {**params, "day": day or dt.date.today(), "jur": filters.jurisdiction}
    owner = pd.read_sql_query(sa.text(_OWNER_SQL.format(where=where)), conn, params=params)
    jur = pd.read_sql_query(
        sa.text(_JURISDICTION_SQL.format(where=where, sight=filters.sight("jurisdiction", "jurisdiction"))),
        conn,
        params=params,
    )
    return {"owner": _rates(owner), "jurisdiction": _rates(jur)}


_CHOROPLETH_SQL = """
WITH RECURSIVE sel AS (SELECT id, level FROM jurisdiction WHERE code = :jur),
kids AS MATERIALIZED (
    SELECT j.id, j.code, j.name, j.level, j.geom FROM jurisdiction j
    WHERE ((CAST(:jur AS text) IS NULL AND j.level = 'town')
       OR j.parent_id = (SELECT id FROM sel)
       OR (j.code = :jur AND NOT EXISTS (SELECT 1 FROM jurisdiction k WHERE k.parent_id = (SELECT id FROM sel))))
      AND {sight}
),
below(id, kid) AS (
    SELECT id, id FROM kids
    UNION SELECT j.id, below.kid FROM jurisdiction j JOIN below ON j.parent_id = below.id
),
per AS (
    -- each report counts once: in the child its place (report.place_id, migration 0014_map_bins) lies in
    {per}
)
SELECT kids.code, kids.name, kids.level, COALESCE(per.reports, 0) AS reports,
       (SELECT sum(g.length_m) / 1000.0 FROM segment g
         WHERE g.geom && kids.geom AND ST_Intersects(ST_PointOnSurface(g.geom), kids.geom)) AS street_km,
       ST_AsBinary(kids.geom) AS wkb
FROM kids LEFT JOIN per ON per.id = kids.id
WHERE kids.geom IS NOT NULL
ORDER BY kids.code
"""


_PER_REPORTS = """SELECT below.kid AS id, count(*) AS reports FROM report r JOIN below ON below.id = r.place_id
    WHERE r.place_id IS NOT NULL AND {where} GROUP BY below.kid"""
_PER_PLACES = """SELECT below.kid AS id, sum(pc.n) AS reports
    FROM unnest(CAST(:pc_place AS integer[]), CAST(:pc_n AS bigint[])) AS pc(place, n)
    JOIN below ON below.id = pc.place GROUP BY below.kid"""


def choropleth(conn: sa.Connection, filters: ReportFilters, *, agg: MapAggregate | None = None) -> gpd.GeoDataFrame:
    """Matched reports per child jurisdiction, counted in PostGIS, for a choropleth.

    The children are the communities of the selected town (the towns of a
    selected county; the jurisdiction itself when it has none; every town
    when none is selected).  Each matched report is counted once, in the
    child its place lies in (``report.place_id``: the most specific
    jurisdiction holding its point, the first by code on a shared border), so
    ``reports`` sums to the matched reports lying in some child.

    Returns
    -------
    GeoDataFrame
        EPSG:4326: ``code``, ``name``, ``level``, ``reports``, ``street_km``
        (segments whose centreline lies inside), ``per_km`` (NaN without
        streets) and the polygon.
    """
    if agg is not None and agg.places is not None:  # the counts per place of the map's one pass
        per = _PER_PLACES
        params = {
            **filters.sight_params(),
            "pc_place": agg.places.index.astype(int).tolist(),
            "pc_n": agg.places.astype(int).tolist(),
        }
    else:
        where, params = report_filter(conn, filters)
        per = _PER_REPORTS.format(where=where)
    with _no_jit(conn):
        frame = pd.read_sql_query(
            sa.text(_CHOROPLETH_SQL.format(per=per, sight=filters.sight("jurisdiction", "j"))),
            conn,
            params={**params, "jur": filters.jurisdiction},
        )
    frame["reports"] = frame["reports"].astype(np.int64)
    frame["street_km"] = frame["street_km"].astype(float).round(3)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["per_km"] = (frame["reports"] / frame["street_km"].where(frame["street_km"] > 0)).round(2)
    geoms = shapely.from_wkb([bytes(v) for v in frame.pop("wkb")]) if len(frame) else np.array([], dtype=object)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID, index=frame.index))


# --------------------------------------------------------------------------- the manager map's page


def all_jurisdictions_extent(conn: sa.Connection) -> tuple[float, float, float, float] | None:
    """Lon/lat bounds (EPSG:4326) of every jurisdiction; None when there are none."""
    row = conn.execute(
        sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom)::geometry AS e FROM jurisdiction) t"
        )
    ).one()
    return tuple(float(v) for v in row) if row[0] is not None else None


def categories(conn: sa.Connection) -> pd.DataFrame:
    """Report categories: ``code``, ``name``, ``name_en``, by code (the filter's choices)."""
    return pd.read_sql_query(sa.text("SELECT code, name, name_en FROM category ORDER BY code"), conn)


@dataclass(frozen=True)
class ManagerMapData:
    """Everything the manager map draws (:func:`manager_map_data`), EPSG:4326.

    ``n`` matched reports, ``overdue_count`` of them overdue; ``epsg`` the
    metric CRS of the study area and ``bounds`` its lon/lat box; ``segments``
    the segment areas with owners; when there are reports: ``bins`` (hexagon
    counts), ``points`` (the reports, when at most :data:`MAX_POINTS`, else
    None), ``hotspots`` (only with a jurisdiction), ``recurring`` (the places
    with most recurrences; None with ``recurring_count`` None when there were
    too many reports to search), ``overdue`` (the most late) and
    ``choropleth``; always ``gaps`` (places without an owner).
    """

    n: int
    overdue_count: int
    epsg: int
    bounds: tuple[float, float, float, float]
    segments: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    bins: gpd.GeoDataFrame | None = None
    points: gpd.GeoDataFrame | None = None
    hotspots: gpd.GeoDataFrame | None = None
    recurring: gpd.GeoDataFrame | None = None
    recurring_count: int | None = 0
    overdue: gpd.GeoDataFrame | None = None
    choropleth: gpd.GeoDataFrame | None = None


def manager_map_data(
    conn: sa.Connection,
    filters: ReportFilters,
    *,
    size_m: float = 100.0,
    permutations: int = 9999,
    max_drawn: int = 300,
    max_recurring_reports: int = 50_000,
) -> ManagerMapData:
    """Read what the manager map shows for ``filters``.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    filters : ReportFilters
    size_m : float, default 100
        Hexagon size (centre to corner), metres.
    permutations : int, default 9999
        Gi* permutations (:func:`hotspots`).
    max_drawn : int, default 300
        At most this many overdue reports and recurring places (the worst); counts are of all.
    max_recurring_reports : int, default 50,000
        Recurring places are searched in memory (pairs of nearby reports): only up to this many reports.
    """
    # one pass over the matched reports: count, overdue count and hexagon counts
    agg = aggregate(conn, filters, size_m=size_m)
    n = agg.n
    epsg, bounds = study_area(conn, filters)
    if bounds is None:  # no jurisdiction: the reports' extent, else the whole data
        bounds = all_jurisdictions_extent(conn) or (-180, -85, 180, 85)
    segments = segments_with_owners(conn, in_area_of=filters.jurisdiction or None, scope=filters.scope)
    parts: dict = {}
    if n:
        bins = density_bins(conn, filters, size_m=size_m, agg=agg)
        parts["bins"] = bins
        if n <= MAX_POINTS:
            parts["points"] = points(conn, filters)
        if filters.jurisdiction:
            parts["hotspots"] = hotspots(conn, filters, size_m=size_m, permutations=permutations, agg=agg)
        if n <= max_recurring_reports:
            rec = recurring(conn, filters)
            parts["recurring_count"] = len(rec)
            parts["recurring"] = rec.head(max_drawn)  # the places with most recurrences
        else:  # the pairwise search runs in memory: too many reports (narrow the filters)
            parts["recurring_count"] = None
        parts["overdue"] = overdue(conn, filters, limit=max_drawn)  # the most late
        parts["choropleth"] = choropleth(conn, filters, agg=agg)
    gaps = coverage_gaps(conn, filters)
    return ManagerMapData(
        n=n, overdue_count=agg.overdue, epsg=epsg, bounds=bounds, segments=segments, gaps=gaps, **parts
    )
