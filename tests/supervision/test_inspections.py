"""Inspection rounds against PostGIS: planning, the sample, who sees a round, findings as cases, scores, coverage."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import pytest
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import find_user
from gisgrid.cases.intake import CaseInput
from gisgrid.errors import Conflict, Forbidden, InputError, NotFound
from gisgrid.frontage.store import get_unit
from gisgrid.supervision import inspection as rules
from gisgrid.supervision import inspections as insp


# --- pure rules --------------------------------------------------------------------------------
def test_sample_is_reproducible_from_the_seed_and_documented_method():
    ids = list(range(1, 201))
    a = rules.draw_sample(ids, 12, seed=42, kind="cell")
    assert a == rules.draw_sample(list(reversed(ids)), 12, seed=42, kind="cell")  # row order does not matter
    assert a != rules.draw_sample(ids, 12, seed=43, kind="cell")
    assert rules.draw_sample(ids, 20, seed=42, kind="cell")[:12] == a  # a larger sample keeps the smaller one
    # the documented method, redone by hand: sort by sha256("<seed>:<kind>:<id>")
    by_hand = sorted(ids, key=lambda i: hashlib.sha256(f"42:cell:{i}".encode()).hexdigest())[:12]
    assert a == by_hand
    assert rules.draw_sample([5, 6], 10, seed=1, kind="segment") in ([5, 6], [6, 5])
    with pytest.raises(ValueError, match="kind"):
        rules.draw_sample(ids, 3, seed=1, kind="street")


def test_scores_are_100_minus_deductions_never_below_zero():
    findings = pd.DataFrame(
        {
            "found": [0.2, 0.2, 0.3] + [0.2] * 600,
            "overdue_points": [0.5, 0.5, 0.5] + [0.5] * 600,
            "repeat_points": [1.0, 1.0, 1.0] + [1.0] * 600,
            "overdue": [True, False, False] + [False] * 600,
            "repeat": [True, False, True] + [False] * 600,
            "segment_id": [7, 7, 8] + [9] * 600,
            "town_id": [1, 1, 1] + [2] * 600,
        }
    )
    for col in ("street_id", "cell_id", "person_id", "department_id", "community_id"):
        findings[col] = None
    out = rules.unit_scores(rules.finding_deductions(findings), {"segment": [7, 10], "town": [1, 2, 3]})
    seg = out[out.unit_kind == "segment"].set_index("unit_id")
    # segment 7: 0.2 + 0.5 + 1 (overdue, repeat) + 0.2 = 1.9 → 98.1
    assert seg.loc[7, "score"] == pytest.approx(98.1)
    assert (seg.loc[7, "findings"], seg.loc[7, "overdue"], seg.loc[7, "repeats"]) == (2, 1, 1)
    assert seg.loc[8, "score"] == pytest.approx(100 - 1.3)
    assert seg.loc[9, "score"] == 0.0  # 600 × 0.2 = 120 points: never below 0
    assert seg.loc[10, "score"] == 100.0 and seg.loc[10, "findings"] == 0  # covered, nothing found
    town = out[out.unit_kind == "town"].set_index("unit_id")
    assert town.loc[1, "deductions"] == pytest.approx(3.2) and town.loc[3, "score"] == 100.0


def test_plan_checks_list_every_problem_at_once():
    with pytest.raises(InputError) as err:
        rules.parse_round_plan(
            {"kind": "surprise", "name": "", "period_start": "2026-05-31", "period_end": "2026-05-01",
             "scope_kind": "town", "scope_ids": [], "inspector_ids": [], "sample_kind": "cell", "sample_size": "x"}
        )  # fmt: skip
    text = str(err.value)
    for part in ("kind must be announced", "a name is needed", "ends (2026-05-01) before", "scope is empty",
                 "at least one inspector", "sample size must be a whole number"):  # fmt: skip
        assert part in text
    plan = rules.parse_round_plan(
        {"kind": "unannounced", "name": "五月暗访", "period_start": "2026-05-01", "period_end": "2026-05-31",
         "scope_kind": "town", "scope_ids": "3", "inspector_ids": ["4", "5"], "sample_kind": "cell",
         "sample_size": "5"}, seed_if_missing=77,
    )  # fmt: skip
    assert plan.seed == 77 and plan.scope_ids == (3,) and plan.inspector_ids == (4, 5)


# --- against the database ----------------------------------------------------------------------
def _today(settings):
    return timeutil.local_today(settings.timezone)


def _town(conn):
    return conn.execute(sa.text("SELECT id FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1")).scalar()


def _plan(conn, settings, *, kind="unannounced", inspectors=("inspector",), sample=None, start=None, end=None):
    manager = find_user(conn, "manager")
    raw = {
        "kind": kind,
        "name": f"测试{kind}",
        "period_start": str(start or _today(settings).replace(day=1)),
        "period_end": str(end or _today(settings) + dt.timedelta(days=5)),
        "scope_kind": "town",
        "scope_ids": [_town(conn)],
        "inspector_ids": [find_user(conn, u).id for u in inspectors],
    }
    if sample:
        raw.update(sample_kind=sample[0], sample_size=sample[1], seed=sample[2])
    return insp.plan_round(conn, manager.actor("test"), Scope(manager.id, _today(settings)), raw)


def _seen_by(conn, settings, username, round_id) -> bool:
    user = find_user(conn, username)
    try:
        insp.get_round(conn, Scope(user.id, _today(settings)), round_id)
        return True
    except NotFound:
        return False


def _segment_point(conn, *, owner=None):
    """A point inside the frontage area of a segment (of the person ``owner``'s, when given)."""
    sql = """SELECT g.id, ST_X(ST_PointOnSurface(g.area)), ST_Y(ST_PointOnSurface(g.area)) FROM segment g
             JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id AND a.role = '段长'
                  AND a.valid_to IS NULL
             WHERE g.area IS NOT NULL AND (CAST(:p AS integer) IS NULL OR a.person_id = :p) ORDER BY g.id LIMIT 1"""
    return conn.execute(sa.text(sql), {"p": owner}).one()


def _find(conn, settings, deployment, round_id, *, username="inspector", point=None, item=None, client=None):
    user = find_user(conn, username)
    if item is None:
        item = next(i["id"] for i in insp.checklist(conn) if i["category"] == "0101")
    _seg, lon, lat = point or _segment_point(conn)
    data = CaseInput(lon=lon, lat=lat, crs="EPSG:4326", category="ignored", description="检查发现（测试）",
                     client_id=client)  # fmt: skip
    return insp.record_finding(conn, user.actor("test"), user, deployment, settings, round_id=round_id, item_id=item,
                               data=data)  # fmt: skip


def test_a_round_covers_its_drawn_sample(conn, insp_settings):
    rid = _plan(conn, insp_settings, sample=("cell", 6, 20261207))
    targets = conn.execute(
        sa.text("SELECT unit_id FROM inspection_target WHERE round_id = :r ORDER BY rank"), {"r": rid}
    ).scalars()
    cells = conn.execute(
        sa.text("""SELECT c.id FROM grid_cell c JOIN jurisdiction j ON j.id = c.jurisdiction_id
                   WHERE j.id = :t OR j.parent_id = :t"""),
        {"t": _town(conn)},
    ).scalars()
    assert list(targets) == rules.draw_sample(list(cells), 6, seed=20261207, kind="cell")
    again = _plan(conn, insp_settings, sample=("cell", 6, 20261207))
    assert insp.round_targets(conn, again)["unit_id"].tolist() == insp.round_targets(conn, rid)["unit_id"].tolist()


def test_unannounced_round_is_hidden_from_the_inspected_until_it_ends(conn, insp_settings, insp_deployment):
    rid = _plan(conn, insp_settings, kind="unannounced")
    seen = {u: _seen_by(conn, insp_settings, u, rid) for u in
            ("admin", "manager", "inspector", "planner", "dispatcher", "clerk", "zongjiezhang", "duanzhang",
             "wanggeyuan", "department")}  # fmt: skip
    assert seen == {"admin": True, "manager": True, "inspector": True, "planner": False, "dispatcher": False,
                    "clerk": False, "zongjiezhang": False, "duanzhang": False, "wanggeyuan": False,
                    "department": False}  # fmt: skip
    assert rid not in [
        r["id"] for r in insp.list_rounds(conn, Scope(find_user(conn, "duanzhang").id, _today(insp_settings)))
    ]
    manager = find_user(conn, "manager")
    insp.end_round(conn, manager.actor("test"), Scope(manager.id, _today(insp_settings)), rid)
    # ended: those who see the town (or a unit it covered) see it now
    for username in ("planner", "dispatcher", "zongjiezhang", "duanzhang"):
        assert _seen_by(conn, insp_settings, username, rid), username


def test_announced_round_is_seen_by_the_inspected(conn, insp_settings):
    rid = _plan(conn, insp_settings, kind="announced")
    assert _seen_by(conn, insp_settings, "duanzhang", rid)
    assert _seen_by(conn, insp_settings, "clerk", rid)


def test_a_finding_becomes_a_routed_case_with_its_source_and_round(conn, insp_settings, insp_deployment):
    rid = _plan(conn, insp_settings, kind="unannounced")
    duanzhang = find_user(conn, "duanzhang")
    point = _segment_point(conn, owner=duanzhang.person_id)
    made = _find(conn, insp_settings, insp_deployment, rid, point=point, client="finding-test-0001")
    row = conn.execute(
        sa.text("""SELECT r.source, r.inspection_round_id, r.assignee_person_id, c.code, f.segment_id, f.person_id
                   FROM report r JOIN category c ON c.id = r.category_id
                   JOIN inspection_finding f ON f.report_id = r.id WHERE r.id = :i"""),
        {"i": made.id},
    ).one()
    assert row == ("unannounced", rid, duanzhang.person_id, "0101", point[0], duanzhang.person_id)
    # the owner sees the case (it must be fixed) but not the unannounced round
    from gisgrid.cases import store as cases

    assert cases.get_case(conn, Scope(duanzhang.id, _today(insp_settings)), made.id)["id"] == made.id
    assert not _seen_by(conn, insp_settings, "duanzhang", rid)
    # sent twice (the phone's outbox): one case, one finding
    again = _find(conn, insp_settings, insp_deployment, rid, point=point, client="finding-test-0001")
    assert again.id == made.id and not again.created
    n = conn.execute(sa.text("SELECT count(*) FROM inspection_finding WHERE round_id = :r"), {"r": rid}).scalar()
    assert n == 1


def test_only_the_rounds_inspectors_record_findings_while_it_is_open(conn, insp_settings, insp_deployment):
    rid = _plan(conn, insp_settings, inspectors=("inspector",))
    with pytest.raises(NotFound):  # a patrol member not on the round does not even see it
        _find(conn, insp_settings, insp_deployment, rid, username="wanggeyuan")
    with pytest.raises(Forbidden):  # the manager sees it, but is no inspector of it
        _find(conn, insp_settings, insp_deployment, rid, username="manager")
    with pytest.raises(InputError, match="checklist item"):
        _find(conn, insp_settings, insp_deployment, rid, item=999999)
    past = _plan(conn, insp_settings, start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 31))
    with pytest.raises(Conflict, match="not open"):
        _find(conn, insp_settings, insp_deployment, past)


