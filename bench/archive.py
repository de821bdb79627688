"""Re-assign a large archive of stored reports: one process against a dask.distributed cluster.

Run on demand (not a test)::

    .venv/bin/python bench/archive.py                              # 10,000,000 reports, local cluster of 2
    .venv/bin/python bench/archive.py --reports 1000000 --workers 4 --partition-rows 250000
    .venv/bin/python bench/archive.py --scheduler tcp://10.0.0.5:8786   # a cluster that exists already

A throw-away database ``gisgrid_bench_archive`` (or GISGRID_BENCH_DATABASE_URL) gets one sample town with
its grid and owners and ``--reports`` reports spread over it and a margin around it (one ``INSERT …
SELECT``).  Then the archive is re-assigned twice:

``single``
    ``assign_stored_reports`` (what ``gisgrid assign --rerun`` does) in a child process of its own, whose
    peak resident memory is read after;
``cluster``
    ``assign_stored_distributed`` (``gisgrid assign --rerun --workers N``): partitions by id range read with
    COPY, the routing snapshot broadcast once per worker, history written back with COPY; the peak
    resident memory of every worker.

Printed: reports per second of each, their ratio, and peak memory of the single process and of each
worker — a worker's stays bounded by ``--partition-rows``, the single process's grows with the archive.

``--hotspots`` times instead the town's Gi* hotspots over the archive (``gisgrid hotspots``): counted in
PostgreSQL by one process, and on the cluster (partitions read with COPY and binned on the workers); both
give the same hexagons, checked.  ``--rankings`` times a quarter's ranking of owners (``gisgrid rankings``)
over the million-case database of ``bench/cases.py`` (``--cases``), in one process and on the cluster,
checked equal.  Each prints wall seconds, this process's CPU seconds, and the ratio; on a loaded machine
read the CPU figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.assign import _bench_url, fresh_database  # noqa: E402

MiB = 2**20


def fill(url: str, reports: int, batch: int = 1_000_000) -> None:
    """The sample town (Sha Tin, with its grid) and ``reports`` reports over it, in batches."""
    from gisgrid.config import load_settings
    from gisgrid.demo import TOWNS, load_demo

    engine = fresh_database(url)
    t = time.perf_counter()
    with engine.begin() as conn:
        load_demo(conn, load_settings(), towns=[x for x in TOWNS if x.key == "shatin"], reports_per_town=0, grid=True)
    for start in range(0, reports, batch):
        n = min(batch, reports - start)
        with engine.begin() as conn:
            conn.execute(
                sa.text("""
                WITH box AS (SELECT ST_Expand(ST_Extent(geom), 0.002) AS b FROM jurisdiction),
                     cats AS (SELECT array_agg(id ORDER BY id) AS ids FROM category)
                INSERT INTO report (geom, category_id, reported_at, source, status)
                SELECT ST_SetSRID(ST_MakePoint(ST_XMin(b) + random() * (ST_XMax(b) - ST_XMin(b)),
                                               ST_YMin(b) + random() * (ST_YMax(b) - ST_YMin(b))), 4326),
                       ids[1 + (i % array_length(ids, 1))], now() - (i % 400) * interval '1 day', 'bench', 'closed'
                FROM generate_series(1, :n) i, box, cats"""),
                {"n": n},
            )
        print(f"  {start + n:,} reports stored", flush=True)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE report"))
    engine.dispose()
    print(f"archive of {reports:,} reports made in {time.perf_counter() - t:.0f} s")


def _single(url: str) -> dict:
    """In a child process: load the snapshot, re-assign everything, report the peak memory."""
    from gisgrid.config import load_settings
    from gisgrid.routing.store import assign_stored_reports, load_deployment

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        deployment = load_deployment(conn, load_settings())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with engine.begin() as conn:
        out = assign_stored_reports(conn, deployment)
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["rss_before"] = before
    return out


def _timed(fn):
    """``fn()``'s result, wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _compare(label: str, single: tuple, cluster: tuple, run: dict) -> None:
    print(f"{label}, one process: {single[1]:.2f} s wall, {single[2]:.2f} s CPU of this process")
    print(
        f"{label}, cluster: {cluster[1]:.2f} s wall, {cluster[2]:.2f} s CPU of this process "
        f"({run['workers']} workers, {run['partitions']} partitions)"
    )
    print(f"wall time cluster / one process: {cluster[1] / single[1]:.2f}x")


