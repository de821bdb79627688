"""The case loop on real PostGIS: intake, every step by the right person, refusals, concurrency, escalation,
visibility, duplicates, merging and reopening."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import find_user
from gisgrid.accounts.users import Actor
from gisgrid.cases import calendar as case_calendar
from gisgrid.cases import escalation as case_escalation
from gisgrid.cases import lists as case_lists
from gisgrid.cases import store
from gisgrid.cases import trail as case_trail
from gisgrid.cases.intake import CaseInput, parse_case_input
from gisgrid.cases.photos import store_photo
from gisgrid.cases.store import StepInput
from gisgrid.cases.workflow import RoleRefused, TransitionRefused
from gisgrid.errors import Conflict, Forbidden, InputError, NotFound


def _user(conn, name):
    return find_user(conn, name)


def _scope(user):
    return Scope(user.id, dt.date.today())


def _point_of_segment(conn, *, person_id=None, not_street_of=None, not_person=None):
    """The midpoint of a segment's centerline: one owned by ``person_id`` (段长), or one on another street."""
    if person_id is not None:
        where = "a.person_id = :p"
    else:
        where = (
            "a.person_id <> :np AND g.street_id NOT IN (SELECT g2.street_id FROM segment g2 JOIN owner_assignment a2 "
            "ON a2.target_type = 'segment' AND a2.target_id = g2.id AND a2.role = '段长' AND a2.person_id = :ns)"
        )
    row = conn.execute(
        sa.text(f"""
        SELECT g.id, ST_X(ST_LineInterpolatePoint(g.geom, 0.5)) AS lon, ST_Y(ST_LineInterpolatePoint(g.geom, 0.5)) AS lat
        FROM segment g JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id AND a.role = '段长'
        WHERE {where} AND a.valid_to IS NULL AND g.area IS NOT NULL ORDER BY g.length_m DESC LIMIT 1"""),
        {"p": person_id, "np": not_person, "ns": not_street_of},
    ).one()
    return row


@pytest.fixture()
def conn(case_engine):
    """A transaction rolled back after the test: cases made here do not leak into other tests."""
    with case_engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()


@pytest.fixture()
def people(conn):
    return {n: _user(conn, n) for n in ("clerk", "dispatcher", "duanzhang", "inspector", "manager", "erjijiezhang")}


def _photo(settings, colour=(200, 40, 40)):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "JPEG")
    return store_photo(buf.getvalue(), settings.var_dir, max_bytes=10**6, max_pixels=10**7, thumb_px=32)


def _new_case(conn, people, deployment, settings, *, category="0101", client_id=None, point=None, who="clerk"):
    pt = point or _point_of_segment(conn, person_id=people["duanzhang"].person_id)
    data = CaseInput(lon=pt.lon, lat=pt.lat, crs="EPSG:4326", category=category, description="路边垃圾 <b>堆放</b>",
                     client_id=client_id)  # fmt: skip
    return store.create_case(conn, people[who].actor("test"), deployment, settings, data)


def _step(conn, people, settings, who, case_id, action, **fields):
    user = people[who]
    version = conn.execute(sa.text("SELECT version FROM report WHERE id = :i"), {"i": case_id}).scalar()
    photos = fields.pop("photos", ())
    return store.take_step(
        conn, user.actor("test"), user, _scope(user), settings, case_id, action,
        StepInput(version=fields.pop("version", version), **fields), photos=photos,
    )  # fmt: skip


def test_intake_routes_the_case_to_the_segment_chief_with_its_deadline_and_explanation(
    conn, people, deployment, case_settings
):
    made = _new_case(conn, people, deployment, case_settings)
    assert made.created and made.status == "reported"
    assert made.routing["rule"] == "segment_area" and made.routing["target_type"] == "segment"
    case = store.get_case(conn, Scope.everything(), made.id)
    assert case["assignee_person_id"] == people["duanzhang"].person_id
    assert case["reporter_user_id"] == people["clerk"].id
    # 暴露垃圾: 4 hours in calendar time, from the moment it was taken in
    assert case["due_at"] - case["reported_at"] == dt.timedelta(hours=4)
    assert case["routing"]["rule"] == "segment_area" and case["routing"]["owner"]  # the routing explanation is kept
    events = store.case_events(conn, Scope.everything(), made.id)
    assert [(e["action"], e["to_status"], e["actor_name"]) for e in events] == [
        ("report", "reported", people["clerk"].name)
    ]
    audit = conn.execute(
        sa.text("SELECT actor_user_id FROM audit_log WHERE action = 'case.create' AND target_id = :i"),
        {"i": str(made.id)},
    ).scalar()
    assert audit == people["clerk"].id


