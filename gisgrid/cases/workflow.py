"""The case rules: when a report is open, when it is due, when it is overdue.

Open
    A report is open until its workflow reaches ``closed`` (结案).  The status
    is the record; ``closed_at`` only says when (an imported closed report may
    lack it, and it does not reopen a case by itself).
Deadline (处置时限)
    ``reported_at`` plus the category's ``deadline_hours``.  For a category
    counted in working time (``category.working_time``: e.g. 乱搭乱建 "4
    working hours", 井盖破损 "1 working day" = 8 working hours) the hours run
    only inside the working hours of working days on the deployment's
    calendar: China's official calendar by default, which moves working days
    around public holidays (调休; the PyPI package ``chinesecalendar``).  A year
    that calendar does not cover yet falls back to Monday–Friday, with a
    logged warning.  Time spent outside working hours does not count: a case
    reported on a Friday evening starts counting on Monday morning; one
    crossing the National Day week waits for the holiday to end.
Overdue (超时)
    Open, and the deadline has passed.  A report without a deadline (no
    category) is never overdue.

The deadline is computed once, when a report is stored (``report.due_at``;
every place that inserts reports calls :func:`deadlines`); SQL queries use the
stored value through :func:`gisgrid.db.sql.report_is_open` and
:func:`gisgrid.db.sql.report_is_overdue`, the SQL form of :func:`is_open` and
:func:`is_overdue`.

Pure: numpy, pandas and the calendar package; no database and no Flask.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gisgrid.config import Settings
from gisgrid.errors import ConfigError
from gisgrid.timeutil import zone

LOGGER = logging.getLogger(__name__)

CLOSED = "closed"
#: The calendars a deployment can count working days on.
CALENDARS = ("china", "weekdays")

_NS_PER_HOUR = 3_600_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR


# --- open / overdue --------------------------------------------------------------------------
def is_open(status: str | None, closed_at: dt.datetime | None = None) -> bool:
    """True while the report's workflow has not reached ``closed`` (``closed_at`` does not decide)."""
    return status != CLOSED


def is_overdue(status: str | None, closed_at: dt.datetime | None, due_at: dt.datetime | None, now: dt.datetime) -> bool:
    """True when the report is open and its deadline ``due_at`` is before ``now`` (aware datetimes)."""
    if due_at is None or pd.isna(due_at):
        return False
    return is_open(status, closed_at) and pd.Timestamp(due_at) < pd.Timestamp(now)


def open_mask(status: Any) -> np.ndarray:
    """:func:`is_open` of whole arrays."""
    return pd.Series(status, copy=False).astype(object).to_numpy() != CLOSED


def overdue_mask(status: Any, due_at: Any, now: dt.datetime) -> np.ndarray:
    """:func:`is_overdue` of whole arrays (``due_at`` aware timestamps; NaT never overdue)."""
    due = pd.to_datetime(pd.Series(due_at, copy=False), utc=True)
    return open_mask(status) & (due < pd.Timestamp(now)).fillna(False).to_numpy(dtype=bool)


# --- working time ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkingTime:
    """Working hours of a working day, and the calendar that says which days are working days.

    Parameters
    ----------
    periods : tuple of (datetime.time, datetime.time)
        Working periods of one day, local time, in order, not overlapping.
    calendar : {"china", "weekdays"}
        ``"china"``: the official calendar with 调休 (``chinesecalendar``),
        Monday–Friday for years it does not cover; ``"weekdays"``: Monday–Friday.
    """

    periods: tuple[tuple[dt.time, dt.time], ...] = field(default_factory=lambda: _parse_periods(Settings.working_hours))
    calendar: str = Settings.work_calendar

    def __post_init__(self):
        problems = []
        if self.calendar not in CALENDARS:
            problems.append(f"calendar must be one of {', '.join(CALENDARS)}, not {self.calendar!r}")
        if not self.periods:
            problems.append("at least one working period is needed")
        last = dt.time.min
        for start, end in self.periods:
            if not start < end:
                problems.append(f"working period {start}-{end} ends before it starts")
            if start < last:
                problems.append(f"working period {start}-{end} overlaps or precedes the one before")
            last = end
        if problems:
            raise ConfigError("working time: " + "; ".join(problems))

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkingTime:
        """The deployment's working time: settings ``working_hours`` (e.g. ``"08:30-12:00,13:30-18:00"``)
        and ``work_calendar``."""
        return cls(_parse_periods(settings.working_hours), settings.work_calendar)

    @property
    def hours_per_day(self) -> float:
        return sum(_seconds(b) - _seconds(a) for a, b in self.periods) / 3600.0

    def is_workday(self, day: dt.date) -> bool:
        """True when ``day`` is a working day on this calendar."""
        return _is_workday(day, self.calendar)


