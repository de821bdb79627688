"""What a user may see: the SQL predicate and its in-memory twin agree, and sight follows ownership on the day."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gisgrid.accounts import scope as sc
from gisgrid.accounts import store
from gisgrid.accounts.users import Actor

TODAY = dt.date.today()
KINDS = ("jurisdiction", "street", "segment", "cell", "report")


def _sql_sets(conn, user_id: int, day: dt.date) -> dict[str, set[int]]:
    return {k: store.visible_ids(conn, sc.Scope(user_id, day), k) for k in KINDS}


def test_sql_and_in_memory_rule_agree_for_every_demo_account(engine, users):
    with engine.connect() as conn:
        world = store.load_world(conn)
        handovers = sorted(
            {
                r[0]
                for r in conn.execute(
                    sa.text("SELECT DISTINCT valid_to FROM owner_assignment WHERE valid_to IS NOT NULL")
                )
            }
        )
        days = (
            [TODAY, dt.date(TODAY.year - 2, 1, 1)] + [d - dt.timedelta(days=1) for d in handovers[:1]] + handovers[:1]
        )
        for u in users.values():
            subject = store.load_subject(conn, u["id"])
            for day in days:
                assert _sql_sets(conn, u["id"], day) == sc.visible_units(world, subject, day), (u["username"], day)


def test_chains_see_downward_only(engine, users):
    with engine.connect() as conn:
        seen = {name: _sql_sets(conn, users[name]["id"], TODAY) for name in users}
        total_segments = conn.execute(sa.text("SELECT count(*) FROM segment")).scalar()
    assert len(seen["admin"]["segment"]) == total_segments
    general, first, second, seg = (seen[n] for n in ("zongjiezhang", "yijijiezhang", "erjijiezhang", "duanzhang"))
    # 总街长 of the county ⊇ 一级街长 of some streets ⊇ ... and a 段长 sees one segment
    assert first["segment"] < general["segment"]
    assert len(seg["segment"]) == 1 and len(seg["street"]) == 1 and not seg["jurisdiction"]
    assert first["street"] and not first["jurisdiction"]
    # the manager of one county sees none of the other sample towns
    assert seen["manager"]["segment"] == general["segment"]
    assert len(seen["manager"]["segment"]) < total_segments
    assert not seen["api"]["segment"] and not seen["api"]["jurisdiction"]


def test_a_chief_sees_the_reports_routed_to_their_units_and_a_manager_what_reached_nobody(engine, users):
    with engine.connect() as conn:
        reports = conn.execute(
            sa.text("""SELECT r.id, r.assigned_type, r.assigned_id, r.assignee_person_id, r.escalated_person_id,
                              r.jurisdiction_id FROM report r""")
        ).all()
        seen = {n: _sql_sets(conn, users[n]["id"], TODAY) for n in ("duanzhang", "yijijiezhang", "manager", "admin")}
        person = {
            n: conn.execute(sa.text("SELECT person_id FROM user_account WHERE username = :n"), {"n": n}).scalar()
            for n in seen
        }
    assert len(seen["admin"]["report"]) == len(reports)
    for name in ("duanzhang", "yijijiezhang"):
        mine = {
            r.id
            for r in reports
            if (r.assigned_type == "segment" and r.assigned_id in seen[name]["segment"])
            or person[name] in (r.assignee_person_id, r.escalated_person_id)
        }
        assert mine and seen[name]["report"] == mine, name  # the reports routed to their segments (or sent to them)
    nobody = {
        r.id
        for r in reports
        if r.assigned_type in (None, "department") and r.jurisdiction_id in seen["manager"]["jurisdiction"]
    }
    assert nobody and nobody <= seen["manager"]["report"]  # outside coverage or to a department: still theirs to see
    assert seen["manager"]["report"] < seen["admin"]["report"]


def test_sight_follows_ownership_on_the_day(scratch_engine, settings):
    """A 段长 handed over on a date: before it the old one sees the segment, from it the new one; nobody edits a grant."""
    from gisgrid.demo import TOWNS, load_demo

    town = next(t for t in TOWNS if t.key == "shatin")
    handover = TODAY - dt.timedelta(days=5)
    with scratch_engine.begin() as conn:
        load_demo(conn, settings, towns=[town], reports_per_town=5)
        seg = conn.execute(sa.text("SELECT min(id) FROM segment")).scalar()
        old_pid, new_pid = (
            conn.execute(sa.text("INSERT INTO person (name) VALUES (:n) RETURNING id"), {"n": n}).scalar()
            for n in ("旧段长", "新段长")
        )
        conn.execute(
            sa.text("DELETE FROM owner_assignment WHERE target_type = 'segment' AND target_id = :s"), {"s": seg}
        )
        conn.execute(
            sa.text("""INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from, valid_to)
                       VALUES (:o, 'segment', :s, '段长', :a, :h), (:n, 'segment', :s, '段长', :h, NULL)"""),
            {"o": old_pid, "n": new_pid, "s": seg, "a": TODAY - dt.timedelta(days=100), "h": handover},
        )
        actor = Actor.system("test")
        old = store.create_user(
            conn, actor, username="old", password="old-password-1", min_password_length=10, person_id=old_pid
        )
        new = store.create_user(
            conn, actor, username="new", password="new-password-1", min_password_length=10, person_id=new_pid
        )
        before, on = handover - dt.timedelta(days=1), handover
        assert store.is_visible(conn, sc.Scope(old.id, before), "segment", seg)
        assert not store.is_visible(conn, sc.Scope(new.id, before), "segment", seg)
        assert not store.is_visible(conn, sc.Scope(old.id, on), "segment", seg)
        assert store.is_visible(conn, sc.Scope(new.id, on), "segment", seg)
        # a disabled account sees nothing, whatever it owns
        store.set_active(conn, actor, new.id, False)
        assert not store.is_visible(conn, sc.Scope(new.id, on), "segment", seg)


def test_department_sees_what_it_owns(engine, users):
    with engine.connect() as conn:
        owned = {
            r[0]
            for r in conn.execute(
                sa.text("""SELECT a.target_id FROM owner_assignment a JOIN department d ON d.id = a.department_id
                           WHERE d.code = 'enforcement' AND a.target_type = 'segment' AND a.valid_to IS NULL""")
            )
        }
        seen = store.visible_ids(conn, sc.Scope(users["department"]["id"], TODAY), "segment")
    assert owned and seen == owned


def test_bad_kind_or_alias_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        sc.visible_sql("case", "r")
    with pytest.raises(ValueError, match="alias"):
        sc.visible_sql("segment", "g; DROP TABLE x")
    assert sc.Scope.everything().sql("segment", "g") == "true"
