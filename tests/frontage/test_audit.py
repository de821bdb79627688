"""The audit's frontage part on the sample towns: unanswered frontage of shopping streets, agreement problems,
overlapping frontages (none as derived; one after a planner's careless edit)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gisgrid.audit.store import frontage_audit


@pytest.fixture()
def conn(engine, town):
    with engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()


def test_the_frontage_audit_on_the_sample_towns(conn, settings):
    today = dt.date.today()
    result = frontage_audit(conn, settings, today=today)
    # the demo leaves empty shop fronts on its shopping streets: stretches nobody answers for, all on shopping streets
    assert len(result.frontage_gaps) > 0
    assert (result.frontage_gaps["length_m"] >= settings.frontage_gap_min_m).all()
    commercial = {
        r[0]
        for r in conn.execute(
            sa.text("SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id WHERE s.commercial")
        )
    }
    assert set(result.frontage_gaps["segment_id"]) <= commercial
    # every stretch names its segment, also where no unit stands (it showed "nan")
    assert result.frontage_gaps["segment"].notna().all()
    expected = conn.execute(
        sa.text("""SELECT count(*) FILTER (WHERE a.expires_on <= :d), count(*) FILTER (WHERE a.id IS NULL)
                   FROM frontage_unit u LEFT JOIN LATERAL (SELECT * FROM frontage_agreement fa WHERE fa.unit_id = u.id
                   ORDER BY fa.expires_on DESC LIMIT 1) a ON true WHERE u.segment_id IS NOT NULL"""),
        {"d": today},
    ).one()
    states = result.agreements["state"].value_counts()
    assert (states.get("expired", 0), states.get("none", 0)) == tuple(expected)
    assert states.get("expiring", 0) > 0
    assert result.frontage_overlaps.empty  # derived frontages never overlap
    assert any("expired" in line for line in result.summary_lines())


def test_overlapping_frontages_are_named(conn, settings):
    a, b = (
        conn.execute(
            sa.text("SELECT id FROM frontage_unit WHERE NOT ST_IsEmpty(frontage) ORDER BY segment_id, id LIMIT 2")
        )
        .scalars()
        .all()
    )
    conn.execute(sa.text("UPDATE frontage_unit SET frontage = (SELECT frontage FROM frontage_unit WHERE id = :a) "
                         "WHERE id = :b"), {"a": a, "b": b})  # fmt: skip
    result = frontage_audit(conn, settings)
    pairs = result.frontage_overlaps
    assert len(pairs) == 1 and {pairs["unit_a"][0], pairs["unit_b"][0]} == {a, b} and pairs["area_m2"][0] > 10


def test_the_audit_page_and_command_list_the_frontage_problems(client, town):
    page = client.get("/audit?jurisdiction=810006001")
    assert page.status_code == 200
    for section in ("gg-table-frontage_gaps", "gg-table-agreements", "gg-table-frontage_overlaps"):
        assert section in page.text