def _parse_periods(hours: str) -> tuple[tuple[dt.time, dt.time], ...]:
    periods = []
    for part in str(hours).split(","):
        try:
            a, b = (dt.time.fromisoformat(v.strip()) for v in part.split("-"))
        except ValueError:
            raise ConfigError(f"working hours {hours!r}: write periods as HH:MM-HH:MM, comma-separated") from None
        periods.append((a, b))
    return tuple(periods)


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@functools.lru_cache(maxsize=8192)
def _is_workday(day: dt.date, calendar: str) -> bool:
    if calendar == "china":
        try:
            import chinese_calendar

            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            _warn_uncovered(day.year)
    return day.weekday() < 5


@functools.lru_cache(maxsize=64)
def _warn_uncovered(year: int) -> None:
    LOGGER.warning(
        "the official calendar (chinesecalendar) does not cover %d yet: working days of %d counted Monday-Friday; "
        "upgrade chinesecalendar once the State Council publishes the year's holidays",
        year,
        year,
    )


# --- deadlines -------------------------------------------------------------------------------
def deadline(
    reported_at: dt.datetime,
    hours: float,
    *,
    working_time: bool,
    calendar: WorkingTime | None = None,
    tz: str,
) -> dt.datetime | None:
    """The deadline of one report: :func:`deadlines` of one row (None without ``hours``).

    Parameters
    ----------
    reported_at : datetime
        When the report came in; a naive value is local time in ``tz``.
    hours : float
        The category's ``deadline_hours``.
    working_time : bool
        Count ``hours`` in working time (the category's ``working_time``).
    calendar : WorkingTime, optional
        Working hours and calendar (default :class:`WorkingTime` ()).
    tz : str
        Local time zone of the place (the working hours are local).
    """
    out = deadlines([reported_at], [hours], [working_time], calendar=calendar, tz=tz)
    value = out.iloc[0]
    return None if pd.isna(value) else value.to_pydatetime()


