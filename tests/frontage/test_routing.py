"""Routing of frontage-duty reports: to the unit when it holds a valid agreement, else to the segment chief."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.cases.intake import CaseInput
from gisgrid.cases.store import create_case
from gisgrid.routing.store import load_deployment

UNITS = """
SELECT u.id, u.name, u.person_id, u.segment_id, ST_X(ST_PointOnSurface(u.frontage)) AS lon,
       ST_Y(ST_PointOnSurface(u.frontage)) AS lat
FROM frontage_unit u JOIN frontage_agreement a ON a.unit_id = u.id
WHERE NOT ST_IsEmpty(u.frontage) AND {cond}
ORDER BY u.id LIMIT 1"""


@pytest.fixture()
def conn(engine, town):
    with engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()


def _unit(conn, cond):
    return conn.execute(sa.text(UNITS.format(cond=cond))).first()


def _case(conn, settings, unit, category):
    deployment = load_deployment(conn, settings)
    made = create_case(conn, Actor.system("test"), deployment, settings,
                       CaseInput(lon=unit.lon, lat=unit.lat, crs="EPSG:4326", category=category))  # fmt: skip
    row = conn.execute(
        sa.text("""SELECT r.assignee_person_id, r.frontage_unit_id, r.assigned_segment_id, c.rule, c.chain, c.reason
                   FROM report r JOIN report_current c ON c.report_id = r.id WHERE r.id = :id"""),
        {"id": made.id},
    ).first()
    return made, row


def _segment_chief(conn, segment_id):
    return conn.execute(
        sa.text("""SELECT person_id FROM owner_on(CURRENT_DATE) WHERE target_type = 'segment' AND target_id = :s
                   AND role = '段长'"""),
        {"s": segment_id},
    ).scalar()


def test_a_frontage_duty_report_goes_to_the_unit_with_the_chief_supervising(conn, settings):
    unit = _unit(conn, "a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on")
    made, row = _case(conn, settings, unit, "0503")  # 出店经营
    assert row.rule == "frontage_unit"
    assert row.assignee_person_id == unit.person_id
    assert row.frontage_unit_id == unit.id
    assert row.assigned_segment_id == unit.segment_id  # the case stays on the segment: its chief supervises
    assert row.chain.startswith("门前三包 " + unit.name) and "段长" in row.chain
    assert made.routing["supervisor"]  # the segment chief, named in the explanation


def test_a_unit_without_a_valid_agreement_leaves_the_report_with_the_chief(conn, settings):
    unit = _unit(
        conn,
        "a.expires_on <= CURRENT_DATE AND NOT EXISTS (SELECT 1 FROM frontage_agreement b WHERE b.unit_id = u.id "
        "AND b.expires_on > CURRENT_DATE)",
    )
    made, row = _case(conn, settings, unit, "0104")  # 门前乱堆垃圾
    assert row.rule != "frontage_unit"
    assert row.frontage_unit_id is None
    assert "agreement expired" in row.reason and unit.name in row.reason and "segment chief" in row.reason
    assert row.assignee_person_id == _segment_chief(conn, unit.segment_id)


def test_other_categories_ignore_frontages(conn, settings):
    unit = _unit(conn, "a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on")
    _made, row = _case(conn, settings, unit, "0201")  # fly-posting: the segment chief's
    assert row.rule == "segment_area" and row.frontage_unit_id is None
    assert row.assignee_person_id == _segment_chief(conn, unit.segment_id)


def test_the_assign_api_explains_the_unit_step(client, engine, town):
    with engine.connect() as conn:
        unit = _unit(conn, "a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on")
    got = client.post("/api/assign", json={"lon": unit.lon, "lat": unit.lat, "category": "0503"}).get_json()
    assert (
        got["rule"] == "frontage_unit"
        and got["frontage_unit_id"] == unit.id
        and got["owner_person_id"] == unit.person_id
    )
    other = client.post("/api/assign", json={"lon": unit.lon, "lat": unit.lat, "category": "0201"}).get_json()
    assert other["rule"] == "segment_area" and other["frontage_unit_id"] is None
