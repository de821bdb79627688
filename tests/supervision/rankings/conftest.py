"""A hand-built county for the ranking tests: one town, one community, two streets, three people, a department
and a dozen cases with known dates (fixture data; expected figures are worked out by hand in the tests)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.conftest import scratch_database

TZ = "Asia/Shanghai"


def local(text: str) -> str:
    """A local time in the fixture's zone as a timestamptz literal."""
    return f"{text}+08:00"


SQUARE = "ST_Multi(ST_GeomFromText('POLYGON((114 22, 114.02 22, 114.02 22.02, 114 22.02, 114 22))', 4326))"
#: (id, owner column, owner id, segment, reported, due, closed, status, rework, recurrence_of)
CASES = (
    # person 1 (A), segment 1 of street 1
    (1, "person", 1, 1, "2025-10-01 09:00", "2025-10-09 16:30", "2025-10-09 10:30", "closed", 0, None),
    (2, "person", 1, 1, "2025-11-03 09:00", "2025-11-03 13:00", "2025-11-03 15:00", "closed", 1, None),
    (3, "person", 1, 1, "2025-11-10 09:00", "2025-11-10 17:00", None, "suspended", 0, None),
    (4, "person", 1, 1, "2025-12-01 09:00", "2025-12-01 11:00", None, "dispatched", 0, None),
    # person 2 (B), segment 2 of street 1: closure 1, on time 1/2; case 6 is case 1's problem back
    (5, "person", 2, 2, "2025-10-13 09:00", "2025-10-13 17:00", "2025-10-13 10:00", "closed", 0, None),
    (6, "person", 2, 2, "2025-10-20 09:00", "2025-10-20 10:00", "2025-10-20 14:30", "closed", 0, 1),
    # person 3 (C), segment 3 of street 2: closure 1/2, on time 1/(2 − 1 suspended)
    (7, "person", 3, 3, "2025-10-14 09:00", "2025-10-14 17:00", "2025-10-14 11:00", "closed", 0, None),
    (8, "person", 3, 3, "2025-10-15 09:00", "2025-10-15 17:00", None, "suspended", 0, None),
    # department 1 (D), on street 2
    (9, "department", 1, 3, "2025-12-02 09:00", "2025-12-02 17:00", "2025-12-02 09:30", "closed", 0, None),
    # not filed cases, and one outside the quarter
    (10, "person", 1, 1, "2025-10-21 09:00", "2025-10-21 17:00", None, "rejected", 0, None),
    (11, "person", 2, 2, "2025-09-30 09:00", "2025-09-30 17:00", None, "dispatched", 0, None),
)


def build(conn: sa.Connection) -> None:
    conn.execute(
        sa.text(f"""
        INSERT INTO jurisdiction (id, code, level, name, parent_id, geom) VALUES
            (1, '440307', 'county', '测试区', NULL, {SQUARE}),
            (2, '440307001', 'town', '测试街道', 1, {SQUARE}),
            (3, '440307001001', 'community', '测试社区', 2, {SQUARE});
        INSERT INTO street (id, name, jurisdiction_id, geom) VALUES
            (1, '一号路', 2, ST_Multi(ST_GeomFromText('LINESTRING(114.001 22.005, 114.011 22.005)', 4326))),
            (2, '二号路', 2, ST_Multi(ST_GeomFromText('LINESTRING(114.001 22.010, 114.011 22.010)', 4326)));
        INSERT INTO segment (id, street_id, name, length_m, geom) VALUES
            (1, 1, '一号路1段', 500, ST_GeomFromText('LINESTRING(114.001 22.005, 114.006 22.005)', 4326)),
            (2, 1, '一号路2段', 500, ST_GeomFromText('LINESTRING(114.006 22.005, 114.011 22.005)', 4326)),
            (3, 2, '二号路', 1000, ST_GeomFromText('LINESTRING(114.001 22.010, 114.011 22.010)', 4326));
        INSERT INTO person (id, name) VALUES (1, '甲'), (2, '乙'), (3, '丙');
        INSERT INTO department (id, code, name) VALUES (1, 'D1', '市政所');
        INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from) VALUES
            (1, 'segment', 1, '段长', '2025-01-01'), (2, 'segment', 2, '段长', '2025-01-01'),
            (3, 'segment', 3, '段长', '2025-01-01')""")
    )
    for cid, kind, oid, seg, rep, due, closed, status, rework, _rec in CASES:
        conn.execute(
            sa.text(f"""
            INSERT INTO report (id, reported_at, due_at, closed_at, status, rework_count, jurisdiction_id,
                                assigned_type, assigned_id, assigned_segment_id, assignee_{kind}_id, geom)
            VALUES (:id, CAST(:rep AS timestamptz), CAST(:due AS timestamptz), CAST(:closed AS timestamptz),
                    :status, :rework, 3, 'segment', :seg, :seg, :oid,
                    ST_SetSRID(ST_MakePoint(114.003 + :id * 0.0001, 22.005), 4326))"""),
            {"id": cid, "rep": local(rep), "due": local(due), "closed": local(closed) if closed else None,
             "status": status, "rework": rework, "seg": seg, "oid": oid},
        )  # fmt: skip
    for cid, *_rest, rec in CASES:
        if rec:
            conn.execute(sa.text("UPDATE report SET recurrence_of_id = :r WHERE id = :i"), {"r": rec, "i": cid})
    for table in ("jurisdiction", "street", "segment", "person", "department", "report"):
        conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100)"))


@pytest.fixture(scope="module")
def rank_db(server_url):
    """(url, engine) of the hand-built county."""
    with scratch_database(server_url, "rank", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            build(conn)
        yield url, engine
        engine.dispose()


@pytest.fixture(scope="module")
def rank_engine(rank_db):
    return rank_db[1]


@pytest.fixture()
def quarter():
    from gisgrid.supervision.indicators import parse_period

    return parse_period("2025-Q4", TZ)


__all__ = ["TZ", "dt"]


@pytest.fixture(scope="module")
def rank_app(rank_db, settings):
    from gisgrid.web import create_app

    return create_app({"TESTING": True, "DATABASE_URL": rank_db[0], "GISGRID_SETTINGS": settings})
