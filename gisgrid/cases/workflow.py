"""The case rules: states and the steps between them, who may take each, deadlines, escalation.

States and steps (状态与流转)
    :data:`TRANSITIONS` is the one table: for each action the states it may
    be taken from, the state it leads to, the roles that may take it and what
    it needs (a reason, a note, an "after" photo).  :func:`check_transition`
    refuses anything else with a message naming the state and the role;
    :func:`allowed_actions` is what a page offers.  Roles are the account
    roles (:mod:`gisgrid.accounts.roles`) plus ``owner`` — the person (or a
    member of the department) the case is assigned or escalated to.
Open
    A case is open until it is closed (结案), rejected (不予立案) or merged
    into another case.  The status is the record; ``closed_at`` only says
    when (an imported closed report may lack it, and it does not reopen a
    case by itself).
Deadline (处置时限)
    ``reported_at`` plus the category's ``deadline_hours``.  For a category
    counted in working time (``category.working_time``: e.g. 乱搭乱建 "4
    working hours", 井盖破损 "1 working day" = 8 working hours) the hours run
    only inside the working hours of working days on the deployment's
    calendar: China's official calendar by default, which moves working days
    around public holidays (调休; the PyPI package ``chinesecalendar``).  Days
    an admin entered for a year (``work_calendar_day``) override the package;
    a year neither covers falls back to Monday–Friday, with a logged warning
    (and one on the admin and manager pages).  Time spent outside working
    hours does not count: a case reported on a Friday evening starts counting
    on Monday morning; one crossing the National Day week waits for the
    holiday to end.
Overdue (超时) and the colour of a case
    Open, not suspended, and the deadline has passed: red.  Less than
    :data:`WARN_SHARE` of its time left: yellow.  Else green.  A report
    without a deadline (no category) is never overdue.
Escalation (逐级上报)
    An overdue case climbs the chain 段长 → 二级街长 → 一级街长 → 总街长: level
    *k* is reached once the time since the report is ``multiples[k-1]``
    times the time it was given (:func:`escalation_levels`).  A frontage unit's
    case (门前三包) climbs one step more: first to the segment chief, who
    supervises the unit, then the usual chain (:data:`UNIT_ESCALATION_ROLES`,
    :func:`unit_multiples`).

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gisgrid.config import Settings
from gisgrid.errors import ConfigError, GisgridError, InputError
from gisgrid.text import N_
from gisgrid.timeutil import zone

LOGGER = logging.getLogger(__name__)

CLOSED = "closed"
#: The workflow's states, in the order a case usually moves through them.
STATES = (
    "reported",  # 上报
    "accepted",  # 立案
    "rejected",  # 不予立案
    "dispatched",  # 派遣
    "returned",  # 退回 ("not ours"): back with the dispatcher
    "handled",  # 处置
    "verified",  # 核查 (older data only: a passed check closes the case)
    "suspended",  # 缓办
    "closed",  # 结案
    "merged",  # merged into another case
)
#: States in which a case is no longer open.
ENDED = frozenset({"closed", "rejected", "merged"})
#: States in which the assignee holds the case (a chief's list); as migration 0011's indexes.
ASSIGNEE_STATES = ("dispatched", "handled", "suspended")
#: States in which the dispatcher holds the case (the queue): new, accepted but not sent, "not ours".
QUEUE_STATES = ("reported", "accepted", "returned")
#: States whose deadline runs against the assignee, and so escalate.
ESCALATING_STATES = ("dispatched",)
#: The chain an overdue case climbs, by escalation level.
ESCALATION_ROLES = ("段长", "二级街长", "一级街长", "总街长")
#: The chain an overdue case of a frontage unit (门前三包) climbs: its segment chief first (the unit's
#: supervisor), then the usual chain.
UNIT_ESCALATION_ROLES = ("门前三包", *ESCALATION_ROLES)
#: Less than this share of its time left: the case shows yellow.
WARN_SHARE = 0.25
#: The calendars a deployment can count working days on.
CALENDARS = ("china", "weekdays")

_NS_PER_HOUR = 3_600_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR


# --- open / overdue --------------------------------------------------------------------------
def is_open(status: str | None, closed_at: dt.datetime | None = None) -> bool:
    """True while the case is not closed, rejected or merged (``closed_at`` does not decide)."""
    return status not in ENDED


def is_overdue(status: str | None, closed_at: dt.datetime | None, due_at: dt.datetime | None, now: dt.datetime) -> bool:
    """True when the case is open, not suspended, and its deadline ``due_at`` is before ``now`` (aware datetimes)."""
    if due_at is None or pd.isna(due_at):
        return False
    return is_open(status, closed_at) and status != "suspended" and pd.Timestamp(due_at) < pd.Timestamp(now)


def open_mask(status: Any) -> np.ndarray:
    """:func:`is_open` of whole arrays."""
    return ~pd.Series(status, copy=False).astype(object).isin(ENDED).to_numpy()


def overdue_mask(status: Any, due_at: Any, now: dt.datetime) -> np.ndarray:
    """:func:`is_overdue` of whole arrays (``due_at`` aware timestamps; NaT never overdue)."""
    due = pd.to_datetime(pd.Series(due_at, copy=False), utc=True)
    running = open_mask(status) & (pd.Series(status, copy=False).astype(object).to_numpy() != "suspended")
    return running & (due < pd.Timestamp(now)).fillna(False).to_numpy(dtype=bool)


def deadline_colour(
    status: str | None,
    reported_at: dt.datetime | None,
    due_at: dt.datetime | None,
    now: dt.datetime,
    *,
    warn_share: float = WARN_SHARE,
) -> str | None:
    """``"red"`` overdue, ``"yellow"`` less than ``warn_share`` of its time left, ``"green"``; None when
    the case is not running against a deadline (ended, suspended, no deadline)."""
    if due_at is None or pd.isna(due_at) or not is_open(status) or status == "suspended":
        return None
    due, now_ = pd.Timestamp(due_at), pd.Timestamp(now)
    if due < now_:
        return "red"
    if reported_at is not None and not pd.isna(reported_at):
        span = due - pd.Timestamp(reported_at)
        if span.total_seconds() > 0 and (due - now_) < span * warn_share:
            return "yellow"
    return "green"


def escalation_levels(
    reported_at: Any,
    due_at: Any,
    now: dt.datetime,
    multiples: Sequence[float],
    *,
    roles: Sequence[str] = ESCALATION_ROLES,
) -> np.ndarray:
    """The escalation level each case has reached at ``now`` (0: none), vectorised.

    Level *k* (``roles[k]``; by default 1: 二级街长, 2: 一级街长, 3: 总街长) is
    reached once the time since ``reported_at`` is at least ``multiples[k-1]``
    times the time the case was given (``due_at - reported_at``).
    ``multiples`` ascend; a first multiple of 1 escalates as soon as the case
    is overdue.  A frontage unit's case passes :data:`UNIT_ESCALATION_ROLES`
    and :func:`unit_multiples`.
    """
    m = np.asarray(list(multiples), dtype=float)
    if m.size > len(roles) - 1 or np.any(m <= 0) or np.any(np.diff(m) < 0):
        raise ValueError(
            f"escalation multiples must be 1 to {len(roles) - 1} ascending positive numbers, not {list(multiples)}"
        )
    start = pd.to_datetime(pd.Series(reported_at, copy=False), utc=True).reset_index(drop=True)
    due = pd.to_datetime(pd.Series(due_at, copy=False), utc=True).reset_index(drop=True)
    span = (due - start).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    elapsed = (pd.Timestamp(now).tz_convert("UTC") - start).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(span) & np.isfinite(elapsed) & (span > 0)
    out = np.zeros(len(span), dtype=np.int64)
    out[ok] = (elapsed[ok, None] >= span[ok, None] * m[None, :]).sum(axis=1)
    return out


def unit_multiples(multiples: Sequence[float]) -> tuple[float, ...]:
    """The multiples a frontage unit's case climbs by: its segment chief at the first of ``multiples``,
    then each role of the usual chain one step later, the last step's spacing repeated for the top
    (``1,2,3`` → ``1,2,3,4``: 段长 when overdue, 二级街长 at twice the time given, … 总街长 at four times)."""
    m = [float(v) for v in multiples]
    if not m:
        return ()
    step = m[-1] - m[-2] if len(m) > 1 else m[-1]
    return (*m, m[-1] + step)


def parse_multiples(text: str) -> tuple[float, ...]:
    """The ``escalation_multiples`` setting (``"1,2,3"``) as numbers; :class:`ConfigError` when malformed."""
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
        escalation_levels([], [], dt.datetime.now(dt.timezone.utc), values)
    except ValueError as exc:
        raise ConfigError(f"escalation_multiples {text!r}: {exc}") from None
    return values


# --- the transition table --------------------------------------------------------------------
#: A role that is not an account role: the person the case is assigned or escalated to (or a member
#: of the department it is assigned to).
OWNER = "owner"
#: Taken by gisgrid itself (the escalation job), never by a person.
SYSTEM = "system"
#: Go back to the state the case was suspended from.
RESUME = "<resume>"


@dataclass(frozen=True)
class Transition:
    """One action of the workflow: from which states, to which state, by whom, needing what.

    ``target`` None: the state does not change (an extension, a request, an
    escalation, a reopening — which makes a new case).
    """

    action: str
    sources: frozenset[str]
    target: str | None
    roles: frozenset[str]
    needs_reason: bool = False
    needs_note: bool = False
    needs_photo: bool = False
    label_zh: str = ""


def _t(action, sources, target, roles, label_zh, **needs) -> tuple[str, Transition]:
    return action, Transition(action, frozenset(sources), target, frozenset(roles), label_zh=label_zh, **needs)


#: The one table of the workflow (see the module docstring).  ``admin`` may take every step a person may.
TRANSITIONS: dict[str, Transition] = dict(
    [
        _t("accept", {"reported"}, "accepted", {"dispatcher"}, "立案"),
        _t("reject", {"reported"}, "rejected", {"dispatcher"}, "不予立案", needs_reason=True),
        # to the routed owner, or another one with a reason (checked by the store: only an override needs it)
        _t("dispatch", {"accepted", "returned"}, "dispatched", {"dispatcher"}, "派遣"),
        _t("return", {"dispatched"}, "returned", {OWNER}, "退回（非本单位职责）", needs_reason=True),
        _t("handle", {"dispatched"}, "handled", {OWNER}, "处置", needs_note=True, needs_photo=True),
        _t("verify_pass", {"handled"}, "closed", {"inspector", "grid_worker"}, "核查通过、结案"),
        _t(
            "verify_fail",
            {"handled"},
            "dispatched",
            {"inspector", "grid_worker"},
            "核查不通过、返工",
            needs_reason=True,
        ),
        _t("close", {"verified"}, "closed", {"dispatcher"}, "结案"),
        _t("request_extension", {"dispatched"}, None, {OWNER}, "申请延期/缓办", needs_reason=True),
        _t("extend", {"accepted", "dispatched", "returned"}, None, {"manager"}, "延期", needs_reason=True),
        _t("suspend", {"accepted", "dispatched", "returned"}, "suspended", {"manager"}, "缓办", needs_reason=True),
        _t("resume", {"suspended"}, RESUME, {"manager"}, "恢复办理"),
        _t("merge", {"reported", "accepted"}, "merged", {"dispatcher"}, "合并重复案件"),
        _t(
            "reopen",
            {"closed"},
            None,
            {"dispatcher", "clerk", "inspector", "grid_worker", "manager"},
            "复发重开",
            needs_reason=True,
        ),
        _t("escalate", set(ESCALATING_STATES), None, {SYSTEM}, "超时升级"),
    ]
)
#: Roles that take every step a person may take.
ALL_STEPS_ROLES = frozenset({"admin"})


#: States and steps as people read them (the same words as the pages' labels, translated there).
STATE_TEXT = {
    "reported": N_("reported"),
    "accepted": N_("accepted"),
    "rejected": N_("rejected"),
    "dispatched": N_("dispatched"),
    "returned": N_("returned: not ours"),
    "handled": N_("handled"),
    "verified": N_("verified"),
    "suspended": N_("suspended"),
    "closed": N_("closed"),
    "merged": N_("merged"),
}
STEP_TEXT = {
    "report": N_("Report filed"),
    "accept": N_("Accept the case"),
    "reject": N_("Reject the report"),
    "dispatch": N_("Dispatch"),
    "return": N_("Not ours"),
    "handle": N_("Handled"),
    "verify_pass": N_("Check passed: close"),
    "verify_fail": N_("Check failed: rework"),
    "close": N_("Close the case"),
    "request_extension": N_("Ask for more time"),
    "extend": N_("Extend the deadline"),
    "suspend": N_("Suspend"),
    "resume": N_("Resume"),
    "merge": N_("Merge into another case"),
    "merge_in": N_("A duplicate was merged in"),
    "reopen": N_("Reopen: the problem is back"),
    "escalate": N_("Escalated"),
}


def state_text(status: str | None):
    """A state as people read it (a :class:`gisgrid.text.Text`), the key itself when unknown."""
    return STATE_TEXT.get(status or "", status)


def step_text(action: str | None):
    """A step as people read it (a :class:`gisgrid.text.Text`), the key itself when unknown."""
    return STEP_TEXT.get(action or "", action)


class TransitionRefused(GisgridError):
    """A step the case's state does not allow (409) — the message names the state and the step."""

    http_status_code = 409
    default_msg = "this step is not allowed in the case's state"

    def __init__(self, msg: str, *, action: str, status: str, roles: Sequence[str] = ()):
        super().__init__(msg)
        self.action, self.status, self.roles = action, status, tuple(roles)


