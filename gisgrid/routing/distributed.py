"""Re-assigning the archive on a dask.distributed cluster, through dask-geopandas.

When one machine is not enough (tens of millions of stored reports, a province gathering its counties'
archives), ``gisgrid assign --rerun --workers N`` (a local cluster of N processes) or ``--scheduler
tcp://HOST:PORT`` (a cluster that exists already) runs :func:`assign_stored_distributed`:

1. the reports to assign are cut into partitions by id range (about ``partition_rows`` each, the
   boundaries read in one index scan);
2. the routing snapshot (:class:`~gisgrid.routing.store.Deployment`, a few MB) is broadcast once to every
   worker (``Client.scatter(..., broadcast=True)``);
3. each partition is read on a worker with one COPY into a GeoDataFrame (a dask-geopandas
   GeoDataFrame of the partitions), routed there by the same function as the single-process path
   (:func:`gisgrid.routing.store.write_history`), and its history rows written back with one COPY, in a
   transaction of its own.

A worker holds the snapshot and one partition at a time: its memory is bounded by ``partition_rows``, not
by the archive.  The history is append-only and the latest row of a report is its assignment, so a run
that stops half way is simply run again.  Workers must reach the database at the URL given (set
``GISGRID_DATABASE_URL`` to an address the workers can reach, not 127.0.0.1, for a remote cluster) and
have the same gisgrid installed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import resource
import time
from collections import Counter

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gisgrid.errors import InputError
from gisgrid.routing.store import Deployment, read_stored, stored_selection, write_history

LOGGER = logging.getLogger(__name__)

DEFAULT_PARTITION_ROWS = 250_000


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as psycopg takes it (password included: it travels to the workers in the graph)."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def psycopg_query(query: str) -> str:
    """A query written with SQLAlchemy's ``:name`` parameters, with psycopg's ``%(name)s`` instead (and
    ``%`` doubled), for the COPY a worker runs: the stores' filters are written once, for SQLAlchemy."""
    from sqlalchemy.dialects.postgresql import psycopg as dialect

    return str(sa.text(query).compile(dialect=dialect.dialect()))


def id_ranges(conn: sa.Connection, where: str, params: dict, partition_rows: int) -> list[tuple[int, int]]:
    """Half-open id ranges ``[lo, hi)`` holding about ``partition_rows`` of the matching reports each."""
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute(
            f"""SELECT id FROM (SELECT r.id, row_number() OVER (ORDER BY r.id) AS n FROM report r WHERE {where}) s
                WHERE (n - 1) %% %(rows)s = 0 ORDER BY id""",
            {**params, "rows": int(partition_rows)},
        )
        starts = [row[0] for row in cur.fetchall()]
        if not starts:
            return []
        cur.execute(f"SELECT max(r.id) FROM report r WHERE {where}", params or None)
        last = cur.fetchone()[0]
    ends = [*starts[1:], last + 1]
    return list(zip(starts, ends))


