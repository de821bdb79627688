"""The hand-built county ranked with its cases counted on a dask.distributed cluster, two or three cases a
partition: the same figures as one process gives (holidays, suspended cases, a recurrence, a department)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.mark.parametrize("kind", ["owner", "street", "community", "town"])
def test_the_county_ranked_on_a_cluster_matches_one_process(rank_db, settings, quarter, client, kind):
    from gisgrid.supervision import ranking_store as store
    from gisgrid.supervision.distributed import ranking_distributed

    url, engine = rank_db
    with engine.connect() as conn:
        single = store.compute_ranking(conn, settings, quarter, kind)
    spread, run = ranking_distributed(url, settings, quarter, kind, client=client, partition_rows=2)
    assert run["partitions"] >= 4 and run["cases"] == single.counts["filed"].sum()
    exact = [c for c in single.counts.columns if c != "hours_sum"]
    pd.testing.assert_frame_equal(spread.counts[exact], single.counts[exact], check_exact=True)
    np.testing.assert_allclose(spread.counts["hours_sum"], single.counts["hours_sum"], rtol=0, atol=1e-9)
    cols = [c for c in single.rows.columns if c != "mean_handling_hours"]
    pd.testing.assert_frame_equal(spread.rows[cols], single.rows[cols], check_exact=True)
    np.testing.assert_allclose(spread.rows["mean_handling_hours"], single.rows["mean_handling_hours"], atol=1e-9)
    if kind == "owner":  # the hand-computed figures (test_ranking.py), from the cluster's counts
        r = spread.rows
        assert list(r.index) == ["department:1", "person:3", "person:2", "person:1"]
        assert r.loc["person:1", "composite"] == pytest.approx(51.0) and r.loc["person:1", "grade"] == "D"
        assert r.loc["person:1", "mean_handling_hours"] == pytest.approx(3.25)  # the holiday week does not count
        assert r.loc["person:2", "recurrence_rate"] == 0.5


def test_a_period_without_cases_ranks_nobody(rank_db, settings, client):
    from gisgrid.supervision.distributed import ranking_distributed
    from gisgrid.supervision.indicators import parse_period

    spread, run = ranking_distributed(rank_db[0], settings, parse_period("2024-Q1", "Asia/Shanghai"), "owner",
                                      client=client)  # fmt: skip
    assert run["partitions"] == 0 and run["cases"] == 0 and spread.rows.empty