def test_the_same_client_id_twice_makes_one_case(conn, people, deployment, case_settings):
    key = f"phone-{uuid.uuid4()}"
    first = _new_case(conn, people, deployment, case_settings, client_id=key)
    second = _new_case(conn, people, deployment, case_settings, client_id=key)
    assert first.created and not second.created and second.id == first.id
    assert conn.execute(sa.text("SELECT count(*) FROM report WHERE client_id = :k"), {"k": key}).scalar() == 1


def test_a_case_outside_every_area_is_kept_unassigned_in_the_dispatchers_queue(conn, people, deployment, case_settings):
    town = conn.execute(sa.text("SELECT id FROM jurisdiction WHERE code = '440307001'")).scalar()
    data = CaseInput(lon=114.60, lat=22.95, crs="EPSG:4326", category="0101", description="far away")
    made = store.create_case(
        conn, people["clerk"].actor("t"), deployment, case_settings, data, fallback_jurisdiction_id=town
    )
    assert made.created and made.unassigned and made.routing["rule"] == "unassigned"
    dispatcher = people["dispatcher"]
    queue, total = case_lists.list_cases(
        conn, _scope(dispatcher), dispatcher, case_settings, view="queue", per_page=500
    )
    assert made.id in set(queue["id"]) and total >= 1
    # dispatching it without choosing an owner says why
    _step(conn, people, case_settings, "dispatcher", made.id, "accept")
    with pytest.raises(InputError, match="no routed owner"):
        _step(conn, people, case_settings, "dispatcher", made.id, "dispatch")
    done = _step(
        conn, people, case_settings, "dispatcher", made.id, "dispatch",
        owner=f"person:{people['duanzhang'].person_id}", reason="nearest chief takes it",
    )  # fmt: skip
    assert done["status"] == "dispatched" and done["assignee_person_id"] == people["duanzhang"].person_id


def test_bad_input_is_refused_with_a_clear_message(conn, people, deployment, case_settings):
    pt = _point_of_segment(conn, person_id=people["duanzhang"].person_id)
    with pytest.raises(InputError, match="unknown category 'nope'"):
        store.create_case(
            conn, people["clerk"].actor("t"), deployment, case_settings,
            CaseInput(lon=pt.lon, lat=pt.lat, crs="EPSG:4326", category="nope"),
        )  # fmt: skip
    with pytest.raises(InputError, match="swapped"):
        store.create_case(
            conn, people["clerk"].actor("t"), deployment, case_settings,
            CaseInput(lon=pt.lat, lat=pt.lon, crs="EPSG:4326", category="0101"),
        )  # fmt: skip
    with pytest.raises(InputError) as info:
        parse_case_input({"lon": "east", "category": "", "description": "x" * 3000, "client_id": "short"})
    text = str(info.value)
    assert "lon must be a number" in text and "description has 3000 characters" in text and "client_id" in text


def test_the_whole_loop_from_intake_to_closed_by_the_right_people(conn, people, deployment, case_settings):
    made = _new_case(conn, people, deployment, case_settings)
    cid = made.id
    assert _step(conn, people, case_settings, "dispatcher", cid, "accept")["status"] == "accepted"
    assert _step(conn, people, case_settings, "dispatcher", cid, "dispatch")["status"] == "dispatched"
    inbox = case_trail.inbox(conn, people["duanzhang"], _scope(people["duanzhang"]))
    assert (inbox["report_id"] == cid).any() and set(inbox.loc[inbox["report_id"] == cid, "kind"]) == {"assigned"}
    mine, _ = case_lists.list_cases(conn, _scope(people["duanzhang"]), people["duanzhang"], case_settings, view="mine")
    assert cid in set(mine["id"])
    with pytest.raises(InputError, match="after' photo"):
        _step(conn, people, case_settings, "duanzhang", cid, "handle", note="cleaned up")
    handled = _step(conn, people, case_settings, "duanzhang", cid, "handle", note="cleaned up",
                    photos=[_photo(case_settings)])  # fmt: skip
    assert handled["status"] == "handled"
    closed = _step(conn, people, case_settings, "inspector", cid, "verify_pass")
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    events = store.case_events(conn, Scope.everything(), cid)
    assert [(e["action"], e["from_status"], e["to_status"]) for e in events] == [
        ("report", None, "reported"),
        ("accept", "reported", "accepted"),
        ("dispatch", "accepted", "dispatched"),
        ("handle", "dispatched", "handled"),
        ("verify_pass", "handled", "closed"),
    ]
    assert [e["actor_name"] for e in events[1:]] == [
        people[n].name for n in ("dispatcher", "dispatcher", "duanzhang", "inspector")
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5]
    photos = store.case_photos(conn, Scope.everything(), cid)
    assert [p["kind"] for p in photos] == ["after"] and photos[0]["event_id"] == events[3]["id"]


