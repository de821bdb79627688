"""Hotspots and rankings counted on a dask.distributed cluster (2 local workers) give what one process gives.

One sample town (沙田) with its grid and demo reports, plus a few thousand synthetic reports over the town
and a margin around it (some outside it, some in a hot corner), cut into partitions of 1,000.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import scratch_database

SYNTHETIC = 4000


@pytest.fixture(scope="module")
def archive(server_url, settings):
    """(url, engine, town code) of the town with its demo reports and the synthetic ones."""
    from gisgrid.demo import TOWNS, load_demo

    town = next(t for t in TOWNS if t.key == "shatin")
    with scratch_database(server_url, "dask_analytics", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            load_demo(conn, settings, towns=[town], reports_per_town=600, grid=True)
            conn.execute(sa.text("SELECT setseed(0.24)"))
            # a uniform scatter over the town and a margin, and a tight cluster in one corner (a hot spot)
            conn.execute(
                sa.text("""
                WITH box AS (SELECT ST_Expand(ST_Extent(geom), 0.002) AS b FROM jurisdiction),
                     hot AS (SELECT ST_PointOnSurface(geom) AS h FROM jurisdiction WHERE level = 'town' LIMIT 1),
                     cats AS (SELECT array_agg(id ORDER BY id) AS ids FROM category)
                INSERT INTO report (geom, category_id, reported_at, source, status)
                SELECT ST_SetSRID(CASE WHEN i % 5 = 0
                         THEN ST_MakePoint(ST_X(h) + random() * 0.003, ST_Y(h) + random() * 0.003)
                         ELSE ST_MakePoint(ST_XMin(b) + random() * (ST_XMax(b) - ST_XMin(b)),
                                           ST_YMin(b) + random() * (ST_YMax(b) - ST_YMin(b))) END, 4326),
                       ids[1 + (i % array_length(ids, 1))], now() - (i % 300) * interval '1 day', 'test', 'reported'
                FROM generate_series(1, :n) i, box, hot, cats"""),
                {"n": SYNTHETIC},
            )
            code = conn.execute(sa.text("SELECT code FROM jurisdiction WHERE level = 'town' LIMIT 1")).scalar_one()
        yield url, engine, code
        engine.dispose()


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with Client(cluster) as c:
        yield c
    cluster.close()


def _same_hotspots(single, spread) -> None:
    assert list(spread["hex_id"]) == list(single["hex_id"])
    assert (spread["count"].to_numpy() == single["count"].to_numpy()).all()
    for col in ("gi_z", "p_sim", "p", "p_fdr", "neighbourhood_count", "expected_count"):
        np.testing.assert_array_equal(spread[col].to_numpy(float), single[col].to_numpy(float), err_msg=col)
    assert list(spread["hotspot"]) == list(single["hotspot"])


def test_hotspots_on_the_cluster_equal_the_single_process_ones(archive, client):
    from gisgrid.analytics.distributed import hotspots_distributed
    from gisgrid.analytics.store import ReportFilters, count_reports, hotspots

    url, engine, code = archive
    filters = ReportFilters(jurisdiction=code)
    with engine.connect() as conn:
        single = hotspots(conn, filters, permutations=9999)
        matched = count_reports(conn, filters)
    spread, run = hotspots_distributed(url, filters, permutations=9999, client=client, partition_rows=1000)
    assert run["workers"] == 2 and run["partitions"] >= 3
    assert run["reports"] == int(single["count"].sum()) == matched > SYNTHETIC // 2
    _same_hotspots(single, spread)
    assert (single["hotspot"].str.startswith("hot")).sum() > 0  # a finding to agree on, not an all-grey map


def test_other_hexagon_sizes_and_a_date_filter_agree_too(archive, client):
    """150 m hexagons are not kept with the reports: the workers compute them (the Python form of the
    lattice), PostGIS does in one process (its SQL form)."""
    import datetime as dt

    from gisgrid.analytics.distributed import hotspots_distributed
    from gisgrid.analytics.store import ReportFilters, hotspots

    url, engine, code = archive
    filters = ReportFilters(jurisdiction=code, date_from=dt.date.today() - dt.timedelta(days=200))
    with engine.connect() as conn:
        single = hotspots(conn, filters, 150.0, permutations=999)
    spread, run = hotspots_distributed(url, filters, 150.0, permutations=999, client=client, partition_rows=700)
    assert run["partitions"] >= 3 and len(single) > 50
    _same_hotspots(single, spread)


def test_a_quarter_ranked_on_the_cluster_equals_the_single_process_ranking(archive, client, settings):
    from gisgrid.supervision import indicators as ind
    from gisgrid.supervision import ranking_store as store
    from gisgrid.supervision.distributed import ranking_distributed

    url, engine, code = archive
    with engine.begin() as conn:  # some cases are problems back after an earlier closure (复发)
        conn.execute(
            sa.text("""
            UPDATE report r SET recurrence_of_id = p.id FROM report p
            WHERE r.id % 7 = 0 AND p.id = (SELECT max(q.id) FROM report q
                WHERE q.closed_at IS NOT NULL AND q.closed_at < r.reported_at AND q.id < r.id)""")
        )
    quarter = ind.last_full_quarter(pd.Timestamp.now(tz="Asia/Shanghai").date(), settings.timezone)
    with engine.connect() as conn:
        jur = store.find_jurisdiction(conn, None, code)
    for kind in ("owner", "street", "community", "town"):
        with engine.connect() as conn:
            single = store.compute_ranking(conn, settings, quarter, kind, jurisdiction=jur)
        spread, run = ranking_distributed(
            url, settings, quarter, kind, jurisdiction=jur, client=client, partition_rows=40
        )
        assert run["workers"] == 2 and run["partitions"] >= 3, (kind, run)
        assert len(single.rows) >= (1 if kind == "town" else 2), kind  # one town
        assert single.counts["filed"].sum() == run["cases"] > 50, kind
        if kind == "owner":
            assert single.counts["recurrences"].sum() > 0 and single.counts["rework"].sum() > 0
        _same_ranking(single, spread)


def _same_ranking(single, spread) -> None:
    """Every count, indicator, score, grade and place equal.  Working hours are the one exception, to a
    microsecond: one process sums them in SQL (:func:`gisgrid.db.sql.working_position`), the workers with
    the rule's in-memory form (:func:`gisgrid.cases.workflow.working_hours_between`), whose float rounding
    differs in the last bits (the two forms are cross-checked to the same 1e-9 h in
    tests/supervision/rankings/test_ranking.py); no score weighs them."""
    exact = [c for c in single.counts.columns if c != "hours_sum"]
    pd.testing.assert_frame_equal(spread.counts[exact], single.counts[exact], check_exact=True)
    np.testing.assert_allclose(spread.counts["hours_sum"], single.counts["hours_sum"], rtol=0, atol=1e-9)
    rows_exact = [c for c in single.rows.columns if c != "mean_handling_hours"]
    pd.testing.assert_frame_equal(spread.rows[rows_exact], single.rows[rows_exact], check_exact=True)
    np.testing.assert_allclose(
        spread.rows["mean_handling_hours"], single.rows["mean_handling_hours"], rtol=0, atol=1e-9
    )


@pytest.fixture()
def cli(archive, monkeypatch):
    from click.testing import CliRunner

    from gisgrid.cli import main

    monkeypatch.setenv("GISGRID_DATABASE_URL", archive[0])
    runner = CliRunner()

    def run(*args, code=0):
        out = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert out.exit_code == code, out.output
        return out.output

    return run


def test_the_commands_write_the_same_files_on_a_cluster(archive, client, cli, tmp_path):
    """``gisgrid hotspots`` and ``gisgrid rankings``, in one process and with ``--scheduler``."""
    import geopandas as gpd

    code = archive[2]
    scheduler = client.scheduler.address
    one = cli("hotspots", "--jurisdiction", code, "--permutations", 9999, "--out", tmp_path / "one.geojson")
    spread = cli("hotspots", "--jurisdiction", code, "--permutations", 9999, "--out", tmp_path / "two.geojson",
                 "--scheduler", scheduler, "--partition-rows", 1000)  # fmt: skip
    assert "on 2 dask workers" in spread and "partitions" in spread

    def counted(text):
        return [line for line in text.splitlines() if " hexagons, " in line]

    assert counted(one) == counted(spread) and len(counted(one)) == 1
    assert "hot_" in one
    a, b = gpd.read_file(tmp_path / "one.geojson"), gpd.read_file(tmp_path / "two.geojson")
    assert len(a) == len(b) > 0
    assert list(a["hotspot"]) == list(b["hotspot"]) and list(a["hex_id"]) == list(b["hex_id"])
    np.testing.assert_array_equal(a["gi_z"].to_numpy(float), b["gi_z"].to_numpy(float))

    one = cli("rankings", "2026-Q3", "--by", "owner", "--jurisdiction", code, "--out", tmp_path / "one.csv")
    spread = cli("rankings", "2026-Q3", "--by", "owner", "--jurisdiction", code, "--out", tmp_path / "two.csv",
                 "--scheduler", scheduler, "--partition-rows", 40)  # fmt: skip
    ranked = [line for line in one.splitlines() if line.startswith("  ") and ". " in line]
    assert len(ranked) >= 2 and ranked == [line for line in spread.splitlines() if line in ranked]
    a, b = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    pd.testing.assert_frame_equal(a.drop(columns="mean_handling_hours"), b.drop(columns="mean_handling_hours"))


def test_the_commands_refuse_bad_input_in_one_line(cli):
    out = cli("hotspots", "--jurisdiction", "999999", "--workers", 2, code=2)
    assert out.startswith("error: unknown jurisdiction '999999'") and "Traceback" not in out
    out = cli("rankings", "2026-Q5", "--workers", 2, code=2)
    assert out.startswith("error: period '2026-Q5'") and "Traceback" not in out


def test_a_scheduler_that_does_not_answer_is_one_line(archive, cli):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        out = cli("rankings", "2026-Q3", "--scheduler", "tcp://127.0.0.1:1", code=2)
        assert out.startswith("error: no dask scheduler reachable at 'tcp://127.0.0.1:1'") and "Traceback" not in out
        out = cli("hotspots", "--jurisdiction", archive[2], "--scheduler", "scheduler-host", code=2)
        assert out.startswith("error: no dask scheduler reachable at 'scheduler-host'")