def deadlines(
    reported_at: Any,
    hours: Any,
    working_time: Any,
    *,
    calendar: WorkingTime | None = None,
    tz: str | Sequence[str],
) -> pd.Series:
    """Deadlines of many reports at once, vectorised: the one rule every stored report's ``due_at`` comes from.

    Parameters
    ----------
    reported_at : array-like of datetimes
        Aware instants, or naive local times in the row's ``tz``.
    hours : array-like of float
        Deadline hours per row (NaN: no deadline, NaT out).
    working_time : array-like of bool
        Per row: count the hours in working time.
    calendar : WorkingTime, optional
    tz : str or sequence of str
        The local time zone, for all rows or per row.

    Returns
    -------
    pandas.Series
        ``datetime64[ns, UTC]``, one per row (RangeIndex).
    """
    calendar = calendar or WorkingTime()
    n = len(hours)
    hrs = pd.to_numeric(pd.Series(hours, copy=False), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    work = pd.Series(working_time, copy=False).fillna(False).astype(bool).to_numpy()
    zones = np.full(n, tz, dtype=object) if isinstance(tz, str) else np.asarray(list(tz), dtype=object)
    raw = pd.Series(reported_at, copy=False).reset_index(drop=True)
    if len(raw) != n or len(work) != n or len(zones) != n:
        raise ValueError(f"reported_at, hours, working_time and tz differ in length ({len(raw)}, {n}, {len(work)})")
    out = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    for name in pd.unique(zones):
        rows = np.flatnonzero(zones == name)
        zone(name)  # a readable error for an unknown zone
        local = _local_ns(raw.iloc[rows], name)  # naive local wall time, int64 ns (NaT = min)
        ok = (local != np.iinfo(np.int64).min) & np.isfinite(hrs[rows])
        if not ok.any():
            continue
        due = np.full(rows.size, np.iinfo(np.int64).min, dtype=np.int64)
        span = np.zeros(rows.size, dtype=np.int64)
        span[ok] = np.round(hrs[rows][ok] * _NS_PER_HOUR).astype(np.int64)
        plain = ok & ~work[rows]
        due[plain] = local[plain] + span[plain]
        timed = ok & work[rows]
        if timed.any():
            due[timed] = _add_working_time(local[timed], span[timed], calendar)
        good = due != np.iinfo(np.int64).min
        back = pd.DatetimeIndex(due[good].view("datetime64[ns]")).tz_localize(
            name, ambiguous="NaT", nonexistent="shift_forward"
        )
        out[rows[good]] = back.tz_convert("UTC").asi8
    return pd.Series(pd.DatetimeIndex(out.view("datetime64[ns]")).tz_localize("UTC"), copy=False)


def _local_ns(values: pd.Series, tz: str) -> np.ndarray:
    """Local wall time in ``tz`` as int64 ns since the epoch (naive values are local already)."""
    s = values
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.Series([pd.Timestamp(v) if v is not None and not pd.isna(v) else pd.NaT for v in s], dtype=object)
        aware = [v for v in s if v is not pd.NaT and v.tzinfo is not None]
        if aware:
            s = pd.Series(
                [
                    pd.NaT if v is pd.NaT else (v.tz_convert(tz).tz_localize(None) if v.tzinfo else v)
                    for v in s.to_numpy()
                ]
            )
        s = pd.to_datetime(s)
    elif getattr(s.dtype, "tz", None) is not None:
        s = s.dt.tz_convert(tz).dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _add_working_time(start: np.ndarray, span: np.ndarray, calendar: WorkingTime) -> np.ndarray:
    """``span`` ns of working time after each local ``start`` (int64 ns, naive local), vectorised.

    The working periods of every day from the first start on are laid out as
    sorted intervals with the working time before each (cumulative): a start's
    working-time position is found by one ``searchsorted``, and the deadline by
    another on the cumulative ends.
    """
    per_day = int(round(calendar.hours_per_day * _NS_PER_HOUR))
    first = int(start.min() // _NS_PER_DAY)
    # enough days for the longest span: working days needed, as calendar days with room for weekends and holidays
    days = int(np.ceil(span.max() / per_day)) * 7 // 5 + 21 + int(start.max() // _NS_PER_DAY) - first
    while True:
        starts, ends = _periods(first, days, calendar)
        length = ends - starts
        cum_end = np.cumsum(length)
        cum_start = cum_end - length
        i = np.searchsorted(starts, start, side="right") - 1
        before = np.where(
            i >= 0,
            cum_start[np.maximum(i, 0)] + np.clip(start - starts[np.maximum(i, 0)], 0, length[np.maximum(i, 0)]),
            0,
        )
        target = before + span
        if len(cum_end) and target.max() <= cum_end[-1]:
            break
        days *= 2  # a calendar with few working days: lay out more
    j = np.searchsorted(cum_end, target, side="left")
    due = starts[j] + (target - cum_start[j])
    return np.maximum(due, start)


def _periods(first_day: int, n_days: int, calendar: WorkingTime) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (int64 ns, naive local) of every working period of ``n_days`` days from ``first_day``."""
    epoch = dt.date(1970, 1, 1)
    work_days = np.array(
        [d for d in range(first_day, first_day + n_days + 1) if calendar.is_workday(epoch + dt.timedelta(days=d))],
        dtype=np.int64,
    )
    base = work_days * _NS_PER_DAY
    offsets = np.array([[_seconds(a), _seconds(b)] for a, b in calendar.periods], dtype=np.int64) * 1_000_000_000
    starts = (base[:, None] + offsets[None, :, 0]).ravel()
    ends = (base[:, None] + offsets[None, :, 1]).ravel()
    return starts, ends