def bench_hotspots(url: str, client, partition_rows: int) -> None:
    """The town's hotspots over the archive, in PostgreSQL and on the cluster; the same hexagons, checked."""
    import numpy as np

    from gisgrid.analytics.distributed import hotspots_distributed
    from gisgrid.analytics.store import ReportFilters, hotspots

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        code = conn.execute(sa.text("SELECT code FROM jurisdiction WHERE level = 'town' LIMIT 1")).scalar_one()
    filters = ReportFilters(jurisdiction=code)

    def one():
        with engine.connect() as conn:
            return hotspots(conn, filters)

    single = _timed(one)
    cluster = _timed(lambda: hotspots_distributed(url, filters, client=client, partition_rows=partition_rows))
    (spread, run), a = cluster[0], single[0]
    same = list(a["hex_id"]) == list(spread["hex_id"]) and list(a["hotspot"]) == list(spread["hotspot"])
    same = same and np.array_equal(a["gi_z"].to_numpy(float), spread["gi_z"].to_numpy(float))
    print(f"hotspots of {code}: {len(a)} hexagons, {int(a['count'].sum()):,} reports; same on the cluster: {same}")
    _compare("hotspots", single, (spread, cluster[1], cluster[2]), run)
    engine.dispose()


def bench_rankings(cases: int, keep: bool, client, partition_rows: int) -> None:
    """A quarter's ranking of owners over the million-case database, in one process and on the cluster."""
    import datetime as dt

    from bench.cases import case_database
    from gisgrid.config import load_settings
    from gisgrid.supervision import indicators as ind
    from gisgrid.supervision.distributed import ranking_distributed
    from gisgrid.supervision.ranking_store import compute_ranking

    settings = load_settings()
    engine = case_database(settings, cases, keep=keep)
    url = engine.url.render_as_string(hide_password=False)
    quarter = ind.last_full_quarter(dt.date.today(), settings.timezone)

    def one():
        with engine.connect() as conn:
            return compute_ranking(conn, settings, quarter, "owner")

    single = _timed(one)
    cluster = _timed(
        lambda: ranking_distributed(url, settings, quarter, "owner", client=client, partition_rows=partition_rows)
    )
    (spread, run), a = cluster[0], single[0]
    cols = [c for c in a.rows.columns if c != "mean_handling_hours"]
    same = a.rows[cols].equals(spread.rows[cols])
    print(f"ranking of {quarter.label}: {len(a.rows)} owners, {run['cases']:,} cases; same on the cluster: {same}")
    _compare("rankings", single, (spread, cluster[1], cluster[2]), run)
    engine.dispose()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reports", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2, help="local cluster processes (without --scheduler)")
    parser.add_argument("--scheduler", default=None, help="tcp://HOST:PORT of an existing cluster")
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database if it holds the reports")
    parser.add_argument("--skip-single", action="store_true", help="only the cluster path")
    parser.add_argument("--hotspots", action="store_true", help="time the town's hotspots instead")
    parser.add_argument("--rankings", action="store_true", help="time a quarter's ranking of owners instead")
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases of the --rankings database")
    args = parser.parse_args(argv)

    from gisgrid.config import load_settings
    from gisgrid.routing.distributed import assign_stored_distributed, close_client, make_client
    from gisgrid.routing.store import load_deployment

    if args.rankings:
        client = make_client(scheduler=args.scheduler, workers=args.workers)
        try:
            bench_rankings(args.cases, args.keep, client, args.partition_rows)
        finally:
            close_client(client)
        return 0

    url = _bench_url("gisgrid_bench_archive")
    have = 0
    if args.keep:
        try:
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                have = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
            engine.dispose()
        except sa.exc.SQLAlchemyError:
            have = 0
    if have != args.reports:
        fill(url, args.reports)
    if args.hotspots:
        client = make_client(scheduler=args.scheduler, workers=args.workers)
        try:
            bench_hotspots(url, client, args.partition_rows)
        finally:
            close_client(client)
        return 0

    single = None
    if not args.skip_single:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            single = pool.submit(_single, url).result()
        print(
            f"single process: {single['reports']:,} reports in {single['seconds']:.1f} s "
            f"({single['reports'] / single['seconds']:,.0f}/s; read {single['read_s']:.1f} s, route "
            f"{single['assign_s']:.1f} s, write {single['write_s']:.1f} s); peak memory "
            f"{single['peak_rss'] / MiB:,.0f} MiB (snapshot loaded: {single['rss_before'] / MiB:,.0f} MiB)"
        )
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        deployment = load_deployment(conn, load_settings())
    engine.dispose()
    client = make_client(scheduler=args.scheduler, workers=args.workers)
    try:
        out = assign_stored_distributed(url, deployment, client=client, partition_rows=args.partition_rows)
    finally:
        close_client(client)
    rate = out["reports"] / out["seconds"]
    print(
        f"cluster: {out['reports']:,} reports in {out['seconds']:.1f} s ({rate:,.0f}/s) on {out['workers']} "
        f"workers, {out['partitions']} partitions of up to {args.partition_rows:,}"
    )
    for worker, peak in sorted(out["peak_rss_per_worker"].items()):
        print(f"  worker {worker}: peak memory {peak / MiB:,.0f} MiB")
    if single:
        print(f"throughput cluster / single process: {rate / (single['reports'] / single['seconds']):.2f}x")
        worst = max(out["peak_rss_per_worker"].values())
        print(f"peak memory, worst worker / single process: {worst / single['peak_rss']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