class RoleRefused(TransitionRefused):
    """A step the user's roles do not allow (403) — the message names the state and the roles."""

    http_status_code = 403


def transition(action: str) -> Transition:
    """The table's row for ``action``; :class:`InputError` naming the known actions otherwise."""
    try:
        return TRANSITIONS[action]
    except KeyError:
        raise InputError(
            N_("unknown step %(step)s; steps: %(steps)s", step=repr(action), steps=", ".join(TRANSITIONS))
        ) from None


def _may(t: Transition, roles: frozenset[str]) -> bool:
    if SYSTEM in t.roles:
        return SYSTEM in roles
    return bool(t.roles & roles) or bool(ALL_STEPS_ROLES & roles)


def check_transition(status: str, action: str, roles: Iterable[str]) -> Transition:
    """The transition ``action`` from ``status`` for a user holding ``roles``, or why not.

    Raises
    ------
    InputError
        An unknown action.
    TransitionRefused
        The action is not taken from ``status`` (409).
    RoleRefused
        None of ``roles`` may take it (403).
    """
    t = transition(action)
    roles = frozenset(roles)
    if status not in t.sources:
        raise TransitionRefused(
            N_(
                "cannot take the step %(step)s on a case that is %(state)s: it is taken from %(sources)s",
                step=step_text(action),
                state=state_text(status),
                sources=N_.join(" / ", [state_text(s) for s in sorted(t.sources)]),
            ),
            action=action,
            status=status,
            roles=sorted(roles),
        )
    if not _may(t, roles):
        who = ", ".join(sorted(roles)) or "no role"
        raise RoleRefused(
            N_(
                "the step %(step)s on a case that is %(state)s is for %(roles)s, not for %(who)s",
                step=step_text(action),
                state=state_text(status),
                roles=" / ".join(sorted(t.roles)),
                who=who,
            ),
            action=action,
            status=status,
            roles=sorted(roles),
        )
    return t


