"""The working calendar (official holidays and make-up days an admin entered) and stored deadlines.

Every place that stores reports computes ``due_at`` with
:func:`gisgrid.cases.workflow.deadlines` (vectorised); :func:`fill_due_at`
does it for reports already stored (the migration that added the column,
benchmarks and tests that load reports with ``COPY``).  The local time zone
of a report is its jurisdiction's (``timezone_at_point``), else the
``timezone`` setting.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.cases.workflow import WorkingTime, deadlines
from gisgrid.config import Settings
from gisgrid.errors import InputError
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)


def _any_jurisdiction_timezone(conn: sa.Connection) -> bool:
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM jurisdiction WHERE timezone IS NOT NULL)")).scalar())


# --- the calendar ----------------------------------------------------------------------------
def working_time(conn: sa.Connection, settings: Settings) -> WorkingTime:
    """The deployment's working time with the days an admin entered (``work_calendar_day``)."""
    days = dict(conn.execute(sa.text("SELECT day, workday FROM work_calendar_day")).all())
    years = [r[0] for r in conn.execute(sa.text("SELECT year FROM work_calendar_year"))]
    return WorkingTime.from_settings(settings, days=days, entered_years=years)


def uncovered_years(conn: sa.Connection, settings: Settings, *, today: dt.date | None = None) -> list[int]:
    """This year and next, where neither an admin's entry nor the calendar package knows the working days
    (they fall back to Monday–Friday): the admin and manager pages warn about them."""
    today = today or timeutil.local_today(settings.timezone)
    wt = working_time(conn, settings)
    return [y for y in (today.year, today.year + 1) if not wt.covers(y)]


def enter_calendar_year(
    conn: sa.Connection, actor: Actor, year: int, days: Iterable[tuple[dt.date, bool, str | None]]
) -> int:
    """Enter a year's official holidays (False) and make-up working days (True); they replace what was
    entered for that year before and override the calendar package.  Returns how many days were entered.

    A day of the year not listed is a working day Monday–Friday.
    """
    rows = [(d, bool(w), n) for d, w, n in days]
    if not 1900 < int(year) < 2200:
        raise InputError(N_("year %(year)s is not plausible", year=year))
    bad = [d.isoformat() for d, _w, _n in rows if d.year != int(year)]
    if bad:
        raise InputError(N_("days outside %(year)s: %(days)s", year=year, days=", ".join(bad[:5])))
    before = conn.execute(
        sa.text("SELECT count(*) FROM work_calendar_day WHERE extract(year FROM day) = :y"), {"y": year}
    ).scalar()
    conn.execute(sa.text("DELETE FROM work_calendar_day WHERE extract(year FROM day) = :y"), {"y": year})
    if rows:
        conn.execute(
            sa.text("INSERT INTO work_calendar_day (day, workday, note) VALUES (:d, :w, :n)"),
            [{"d": d, "w": w, "n": n} for d, w, n in rows],
        )
    conn.execute(
        sa.text("""
        INSERT INTO work_calendar_year (year, entered_by) VALUES (:y, :by)
        ON CONFLICT (year) DO UPDATE SET entered_by = EXCLUDED.entered_by, entered_at = now()"""),
        {"y": year, "by": actor.name},
    )
    record_action(
        conn,
        actor,
        "calendar.enter",
        target_type="calendar",
        target_id=year,
        before={"days": before},
        after={"holidays": sum(1 for r in rows if not r[1]), "workdays": sum(1 for r in rows if r[1])},
    )
    return len(rows)


def calendar_entries(conn: sa.Connection) -> pd.DataFrame:
    """The entered years with their days (year, entered_by, entered_at, holidays, workdays)."""
    return pd.read_sql_query(
        sa.text("""
        SELECT y.year, y.entered_by, y.entered_at,
               count(d.day) FILTER (WHERE NOT d.workday) AS holidays, count(d.day) FILTER (WHERE d.workday) AS workdays
        FROM work_calendar_year y LEFT JOIN work_calendar_day d ON extract(year FROM d.day) = y.year
        GROUP BY y.year ORDER BY y.year"""),
        conn,
    )


# --- stored deadlines ------------------------------------------------------------------------
def fill_due_at(
    conn: sa.Connection, settings: Settings, *, where: str = "r.due_at IS NULL", params=None, calendar=None
) -> int:
    """Set ``due_at`` of the stored reports matching ``where`` (on ``report r``); returns how many were updated.

    ``calendar`` is the working time to count in (default :func:`working_time`, with the days an admin
    entered; migration 0008 passes the settings' own, its schema having no entered days yet).

    One read, :func:`~gisgrid.cases.workflow.deadlines` over all of them, one
    ``UPDATE … FROM unnest(…)``.
    """
    tz_sql = "timezone_at_point(r.geom)" if _any_jurisdiction_timezone(conn) else "NULL"
    frame = pd.read_sql_query(
        sa.text(f"""
        SELECT r.id, r.reported_at, c.deadline_hours, COALESCE(c.working_time, false) AS working_time,
               {tz_sql} AS tz
        FROM report r JOIN category c ON c.id = r.category_id
        WHERE c.deadline_hours IS NOT NULL AND r.reported_at IS NOT NULL AND ({where})"""),
        conn,
        params=params or {},
    )
    if frame.empty:
        return 0
    due = deadlines(
        pd.to_datetime(frame["reported_at"], utc=True),
        frame["deadline_hours"],
        frame["working_time"],
        calendar=calendar if calendar is not None else working_time(conn, settings),
        tz=frame["tz"].fillna(settings.timezone).astype(str).to_numpy(),
    )
    ok = due.notna().to_numpy()
    ids = frame["id"].to_numpy(dtype=np.int64)[ok]
    when = due[ok].dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").tolist()
    conn.execute(
        sa.text("""
        UPDATE report r SET due_at = u.due_at
        FROM unnest(CAST(:ids AS integer[]), CAST(:due AS timestamptz[])) AS u(id, due_at) WHERE r.id = u.id"""),
        {"ids": ids.tolist(), "due": when},
    )
    LOGGER.info("deadline set on %d stored reports", len(ids))
    return int(len(ids))
