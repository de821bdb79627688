"""Benchmark the assignment engine against the in-process limit and geopandas.

Run on demand (not a test)::

    .venv/bin/python bench/assign.py                       # 1,000,000 points × towns of 10,000 and 100,000 segments
    .venv/bin/python bench/assign.py --points 200000 --segments 10000 --cases limit memory

A synthetic town is a grid street network around lon 114.2, lat 22.7 (metric
CRS EPSG:4547): blocks of 120 m, every block side a segment with a centerline
and a hexagonal frontage area 40 m deep on both sides (areas tile the street
corridors without overlap; 10 % of segments have no area, so the
nearest-centerline rule has work), unit-grid cells of 100 m × 100 m over the
town, and a county cut into 4 towns and 64 communities.  Points are drawn
uniformly over the town's extent plus a 2 % margin (which falls outside every
layer: unassigned), or clustered around 200 hotspots (σ 150 m).

Each measured case is a function in :data:`CASES`; a case receives the
:class:`Context` (town, points, index, scratch directory) and returns how many
points it routed.  The figures printed: seconds, points per second and the
ratio of the case's seconds to the limit's (1.0 = as fast as the limit).

Cases:

``limit``
    The in-process limit: shapely points from metric x/y, one vectorised
    ``STRtree.query(points, predicate="intersects")`` over the segment areas,
    ``STRtree.query_nearest(max_distance=30)`` over the centerlines for the
    points in no area.
``limit_threads``
    The same, with the area query split over as many threads as gisgrid
    uses (shapely releases the GIL while querying): for reference; the
    ratios stay relative to the single-threaded limit.
``memory``
    gisgrid in memory: :meth:`gisgrid.routing.index.AssignmentIndex.assign` on the
    same metric x/y (all six rules, ties, result frame).
``file``
    gisgrid file → file (the input CSV is written before the clock starts):
    :func:`gisgrid.routing.files.assign_file` on a CSV of
    lon/lat (EPSG:4326) text with id, category, date and description columns,
    writing a CSV with every row and the result columns — reading, validation,
    CRS transformation, assignment and writing.
``sjoin``
    ``geopandas.sjoin`` of the points (GeoDataFrame built from x/y) with the
    areas, then ``sjoin_nearest(max_distance=30)`` for the points left over.
``postgis_stored``, ``postgis_per_point``, ``api_latency``
    Hooks for the database paths (stored reports re-assigned in PostGIS, one
    PostGIS query per point over a warm connection, ``POST /api/assign``
    latency): they print "skipped" until implemented.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gisgrid.crs import transformer  # noqa: E402
from gisgrid.routing.files import assign_file  # noqa: E402
from gisgrid.routing.index import AssignmentIndex  # noqa: E402
from gisgrid.routing.rules import RuleSet  # noqa: E402

LOGGER = logging.getLogger("bench.assign")

METRIC_EPSG = 4547
ORIGIN = (520_000.0, 2_500_000.0)  # near lon 114.2, lat 22.6 in EPSG:4547
BLOCK_M = 120.0
FRONTAGE_M = 40.0
CELL_M = 100.0
TOLERANCE_M = 30.0
NO_AREA_SHARE = 0.10
RULESET = RuleSet(
    version="bench",
    tolerance_m=TOLERANCE_M,
    category_routes={
        "0101": {"mode": "location"},
        "0301": {"mode": "by_road_class", "road_classes": {"primary": 7, "trunk": 8}},
        "0501": {"mode": "department", "department_id": 9},
    },
)


class Skip(Exception):
    """A case that cannot run here (yet); its reason is printed instead of figures."""


# --- synthetic town ------------------------------------------------------------------------
@dataclass
class Town:
    """Layers in metric coordinates (arrays) and as EPSG:4326 GeoDataFrames for the engine."""

    n_segments: int
    bounds: tuple[float, float, float, float]
    ids: np.ndarray
    lines: np.ndarray
    areas: np.ndarray  # None where a segment has no area
    segments: gpd.GeoDataFrame  # EPSG:4326, columns id, road_class, area, geometry
    cells: gpd.GeoDataFrame
    jurisdictions: gpd.GeoDataFrame


def _to_lonlat(geoms: np.ndarray) -> np.ndarray:
    t = transformer(METRIC_EPSG, 4326)
    return shapely.transform(geoms, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def make_town(n_segments: int, *, seed: int = 0) -> Town:
    """A grid town of about ``n_segments`` segments (see the module docstring)."""
    rng = np.random.default_rng(seed)
    k = max(1, int(round((-1 + np.sqrt(1 + 2 * n_segments)) / 2)))  # 2·k·(k+1) segments for k×k blocks
    x0, y0 = ORIGIN
    i, j = np.meshgrid(np.arange(k), np.arange(k + 1), indexing="ij")
    i, j = i.ravel().astype(float), j.ravel().astype(float)
    b, d = BLOCK_M, FRONTAGE_M
    # horizontal segments (along x) at y = j·b, x from i·b to (i+1)·b; vertical ones are the transpose
    h_line = np.stack(
        [np.column_stack([x0 + i * b, y0 + j * b]), np.column_stack([x0 + (i + 1) * b, y0 + j * b])], axis=1
    )
    dx = np.array([0, d, b - d, b, b - d, d, 0])
    dy = np.array([0, d, d, 0, -d, -d, 0])
    h_area = np.stack([x0 + i[:, None] * b + dx, y0 + j[:, None] * b + dy], axis=-1)
    v_line = h_line[:, :, ::-1] - np.array([x0, y0])[::-1] + np.array([x0, y0])
    v_area = h_area[:, :, ::-1] - np.array([x0, y0])[::-1] + np.array([x0, y0])
    lines = shapely.linestrings(np.concatenate([h_line, v_line]))
    areas = shapely.segmentize(shapely.polygons(np.concatenate([h_area, v_area])), 20.0)
    n = len(lines)
    ids = np.arange(1, n + 1, dtype=np.int64)
    areas = areas.astype(object)
    areas[rng.random(n) < NO_AREA_SHARE] = None
    road_class = rng.choice(
        np.array(["residential", "tertiary", "secondary", "primary", "trunk"], dtype=object),
        size=n,
        p=[0.6, 0.2, 0.1, 0.07, 0.03],
    )
    side = k * b
    bounds = (x0 - d, y0 - d, x0 + side + d, y0 + side + d)
    # unit-grid cells over the town; communities 8 × 8, towns 2 × 2, one county
    nc = int(np.ceil((bounds[2] - bounds[0]) / CELL_M))
    cx, cy = np.meshgrid(np.arange(nc), np.arange(nc), indexing="ij")
    cells = shapely.box(
        bounds[0] + cx.ravel() * CELL_M,
        bounds[1] + cy.ravel() * CELL_M,
        bounds[0] + (cx.ravel() + 1) * CELL_M,
        bounds[1] + (cy.ravel() + 1) * CELL_M,
    )
    width = bounds[2] - bounds[0]
    jur_geoms, jur_levels = [shapely.box(*bounds)], ["county"]
    for parts, level in ((2, "town"), (8, "community")):
        step = width / parts
        for a in range(parts):
            for c in range(parts):
                jur_geoms.append(
                    shapely.box(
                        bounds[0] + a * step,
                        bounds[1] + c * step,
                        bounds[0] + (a + 1) * step,
                        bounds[1] + (c + 1) * step,
                    )
                )
                jur_levels.append(level)
    segments = gpd.GeoDataFrame(
        {"id": ids, "road_class": road_class, "area": gpd.GeoSeries(_to_lonlat(areas), crs=4326)},
        geometry=_to_lonlat(lines),
        crs=4326,
    )
    cells_gdf = gpd.GeoDataFrame({"id": np.arange(1, len(cells) + 1)}, geometry=_to_lonlat(cells), crs=4326)
    jur = gpd.GeoDataFrame(
        {"id": np.arange(1, len(jur_geoms) + 1), "level": jur_levels},
        geometry=_to_lonlat(np.array(jur_geoms)),
        crs=4326,
    )
    return Town(
        n_segments=n,
        bounds=bounds,
        ids=ids,
        lines=lines,
        areas=areas,
        segments=segments,
        cells=cells_gdf,
        jurisdictions=jur,
    )


def make_points(town: Town, n: int, *, kind: str, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` metric points, ``kind`` 'uniform' (town extent + 2 % margin) or 'clustered' (200 hotspots)."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = town.bounds
    if kind == "uniform":
        mx, my = 0.02 * (xmax - xmin), 0.02 * (ymax - ymin)
        return rng.uniform(xmin - mx, xmax + mx, n), rng.uniform(ymin - my, ymax + my, n)
    if kind == "clustered":
        centres = np.column_stack([rng.uniform(xmin, xmax, 200), rng.uniform(ymin, ymax, 200)])
        which = rng.integers(0, 200, n)
        return centres[which, 0] + rng.normal(0, 150, n), centres[which, 1] + rng.normal(0, 150, n)
    raise ValueError(f"kind must be 'uniform' or 'clustered', not {kind!r}")


# --- cases ------------------------------------------------------------------------------------
@dataclass
class Context:
    town: Town
    x: np.ndarray
    y: np.ndarray
    kind: str
    workdir: Path
    index: AssignmentIndex | None = None
    extras: dict = field(default_factory=dict)

    def get_index(self) -> AssignmentIndex:
        if self.index is None:
            t0 = time.perf_counter()
            self.index = AssignmentIndex.build(
                self.town.segments, self.town.cells, self.town.jurisdictions, metric_epsg=METRIC_EPSG, ruleset=RULESET
            )
            self.extras["index build s"] = time.perf_counter() - t0
        return self.index

    def trees(self) -> tuple[shapely.STRtree, shapely.STRtree, np.ndarray]:
        if "trees" not in self.extras:
            present = np.array([a is not None for a in self.town.areas])
            self.extras["trees"] = (
                shapely.STRtree(self.town.areas[present].tolist()),
                shapely.STRtree(self.town.lines),
                np.flatnonzero(present),
            )
        return self.extras["trees"]

    def csv_source(self) -> Path:
        """The file → file input, written once per point set (not timed)."""
        path = self.workdir / f"points_{self.town.n_segments}_{self.kind}_{len(self.x)}.csv"
        if not path.exists():
            lon, lat = transformer(METRIC_EPSG, 4326).transform(self.x, self.y)
            rng = np.random.default_rng(2)
            pd.DataFrame(
                {
                    "id": np.arange(1, len(lon) + 1),
                    "lon": np.round(lon, 7),
                    "lat": np.round(lat, 7),
                    "category": rng.choice(["0101", "0301", "0501", ""], size=len(lon), p=[0.6, 0.3, 0.05, 0.05]),
                    "date": pd.Timestamp("2026-01-01")
                    + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, len(lon)), unit="min"),
                    "description": "人行道堆放杂物, 影响通行",
                }
            ).to_csv(path, index=False, date_format="%Y-%m-%d %H:%M")
        return path


def case_limit(ctx: Context) -> int:
    """Bare shapely 2: points, STRtree query(intersects) over areas, query_nearest for the leftovers."""
    area_tree, line_tree, _ = ctx.trees()
    points = shapely.points(ctx.x, ctx.y)
    pi, _ = area_tree.query(points, predicate="intersects")
    inside = np.zeros(len(points), dtype=bool)
    inside[pi] = True
    left = np.flatnonzero(~inside)
    (lp, _), _ = line_tree.query_nearest(points[left], max_distance=TOLERANCE_M, return_distance=True)
    ctx.extras["limit: in an area"] = float(inside.mean())
    ctx.extras["limit: nearest"] = float(len(np.unique(lp)) / len(points))
    return len(points)


def case_limit_threads(ctx: Context) -> int:
    """The limit with the area query split over as many threads as gisgrid uses (for reference)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    area_tree, line_tree, _ = ctx.trees()
    threads = ctx.get_index().threads
    points = shapely.points(ctx.x, ctx.y)
    cuts = np.linspace(0, len(points), threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        parts = list(
            pool.map(
                lambda ab: area_tree.query(points[ab[0] : ab[1]], predicate="intersects"), zip(cuts[:-1], cuts[1:])
            )
        )
    inside = np.zeros(len(points), dtype=bool)
    for (pi, _), start in zip(parts, cuts[:-1]):
        inside[pi + start] = True
    left = np.flatnonzero(~inside)
    line_tree.query_nearest(points[left], max_distance=TOLERANCE_M, return_distance=True)
    return len(points)


def case_memory(ctx: Context) -> int:
    """gisgrid AssignmentIndex.assign on metric x/y."""
    result = ctx.get_index().assign(ctx.x, ctx.y)
    shares = result["rule"].value_counts(normalize=True)
    ctx.extras["gisgrid rules"] = ", ".join(f"{rule} {share:.1%}" for rule, share in shares.items() if share)
    return len(result)


def case_file(ctx: Context) -> int:
    """gisgrid assign_file: CSV (EPSG:4326 text) → CSV with the result columns."""
    index = ctx.get_index()
    src = ctx.csv_source()
    dst = ctx.workdir / "assigned.csv"
    summary = assign_file(index, src, dst, crs="EPSG:4326", progress=False)
    ctx.extras["file MB in/out"] = f"{src.stat().st_size / 1e6:.0f}/{dst.stat().st_size / 1e6:.0f}"
    dst.unlink()
    return summary.rows


def case_sjoin(ctx: Context) -> int:
    """geopandas.sjoin over the areas, then sjoin_nearest (30 m) over the centerlines for the leftovers."""
    town = ctx.town
    if "gdfs" not in ctx.extras:
        present = np.array([a is not None for a in town.areas])
        ctx.extras["gdfs"] = (
            gpd.GeoDataFrame({"segment_id": town.ids[present]}, geometry=town.areas[present].tolist(), crs=METRIC_EPSG),
            gpd.GeoDataFrame({"segment_id": town.ids}, geometry=town.lines, crs=METRIC_EPSG),
        )
    areas, lines = ctx.extras["gdfs"]
    points = gpd.GeoDataFrame({"n": np.arange(len(ctx.x))}, geometry=gpd.points_from_xy(ctx.x, ctx.y), crs=METRIC_EPSG)
    joined = gpd.sjoin(points, areas, how="left", predicate="intersects")
    leftovers = points.loc[joined.index[joined["segment_id"].isna()].unique()]
    nearest = gpd.sjoin_nearest(leftovers, lines, how="left", max_distance=TOLERANCE_M, distance_col="distance_m")
    return len(points) if len(nearest) >= 0 else 0


# --- PostGIS and web paths ---------------------------------------------------------------------
def _bench_url(name: str = "gisgrid_bench") -> str:
    """A throw-away database: GISGRID_BENCH_DATABASE_URL, else ``name`` on the managed cluster."""
    import os  # noqa: PLC0415

    explicit = os.environ.get("GISGRID_BENCH_DATABASE_URL")
    if explicit:
        return explicit.replace("postgresql://", "postgresql+psycopg://", 1)
    from gisgrid.config import load_settings  # noqa: PLC0415
    from gisgrid.db.cluster import Cluster  # noqa: PLC0415

    cluster = Cluster(load_settings())
    cluster.start()
    return cluster.url(name)


def fresh_database(url: str) -> sa.Engine:
    """Drop and create the database at ``url``, with PostGIS, migrated to head; its engine."""
    from gisgrid.db import migrate  # noqa: PLC0415

    u = sa.engine.make_url(url)
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    migrate(url)
    return engine


def _copy(raw, table: str, columns: list[str], frame: pd.DataFrame) -> None:
    data = frame.to_csv(index=False, header=False, na_rep="").encode()
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(data)


def _prepare_db(ctx: Context):
    """Load the synthetic town and the points as stored reports into a fresh database (untimed)."""
    import datetime as dt  # noqa: PLC0415

    from gisgrid.cases.workflow import deadline  # noqa: PLC0415

    key = ("db", ctx.town.n_segments, ctx.kind, len(ctx.x))
    if ctx.extras.get("db_key") == key:
        return ctx.extras["db_engine"]
    engine = fresh_database(_bench_url())
    town = ctx.town
    t0 = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        jur = town.jurisdictions
        parents = {"county": "", "town": "1", "community": ""}
        jrows = pd.DataFrame(
            {
                "id": jur["id"],
                "code": [f"J{i:06d}" for i in jur["id"]],
                "level": jur["level"],
                "name": [f"J{i}" for i in jur["id"]],
                "parent_id": [parents[lv] for lv in jur["level"]],
                "metric_epsg": METRIC_EPSG,
                "geom": "SRID=4326;"
                + shapely.to_wkt(shapely.multipolygons([[g] for g in jur.geometry]), rounding_precision=8),
            }
        )
        _copy(raw, "jurisdiction", list(jrows.columns), jrows)
        n_streets = max(1, len(town.ids) // 100)
        srows = pd.DataFrame(
            {
                "id": np.arange(1, n_streets + 1),
                "name": [f"街{i}" for i in range(1, n_streets + 1)],
                "jurisdiction_id": 2,
                "geom": "SRID=4326;MULTILINESTRING((114 22,114.001 22))",
            }
        )
        _copy(raw, "street", list(srows.columns), srows)
        segs = town.segments
        grows = pd.DataFrame(
            {
                "id": segs["id"],
                "street_id": (segs["id"] - 1) % n_streets + 1,
                "name": [f"段{i}" for i in segs["id"]],
                "road_class": segs["road_class"],
                "geom": "SRID=4326;" + shapely.to_wkt(segs.geometry.values, rounding_precision=8),
                "area": [
                    "" if a is None else "SRID=4326;" + shapely.to_wkt(shapely.multipolygons([a]), rounding_precision=8)
                    for a in segs["area"].values
                ],
            }
        )
        _copy(raw, "segment", list(grows.columns), grows)
        crows = pd.DataFrame(
            {
                "id": town.cells["id"],
                "code": [f"C{i}" for i in town.cells["id"]],
                "geom": "SRID=4326;"
                + shapely.to_wkt(shapely.multipolygons([[g] for g in town.cells.geometry]), rounding_precision=8),
            }
        )
        _copy(raw, "grid_cell", list(crows.columns), crows)
        conn.execute(
            sa.text(
                "INSERT INTO department (id, code, name) VALUES (7,'d7','公路管理局'),"
                "(8,'d8','交警大队'),(9,'d9','城管执法局')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO category (code, name, kind, deadline_hours, department_id, routing) "
                "VALUES (:code, :name, 'event', 4, :dept, CAST(:routing AS jsonb))"
            ),
            [
                {"code": "0101", "name": "暴露垃圾", "dept": None, "routing": '{"mode": "location"}'},
                {
                    "code": "0301",
                    "name": "占道经营",
                    "dept": None,
                    "routing": '{"mode": "by_road_class", "road_classes": {"primary": 7, "trunk": 8}}',
                },
                {"code": "0501", "name": "乱搭乱建", "dept": 9, "routing": '{"mode": "department"}'},
            ],
        )
        people = pd.DataFrame({"id": segs["id"], "name": [f"段长{i}" for i in segs["id"]]})
        _copy(raw, "person", list(people.columns), people)
        owners = pd.DataFrame(
            {
                "person_id": segs["id"],
                "target_type": "segment",
                "target_id": segs["id"],
                "role": "段长",
                "valid_from": "2020-01-01",
            }
        )
        _copy(raw, "owner_assignment", list(owners.columns), owners)
        lon, lat = transformer(METRIC_EPSG, 4326).transform(ctx.x, ctx.y)
        rng = np.random.default_rng(3)
        cat_id = rng.choice(np.array(["1", "2", "3", ""], dtype=object), size=len(lon), p=[0.6, 0.3, 0.05, 0.05])
        # every category here has 4 calendar hours: one deadline, from the one rule
        due = deadline(dt.datetime(2026, 6, 1, 10, 0), 4, working_time=False, tz="Asia/Shanghai")
        reports = pd.DataFrame(
            {
                "geom": [f"SRID=4326;POINT({a:.7f} {b:.7f})" for a, b in zip(lon, lat)],
                "category_id": cat_id,
                "reported_at": "2026-06-01 10:00+08",
                "due_at": np.where(cat_id == "", "", due.isoformat()),
            }
        )
        _copy(raw, "report", list(reports.columns), reports)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    ctx.extras["db load s (untimed)"] = round(time.perf_counter() - t0, 1)
    ctx.extras["db_key"] = key
    ctx.extras["db_engine"] = engine
    return engine


def case_postgis_stored(ctx: Context) -> int:
    """Stored reports (re)assigned end to end: load rules/index/owners, COPY out, route in process, COPY back,
    history rows inserted and report rows updated, committed."""
    from gisgrid.config import load_settings  # noqa: PLC0415
    from gisgrid.routing.store import assign_stored_reports, load_deployment  # noqa: PLC0415

    engine = ctx.extras["db_engine"]
    with engine.begin() as conn:
        out = assign_stored_reports(conn, load_deployment(conn, load_settings()))
    ctx.extras["stored: read/assign/write s"] = f"{out['read_s']:.2f}/{out['assign_s']:.2f}/{out['write_s']:.2f}"
    return out["reports"]


def case_postgis_setbased(ctx: Context) -> int:
    """For comparison: one set-based INSERT … SELECT (area, else nearest centerline within 30 m) in PostGIS."""
    engine = ctx.extras["db_engine"]
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE r_assign (report_id int, segment_id int) ON COMMIT DROP"))
        n = conn.execute(
            sa.text(f"""
            INSERT INTO r_assign
            SELECT r.id, COALESCE(
                (SELECT g.id FROM segment g WHERE g.area && r.geom AND ST_Intersects(g.area, r.geom)
                 ORDER BY g.id LIMIT 1),
                (SELECT g.id FROM segment g
                 WHERE ST_DWithin(ST_Transform(g.geom, {METRIC_EPSG}), ST_Transform(r.geom, {METRIC_EPSG}), 30)
                   AND g.geom && ST_Expand(r.geom, 0.0005)
                 ORDER BY g.geom <-> r.geom, g.id LIMIT 1))
            FROM report r""")
        ).rowcount
    return n


def case_postgis_per_point(ctx: Context) -> int:
    """One prepared PostGIS query per point over a warm connection (20,000 points; p50 printed)."""
    engine = ctx.extras["db_engine"]
    lon, lat = transformer(METRIC_EPSG, 4326).transform(ctx.x[:20_000], ctx.y[:20_000])
    sql = (
        "SELECT g.id FROM segment g WHERE g.area && ST_SetSRID(ST_MakePoint(%s, %s), 4326) "
        "AND ST_Intersects(g.area, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY g.id LIMIT 1"
    )
    times = np.empty(len(lon))
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            for k, (a, b) in enumerate(zip(lon.tolist(), lat.tolist())):
                t = time.perf_counter()
                cur.execute(sql, (a, b, a, b), prepare=True)
                cur.fetchone()
                times[k] = time.perf_counter() - t
    ctx.extras["per point p50/p99 ms"] = f"{np.percentile(times, 50) * 1000:.3f}/{np.percentile(times, 99) * 1000:.3f}"
    return len(lon)


def case_api_latency(ctx: Context) -> int:
    """POST /api/assign: 1,000 sequential requests to a warm server in its own process (p50/p99 printed)."""
    import http.client  # noqa: PLC0415
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    engine = ctx.extras["db_engine"]
    url = engine.url.render_as_string(hide_password=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = str(Path(sys.executable).parent / "gisgrid")
    server = subprocess.Popen(
        [exe, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "GISGRID_DATABASE_URL": url},
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        lon, lat = transformer(METRIC_EPSG, 4326).transform(ctx.x[:1000], ctx.y[:1000])
        for _ in range(300):  # wait for the server
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # one keep-alive connection

        def post(a: float, b: float) -> dict:
            conn.request(
                "POST",
                "/api/assign",
                body=json.dumps({"lon": a, "lat": b, "crs": "EPSG:4326", "category": "0101", "date": "2026-06-01"}),
                headers={"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            body = json.loads(resp.read())
            if resp.status != 200:
                raise RuntimeError(f"POST /api/assign answered {resp.status}: {body}")
            return body

        for a, b in zip(lon[:50].tolist(), lat[:50].tolist()):  # warm: index loaded, code paths hot
            post(a, b)
        times = np.empty(len(lon))
        for k, (a, b) in enumerate(zip(lon.tolist(), lat.tolist())):
            t = time.perf_counter()
            post(a, b)
            times[k] = time.perf_counter() - t
    finally:
        server.terminate()
        server.wait(timeout=10)
    ctx.extras["api p50/p99/max ms"] = (
        f"{np.percentile(times, 50) * 1000:.2f}/{np.percentile(times, 99) * 1000:.2f}/{times.max() * 1000:.2f}"
    )
    return len(times)


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    run: Callable[[Context], int]
    prepare: Callable[[Context], object] | None = None  # untimed set-up (e.g. writing the input file)


#: The measured cases, in order; ``limit`` runs first and is the reference of the ratios.
CASES: list[Case] = [
    Case("limit", "(0) limit: shapely STRtree query + query_nearest", case_limit),
    Case("limit_threads", "(0b) limit, area query split over gisgrid's threads", case_limit_threads),
    Case("memory", "(1) gisgrid AssignmentIndex.assign, in memory", case_memory, prepare=Context.get_index),
    Case(
        "file",
        "(2) gisgrid assign_file CSV → CSV (read, CRS, write)",
        case_file,
        prepare=lambda ctx: (ctx.get_index(), ctx.csv_source()),
    ),
    Case("sjoin", "(3) geopandas sjoin + sjoin_nearest", case_sjoin),
    Case(
        "postgis_stored",
        "(4) stored reports re-assigned end to end (COPY↔engine)",
        case_postgis_stored,
        prepare=_prepare_db,
    ),
    Case("postgis_setbased", "(4b) set-based INSERT … SELECT in PostGIS", case_postgis_setbased, prepare=_prepare_db),
    Case("postgis_per_point", "(5) one prepared PostGIS query per point", case_postgis_per_point, prepare=_prepare_db),
    Case("api_latency", "(6) POST /api/assign, 1,000 sequential requests", case_api_latency, prepare=_prepare_db),
]


def run(points: int, segments: list[int], kinds: list[str], keys: list[str], workdir: Path, *, repeat: int = 1) -> None:
    import os  # noqa: PLC0415

    try:
        import pyarrow  # noqa: PLC0415

        arrow = f"pyarrow {pyarrow.__version__}"
    except ImportError:
        arrow = "no pyarrow"
    print(
        f"gisgrid assignment benchmark: {points:,} points, best of {repeat}; {os.cpu_count()} CPUs; "
        f"shapely {shapely.__version__}, GEOS {shapely.geos_version_string}, geopandas {gpd.__version__}, "
        f"pandas {pd.__version__}, {arrow}"
    )
    selected = [case for case in CASES if case.key in keys]
    for n_segments in segments:
        t0 = time.perf_counter()
        town = make_town(n_segments)
        print(
            f"\ntown: {town.n_segments:,} segments ({int(sum(a is not None for a in town.areas)):,} with areas), "
            f"{len(town.cells):,} cells, {len(town.jurisdictions)} jurisdictions, "
            f"{(town.bounds[2] - town.bounds[0]) / 1000:.1f} km square (made in {time.perf_counter() - t0:.1f} s)"
        )
        index = None
        for kind in kinds:
            x, y = make_points(town, points, kind=kind)
            ctx = Context(town=town, x=x, y=y, kind=kind, workdir=workdir, index=index)
            print(f"\n  {kind} points")
            print(f"  {'case':<56}{'seconds':>9}{'points/s':>12}{'× limit':>9}")
            limit_s = None
            for case in selected:
                try:
                    if case.prepare is not None:
                        case.prepare(ctx)
                    seconds = np.inf
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        n = case.run(ctx)
                        seconds = min(seconds, time.perf_counter() - t0)
                except Skip as why:
                    print(f"  {case.label:<56}  skipped: {why}")
                    continue
                if case.key == "limit":
                    limit_s = seconds
                ratio = f"{seconds / limit_s:.2f}" if limit_s else "—"
                print(f"  {case.label:<56}{seconds:>9.2f}{n / seconds:>12,.0f}{ratio:>9}")
            index = ctx.index
            for key, value in ctx.extras.items():
                if key in {"trees", "gdfs"}:
                    continue
                shown = f"{value:.2f}" if isinstance(value, float) else value
                print(f"    {key}: {shown}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--kinds", nargs="+", default=["uniform", "clustered"], choices=["uniform", "clustered"])
    parser.add_argument("--cases", nargs="+", default=[c.key for c in CASES], choices=[c.key for c in CASES])
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the best is printed")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if "limit" not in args.cases:
        args.cases.insert(0, "limit")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gisgrid-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(args.points, args.segments, args.kinds, args.cases, workdir, repeat=max(1, args.repeat))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