def allowed_actions(status: str, roles: Iterable[str]) -> list[str]:
    """The actions a user holding ``roles`` may take on a case in ``status`` (table order)."""
    roles = frozenset(roles)
    return [a for a, t in TRANSITIONS.items() if status in t.sources and _may(t, roles)]


def next_status(status: str, action: str, *, resume_status: str | None = None) -> str:
    """The state after ``action`` from ``status`` (the table's target; unchanged for a None target)."""
    t = transition(action)
    if t.target is None:
        return status
    if t.target == RESUME:
        return resume_status if resume_status in STATES and resume_status not in ENDED else "dispatched"
    return t.target


def case_roles(account_roles: Iterable[str], *, is_owner: bool) -> frozenset[str]:
    """The workflow roles of a user on one case: their account roles, plus ``owner`` when the case is theirs."""
    roles = set(account_roles) - {SYSTEM, OWNER}
    if is_owner:
        roles.add(OWNER)
    return frozenset(roles)


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
    days : mapping of datetime.date to bool, optional
        Days entered by an admin (``work_calendar_day``): a holiday (False) or
        a make-up working day (True).  They override the calendar.
    entered_years : frozenset of int, optional
        Years whose holidays and make-up days were entered: their other days
        are Monday–Friday, whatever the package says.
    """

    periods: tuple[tuple[dt.time, dt.time], ...] = field(default_factory=lambda: _parse_periods(Settings.working_hours))
    calendar: str = Settings.work_calendar
    days: Mapping[dt.date, bool] = field(default_factory=dict, hash=False, compare=False)
    entered_years: frozenset[int] = frozenset()

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
    def from_settings(
        cls, settings: Settings, *, days: Mapping[dt.date, bool] | None = None, entered_years: Iterable[int] = ()
    ) -> WorkingTime:
        """The deployment's working time: settings ``working_hours`` (e.g. ``"08:30-12:00,13:30-18:00"``)
        and ``work_calendar``, with the days an admin entered (:func:`gisgrid.cases.calendar.working_time`)."""
        return cls(
            _parse_periods(settings.working_hours), settings.work_calendar, dict(days or {}), frozenset(entered_years)
        )

    @property
    def hours_per_day(self) -> float:
        return sum(_seconds(b) - _seconds(a) for a, b in self.periods) / 3600.0

    def is_workday(self, day: dt.date) -> bool:
        """True when ``day`` is a working day: an entered day as entered, else a day of an entered year
        Monday–Friday, else as the calendar says."""
        entered = self.days.get(day)
        if entered is not None:
            return bool(entered)
        if day.year in self.entered_years:
            return day.weekday() < 5
        return _is_workday(day, self.calendar)

    def covers(self, year: int) -> bool:
        """True when ``year``'s working days are known: entered, or in the calendar package (always for
        ``"weekdays"``); False when it falls back to Monday–Friday for want of data."""
        return year in self.entered_years or self.calendar != "china" or _package_covers(year)


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
def _package_covers(year: int) -> bool:
    import chinese_calendar

    try:
        chinese_calendar.is_workday(dt.date(year, 6, 30))
    except NotImplementedError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _warn_uncovered(year: int) -> None:
    LOGGER.warning(
        "the official calendar (chinesecalendar) does not cover %d yet: working days of %d counted Monday-Friday; "
        "enter the year's official holidays and make-up days (gisgrid cases calendar FILE, or the calendar page), "
        "or upgrade chinesecalendar once the State Council publishes them",
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


def working_hours_between(start: Any, end: Any, *, calendar: WorkingTime | None = None, tz: str) -> np.ndarray:
    """Working hours from each ``start`` to its ``end``, vectorised: the inverse of :func:`deadlines`.

    Only time inside the working periods of working days counts (the same
    layout of working time as the deadlines), so a case handled over the
    National Day week counts the working hours before and after it.

    Parameters
    ----------
    start, end : array-like of datetimes
        Aware instants (or naive local times in ``tz``), pairwise.
    calendar : WorkingTime, optional
    tz : str
        The local time zone of the working hours.

    Returns
    -------
    numpy.ndarray
        float hours, NaN where either end is missing, 0 where ``end`` is not after ``start``.
    """
    calendar = calendar or WorkingTime()
    zone(tz)
    a = _local_ns(pd.Series(start, copy=False).reset_index(drop=True), tz)
    b = _local_ns(pd.Series(end, copy=False).reset_index(drop=True), tz)
    if len(a) != len(b):
        raise ValueError(f"start and end differ in length ({len(a)}, {len(b)})")
    nat = np.iinfo(np.int64).min
    ok = (a != nat) & (b != nat)
    out = np.full(len(a), np.nan)
    if not ok.any():
        return out
    first = int(min(a[ok].min(), b[ok].min()) // _NS_PER_DAY)
    last = int(max(a[ok].max(), b[ok].max()) // _NS_PER_DAY)
    starts, ends = _periods(first, last - first + 1, calendar)

    def position(t: np.ndarray) -> np.ndarray:  # working ns from the layout's start to each instant
        if not len(starts):
            return np.zeros(len(t), dtype=np.int64)
        length = ends - starts
        cum_start = np.cumsum(length) - length
        i = np.searchsorted(starts, t, side="right") - 1
        j = np.maximum(i, 0)
        return np.where(i >= 0, cum_start[j] + np.clip(t - starts[j], 0, length[j]), 0)

    span = position(b[ok]) - position(a[ok])
    out[ok] = np.maximum(span, 0) / _NS_PER_HOUR
    return out


def working_layout(
    first_day: dt.date, last_day: dt.date, calendar: WorkingTime | None = None, *, tz: str | None = None
) -> dict:
    """The working time of the days ``first_day`` … ``last_day`` as plain values, for the SQL form of
    :func:`working_hours_between` (:func:`gisgrid.db.sql.working_hours`).

    Returns ``days`` (dates), ``hours_before`` (working hours of the days before each, from
    ``first_day``), ``workday`` (bools), ``periods`` (each working period as seconds after
    local midnight, start and end) and ``day_starts`` (each day's local midnight in ``tz`` as
    epoch seconds, and the next day's after the last).  The days come from :meth:`WorkingTime.is_workday`, the one
    rule; SQL only adds up.
    """
    calendar = calendar or WorkingTime()
    n = (last_day - first_day).days + 1
    days = [first_day + dt.timedelta(days=i) for i in range(max(n, 0))]
    work = [calendar.is_workday(d) for d in days]
    per_day = calendar.hours_per_day
    before = np.concatenate([[0.0], np.cumsum(np.asarray(work, dtype=float) * per_day)[:-1]]) if days else []
    starts = pd.DatetimeIndex([pd.Timestamp(d) for d in [*days, last_day + dt.timedelta(days=1)]]).tz_localize(
        zone(tz) if tz else "UTC", nonexistent="shift_forward", ambiguous=False
    )
    return {
        "days": days,
        "hours_before": [float(v) for v in before],
        "workday": work,
        "periods": [(_seconds(a), _seconds(b)) for a, b in calendar.periods],
        "day_starts": [
            float(v) / 1e9 for v in starts.as_unit("ns").asi8
        ],  # local midnights as UTC epoch seconds (one more)
    }


# --- entering a year's calendar --------------------------------------------------------------
_CAL_DATE = ("date", "day", "日期")
_CAL_WORK = ("workday", "work", "上班", "是否上班", "类型", "type")
_CAL_NOTE = ("note", "name", "说明", "备注", "节日")
_YES = {"1", "true", "yes", "y", "是", "班", "上班", "workday", "work"}
_NO = {"0", "false", "no", "n", "否", "休", "休息", "放假", "holiday", "off"}


def parse_calendar_rows(frame: pd.DataFrame) -> list[tuple[dt.date, bool, str | None]]:
    """A table of days (date, workday, note) as ``(date, is_workday, note)``; :class:`InputError` listing
    every bad row (1-based data rows)."""
    lowered = {str(c).strip().lower(): c for c in frame.columns}

    def col(names):
        return next((lowered[n] for n in names if n in lowered), None)

    cdate, cwork, cnote = col(_CAL_DATE), col(_CAL_WORK), col(_CAL_NOTE)
    if cdate is None or cwork is None:
        raise InputError(
            N_(
                "the calendar needs a date column (%(dates)s) and a workday column (%(flags)s); its columns "
                "are: %(columns)s",
                dates=" / ".join(_CAL_DATE),
                flags=" / ".join(_CAL_WORK),
                columns=", ".join(map(str, frame.columns)),
            )
        )
    out, problems, seen = [], [], set()
    for i, (d, w, n) in enumerate(
        zip(frame[cdate], frame[cwork], frame[cnote] if cnote is not None else [None] * len(frame)), start=1
    ):
        try:
            day = pd.Timestamp(str(d).strip()).date()
        except (TypeError, ValueError):
            problems.append(N_("row %(n)s: %(value)s is not a date", n=i, value=repr(d)))
            continue
        flag = str(w).strip().lower()
        if flag not in _YES | _NO:
            problems.append(
                N_("row %(n)s: workday %(value)s must be 1/0, yes/no or workday/holiday", n=i, value=repr(w))
            )
            continue
        if day in seen:
            problems.append(N_("row %(n)s: %(day)s appears twice", n=i, day=str(day)))
            continue
        seen.add(day)
        note = None if n is None or (isinstance(n, float) and np.isnan(n)) else str(n).strip() or None
        out.append((day, flag in _YES, note))
    years = {d.year for d, _w, _n in out}
    if len(years) > 1:
        problems.append(
            N_(
                "the file holds days of several years (%(years)s): one year a file",
                years=", ".join(map(str, sorted(years))),
            )
        )
    if problems:
        raise InputError(N_.join("; ", problems))
    return sorted(out)
