"""An overdue case of a frontage unit (门前三包) climbs to its segment chief first (the unit's supervisor), then
二级街长 → 一级街长 → 总街长; a segment chief's own case climbs as before."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import find_user
from gisgrid.accounts.users import Actor
from gisgrid.cases import escalation, store, trail
from gisgrid.cases.intake import CaseInput
from gisgrid.cases.store import StepInput

# a unit with a valid agreement on a segment whose 段长 is a person
UNIT = """
SELECT u.id, u.person_id, u.segment_id, ST_X(ST_PointOnSurface(u.frontage)) AS lon,
       ST_Y(ST_PointOnSurface(u.frontage)) AS lat
FROM frontage_unit u JOIN frontage_agreement a ON a.unit_id = u.id
WHERE NOT ST_IsEmpty(u.frontage) AND u.person_id IS NOT NULL
  AND a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on
  AND EXISTS (SELECT 1 FROM owner_chain_on(CURRENT_DATE, ARRAY[u.segment_id]) ch
              WHERE ch.role = '段长' AND ch.person_id IS NOT NULL)
ORDER BY u.id LIMIT 1"""


@pytest.fixture()
def conn(case_engine):
    with case_engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()


def _step(conn, user, settings, case_id, action):
    version = conn.execute(sa.text("SELECT version FROM report WHERE id = :i"), {"i": case_id}).scalar()
    store.take_step(conn, user.actor("test"), user, Scope(user.id, dt.date.today()), settings, case_id, action,
                    StepInput(version=version))  # fmt: skip


def _escalated(conn, case_id):
    case = store.get_case(conn, Scope.everything(), case_id)
    return case["escalation_level"], case["escalated_person_id"]


def test_a_units_overdue_case_goes_to_its_segment_chief_first_then_up_the_chain(conn, deployment, case_settings):
    unit = conn.execute(sa.text(UNIT)).first()
    assert unit is not None, "the sample town has a unit with an agreement on a segment with a 段长"
    made = store.create_case(conn, Actor.system("test"), deployment, case_settings,
                             CaseInput(lon=unit.lon, lat=unit.lat, crs="EPSG:4326", category="0503"))  # fmt: skip
    assert made.routing["rule"] == "frontage_unit"
    dispatcher = find_user(conn, "dispatcher")
    _step(conn, dispatcher, case_settings, made.id, "accept")
    _step(conn, dispatcher, case_settings, made.id, "dispatch")
    chain = dict(
        conn.execute(
            sa.text("SELECT role, person_id FROM owner_chain_on(CURRENT_DATE, ARRAY[:s]) WHERE person_id IS NOT NULL"),
            {"s": unit.segment_id},
        ).all()
    )
    now = trail.now(conn)
    # 4 h given, reported 5 h ago: overdue — the unit's supervisor, the segment chief, has it (not the 二级街长)
    conn.execute(
        sa.text("UPDATE report SET reported_at = :r, due_at = :d WHERE id = :i"),
        {"r": now - dt.timedelta(hours=5), "d": now - dt.timedelta(hours=1), "i": made.id},
    )
    escalation.escalate_overdue(conn, case_settings, now=now)
    assert _escalated(conn, made.id) == (1, chain["段长"])
    event = store.case_events(conn, Scope.everything(), made.id)[-1]
    assert event["action"] == "escalate" and event["detail"]["role"] == "段长"
    # then the usual chain, one multiple later each (escalation_multiples 1,2,3 → 1,2,3,4 for a unit's case);
    # a role nobody holds is passed to the nearest chief below who exists
    expected = chain["段长"]
    for level, role, hours in ((2, "二级街长", 4), (3, "一级街长", 8), (4, "总街长", 12)):
        escalation.escalate_overdue(conn, case_settings, now=now + dt.timedelta(hours=hours))
        expected = chain.get(role, expected)
        assert _escalated(conn, made.id) == (level, expected), role
    assert escalation.escalate_overdue(conn, case_settings, now=now + dt.timedelta(hours=40))["escalated"] == 0
    assert _escalated(conn, made.id)[0] == 4
    told = (
        conn.execute(
            sa.text("SELECT person_id FROM notification WHERE report_id = :i AND kind = 'escalated' ORDER BY id"),
            {"i": made.id},
        )
        .scalars()
        .all()
    )
    assert told[0] == chain["段长"] and len(told) == 4


def test_a_segment_chiefs_overdue_case_still_goes_to_the_second_level_chief_first(conn, deployment, case_settings):
    unit = conn.execute(sa.text(UNIT)).first()
    made = store.create_case(conn, Actor.system("test"), deployment, case_settings,
                             CaseInput(lon=unit.lon, lat=unit.lat, crs="EPSG:4326", category="0201"))  # fmt: skip
    assert made.routing["rule"] != "frontage_unit"
    dispatcher = find_user(conn, "dispatcher")
    _step(conn, dispatcher, case_settings, made.id, "accept")
    _step(conn, dispatcher, case_settings, made.id, "dispatch")
    chain = dict(
        conn.execute(
            sa.text("SELECT role, person_id FROM owner_chain_on(CURRENT_DATE, ARRAY[:s]) WHERE person_id IS NOT NULL"),
            {"s": unit.segment_id},
        ).all()
    )
    now = trail.now(conn)
    conn.execute(
        sa.text("UPDATE report SET reported_at = :r, due_at = :d WHERE id = :i"),
        {"r": now - dt.timedelta(hours=5), "d": now - dt.timedelta(hours=1), "i": made.id},
    )
    escalation.escalate_overdue(conn, case_settings, now=now)
    assert _escalated(conn, made.id) == (1, chain.get("二级街长", chain["段长"]))
    escalation.escalate_overdue(conn, case_settings, now=now + dt.timedelta(hours=40))
    assert _escalated(conn, made.id)[0] == 3