def test_refused_steps_name_the_state_and_the_role(conn, people, deployment, case_settings):
    cid = _new_case(conn, people, deployment, case_settings).id
    with pytest.raises(
        RoleRefused,
        match=r"the step Accept the case on a case that is reported is for dispatcher, not for clerk",
    ):
        _step(conn, people, case_settings, "clerk", cid, "accept")
    with pytest.raises(TransitionRefused, match=r"cannot take the step Handled on a case that is reported"):
        _step(conn, people, case_settings, "duanzhang", cid, "handle", note="x")
    with pytest.raises(InputError, match=r"the step Reject the report needs a reason"):
        _step(conn, people, case_settings, "dispatcher", cid, "reject")
    rejected = _step(conn, people, case_settings, "dispatcher", cid, "reject", reason="not a public space")
    assert rejected["status"] == "rejected" and not rejected["is_open"]


def test_the_second_of_two_simultaneous_actors_gets_409_and_loses_nothing(case_engine, case_settings, deployment):
    with case_engine.begin() as c:
        people = {n: _user(c, n) for n in ("clerk", "dispatcher", "duanzhang")}
        cid = _new_case(c, people, deployment, case_settings).id
    dispatcher = people["dispatcher"]
    first_in = threading.Event()
    outcome = {}

    def second():
        first_in.wait(10)
        try:
            with case_engine.begin() as c2:  # waits on the row lock, then sees the new version
                store.take_step(c2, dispatcher.actor("b"), dispatcher, _scope(dispatcher), case_settings, cid,
                                "reject", StepInput(version=1, reason="duplicate"))  # fmt: skip
        except Conflict as exc:
            outcome["conflict"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    try:
        with case_engine.begin() as c1:
            store.take_step(c1, dispatcher.actor("a"), dispatcher, _scope(dispatcher), case_settings, cid, "accept",
                            StepInput(version=1))  # fmt: skip
            first_in.set()
            threading.Event().wait(0.5)  # the second actor is now blocked on the row
    finally:
        thread.join(20)
    assert "conflict" in outcome and outcome["conflict"].http_status_code == 409
    assert "now accepted (version 2" in str(outcome["conflict"])
    with case_engine.begin() as c:
        row = c.execute(sa.text("SELECT status, version FROM report WHERE id = :i"), {"i": cid}).one()
        steps = c.execute(sa.text("SELECT action FROM case_event WHERE report_id = :i ORDER BY id"), {"i": cid}).all()
        c.execute(sa.text("DELETE FROM report WHERE id = :i"), {"i": cid})
    assert tuple(row) == ("accepted", 2) and [s[0] for s in steps] == ["report", "accept"]


def test_a_chief_sees_only_their_cases_and_gets_404_for_anothers(conn, people, deployment, case_settings):
    duanzhang = people["duanzhang"]
    mine = _new_case(conn, people, deployment, case_settings).id
    other_pt = _point_of_segment(conn, not_person=duanzhang.person_id, not_street_of=duanzhang.person_id)
    other = _new_case(conn, people, deployment, case_settings, point=other_pt).id
    scope = _scope(duanzhang)
    assert store.get_case(conn, scope, mine)["id"] == mine
    with pytest.raises(NotFound):
        store.get_case(conn, scope, other)
    with pytest.raises(NotFound):
        store.case_events(conn, scope, other)
    listed, _ = case_lists.list_cases(conn, scope, duanzhang, case_settings, view="all", per_page=500)
    assert mine in set(listed["id"]) and other not in set(listed["id"])
    # a step on a case out of sight is a 404 too, never a 403 that would tell it exists
    for action in ("accept", "dispatch"):
        _step(conn, people, case_settings, "dispatcher", other, action)
    with pytest.raises(NotFound):
        _step(conn, people, case_settings, "duanzhang", other, "handle", note="x", photos=[_photo(case_settings)])


def test_the_handler_cannot_verify_their_own_work_and_a_failed_check_is_rework(conn, people, deployment, case_settings):
    cid = _new_case(conn, people, deployment, case_settings).id
    for who, action in (("dispatcher", "accept"), ("dispatcher", "dispatch")):
        _step(conn, people, case_settings, who, cid, action)
    _step(conn, people, case_settings, "duanzhang", cid, "handle", note="done", photos=[_photo(case_settings)])
    failed = _step(conn, people, case_settings, "inspector", cid, "verify_fail", reason="still garbage on the corner")
    assert failed["status"] == "dispatched" and failed["rework_count"] == 1
    _step(conn, people, case_settings, "duanzhang", cid, "handle", note="done again", photos=[_photo(case_settings)])
    grid_worker = people["inspector"]
    # the one who handled it (here made a patrol member for the test) cannot sign it off
    with pytest.raises(Forbidden, match="cannot verify"):
        conn.execute(
            sa.text("UPDATE case_event SET actor_person_id = :p WHERE report_id = :i AND action = 'handle'"),
            {"p": grid_worker.person_id, "i": cid},
        )
        _step(conn, people, case_settings, "inspector", cid, "verify_pass")


def test_not_ours_goes_back_to_the_dispatcher_and_an_override_needs_a_reason(conn, people, deployment, case_settings):
    cid = _new_case(conn, people, deployment, case_settings).id
    _step(conn, people, case_settings, "dispatcher", cid, "accept")
    _step(conn, people, case_settings, "dispatcher", cid, "dispatch")
    returned = _step(
        conn, people, case_settings, "duanzhang", cid, "return", reason="this is the river authority's bank"
    )
    assert returned["status"] == "returned"
    queue, _ = case_lists.list_cases(
        conn, _scope(people["dispatcher"]), people["dispatcher"], case_settings, view="queue", per_page=500
    )
    assert cid in set(queue["id"])
    told = case_trail.inbox(conn, people["dispatcher"], _scope(people["dispatcher"]))
    assert ((told["report_id"] == cid) & (told["kind"] == "returned")).any()  # the dispatcher is told
    dept = conn.execute(sa.text("SELECT id FROM department WHERE code = 'water'")).scalar()
    with pytest.raises(InputError, match="needs a reason"):
        _step(conn, people, case_settings, "dispatcher", cid, "dispatch", owner=f"department:{dept}")
    done = _step(conn, people, case_settings, "dispatcher", cid, "dispatch", owner=f"department:{dept}",
                 reason="river bank: water authority")  # fmt: skip
    assert done["assignee_department_id"] == dept and done["assignee_person_id"] is None
    event = store.case_events(conn, Scope.everything(), cid)[-1]
    assert event["detail"]["override"] and event["reason"] == "river bank: water authority"


def test_overdue_cases_escalate_up_the_chain_and_the_chief_above_sees_them(conn, people, deployment, case_settings):
    made = _new_case(conn, people, deployment, case_settings)
    cid = made.id
    _step(conn, people, case_settings, "dispatcher", cid, "accept")
    _step(conn, people, case_settings, "dispatcher", cid, "dispatch")
    now = case_trail.now(conn)
    # reported 5 h ago with 4 h given: overdue, past 1× → 二级街长
    conn.execute(
        sa.text("UPDATE report SET reported_at = :r, due_at = :d WHERE id = :i"),
        {"r": now - dt.timedelta(hours=5), "d": now - dt.timedelta(hours=1), "i": cid},
    )
    seg = conn.execute(sa.text("SELECT assigned_segment_id FROM report WHERE id = :i"), {"i": cid}).scalar()
    chain = dict(
        conn.execute(sa.text("SELECT role, person_id FROM owner_chain_on(CURRENT_DATE, ARRAY[:s])"), {"s": seg}).all()
    )
    out = case_escalation.escalate_overdue(conn, case_settings, now=now)
    assert out["escalated"] >= 1
    case = store.get_case(conn, Scope.everything(), cid)
    expected = chain.get("二级街长") or chain.get("段长")
    assert case["escalation_level"] == 1 and case["escalated_person_id"] == expected
    event = store.case_events(conn, Scope.everything(), cid)[-1]
    assert event["action"] == "escalate" and event["actor_name"] == case_escalation.SYSTEM_ACTOR.name
    assert event["detail"]["to_level"] == 1
    # running again changes nothing; at 3× the 总街长 has it
    assert case_escalation.escalate_overdue(conn, case_settings, now=now)["escalated"] == 0
    case_escalation.escalate_overdue(conn, case_settings, now=now + dt.timedelta(hours=8))
    case = store.get_case(conn, Scope.everything(), cid)
    assert case["escalation_level"] == 3
    top = chain.get("总街长") or chain.get("一级街长") or expected
    assert case["escalated_person_id"] == top
    chief = conn.execute(sa.text("SELECT u.id FROM user_account u WHERE u.person_id = :p LIMIT 1"), {"p": top}).scalar()
    if chief is not None:  # the demo account of that chief, if there is one, finds it in their own list and inbox
        from gisgrid.accounts.store import get_user

        user = get_user(conn, chief)
        mine, _ = case_lists.list_cases(conn, _scope(user), user, case_settings, view="mine", per_page=500)
        assert cid in set(mine["id"])
        inbox = case_trail.inbox(conn, user, _scope(user))
        assert ((inbox["report_id"] == cid) & (inbox["kind"] == "escalated")).any()


def test_a_deadline_near_is_told_once(conn, people, deployment, case_settings):
    cid = _new_case(conn, people, deployment, case_settings).id
    _step(conn, people, case_settings, "dispatcher", cid, "accept")
    _step(conn, people, case_settings, "dispatcher", cid, "dispatch")
    now = case_trail.now(conn)
    conn.execute(
        sa.text("UPDATE report SET reported_at = :r, due_at = :d WHERE id = :i"),
        {"r": now - dt.timedelta(hours=3, minutes=30), "d": now + dt.timedelta(minutes=30), "i": cid},
    )
    assert case_escalation.warn_deadlines(conn, case_settings, now=now) >= 1
    assert case_escalation.warn_deadlines(conn, case_settings, now=now) == 0
    inbox = case_trail.inbox(conn, people["duanzhang"], _scope(people["duanzhang"]), unread_only=True)
    assert ((inbox["report_id"] == cid) & (inbox["kind"] == "deadline_near")).any()
    assert case_trail.mark_read(conn, people["duanzhang"]) >= 2
    assert case_trail.unread_count(conn, people["duanzhang"]) == 0


def test_duplicates_are_offered_and_merged_reports_follow_their_case(conn, people, deployment, case_settings):
    first = _new_case(conn, people, deployment, case_settings)
    second = _new_case(conn, people, deployment, case_settings)
    assert first.id in [d["id"] for d in second.duplicates]
    assert all(d["distance_m"] <= case_settings.duplicate_radius_m for d in second.duplicates)
    other_category = _new_case(conn, people, deployment, case_settings, category="0201")
    assert first.id not in [d["id"] for d in other_category.duplicates]
    merged = _step(conn, people, case_settings, "dispatcher", second.id, "merge", into=first.id)
    assert merged["status"] == "merged" and merged["merged_into_id"] == first.id
    _step(conn, people, case_settings, "dispatcher", first.id, "accept")
    follower = store.get_case(conn, Scope.everything(), second.id)
    assert follower["case_status"] == "accepted"  # the reporter of the merged report sees the case's state
    case = store.get_case(conn, Scope.everything(), first.id)
    assert [m["id"] for m in case["merged"]] == [second.id]
    with pytest.raises(InputError, match="into itself"):
        _step(conn, people, case_settings, "dispatcher", other_category.id, "merge", into=other_category.id)


def test_reopening_a_closed_case_links_a_recurrence(conn, people, deployment, case_settings):
    cid = _new_case(conn, people, deployment, case_settings).id
    for who, action, extra in (
        ("dispatcher", "accept", {}),
        ("dispatcher", "dispatch", {}),
        ("duanzhang", "handle", {"note": "ok", "photos": [_photo(case_settings)]}),
        ("inspector", "verify_pass", {}),
    ):
        _step(conn, people, case_settings, who, cid, action, **extra)
    user = people["clerk"]
    version = conn.execute(sa.text("SELECT version FROM report WHERE id = :i"), {"i": cid}).scalar()
    store.take_step(conn, user.actor("t"), user, Scope.everything(), case_settings, cid, "reopen",
                    StepInput(version=version, reason="garbage is back"), deployment=deployment)  # fmt: skip
    old = store.get_case(conn, Scope.everything(), cid)
    assert old["status"] == "closed" and len(old["recurrences"]) == 1
    new = store.get_case(conn, Scope.everything(), old["recurrences"][0])
    assert new["recurrence_of_id"] == cid and new["status"] == "reported" and new["source"] == "reopen"


def test_a_manager_suspends_resumes_and_extends(conn, people, deployment, case_settings):
    cid = _new_case(conn, people, deployment, case_settings).id
    _step(conn, people, case_settings, "dispatcher", cid, "accept")
    _step(conn, people, case_settings, "dispatcher", cid, "dispatch")
    with pytest.raises(RoleRefused):
        _step(conn, people, case_settings, "duanzhang", cid, "extend", reason="x", hours=4)
    asked = _step(conn, people, case_settings, "duanzhang", cid, "request_extension", reason="needs a crane", hours=8)
    assert asked["status"] == "dispatched"
    told = case_trail.inbox(conn, people["manager"], _scope(people["manager"]))
    assert ((told["report_id"] == cid) & (told["kind"] == "extension")).any()  # the manager over the place is told
    before = asked["due_at"]
    extended = _step(conn, people, case_settings, "manager", cid, "extend", reason="crane booked", hours=8)
    assert extended["due_at"] == before + dt.timedelta(hours=8)  # 暴露垃圾 counts calendar hours
    suspended = _step(conn, people, case_settings, "manager", cid, "suspend", reason="road works")
    assert suspended["status"] == "suspended" and not suspended["overdue"]
    resumed = _step(conn, people, case_settings, "manager", cid, "resume")
    assert resumed["status"] == "dispatched" and resumed["due_at"] >= extended["due_at"]


def test_case_visibility_in_sql_matches_the_in_memory_rule(conn, people, deployment, case_settings):
    from gisgrid.accounts.scope import CaseFacts, case_visible
    from gisgrid.accounts.store import load_subject, load_world

    _new_case(conn, people, deployment, case_settings)
    world = load_world(conn)
    today = dt.date.today()
    cases = conn.execute(
        sa.text(
            "SELECT id, jurisdiction_id, assigned_type, assigned_id, assignee_person_id, assignee_department_id, "
            "escalated_person_id FROM report"
        )  # fmt: skip
    ).all()
    users = conn.execute(sa.text("SELECT id FROM user_account ORDER BY id")).scalars().all()
    assert len(users) >= 8 and len(cases) >= 30
    for uid in users:
        scope = Scope(uid, today)
        in_sql = set(
            conn.execute(sa.text(f"SELECT c.id FROM report c WHERE {scope.case_sql('c')}"), scope.params()).scalars()
        )
        subject = load_subject(conn, uid)
        in_memory = {c.id for c in cases if case_visible(world, subject, today, CaseFacts(*c[1:]))}
        assert in_sql == in_memory, uid


def test_actions_offered_are_the_allowed_ones(conn, people, deployment, case_settings):
    cid = _new_case(conn, people, deployment, case_settings).id
    case = store.get_case(conn, Scope.everything(), cid)
    assert store.actions_for(case, people["dispatcher"]) == ["accept", "reject", "merge"]
    assert store.actions_for(case, people["duanzhang"]) == []
    _step(conn, people, case_settings, "dispatcher", cid, "accept")
    _step(conn, people, case_settings, "dispatcher", cid, "dispatch")
    case = store.get_case(conn, Scope.everything(), cid)
    assert store.actions_for(case, people["duanzhang"]) == ["return", "handle", "request_extension"]
    assert store.actions_for(case, people["clerk"]) == []


def test_calendar_entered_by_an_admin_overrides_the_package_for_deadlines(conn, case_settings):
    admin = Actor.system("test admin")
    case_calendar.enter_calendar_year(
        conn, admin, 2027, [(dt.date(2027, 1, 1), False, "元旦"), (dt.date(2027, 1, 2), True, None)]
    )
    wt = case_calendar.working_time(conn, case_settings)
    assert not wt.is_workday(dt.date(2027, 1, 1)) and wt.is_workday(dt.date(2027, 1, 2))
    assert wt.is_workday(dt.date(2027, 1, 4)) and not wt.is_workday(dt.date(2027, 1, 3))
    assert 2027 not in case_calendar.uncovered_years(conn, case_settings, today=dt.date(2026, 12, 20))
    with pytest.raises(InputError, match="outside 2027"):
        case_calendar.enter_calendar_year(conn, admin, 2027, [(dt.date(2028, 1, 1), False, None)])
