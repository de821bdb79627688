"""Evaluation indicators of owners and places for a month or a quarter (考核指标), each one named function.

Every indicator takes the *counts* of a period per unit (:data:`COUNT_COLUMNS`:
cases filed, due, closed, on time, …), counted in SQL for rankings
(:func:`gisgrid.supervision.ranking_store.unit_counts`) or from per-case facts
here (:func:`unit_counts`, the in-memory form the tests cross-check), and
returns one value per unit (a :class:`pandas.Series` indexed by unit).  The
formula of each is in its docstring; the bulletin's "method" section quotes
them.

The per-case facts (:func:`gisgrid.supervision.ranking_store.case_facts`), one
row per case filed in the period, with a column per unit kind (``owner``,
``street``, ``community``, ``town``):

``id``
    the case (``report.id``).
``reported_at``, ``closed_at``, ``due_at``
    aware timestamps (UTC); ``closed_at`` and ``due_at`` may be missing.
``status``
    the workflow state (:data:`gisgrid.cases.workflow.STATES`); rejected
    (不予立案) and merged reports are not filed cases and are not in the facts.
``closed``
    closed (结案) by the end of the period: the status is the record
    (:func:`gisgrid.cases.workflow.is_open`), and a closure stamped after the
    period's end does not count in it.
``rework_count``
    failed on-site checks (返工) so far.
``recurrence``
    the case is a problem back at the same place within 90 days of the
    closure of an earlier case (复发).
``handling_hours``
    working hours from report to closure (:func:`gisgrid.cases.workflow.working_hours_between`),
    NaN while open.

A rate whose denominator is empty is NaN here; :mod:`gisgrid.supervision.ranking`
says how the composite score treats it.

Pure: pandas and numpy; no database and no Flask.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gisgrid.errors import InputError
from gisgrid.timeutil import zone

#: The unit kinds a ranking can be of.
UNIT_KINDS = ("town", "community", "street", "owner")
#: Days after an earlier case's closure within which a case at the same place is a recurrence.
RECURRENCE_DAYS = 90
#: The indicators of a ranking row, in table order.
INDICATORS = (
    "cases_filed",
    "closure_rate",
    "on_time_rate",
    "rework_rate",
    "recurrence_rate",
    "mean_handling_hours",
    "cases_per_km",
    "inspection_score",
)


# --- periods ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """A month (``2026-11``) or a quarter (``2026-Q4``) in the deployment's time zone.

    ``start`` and ``end`` are aware instants, ``end`` exclusive; ``first_day``
    and ``last_day`` the local calendar days.
    """

    label: str
    kind: str
    first_day: dt.date
    last_day: dt.date
    tz: str

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first_day, dt.time(0), tzinfo=zone(self.tz))

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.combine(self.last_day + dt.timedelta(days=1), dt.time(0), tzinfo=zone(self.tz))

    def previous_months(self, n: int) -> list[Period]:
        """The ``n`` months up to and including the one this period ends in, oldest first."""
        y, m = self.last_day.year, self.last_day.month
        out = []
        for _ in range(n):
            out.append(parse_period(f"{y:04d}-{m:02d}", self.tz))
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        return out[::-1]


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")


def parse_period(text: str, tz: str) -> Period:
    """``"2026-11"`` (a month) or ``"2026-Q4"`` (a quarter) as a :class:`Period`; InputError otherwise."""
    value = str(text or "").strip()
    if m := _MONTH.match(value):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12 or year < 1900:
            raise InputError(f"period {value!r}: no such month")
        first = dt.date(year, month, 1)
        nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
        return Period(f"{year:04d}-{month:02d}", "month", first, nxt - dt.timedelta(days=1), tz)
    if m := _QUARTER.match(value):
        year, q = int(m.group(1)), int(m.group(2))
        first = dt.date(year, 3 * q - 2, 1)
        nxt = dt.date(year + (q == 4), (3 * q) % 12 + 1, 1)
        return Period(f"{year:04d}-Q{q}", "quarter", first, nxt - dt.timedelta(days=1), tz)
    raise InputError(f"period {value!r}: write a month as 2026-11 or a quarter as 2026-Q4")


def last_full_quarter(today: dt.date, tz: str) -> Period:
    """The quarter before the one ``today`` is in (the one a quarterly ranking is about)."""
    q = (today.month - 1) // 3  # 0-based current quarter
    year, q = (today.year, q) if q else (today.year - 1, 4)
    return parse_period(f"{year}-Q{q}", tz)


# --- counting the cases of each unit ----------------------------------------------------------
#: The counts every indicator is computed from, per unit (additive: a town's are the sum of its places').
COUNT_COLUMNS = (
    "filed",  # cases filed
    "due",  # due to close: deadline before the period's end, no deadline, or closed
    "closed",  # closed by the period's end
    "on_time",  # closed at or before the deadline (or without one)
    "suspended",  # due, and suspended (缓办)
    "rework",  # failed on-site checks (Σ rework_count)
    "handled",  # now handled, verified or closed
    "recurrences",  # problems back at the same place within RECURRENCE_DAYS of an earlier closure
    "hours_sum",  # working hours from report to closure, summed over closed cases with a closing time
    "hours_n",  # ... and how many they are
)


def due_mask(facts: pd.DataFrame, period: Period) -> np.ndarray:
    """Per case: due to close in ``period`` (应结案): its deadline is before the period's end, it has none,
    or it was closed."""
    end = pd.Timestamp(period.end)
    return (facts["due_at"].isna() | (facts["due_at"] < end) | facts["closed"]).to_numpy(dtype=bool)


def on_time_mask(facts: pd.DataFrame) -> np.ndarray:
    """Per case: closed at or before its deadline (a closed case without deadline or closing time counts)."""
    ok = facts["due_at"].isna() | facts["closed_at"].isna() | (facts["closed_at"] <= facts["due_at"])
    return facts["closed"].to_numpy(dtype=bool) & ok.to_numpy(dtype=bool)


def unit_counts(facts: pd.DataFrame, by: str, period: Period) -> pd.DataFrame:
    """The :data:`COUNT_COLUMNS` of each unit from the per-case facts (the in-memory form of
    :func:`gisgrid.supervision.ranking_store.unit_counts`, which counts in SQL)."""
    f = facts[facts[by].notna()]
    due = due_mask(f, period)
    closed = f["closed"].to_numpy(dtype=bool)
    timed = closed & f["handling_hours"].notna().to_numpy()
    frame = pd.DataFrame(
        {
            "unit": f[by].to_numpy(),
            "filed": 1,
            "due": due.astype(np.int64),
            "closed": closed.astype(np.int64),
            "on_time": on_time_mask(f).astype(np.int64),
            "suspended": (due & (f["status"].to_numpy() == "suspended")).astype(np.int64),
            "rework": f["rework_count"].to_numpy(dtype=np.int64),
            "handled": f["status"].isin(("handled", "verified", "closed")).to_numpy().astype(np.int64),
            "recurrences": f["recurrence"].to_numpy(dtype=bool).astype(np.int64),
            "hours_sum": np.where(timed, f["handling_hours"].to_numpy(dtype=float), 0.0),
            "hours_n": timed.astype(np.int64),
        }
    )
    out = frame.groupby("unit", sort=True)[list(COUNT_COLUMNS)].sum()
    out.index.name = "unit_id"
    return out


# --- the indicators --------------------------------------------------------------------------
def _rate(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)


def cases_filed(counts: pd.DataFrame) -> pd.Series:
    """立案数 cases filed: the cases reported in the period, not rejected (不予立案) nor merged into another.

    ``cases_filed = count(case)``
    """
    return counts["filed"].astype(np.int64)


def closure_rate(counts: pd.DataFrame) -> pd.Series:
    """结案率 closure rate = closed / due to close.

    Due to close (应结案): filed cases whose deadline is before the period's end (or that have none),
    and those closed although their deadline is later.  Closed: closed (结案) by the period's end.

    ``closure_rate = closed / due``
    """
    return _rate(counts["closed"], counts["due"])


def on_time_rate(counts: pd.DataFrame) -> pd.Series:
    """按期结案率 on-time closure rate = closed on time / (due to close − suspended).

    A case is closed on time when it was closed at or before its deadline
    (a closed case without a deadline or closing time counts as on time).
    Suspended cases (缓办, status ``suspended``) among those due are taken out
    of the denominator: their deadline does not run.

    ``on_time_rate = on_time / (due − suspended)``
    """
    return _rate(counts["on_time"], counts["due"] - counts["suspended"])


def rework_rate(counts: pd.DataFrame) -> pd.Series:
    """返工率 rework rate = failed on-site checks / handlings.

    Every handling (处置) ends in a check: a failed one sends the case back
    (``rework_count`` counts them), the last one is pending or passed (the
    case is handled, verified or closed).  So handlings = failed checks +
    cases now handled, verified or closed.

    ``rework_rate = Σ rework_count / (Σ rework_count + count(status in handled, verified, closed))``
    """
    return _rate(counts["rework"], counts["rework"] + counts["handled"])


def recurrence_rate(counts: pd.DataFrame) -> pd.Series:
    """复发率 recurrence rate = cases that are a problem back at the same place within 90 days / cases filed.

    A recurrence is a case opened for the problem of an earlier case at the
    same place (复发, ``report.recurrence_of_id``, set when a closed case is
    reopened) within :data:`RECURRENCE_DAYS` days of that case's closure.

    ``recurrence_rate = recurrences / filed``
    """
    return _rate(counts["recurrences"], counts["filed"])


def mean_handling_hours(counts: pd.DataFrame) -> pd.Series:
    """平均处置时长 mean handling time, in working hours, of the cases closed in the period.

    Working hours from report to closure on the deployment's working time
    and official calendar (:func:`gisgrid.cases.workflow.working_hours_between`):
    nights, weekends and holidays do not count.

    ``mean_handling_hours = Σ working_hours(reported_at, closed_at) / count(closed with a closing time)``
    """
    return _rate(counts["hours_sum"], counts["hours_n"])


def cases_per_km(counts: pd.DataFrame, street_km: pd.Series) -> pd.Series:
    """Cases filed per kilometre of street the unit answers for.

    ``street_km`` is the unit's length of street: a street's segments; the
    segments whose midpoint lies in a town or community; an owner's segments
    and streets held on the period's last day.  Units without street (a
    department) get NaN.

    ``cases_per_km = filed / street_km``
    """
    km = street_km.reindex(counts.index).astype(float)
    return (counts["filed"] / km.where(km > 0)).astype(float)


#: What an inspection-score source gives: one row per (unit, round) with columns ``unit_id``,
#: ``round_id``, ``score`` (0–100) and optionally ``weight`` (the round's share) — see
#: :func:`inspection_score`.
InspectionSource = Callable[[Period, str], pd.DataFrame]


def inspection_score(rounds: pd.DataFrame, weights: dict | None = None, ordered=()) -> pd.Series:
    """督查得分 inspection score: the period's inspection rounds combined with weights.

    ``rounds`` holds one score out of 100 per unit and round (``unit_id``,
    ``round_id``, ``score``; optionally ``order``, the round's place in the
    period, and ``weight``).  A round's weight comes from ``weights`` (by
    round id), else from ``ordered`` by the round's ``order`` (e.g. (0.4, 0.6):
    the first round of the period 40 %, the second 60 %), else the row's
    ``weight``, else equal shares.  A unit not scored in a round is left out
    of that round (its other rounds' weights are scaled up to a whole).

    ``inspection_score = Σ weight_r × score_r / Σ weight_r`` over the unit's rounds
    """
    if rounds is None or len(rounds) == 0:
        return pd.Series(dtype=float)
    frame = rounds.copy()
    w = pd.Series(1.0, index=frame.index)
    if "weight" in frame.columns:
        w = pd.to_numeric(frame["weight"], errors="coerce").fillna(1.0)
    if ordered and "order" in frame.columns:
        by_order = {i + 1: float(v) for i, v in enumerate(ordered)}
        w = frame["order"].map(by_order).fillna(w)
    if weights:
        mapped = frame["round_id"].map({k: float(v) for k, v in weights.items()})
        w = mapped.fillna(w)
    frame["_w"] = w.astype(float)
    frame["_ws"] = frame["_w"] * pd.to_numeric(frame["score"], errors="coerce")
    g = frame.groupby("unit_id")
    return (g["_ws"].sum() / g["_w"].sum()).astype(float)


def no_inspections(period: Period, unit_kind: str) -> pd.DataFrame:
    """An inspection source with no rounds (before inspection rounds exist)."""
    return pd.DataFrame({"unit_id": [], "round_id": [], "score": []})


def indicator_table(
    counts: pd.DataFrame,
    *,
    street_km: pd.Series | None = None,
    inspections: pd.DataFrame | None = None,
    inspection_weights: dict | None = None,
    inspection_order_weights=(),
) -> pd.DataFrame:
    """Every indicator of every unit of ``counts`` (:func:`unit_counts`), one row per unit (index: unit)."""
    table = pd.DataFrame({"cases_filed": cases_filed(counts)}, index=counts.index)
    table["due_to_close"] = counts["due"].astype(np.int64)
    table["closure_rate"] = closure_rate(counts)
    table["on_time_rate"] = on_time_rate(counts)
    table["rework_rate"] = rework_rate(counts)
    table["recurrence_rate"] = recurrence_rate(counts)
    table["mean_handling_hours"] = mean_handling_hours(counts)
    table["cases_per_km"] = cases_per_km(counts, street_km if street_km is not None else pd.Series(dtype=float))
    table["inspection_score"] = inspection_score(inspections, inspection_weights, inspection_order_weights).reindex(
        table.index
    )
    table.index.name = "unit_id"
    return table
