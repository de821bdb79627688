"""`make demo` shows the whole loop: cases in every state, overdue, escalated, reworked, merged, recurring."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from tests.conftest import scratch_database


def test_demo_cases_cover_every_state_of_the_workflow(server_url, settings, tmp_path):
    from gisgrid.cases.photos import resolve
    from gisgrid.demo import TOWNS, create_demo_users, demo_cases, load_demo

    settings = dataclasses.replace(settings, var_dir=str(tmp_path))
    town = next(t for t in TOWNS if t.key == "beijing_haidian")
    with scratch_database(server_url, "democases", migrated=True) as url:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                load_demo(conn, settings, towns=[town], reports_per_town=10)
                create_demo_users(conn, settings)
                made = demo_cases(conn, settings)
                assert made >= 16
                assert demo_cases(conn, settings) == 0  # once
                states = dict(
                    conn.execute(
                        sa.text("SELECT status, count(*) FROM report WHERE external_id LIKE 'DEMO-CASE-%' GROUP BY 1")
                    ).all()
                )
                facts = conn.execute(
                    sa.text("""
                    SELECT count(*) FILTER (WHERE escalation_level > 0) AS escalated,
                           count(*) FILTER (WHERE rework_count > 0) AS reworked,
                           count(*) FILTER (WHERE merged_into_id IS NOT NULL) AS merged,
                           count(*) FILTER (WHERE recurrence_of_id IS NOT NULL) AS recurring,
                           count(*) FILTER (WHERE assignee_person_id IS NULL AND assignee_department_id IS NULL)
                               AS unassigned,
                           count(*) FILTER (WHERE due_at < now() AND status = 'dispatched') AS overdue
                    FROM report WHERE external_id LIKE 'DEMO-CASE-%'""")
                ).one()
                photos = conn.execute(sa.text("SELECT kind, path FROM case_photo")).all()
                names = {r[0] for r in conn.execute(sa.text("SELECT DISTINCT actor_name FROM case_event"))}
        finally:
            engine.dispose()
    for state in ("reported", "accepted", "rejected", "dispatched", "returned", "handled", "suspended", "closed",
                  "merged"):  # fmt: skip
        assert states.get(state, 0) >= 1, (state, states)
    assert facts.escalated >= 2 and facts.reworked >= 1 and facts.merged == 1 and facts.recurring == 1
    assert facts.unassigned >= 1 and facts.overdue >= 2
    assert {"before", "after"} <= {k for k, _ in photos}
    assert all(resolve(tmp_path, p).is_file() for _, p in photos)
    assert {"派遣员（演示）", "受理员（演示）"} <= names  # the steps were taken by the demo accounts
