"""The sample towns load completely: every segment has an owner chain, reports are demo-labelled."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gisgrid.ownership.store import CHAIN_ROLES, segment_owner_chains


def test_every_segment_has_a_full_owner_chain_today(engine, town):
    with engine.connect() as conn:
        chains = segment_owner_chains(conn, dt.date.today())
    assert len(chains) == town["segment"] > 100
    for role in CHAIN_ROLES:
        assert chains[role].notna().all(), role


def test_owner_on_a_past_date_is_the_one_valid_then(engine, town):
    """Some 段长 changed hands on 1 July; the owner before the handover stays answerable."""
    with engine.connect() as conn:
        handed = conn.execute(
            sa.text("""
            SELECT a.target_id, a.valid_to, p.name FROM owner_assignment a JOIN person p ON p.id = a.person_id
            WHERE a.role = '段长' AND a.valid_to IS NOT NULL ORDER BY a.target_id LIMIT 1""")
        ).first()
        assert handed is not None
        seg, handover, before = handed
        after = conn.execute(
            sa.text("""
            SELECT p.name FROM owner_assignment a JOIN person p ON p.id = a.person_id
            WHERE a.role = '段长' AND a.target_id = :s AND a.valid_from = :d"""),
            {"s": seg, "d": handover},
        ).scalar()
        old = segment_owner_chains(conn, handover - dt.timedelta(days=1), segment_ids=[seg])
        new = segment_owner_chains(conn, handover, segment_ids=[seg])
    assert old.loc[seg, "段长"] == before
    assert new.loc[seg, "段长"] == after


def test_demo_data_is_labelled_and_categories_follow_domain(engine, town):
    with engine.connect() as conn:
        n_demo = conn.execute(sa.text("SELECT count(*) FILTER (WHERE is_demo), count(*) FROM report")).first()
        garbage = conn.execute(sa.text("SELECT deadline_hours FROM category WHERE name = '暴露垃圾'")).scalar()
        towns = conn.execute(sa.text("SELECT count(*) FROM jurisdiction WHERE level = 'town'")).scalar()
        # communities tile their town exactly
        gap = conn.execute(
            sa.text("""
            SELECT max(abs(ST_Area(t.geom::geography) - (SELECT sum(ST_Area(c.geom::geography))
                   FROM jurisdiction c WHERE c.parent_id = t.id)) / ST_Area(t.geom::geography))
            FROM jurisdiction t WHERE t.level = 'town'""")
        ).scalar()
    assert n_demo[0] == n_demo[1] == town["report"] > 0
    assert garbage == 4
    assert towns == 4
    assert gap < 1e-6


def test_demo_with_grid_has_an_owned_clean_grid(scratch_engine, settings):
    """`gisgrid demo load` builds each town's grid: every cell has one 网格员 and the audit finds nothing."""
    from gisgrid.audit.store import audit_store
    from gisgrid.demo import TOWNS, load_demo

    town = next(t for t in TOWNS if t.key == "shatin")
    with scratch_engine.begin() as conn:
        counts = load_demo(conn, settings, towns=[town], reports_per_town=50, grid=True)
        owners = conn.execute(
            sa.text("""
            SELECT c.id, count(a.id) FILTER (WHERE a.role = '网格员' AND a.valid_to IS NULL) FROM grid_cell c
            LEFT JOIN owner_assignment a ON a.target_type = 'cell' AND a.target_id = c.id GROUP BY c.id""")
        ).all()
        result = audit_store(conn, settings, town.town_code)
    assert counts["grid_cell"] == len(owners) > 100
    assert all(n == 1 for _, n in owners)
    assert result.clean and result.vacant.empty
