"""The archive re-assigned on a dask.distributed cluster (2 local workers) gives what one process gives."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import scratch_database

N_POINTS = 200_000
SAME = """
WITH ranked AS (
    SELECT h.*, row_number() OVER (PARTITION BY report_id ORDER BY id DESC) AS k FROM report_assignment h
)
SELECT count(*) FILTER (WHERE a.report_id IS NULL OR b.report_id IS NULL) AS missing,
       count(*) FILTER (WHERE (a.rule, a.target_type, a.target_id, a.segment_id, a.distance_m, a.owner_person_id,
                               a.owner_department_id, a.owner_name, a.chain, a.reason, a.ruleset_version)
                    IS DISTINCT FROM (b.rule, b.target_type, b.target_id, b.segment_id, b.distance_m,
                               b.owner_person_id, b.owner_department_id, b.owner_name, b.chain, b.reason,
                               b.ruleset_version)) AS different,
       count(*) AS reports
FROM (SELECT * FROM ranked WHERE k = 1) a FULL JOIN (SELECT * FROM ranked WHERE k = 2) b USING (report_id)
"""


def test_distributed_rerun_matches_the_single_process_path(server_url, settings):
    from gisgrid.demo import TOWNS, load_demo
    from gisgrid.routing.distributed import assign_stored_distributed, make_client
    from gisgrid.routing.store import assign_stored_reports, load_deployment

    with scratch_database(server_url, "dask", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            load_demo(conn, settings, towns=[t for t in TOWNS if t.key == "shatin"], reports_per_town=0, grid=True)
            # 200,000 reports over the town and a margin around it (some outside every area), every category
            conn.execute(
                sa.text("""
                WITH box AS (SELECT ST_Expand(ST_Extent(geom), 0.002) AS b FROM jurisdiction),
                     cats AS (SELECT array_agg(id ORDER BY id) AS ids FROM category)
                INSERT INTO report (geom, category_id, reported_at, source, status)
                SELECT ST_SetSRID(ST_MakePoint(ST_XMin(b) + random() * (ST_XMax(b) - ST_XMin(b)),
                                               ST_YMin(b) + random() * (ST_YMax(b) - ST_YMin(b))), 4326),
                       ids[1 + (i % array_length(ids, 1))], now() - (i % 400) * interval '1 day', 'bench', 'reported'
                FROM generate_series(1, :n) i, box, cats"""),
                {"n": N_POINTS},
            )
        with engine.connect() as conn:
            deployment = load_deployment(conn, settings)
            total = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
        assert total == N_POINTS
        with engine.begin() as conn:
            single = assign_stored_reports(conn, deployment)
        client = make_client(workers=2)
        try:
            spread = assign_stored_distributed(url, deployment, client=client, partition_rows=50_000)
        finally:
            cluster = client.cluster
            client.close()
            cluster.close()
        assert spread["workers"] == 2 and spread["partitions"] == 4
        assert spread["reports"] == single["reports"] == N_POINTS
        assert spread["by_rule"] == single["by_rule"]
        assert len(single["by_rule"]) >= 3, single["by_rule"]  # the points meet several rules
        assert single["by_rule"].get("frontage_unit", 0) > 0  # the unit step (门前三包) on both paths
        with engine.connect() as conn:
            missing, different, reports = conn.execute(sa.text(SAME)).one()
            history = conn.execute(sa.text("SELECT count(*) FROM report_assignment")).scalar()
        assert (missing, different, reports) == (0, 0, N_POINTS)
        assert history == 2 * N_POINTS
        engine.dispose()