def test_a_finding_outside_the_scope_is_refused_and_nothing_is_kept(insp_engine, insp_settings, insp_deployment):
    with insp_engine.connect() as conn:
        tx = conn.begin()
        rid = _plan(conn, insp_settings)
        before = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
        town = conn.execute(sa.text("SELECT ST_XMax(geom), ST_YMax(geom) FROM jurisdiction WHERE id = :t"),
                            {"t": _town(conn)}).one()  # fmt: skip
        with pytest.raises(InputError, match="outside this round's scope"):
            with conn.begin_nested():
                _find(conn, insp_settings, insp_deployment, rid, point=(None, town[0] + 0.05, town[1] + 0.05))
        assert conn.execute(sa.text("SELECT count(*) FROM report")).scalar() == before
        tx.rollback()


def test_ending_a_round_scores_each_unit_by_hand(conn, insp_settings, insp_deployment):
    rid = _plan(conn, insp_settings, kind="announced")
    duanzhang = find_user(conn, "duanzhang")
    point = _segment_point(conn, owner=duanzhang.person_id)
    item = next(i for i in insp.checklist(conn) if i["category"] == "0101")
    conn.execute(sa.text("UPDATE inspection_checklist_item SET found = 0.2, overdue = 0.5, repeat = 1 WHERE id = :i"),
                 {"i": item["id"]})  # fmt: skip
    # an earlier citizen report of the same problem at the place: the finding repeats it
    conn.execute(
        sa.text("""INSERT INTO report (geom, category_id, reported_at, status, source)
                   SELECT ST_SetSRID(ST_MakePoint(:x, :y), 4326), c.id, now() - interval '3 days', 'closed', 'web'
                   FROM category c WHERE c.code = '0101'"""),
        {"x": point[1], "y": point[2]},
    )
    first = _find(conn, insp_settings, insp_deployment, rid, point=point)
    second = _find(conn, insp_settings, insp_deployment, rid, point=(point[0], point[1] + 0.00002, point[2]))
    # the first is overdue at the end (its deadline passed), the second was closed in time
    conn.execute(sa.text("UPDATE report SET due_at = now() - interval '1 hour' WHERE id = :i"), {"i": first.id})
    conn.execute(sa.text("UPDATE report SET status = 'closed', closed_at = now() - interval '2 hours', "
                         "due_at = now() + interval '1 hour' WHERE id = :i"), {"i": second.id})  # fmt: skip
    repeats = dict(conn.execute(sa.text("SELECT report_id, repeat_of_id IS NOT NULL FROM inspection_finding "
                                        "WHERE round_id = :r"), {"r": rid}).all())  # fmt: skip
    assert repeats == {first.id: True, second.id: True}  # both repeat the citizen's report
    manager = find_user(conn, "manager")
    scope = Scope(manager.id, _today(insp_settings))
    summary = insp.end_round(conn, manager.actor("test"), scope, rid)
    assert summary["findings"] == 2 and summary["overdue"] == 1
    table = insp.round_score_table(conn, scope, rid).set_index(["unit_kind", "unit_id"])
    # first: 0.2 + 0.5 (overdue) + 1 (repeat) = 1.7; second: 0.2 + 1 (repeat) = 1.2; together 2.9
    assert table.loc[("segment", point[0]), "score"] == pytest.approx(97.1)
    assert table.loc[("person", duanzhang.person_id), "score"] == pytest.approx(97.1)
    assert table.loc[("town", _town(conn)), "deductions"] == pytest.approx(2.9)
    others = table.xs("segment", level="unit_kind").drop(index=point[0])
    assert (others["score"] == 100).all() and len(others) > 10  # every covered segment is scored
    with pytest.raises(Conflict):
        insp.end_round(conn, manager.actor("test"), scope, rid)
    rows = insp.round_scores(conn, _today(insp_settings).replace(day=1), _today(insp_settings) + dt.timedelta(days=40),
                             "segment")  # fmt: skip
    mine = [r for r in rows if r["round_id"] == rid and r["unit_id"] == point[0]]
    assert mine[0]["score"] == pytest.approx(97.1) and mine[0]["round_kind"] == "announced"
    # later edits of the checklist do not change the stored scores
    conn.execute(sa.text("UPDATE inspection_checklist_item SET found = 5 WHERE id = :i"), {"i": item["id"]})
    assert insp.round_score_table(conn, scope, rid).set_index(["unit_kind", "unit_id"]).loc[
        ("segment", point[0]), "score"
    ] == pytest.approx(97.1)


