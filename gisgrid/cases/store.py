"""Cases against the database: the stored deadline (``report.due_at``) of reports.

Every place that stores reports computes ``due_at`` with
:func:`gisgrid.cases.workflow.deadlines` (vectorised); :func:`fill_due_at`
does it for reports already stored (the migration that added the column,
benchmarks and tests that load reports with ``COPY``).  The local time zone
of a report is its jurisdiction's (``timezone_at_point``), else the
``timezone`` setting.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gisgrid.cases.workflow import WorkingTime, deadlines
from gisgrid.config import Settings

LOGGER = logging.getLogger(__name__)


def _any_jurisdiction_timezone(conn: sa.Connection) -> bool:
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM jurisdiction WHERE timezone IS NOT NULL)")).scalar())


def fill_due_at(conn: sa.Connection, settings: Settings, *, where: str = "r.due_at IS NULL", params=None) -> int:
    """Set ``due_at`` of the stored reports matching ``where`` (on ``report r``); returns how many were updated.

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
        calendar=WorkingTime.from_settings(settings),
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