def _empty_partition() -> gpd.GeoDataFrame:
    frame = pd.DataFrame(
        {
            "report_id": pd.Series(dtype="int64"),
            "category": pd.Series(dtype="str"),
            "reported_at": pd.Series(dtype="float64"),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def read_partition(url: str, where: str, params: dict, lo: int, hi: int) -> gpd.GeoDataFrame:
    """The reports of one id range, read with one COPY, as points in EPSG:4326 (runs on a worker)."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        frame = read_stored(conn, f"{where} AND r.id >= {int(lo)} AND r.id < {int(hi)}", params)
    if frame.empty:
        return _empty_partition()
    return gpd.GeoDataFrame(
        {
            "report_id": frame["report_id"].to_numpy(),
            "category": frame["category"].astype("str"),
            "reported_at": frame["reported_at"].to_numpy(),
        },
        geometry=gpd.points_from_xy(frame["lon"], frame["lat"], crs="EPSG:4326"),
    )


def route_partition(part: gpd.GeoDataFrame, deployment: Deployment, url: str) -> pd.DataFrame:
    """Route one partition and write its history rows with one COPY (runs on a worker).

    Returns one row per rule: ``rule``, ``reports``, and the worker's peak memory so far (``peak_rss``).
    """
    import psycopg

    by_rule: Counter = Counter()
    if len(part):
        frame = pd.DataFrame(
            {
                "report_id": part["report_id"].to_numpy(),
                "lon": part.geometry.x.to_numpy(),
                "lat": part.geometry.y.to_numpy(),
                "category": part["category"].astype("category"),
                "reported_at": part["reported_at"].to_numpy(),
            }
        )
        with psycopg.connect(libpq_url(url)) as conn:  # commits on leaving: one transaction per partition
            by_rule, _ = write_history(conn, deployment, frame)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pd.DataFrame(
        {
            "rule": pd.Series(list(by_rule), dtype="object"),
            "reports": pd.Series(list(by_rule.values()), dtype="int64"),
            "peak_rss": pd.Series([peak] * len(by_rule), dtype="int64"),
        }
    )


def make_client(*, scheduler: str | None = None, workers: int | None = None):
    """A dask.distributed client: of the cluster at ``scheduler``, or of a local cluster of ``workers``
    processes (one thread each).  InputError when no scheduler answers at ``scheduler``."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler)
        except (OSError, ValueError) as exc:  # refused, timed out, or not an address
            raise InputError(f"no dask scheduler reachable at {scheduler!r}: {exc}") from exc
    cluster = LocalCluster(
        n_workers=max(1, int(workers or 2)), threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster)


def close_client(client) -> None:
    """Close a client made by :func:`make_client`, and its local cluster if it made one."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


@contextlib.contextmanager
def using_client(client=None, *, scheduler: str | None = None, workers: int | None = None):
    """``client`` as given (left open), else one made by :func:`make_client` and closed after."""
    if client is not None:
        yield client
        return
    made = make_client(scheduler=scheduler, workers=workers)
    try:
        yield made
    finally:
        close_client(made)


def assign_stored_distributed(
    url: str,
    deployment: Deployment,
    *,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    since: dt.date | None = None,
    only_unassigned: bool = False,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
) -> dict:
    """(Re)assign stored reports on a dask.distributed cluster; what :func:`assign_stored_reports` does.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database, reachable from the workers.
    deployment : Deployment
        The routing snapshot, broadcast once to every worker.
    client : distributed.Client, optional
        A client to use (left open); else one is made from ``scheduler`` or ``workers`` and closed after.
    partition_rows : int
        Reports per partition: a worker's memory is the snapshot plus one partition.

    Returns
    -------
    dict
        ``reports``, ``by_rule``, ``partitions``, ``workers``, ``seconds``, ``peak_rss_per_worker``
        (bytes, by worker address).
    """
    import dask
    import dask.dataframe as dd
    import dask_geopandas

    if partition_rows < 1:
        raise ValueError(f"partition_rows must be at least 1, not {partition_rows!r}")
    t0 = time.perf_counter()
    where, params = stored_selection(deployment, since=since, only_unassigned=only_unassigned)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ranges = id_ranges(conn, where, params, partition_rows)
    finally:
        engine.dispose()
    if not ranges:
        return {"reports": 0, "by_rule": {}, "partitions": 0, "seconds": time.perf_counter() - t0}
    with using_client(client, scheduler=scheduler, workers=workers) as client:
        snapshot = client.scatter(deployment, broadcast=True, hash=False)  # once per worker
        parts = [dask.delayed(read_partition)(url, where, params, lo, hi) for lo, hi in ranges]
        reports = dask_geopandas.from_dask_dataframe(dd.from_delayed(parts, meta=_empty_partition()))
        meta = pd.DataFrame(
            {
                "rule": pd.Series(dtype="object"),
                "reports": pd.Series(dtype="int64"),
                "peak_rss": pd.Series(dtype="int64"),
            }
        )
        counts = reports.map_partitions(route_partition, snapshot, url, meta=meta).compute()
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        n_workers = len(client.scheduler_info()["workers"])
    by_rule = counts.groupby("rule")["reports"].sum().to_dict() if len(counts) else {}
    return {
        "reports": int(sum(by_rule.values())),
        "by_rule": {k: int(v) for k, v in by_rule.items()},
        "ruleset_version": deployment.ruleset.version,
        "partitions": len(ranges),
        "workers": n_workers,
        "seconds": time.perf_counter() - t0,
        "peak_rss_per_worker": peaks,
    }


__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "assign_stored_distributed",
    "close_client",
    "id_ranges",
    "libpq_url",
    "make_client",
    "psycopg_query",
]