def test_a_round_scores_the_frontage_unit_a_finding_went_to(conn, insp_settings, insp_deployment):
    """门前三包: a finding of a frontage duty in a unit's frontage goes to the unit and costs the unit; the other
    units on the round's segments score 100."""
    unit = conn.execute(
        sa.text("""
        SELECT u.id, u.segment_id, ST_X(ST_PointOnSurface(u.frontage)) AS lon, ST_Y(ST_PointOnSurface(u.frontage)) AS lat
        FROM frontage_unit u JOIN frontage_agreement a ON a.unit_id = u.id
        WHERE NOT ST_IsEmpty(u.frontage) AND a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on
        ORDER BY u.id LIMIT 1""")
    ).one()
    rid = _plan(conn, insp_settings, kind="announced")
    item = next(i for i in insp.checklist(conn) if i["category"] == "0503")  # 出店经营, a frontage duty
    conn.execute(sa.text("UPDATE inspection_checklist_item SET found = 0.2, overdue = 0.5, repeat = 1 WHERE id = :i"),
                 {"i": item["id"]})  # fmt: skip
    case = _find(
        conn, insp_settings, insp_deployment, rid, point=(unit.segment_id, unit.lon, unit.lat), item=item["id"]
    )
    routed = conn.execute(sa.text("SELECT frontage_unit_id FROM report WHERE id = :i"), {"i": case.id}).scalar()
    assert routed == unit.id
    conn.execute(sa.text("UPDATE report SET due_at = now() + interval '1 day' WHERE id = :i"), {"i": case.id})
    manager = find_user(conn, "manager")
    scope = Scope(manager.id, _today(insp_settings))
    summary = insp.end_round(conn, manager.actor("test"), scope, rid)
    table = insp.round_score_table(conn, scope, rid).set_index(["unit_kind", "unit_id"])
    repeat = conn.execute(sa.text("SELECT repeat_of_id IS NOT NULL FROM inspection_finding WHERE report_id = :i"),
                          {"i": case.id}).scalar()  # fmt: skip
    assert table.loc[("frontage", unit.id), "score"] == pytest.approx(100 - 0.2 - (1 if repeat else 0))
    others = table.xs("frontage", level="unit_kind").drop(index=unit.id)
    assert len(others) == summary["frontage"] - 1 > 0 and (others["score"] == 100).all()
    got = get_unit(conn, insp_settings, unit.id)["inspection_scores"]
    assert [r["round_id"] for r in got][:1] == [rid]


