"""`make demo` holds inspection rounds of both kinds over two quarters, their findings as cases, scores and check-ins."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa

from gisgrid import timeutil


def test_demo_rounds_over_two_quarters(insp_engine, insp_settings, insp_deployment, tmp_path):
    from gisgrid.accounts.store import find_user
    from gisgrid.demo import demo_inspections
    from gisgrid.supervision import inspections as store

    settings = dataclasses.replace(insp_settings, var_dir=str(tmp_path))
    today = timeutil.local_today(settings.timezone)
    with insp_engine.connect() as conn:
        tx = conn.begin()
        conn.execute(sa.text("DELETE FROM inspection_round"))  # other tests' rounds (rolled back after)
        done = demo_inspections(conn, settings, deployment=insp_deployment)
        assert done["rounds"] == 12 and done["findings"] == 60 and done["checkins"] == 12
        rounds = conn.execute(
            sa.text("SELECT kind, period_start, ended_at IS NOT NULL AS ended FROM inspection_round")
        ).all()
        quarters = {(r.period_start.year, (r.period_start.month - 1) // 3) for r in rounds}
        assert len(quarters) >= 2 and {r.kind for r in rounds} == {"announced", "unannounced"}
        assert sum(r.ended for r in rounds) == 10  # this month's two stay open
        cases = conn.execute(
            sa.text("""SELECT r.source, count(*) FROM report r JOIN inspection_finding f ON f.report_id = r.id
                       WHERE r.inspection_round_id = f.round_id GROUP BY r.source""")
        ).all()
        assert dict(cases) == {"inspection": 36, "unannounced": 24}
        scored = conn.execute(sa.text("SELECT min(score), max(score), count(*) FROM inspection_score")).one()
        assert scored[0] < 100 and scored[1] == 100 and scored[2] > 100
        rows = store.round_scores(conn, today.replace(day=1) - dt.timedelta(days=200), today, "town")
        assert len({r["round_id"] for r in rows}) == 10
        inspector = find_user(conn, "inspector")
        assert len(store.open_rounds_for(conn, inspector, today)) == 2
        assert demo_inspections(conn, settings, deployment=insp_deployment)["rounds"] == 0  # once
        tx.rollback()


def test_inspection_scores_reach_the_ranking(insp_engine, insp_settings, insp_deployment, tmp_path):
    """The ranking's "inspection score" of a town is its ended rounds' scores (equal weights by default)."""
    from gisgrid.demo import demo_inspections
    from gisgrid.supervision import indicators as ind
    from gisgrid.supervision import inspections as store
    from gisgrid.supervision.ranking_store import compute_ranking

    settings = dataclasses.replace(insp_settings, var_dir=str(tmp_path))
    today = timeutil.local_today(settings.timezone)
    with insp_engine.connect() as conn:
        tx = conn.begin()
        conn.execute(sa.text("DELETE FROM inspection_round"))
        demo_inspections(conn, settings, deployment=insp_deployment)
        last = today.replace(day=1) - dt.timedelta(days=1)
        period = ind.parse_period(f"{last.year}-{last.month:02d}", settings.timezone)
        expected: dict[int, list[float]] = {}
        for r in store.round_scores(conn, period.first_day, period.last_day, "town"):
            expected.setdefault(r["unit_id"], []).append(r["score"])
        assert expected, "the demo ends rounds in last month"
        ranking = compute_ranking(conn, settings, period, "town")
        got = ranking.rows["inspection_score"]  # indexed by unit id
        for town, scores in expected.items():
            if town in got.index:
                assert abs(float(got[town]) - sum(scores) / len(scores)) < 1e-6
        assert any(town in got.index for town in expected)
        tx.rollback()
