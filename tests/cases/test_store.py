"""Stored deadlines and the SQL form of open / overdue agree with the in-memory rules."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, box

from gisgrid.analytics.store import ReportFilters, count_overdue, overdue
from gisgrid.cases.calendar import fill_due_at
from gisgrid.cases.workflow import WorkingTime, deadlines, open_mask, overdue_mask
from gisgrid.db import sql
from gisgrid.db.imports import import_file
from tests.conftest import scratch_database

CST = dt.timezone(dt.timedelta(hours=8))


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CST)


@pytest.fixture(scope="module")
def db(server_url):
    """A town, two categories (4 h; 8 working hours) and reports in every state."""
    with scratch_database(server_url, "cases", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO jurisdiction (code, level, name, metric_epsg, geom) "
                    "VALUES ('440399001', 'town', 'T', 4547, ST_GeomFromEWKT(:g))"
                ),
                {"g": "SRID=4326;" + shapely.to_wkt(MultiPolygon([box(114.18, 22.68, 114.22, 22.72)]))},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO category (code, name, kind, deadline_hours, working_time) VALUES "
                    "('0101', '暴露垃圾', 'event', 4, false), ('0201', '乱张贴', 'event', 8, true)"
                )
            )
            cats = dict(conn.execute(sa.text("SELECT code, id FROM category")).all())
            rows = [
                # (category, reported_at, status, closed_at)
                ("0101", local(2025, 9, 26, 17, 0), "reported", None),
                ("0101", local(2025, 9, 26, 17, 0), "closed", None),  # closed without a closing time
                ("0101", local(2025, 9, 26, 17, 0), "handled", local(2025, 9, 26, 18, 0)),  # closed_at, not closed
                ("0201", local(2025, 9, 26, 17, 0), "dispatched", None),  # due Sun 28 Sep 17:00 (调休)
                ("0201", local(2025, 9, 30, 10, 0), "accepted", None),  # due Thu 9 Oct 10:00 (National Day week)
                (None, local(2025, 9, 26, 17, 0), "reported", None),  # no category: no deadline
            ]
            for cat, at, status, closed in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO report (geom, category_id, reported_at, status, closed_at) "
                        "VALUES (ST_SetSRID(ST_MakePoint(114.2, 22.7), 4326), :c, :t, :s, :x)"
                    ),
                    {"c": cats.get(cat), "t": at, "s": status, "x": closed},
                )
        yield engine
        engine.dispose()


def _reports(conn) -> pd.DataFrame:
    return pd.read_sql_query(
        sa.text("""
        SELECT r.id, r.status, r.closed_at, r.reported_at, r.due_at, c.deadline_hours, c.working_time
        FROM report r LEFT JOIN category c ON c.id = r.category_id ORDER BY r.id"""),
        conn,
    )


def test_stored_deadlines_come_from_the_one_rule(db, settings):
    with db.begin() as conn:
        assert fill_due_at(conn, settings) == 5
        frame = _reports(conn)
    expected = deadlines(
        pd.to_datetime(frame["reported_at"], utc=True),
        frame["deadline_hours"],
        frame["working_time"].fillna(False),
        calendar=WorkingTime.from_settings(settings),
        tz=settings.timezone,
    )
    got = pd.to_datetime(frame["due_at"], utc=True)
    assert got.tolist()[:5] == expected.tolist()[:5]
    assert got.iloc[3] == pd.Timestamp(local(2025, 9, 28, 17, 0))
    assert got.iloc[4] == pd.Timestamp(local(2025, 10, 9, 10, 0))
    assert pd.isna(got.iloc[5])


@pytest.mark.parametrize(
    "now",
    [local(2025, 9, 26, 22, 0), local(2025, 9, 27, 12, 0), local(2025, 9, 29, 9, 0), local(2025, 10, 8, 12, 0)],
)
def test_open_and_overdue_sets_are_the_same_in_sql_and_in_memory(db, settings, now):
    with db.begin() as conn:
        fill_due_at(conn, settings)
        frame = _reports(conn)
        open_sql = {r[0] for r in conn.execute(sa.text(f"SELECT id FROM report r WHERE {sql.report_is_open('r')}"))}
        late_sql = {
            r[0]
            for r in conn.execute(
                sa.text(f"SELECT id FROM report r WHERE {sql.report_is_overdue('r', ':now')}"), {"now": now}
            )
        }
        late_map = set(overdue(conn, ReportFilters(), now=now)["id"])
        late_count = count_overdue(conn, ReportFilters(), now=now)
    assert open_sql == set(frame["id"][open_mask(frame["status"])])
    late_memory = set(frame["id"][overdue_mask(frame["status"], frame["due_at"], now)])
    assert late_sql == late_memory == late_map and late_count == len(late_memory)


def test_working_time_is_not_overdue_over_a_weekend(db, settings):
    """Reported Friday 17:00 with 8 working hours: on Saturday noon it is not late (the old formula said
    19 hours > 8 hours); after the Sunday make-up day's end it is."""
    with db.begin() as conn:
        fill_due_at(conn, settings)
        weekend = set(overdue(conn, ReportFilters(), now=local(2025, 9, 27, 12, 0))["id"])
        monday = set(overdue(conn, ReportFilters(), now=local(2025, 9, 29, 9, 0))["id"])
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM report ORDER BY id"))]
    assert ids[3] not in weekend and ids[3] in monday
    assert ids[0] in weekend  # the calendar-hours category is late after 4 hours
    assert ids[1] not in weekend and ids[2] in weekend  # closed is the status, not closed_at


def test_imported_reports_get_their_deadline_and_local_time(db, settings, tmp_path):
    """A time written without an offset is local time where the report is: here the jurisdiction's zone."""
    src = tmp_path / "reports.csv"
    src.write_text(
        "id,category,reported_at,lon,lat\nA1,0201,2025-09-30 10:00,114.2,22.7\nA2,0101,2025-09-30 10:00,114.2,22.7\n",
        encoding="utf-8",
    )
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE jurisdiction SET timezone = 'Europe/Helsinki'"))
        summary = import_file(conn, "reports", src, crs_name="EPSG:4326", settings=settings)
        rows = conn.execute(
            sa.text("SELECT external_id, reported_at, due_at FROM report WHERE external_id IN ('A1', 'A2') ORDER BY 1")
        ).all()
        conn.execute(sa.text("DELETE FROM report WHERE external_id IN ('A1', 'A2')"))
        conn.execute(sa.text("UPDATE jurisdiction SET timezone = NULL"))
    assert summary.inserted == 2
    helsinki = dt.timezone(dt.timedelta(hours=3))  # EEST
    assert rows[0].reported_at == dt.datetime(2025, 9, 30, 10, 0, tzinfo=helsinki)
    # 8 working hours from Tue 10:00 on China's calendar in Helsinki's working day: 1-8 Oct are holidays
    assert rows[0].due_at == dt.datetime(2025, 10, 9, 10, 0, tzinfo=helsinki)
    assert rows[1].due_at == dt.datetime(2025, 9, 30, 14, 0, tzinfo=helsinki)