def test_checklist_update_is_all_or_nothing(conn):
    manager = find_user(conn, "manager")
    items = insp.checklist(conn)
    a, b = items[0]["id"], items[1]["id"]
    with pytest.raises(InputError) as err:
        insp.update_checklist(conn, manager.actor("test"), {
            f"found_{a}": "0.3", f"overdue_{a}": "0.5", f"repeat_{a}": "1", f"active_{a}": "on",
            f"found_{b}": "-1", f"overdue_{b}": "abc", f"repeat_{b}": "101", f"active_{b}": "on"})  # fmt: skip
    assert "must be a number" in str(err.value) and "at most 100" in str(err.value)
    assert insp.checklist(conn)[0]["found"] == items[0]["found"]  # the good row was not written either
    n = insp.update_checklist(conn, manager.actor("test"), {
        f"found_{a}": "0.3", f"overdue_{a}": "0.5", f"repeat_{a}": "1", f"active_{a}": "on"})  # fmt: skip
    assert n == 1 and insp.checklist(conn)[0]["found"] == 0.3


def test_coverage_counts_findings_and_checkins(conn, insp_settings, insp_deployment):
    manager = find_user(conn, "manager")
    scope = Scope(manager.id, _today(insp_settings))
    start, end = insp.month_bounds(None, insp_settings)
    before = insp.coverage(conn, scope, insp_settings, start=start, end=end)
    cell = conn.execute(sa.text("SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                "FROM grid_cell ORDER BY id LIMIT 1")).one()  # fmt: skip
    assert not before["cells"].set_index("id").loc[cell[0], "visited"]
    inspector = find_user(conn, "wanggeyuan")
    out = insp.record_checkin(conn, inspector.actor("test"), lon=cell[1], lat=cell[2], client_id="checkin-test-01")
    assert out["created"] and out["cell"] is not None
    assert not insp.record_checkin(conn, inspector.actor("test"), lon=cell[1], lat=cell[2],
                                   client_id="checkin-test-01")["created"]  # fmt: skip
    after = insp.coverage(conn, scope, insp_settings, start=start, end=end)
    assert after["cells"].set_index("id").loc[cell[0], "visits"] == 1
    assert after["totals"]["cells_unvisited"] == before["totals"]["cells_unvisited"] - 1
    with pytest.raises(InputError):
        insp.record_checkin(conn, inspector.actor("test"), lon="abc", lat=200)
    with pytest.raises(InputError, match="like 2026-05"):
        insp.month_bounds("May", insp_settings)


def test_round_rule_in_sql_and_in_memory_agree_for_every_demo_account(conn, insp_settings, insp_deployment):
    import dataclasses

    from gisgrid.accounts import scope as sc
    from gisgrid.accounts import store as accounts

    manager = find_user(conn, "manager")
    rounds = [
        _plan(conn, insp_settings, kind="unannounced", sample=("cell", 5, 1)),
        _plan(conn, insp_settings, kind="announced", sample=("segment", 5, 2)),
        _plan(conn, insp_settings, kind="unannounced", inspectors=("wanggeyuan",)),
        _plan(conn, insp_settings, kind="unannounced", sample=("segment", 3, 3)),
    ]
    # a finding on the 段长's segment, outside the sample: once the round ends, the 段长 sees the round that scored them
    duanzhang = find_user(conn, "duanzhang")
    point = _segment_point(conn, owner=duanzhang.person_id)
    assert point[0] not in set(insp.round_targets(conn, rounds[3])["unit_id"])
    _find(conn, insp_settings, insp_deployment, rounds[3], point=point)
    assert not _seen_by(conn, insp_settings, "duanzhang", rounds[3])
    insp.end_round(conn, manager.actor("test"), Scope(manager.id, _today(insp_settings)), rounds[3])
    assert _seen_by(conn, insp_settings, "duanzhang", rounds[3])
    world = accounts.load_world(conn)
    facts = {}
    for rid in rounds:
        r = conn.execute(sa.text("SELECT kind, ended_at, jurisdiction_id FROM inspection_round WHERE id = :r"),
                         {"r": rid}).one()  # fmt: skip
        targets = conn.execute(sa.text("SELECT unit_kind, unit_id FROM inspection_target WHERE round_id = :r"),
                               {"r": rid}).all()  # fmt: skip
        targets += conn.execute(
            sa.text("""SELECT 'segment', segment_id FROM inspection_finding WHERE round_id = :r AND segment_id IS NOT NULL
                       UNION ALL SELECT 'cell', cell_id FROM inspection_finding WHERE round_id = :r AND cell_id IS NOT NULL"""),
            {"r": rid},
        ).all()
        inspectors = conn.execute(sa.text("SELECT user_id FROM inspection_inspector WHERE round_id = :r"),
                                  {"r": rid}).scalars()  # fmt: skip
        facts[rid] = sc.RoundFacts(
            kind=r.kind, ended=r.ended_at is not None, jurisdiction_id=r.jurisdiction_id,
            inspectors=frozenset(inspectors), segments=frozenset(u for k, u in targets if k == "segment"),
            cells=frozenset(u for k, u in targets if k == "cell"),
        )  # fmt: skip
    users = conn.execute(sa.text("SELECT id, username FROM user_account ORDER BY id")).all()
    seen_any = set()
    for uid, username in users:
        subject = dataclasses.replace(accounts.load_subject(conn, uid), user_id=uid)
        for rid in rounds:
            in_sql = _seen_by(conn, insp_settings, username, rid)
            assert in_sql == sc.round_visible(world, subject, _today(insp_settings), facts[rid]), (username, rid)
            seen_any.add((rid, in_sql))
    assert {(r, True) for r in rounds} <= seen_any and any(not v for _r, v in seen_any)
