"""The SQL form of the domain rules: function names and fragments that every store query uses.

The functions are created by migration ``0008``; this module is their one
Python entry point, so that no query writes a rule out again.  The in-memory
forms of the same rules live in :mod:`gisgrid.ownership.history` (owners),
:mod:`gisgrid.cases.workflow` (open, overdue, deadline) and
:mod:`gisgrid.timeutil` (the local day); tests cross-check each pair.

Fragments are text with named bind parameters (``:day`` …) chosen by the
caller; values are never formatted into the SQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import sqlalchemy as sa


@contextlib.contextmanager
def no_jit(conn: sa.Connection):
    """JIT off for the enclosed queries (restored after, transaction-local).

    PostGIS functions carry large cost estimates, so scans of many reports cross
    ``jit_above_cost`` and spend ~0.5 s compiling expressions that are dominated by
    the PostGIS calls anyway (measured at 1,000,000 reports with ``bench/map.py``);
    the visibility predicate of reports (:mod:`gisgrid.accounts.scope`) crosses it
    at a thousand reports and spends 2 s compiling a query that runs in 20 ms.
    """
    prev = conn.execute(sa.text("SELECT current_setting('jit', true)")).scalar()
    if prev is None:  # server without the setting
        yield
        return
    conn.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        conn.execute(sa.text("SELECT set_config('jit', :v, true)"), {"v": prev})


# --- owners ----------------------------------------------------------------------------------
def owner_on(day: str = ":day") -> str:
    """A row source of the owner assignments valid on ``day`` (a bind parameter or SQL date expression).

    Columns: ``id``, ``person_id``, ``department_id``, ``target_type``,
    ``target_id``, ``role``, ``valid_from``, ``valid_to``, ``owner_name``,
    ``owner_phone``, ``owner_kind`` (person/department), ``owner_key``
    (``person:N`` / ``department:N``).  Use as ``FROM {owner_on()} a``.
    """
    return f"owner_on(CAST({day} AS date))"


def owner_chain_on(day: str = ":day", segment_ids: str | None = None) -> str:
    """A row source of each segment's chain roles on ``day``: one row per (segment_id, role) held.

    Columns as :func:`owner_on` plus ``segment_id`` and ``level_rank`` (1
    segment, 2 street, 3–5 the street's jurisdiction and its ancestors).
    ``segment_ids`` names an ``integer[]`` bind parameter restricting the
    segments (all when None).
    """
    ids = f"CAST({segment_ids} AS integer[])" if segment_ids else "NULL"
    return f"owner_chain_on(CAST({day} AS date), {ids})"


def unit_has_owner(unit_type: str, unit_id: str, day: str = ":day") -> str:
    """Condition: the unit (``'segment'``/``'cell'`` literal or column, id expression) has an owner on ``day``.

    The rule (:mod:`gisgrid.ownership.history`): an assignment on the unit
    itself in its owning role (段长; 网格员 or 网格长), valid on the day.
    """
    return f"unit_has_owner({unit_type}, {unit_id}, CAST({day} AS date))"


def still_valid_after(alias: str = "a", day: str = ":d") -> str:
    """Condition: the assignment ``alias`` is still valid on or after ``day`` (open, or ending later).

    Used with ``valid_from < day`` to end assignments on a day (a retired
    cell, a rebuilt segment): they stop being valid from ``day`` on.
    """
    return f"({alias}.valid_to IS NULL OR {alias}.valid_to > {day})"


def end_assignments(conn: sa.Connection, where: str, params: dict, day: dt.date) -> tuple[int, int]:
    """End on ``day`` the assignments matching ``where`` (on ``owner_assignment a``); history is kept.

    Assignments that started before ``day`` get ``valid_to = day`` (they held
    until the day before); those starting on ``day`` or later never applied
    and are deleted.  Returns (ended, deleted).
    """
    params = {**params, "end_day": day}
    ended = conn.execute(
        sa.text(f"""
        UPDATE owner_assignment a SET valid_to = :end_day
        WHERE ({where}) AND a.valid_from < :end_day AND {still_valid_after("a", ":end_day")}"""),
        params,
    ).rowcount
    deleted = conn.execute(
        sa.text(f"DELETE FROM owner_assignment a WHERE ({where}) AND a.valid_from >= :end_day"), params
    ).rowcount
    return int(ended), int(deleted)


# --- reports: open, overdue ------------------------------------------------------------------
def report_is_open(alias: str = "r") -> str:
    """Condition: report ``alias`` is open — not closed (结案), rejected (不予立案) or merged into another case.

    The status is the record: ``closed_at`` only says when it was closed (and
    an imported closed report may lack it).  As :func:`gisgrid.cases.workflow.is_open`.
    """
    return f"({alias}.status NOT IN ('closed', 'rejected', 'merged'))"


def report_is_overdue(alias: str = "r", now: str = ":now") -> str:
    """Condition: report ``alias`` is open, not suspended (缓办), and its deadline ``due_at`` has passed at
    ``now`` (超时).

    As :func:`gisgrid.cases.workflow.is_overdue`; a report without a deadline
    is never overdue.
    """
    return (
        f"({report_is_open(alias)} AND {alias}.status <> 'suspended' AND {alias}.due_at < CAST({now} AS timestamptz))"
    )


# --- working time ---------------------------------------------------------------------------
def working_layout_params(layout: dict, prefix: str = "wt") -> dict:
    """Bind parameters of :func:`working_day_join` from a layout (:func:`gisgrid.cases.workflow.working_layout`)."""
    starts = layout["day_starts"]
    return {
        f"{prefix}_start": starts[:-1],
        f"{prefix}_next": starts[1:],
        f"{prefix}_before": layout["hours_before"],
        f"{prefix}_work": layout["workday"],
        f"{prefix}_first": starts[0] if starts else 0.0,
        f"{prefix}_whole": bool(len(starts) < 2 or all(b - a == 86400.0 for a, b in zip(starts, starts[1:]))),
    }


def working_day_join(alias: str, epoch: str, *, whole_days: bool, prefix: str = "wt") -> str:
    """A ``LEFT JOIN`` of the layout's day that holds the instant ``epoch`` (seconds since 1970, e.g.
    ``EXTRACT(EPOCH FROM ts)``), as ``alias`` with columns ``start`` (its local midnight, epoch seconds),
    ``before`` (working hours of the layout's days before it) and ``work`` (a working day?).

    With ``whole_days`` (every day 86,400 s long: no clock change, as in China) the day is found by
    arithmetic and a hash join; otherwise by a range condition, which costs more.
    """
    days = (
        f"unnest(CAST(:{prefix}_start AS float8[]), CAST(:{prefix}_next AS float8[]), "
        f"CAST(:{prefix}_before AS float8[]), CAST(:{prefix}_work AS boolean[])) WITH ORDINALITY "
        f"AS {alias}(start, next, before, work, i)"
    )
    if whole_days:
        cond = f"{alias}.i = floor(({epoch} - CAST(:{prefix}_first AS float8)) / 86400.0) + 1"
    else:
        cond = f"{epoch} >= {alias}.start AND {epoch} < {alias}.next"
    return f"LEFT JOIN {days} ON {cond}"


def working_position(alias: str, epoch: str, periods) -> str:
    """SQL expression: working hours from the layout's first day to the instant ``epoch``, its day being
    the row ``alias`` of :func:`working_day_join`; NULL outside the layout's days.

    As the in-memory :func:`gisgrid.cases.workflow.working_hours_between`: the working hours of the
    days before (from the layout, which the one rule made), plus those of the day's working periods
    (``periods``: seconds after local midnight) up to the instant; nothing more on a day off.  The
    difference of two positions is the working time between them.
    """
    into = f"({epoch} - {alias}.start)"
    parts = " + ".join(f"LEAST(GREATEST({into} - {int(a)}, 0), {int(b) - int(a)})" for a, b in periods) or "0"
    return f"({alias}.before + CASE WHEN {alias}.work THEN ({parts}) / 3600.0 ELSE 0 END)"


# --- the local day ---------------------------------------------------------------------------
def local_day(ts: str, tz: str) -> str:
    """SQL expression: the calendar day of timestamptz ``ts`` in time zone ``tz`` (as :func:`gisgrid.timeutil.local_day`)."""
    return f"CAST(({ts}) AT TIME ZONE {tz} AS date)"


def timezone_of_jurisdiction(conn: sa.Connection, code: str | None, default: str) -> str:
    """The time zone of the jurisdiction with ``code`` (its own, else inherited), else ``default``."""
    if not code:
        return default
    tz = conn.execute(
        sa.text("SELECT timezone_of_jurisdiction(id) FROM jurisdiction WHERE code = :c"), {"c": code}
    ).scalar()
    return tz or default


def timezones_at_points(conn: sa.Connection, lon, lat, default: str) -> list[str]:
    """The time zone at each lon/lat point (EPSG:4326): the most specific jurisdiction's, else ``default``."""
    lon = [float(v) for v in lon]
    lat = [float(v) for v in lat]
    if not lon:
        return []
    if not conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM jurisdiction WHERE timezone IS NOT NULL)")).scalar():
        return [default] * len(lon)  # no jurisdiction overrides the setting
    rows = conn.execute(
        sa.text("""
        SELECT p.i, timezone_at_point(ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))
        FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS p(x, y, i)"""),
        {"xs": lon, "ys": lat},
    ).all()
    out = [default] * len(lon)
    for i, tz in rows:
        if tz:
            out[int(i) - 1] = tz
    return out


def jurisdiction_timezones(conn: sa.Connection, default: str) -> dict[int, str]:
    """Every jurisdiction's effective time zone (own, else inherited, else ``default``), by id."""
    return {
        int(i): tz or default
        for i, tz in conn.execute(sa.text("SELECT id, timezone_of_jurisdiction(id) FROM jurisdiction")).all()
    }
