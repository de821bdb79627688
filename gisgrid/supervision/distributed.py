"""Rankings over the archive on a dask.distributed cluster.

``gisgrid rankings PERIOD --workers N`` (a local cluster of N processes) or ``--scheduler tcp://HOST:PORT``
(a cluster that exists already) runs :func:`ranking_distributed`, which gives what
:func:`gisgrid.supervision.ranking_store.compute_ranking` gives:

1. the cases filed in the period (:func:`gisgrid.supervision.ranking_store.filed_selection`) are cut into
   partitions by id range (:func:`gisgrid.routing.distributed.id_ranges`);
2. the jurisdiction tree and the working-time calendar (a few kB) are broadcast once to every worker;
3. each partition's per-case facts are read on a worker with one COPY
   (:func:`gisgrid.supervision.ranking_store.cases_sql`, made facts by
   :func:`~gisgrid.supervision.ranking_store.facts_of_rows`) and counted per unit there by
   :func:`gisgrid.supervision.indicators.unit_counts` — the counts are additive;
4. the partial counts are summed per unit, and the indicators, composite score, grades and order are
   computed once on the sums, by :func:`~gisgrid.supervision.ranking_store.compute_ranking` itself.

Only the counting moves to the workers; every formula stays where it is.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gisgrid.cases import workflow as wf
from gisgrid.cases.calendar import working_time
from gisgrid.config import Settings
from gisgrid.routing.distributed import (
    DEFAULT_PARTITION_ROWS,
    id_ranges,
    libpq_url,
    psycopg_query,
    using_client,
)
from gisgrid.supervision import indicators as ind
from gisgrid.supervision import ranking_store as store
from gisgrid.supervision.ranking import Rules

LOGGER = logging.getLogger(__name__)

_FACT_COLUMNS = ("k1", "k2", "id", "status", "rework_count", "reported_at", "closed_at", "due_at", "closed",
                 "recurrence")  # fmt: skip
_COUNT_TYPES = {c: (np.float64 if c == "hours_sum" else np.int64) for c in ind.COUNT_COLUMNS}


def _empty_counts() -> pd.DataFrame:
    return pd.DataFrame({"unit": pd.Series(dtype=object), **{c: pd.Series(dtype=t) for c, t in _COUNT_TYPES.items()}})


def read_case_rows(url: str, kind: str, where: str, params: dict, lo: int, hi: int) -> pd.DataFrame:
    """The rows of :func:`gisgrid.supervision.ranking_store.cases_sql` of one id range, read with one COPY
    (``where``, ``params``: the rest of the condition, SQLAlchemy's).  Times come back aware, in UTC.  Runs
    on a worker."""
    import psycopg

    query = psycopg_query(store.cases_sql(kind, f"{where} AND r.id >= {int(lo)} AND r.id < {int(hi)}"))
    utc = ", ".join(f"{c} AT TIME ZONE 'UTC'" for c in ("reported_at", "closed_at", "due_at"))
    copy_sql = (
        f"COPY (SELECT k1, k2, id, status, rework_count, {utc}, closed, recurrence FROM ({query}) x) "
        "TO STDOUT (FORMAT csv)"
    )
    buf = io.BytesIO()
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        with cur.copy(copy_sql, params) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    frame = pd.read_csv(
        buf,
        names=list(_FACT_COLUMNS),
        header=None,
        dtype={"k1": "float64", "k2": "float64", "id": "int64", "status": "object", "rework_count": "int64",
               "closed": "object", "recurrence": "object"},
        keep_default_na=False,
        na_values={"k1": [""], "k2": [""], "reported_at": [""], "closed_at": [""], "due_at": [""]},
    )  # fmt: skip
    for col in ("reported_at", "closed_at", "due_at"):
        frame[col] = pd.to_datetime(frame[col], format="ISO8601").dt.tz_localize("UTC")
    for col in ("closed", "recurrence"):
        frame[col] = frame[col].to_numpy() == "t"
    return frame


def count_partition(
    url: str,
    kind: str,
    where: str,
    params: dict,
    lo: int,
    hi: int,
    tree: pd.DataFrame,
    calendar: wf.WorkingTime,
    period: ind.Period,
) -> pd.DataFrame:
    """The :data:`~gisgrid.supervision.indicators.COUNT_COLUMNS` per unit (column ``unit``) of one
    partition's cases (runs on a worker)."""
    rows = read_case_rows(url, kind, where, params, lo, hi)
    if rows.empty:
        return _empty_counts()
    facts = store.facts_of_rows(rows, kind, tree=tree, calendar=calendar, period=period)
    counts = ind.unit_counts(facts, kind, period).reset_index().rename(columns={"unit_id": "unit"})
    counts["unit"] = counts["unit"].astype(object)
    return counts.astype(_COUNT_TYPES)


def unit_counts_distributed(
    url: str,
    settings: Settings,
    period: ind.Period,
    kind: str,
    *,
    client,
    jurisdiction: dict | None = None,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
) -> tuple[pd.DataFrame, dict]:
    """Every unit's counts for ``period``, counted on the cluster of ``client``: what
    :func:`gisgrid.supervision.ranking_store.unit_counts` gives, and what the run did (``cases``,
    ``partitions``, ``workers``)."""
    import dask

    if partition_rows < 1:
        raise ValueError(f"partition_rows must be at least 1, not {partition_rows!r}")
    store.check_unit_kind(kind)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tree = store.jurisdiction_tree(conn)
            calendar = working_time(conn, settings)
            jids = store.subtree(tree, jurisdiction["id"]) if jurisdiction else None
            filed, where, params = store.filed_selection(period, jids)
            ranges = id_ranges(conn, psycopg_query(filed), params, partition_rows)
    finally:
        engine.dispose()
    partials = []
    if ranges:
        shared = client.scatter([tree, calendar], broadcast=True, hash=False)  # once per worker
        tasks = [
            dask.delayed(count_partition)(url, kind, where, params, lo, hi, shared[0], shared[1], period)
            for lo, hi in ranges
        ]
        partials = [p for p in client.compute(tasks, sync=True) if len(p)]
    frame = pd.concat(partials, ignore_index=True) if partials else _empty_counts()
    counts = frame.groupby("unit", sort=True)[list(ind.COUNT_COLUMNS)].sum().astype(_COUNT_TYPES)
    counts.index.name = "unit_id"
    if kind != "owner":
        counts.index = counts.index.astype(np.int64)
    run = {
        "cases": int(counts["filed"].sum()),
        "partitions": len(ranges),
        "workers": len(client.scheduler_info()["workers"]),
    }
    return counts, run


def ranking_distributed(
    url: str,
    settings: Settings,
    period: ind.Period,
    kind: str,
    *,
    jurisdiction: dict | None = None,
    rules: Rules | None = None,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
) -> tuple[store.Ranking, dict]:
    """Rank the units of ``kind`` for ``period`` with the cases counted on a dask.distributed cluster: what
    :func:`gisgrid.supervision.ranking_store.compute_ranking` gives, figure for figure.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database, reachable from the workers.
    jurisdiction : dict, optional
        ``{"id": …}`` of the jurisdiction whose subtree is ranked
        (:func:`gisgrid.supervision.ranking_store.find_jurisdiction`); all when None.
    client : distributed.Client, optional
        A client to use (left open); else one is made from ``scheduler`` or ``workers`` and closed after.
    partition_rows : int
        Cases per partition.

    Returns
    -------
    (Ranking, dict)
        The ranking, and ``cases``, ``partitions``, ``workers``, ``seconds``.
    """
    t0 = time.perf_counter()
    with using_client(client, scheduler=scheduler, workers=workers) as client:
        counts, run = unit_counts_distributed(
            url, settings, period, kind, client=client, jurisdiction=jurisdiction, partition_rows=partition_rows
        )
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ranking = store.compute_ranking(
                conn, settings, period, kind, jurisdiction=jurisdiction, rules=rules, counts=counts
            )
    finally:
        engine.dispose()
    run["seconds"] = time.perf_counter() - t0
    return ranking, run


__all__ = ["ranking_distributed", "unit_counts_distributed"]
