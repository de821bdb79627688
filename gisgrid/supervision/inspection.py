"""Inspection rounds, the pure part: kinds, a round's plan checked at the boundary, the sample draw, the scores.

No database and no Flask here: :mod:`gisgrid.supervision.inspections` (the
store) applies these rules.

**The sample.**  A round may inspect a random sample of ``n`` segments or
cells of its scope, drawn reproducibly from a seed (an integer): every
candidate unit gets the key ``SHA-256("<seed>:<kind>:<id>")`` (hex text, e.g.
``sha256("42:cell:1187")``), the units are sorted by that key (then by id),
and the first ``n`` are the sample.  The draw depends only on the seed, the
kind and the candidates' ids — not on row order, the database, the Python or
NumPy version — so anyone can redo it (``printf '42:cell:1187' | sha256sum``);
and a larger ``n`` with the same seed keeps the smaller sample and adds to it.

**The score.**  Each finding costs its checklist item's deductions:
``found`` (default 0.2 points) for the problem, plus ``overdue`` (0.5) when
its case was not fixed by its deadline when the round ended, plus ``repeat``
(1) when the same problem (category) had been reported at the place before
(within ``duplicate_radius_m`` and :data:`REPEAT_DAYS` days before the
finding).  A unit's score in a round is ``max(0, 100 − Σ deductions)`` over the
findings that count against it: its segment, street, cell, owner (the person
or department the case was routed to), community and town.  Units the round
covered without a finding score 100.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gisgrid.errors import InputError

#: Round kinds: 督查 (announced) and 暗访 (unannounced, hidden from the inspected until it ends).
KINDS = ("announced", "unannounced")
KIND_LABELS_ZH = {"announced": "督查", "unannounced": "暗访"}
#: The ``report.source`` of a finding's case, per round kind.
CASE_SOURCE = {"announced": "inspection", "unannounced": "unannounced"}
SCOPE_KINDS = ("town", "street", "cell")
SAMPLE_KINDS = ("segment", "cell")
#: Units a round scores, in the order pages list them.
UNIT_KINDS = ("town", "community", "street", "segment", "cell", "person", "department", "frontage")
#: What a finding costs by default (one county's published rule): per problem found, not fixed in time, reported before.
DEFAULT_FOUND = 0.2
DEFAULT_OVERDUE = 0.5
DEFAULT_REPEAT = 1.0
#: A finding repeats an earlier report of its category at the place within this many days.
REPEAT_DAYS = 90
MAX_NAME = 200
MAX_PERIOD_DAYS = 366
MAX_SAMPLE = 100_000
MAX_SEED = 2**63 - 1
FULL_SCORE = 100.0


#: Problems found in an input: (message with %(name)s fields, its values), translated by the web layer.
Problems = list[tuple[str, dict]]


def N_(message: str) -> str:
    """Mark ``message`` for translation: the web layer translates it (and a ``label`` value) when it shows it."""
    return message


class ProblemsError(InputError):
    """Bad input with every problem found (``problems``): English in its text, translatable one by one."""

    def __init__(self, problems: Problems):
        self.problems = list(problems)
        super().__init__("; ".join(message % values for message, values in self.problems))


def _about(problems: Problems, label: str) -> bool:
    return any(values.get("label") == label for _m, values in problems)


@dataclass(frozen=True)
class RoundPlan:
    """A round as a manager plans it, checked."""

    kind: str
    name: str
    period_start: dt.date
    period_end: dt.date
    scope_kind: str
    scope_ids: tuple[int, ...]
    inspector_ids: tuple[int, ...]
    sample_kind: str | None = None
    sample_size: int | None = None
    seed: int | None = None
    note: str | None = None


def _date(value: Any, label: str, problems: Problems) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    text = str(value or "").strip()
    if not text:
        problems.append((N_("%(label)s is needed (YYYY-MM-DD)"), {"label": label}))
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(
            (N_("%(label)s must be a date like 2026-05-01, not %(value)s"), {"label": label, "value": repr(text[:40])})
        )
        return None


def _ids(values: Iterable[Any], label: str, problems: Problems) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        text = str(v).strip()
        if not text:
            continue
        if not re.fullmatch(r"\d{1,9}", text):
            problems.append((N_("%(label)s: %(value)s is not an id"), {"label": label, "value": repr(text[:40])}))
            continue
        if int(text) not in out:
            out.append(int(text))
    return tuple(out)


def _int(value: Any, label: str, problems: Problems, *, low: int, high: int) -> int | None:
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    if not re.fullmatch(r"-?\d{1,19}", text):
        problems.append(
            (N_("%(label)s must be a whole number, not %(value)s"), {"label": label, "value": repr(text[:40])})
        )
        return None
    out = int(text)
    if not low <= out <= high:
        problems.append(
            (
                N_("%(label)s must be between %(low)s and %(high)s, not %(value)s"),
                {"label": label, "low": low, "high": high, "value": out},
            )
        )
        return None
    return out


def parse_round_plan(raw: Mapping[str, Any], *, seed_if_missing: int | None = None) -> RoundPlan:
    """Check a round's plan; :class:`InputError` listing every problem at once.

    Parameters
    ----------
    raw : mapping
        ``kind`` (announced / unannounced), ``name``, ``period_start``,
        ``period_end`` (ISO dates, inclusive), ``scope_kind`` (town / street /
        cell), ``scope_ids`` (a list of ids), ``inspector_ids`` (a list of user
        ids), optional ``sample_kind`` (segment / cell), ``sample_size``,
        ``seed`` and ``note``.
    seed_if_missing : int, optional
        The seed of a sample planned without one (the caller draws it at
        random, and it is stored, so the draw stays reproducible).
    """
    problems: Problems = []
    kind = str(raw.get("kind") or "").strip()
    if kind not in KINDS:
        problems.append((N_("the kind must be announced or unannounced, not %(value)s"), {"value": repr(kind[:40])}))
    name = str(raw.get("name") or "").strip()
    if not name:
        problems.append((N_("a name is needed"), {}))
    elif len(name) > MAX_NAME or "\x00" in name:
        problems.append((N_("the name has %(n)s characters; at most %(max)s"), {"n": len(name), "max": MAX_NAME}))
    start = _date(raw.get("period_start"), N_("the start date"), problems)
    end = _date(raw.get("period_end"), N_("the end date"), problems)
    if start and end:
        if end < start:
            problems.append(
                (N_("the period ends (%(end)s) before it starts (%(start)s)"), {"end": str(end), "start": str(start)})
            )
        elif (end - start).days >= MAX_PERIOD_DAYS:
            problems.append(
                (N_("the period is %(n)s days; at most %(max)s"), {"n": (end - start).days + 1, "max": MAX_PERIOD_DAYS})
            )
    scope_kind = str(raw.get("scope_kind") or "").strip()
    if scope_kind not in SCOPE_KINDS:
        problems.append(
            (N_("the scope must be towns, streets or cells, not %(value)s"), {"value": repr(scope_kind[:40])})
        )
    scope_ids = _ids(_listed(raw.get("scope_ids")), N_("the scope"), problems)
    if not scope_ids and not _about(problems, N_("the scope")):
        problems.append((N_("the scope is empty: pick at least one town, street or cell"), {}))
    inspector_ids = _ids(_listed(raw.get("inspector_ids")), N_("the inspectors"), problems)
    if not inspector_ids:
        problems.append((N_("pick at least one inspector"), {}))
    sample_kind = str(raw.get("sample_kind") or "").strip() or None
    size = seed = None
    if sample_kind is None:
        pass  # no sample: its size and seed are not read
    elif sample_kind not in SAMPLE_KINDS:
        problems.append((N_("a sample is of segments or cells, not %(value)s"), {"value": repr(sample_kind[:40])}))
    else:
        size = _int(raw.get("sample_size"), N_("the sample size"), problems, low=1, high=MAX_SAMPLE)
        seed = _int(raw.get("seed"), N_("the seed"), problems, low=0, high=MAX_SEED)
        if size is None and not _about(problems, N_("the sample size")):
            problems.append((N_("a sample needs its size"), {}))
        if seed is None and not _about(problems, N_("the seed")):
            seed = seed_if_missing
            if seed is None:
                problems.append((N_("a sample needs a seed"), {}))
        if scope_kind == "street" and sample_kind == "cell":
            problems.append((N_("a round over streets samples segments, not cells"), {}))
        if scope_kind == "cell" and sample_kind == "segment":
            problems.append((N_("a round over cells samples cells, not segments"), {}))
    note = str(raw.get("note") or "").strip() or None
    if note and len(note) > 2000:
        problems.append((N_("the note has %(n)s characters; at most %(max)s"), {"n": len(note), "max": 2000}))
    if problems:
        raise ProblemsError(problems)
    return RoundPlan(kind, name, start, end, scope_kind, scope_ids, inspector_ids, sample_kind, size, seed, note)


def _listed(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,，;；]+", value) if v]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def sample_key(seed: int, kind: str, unit_id: int) -> str:
    """The draw key of one unit: SHA-256 of ``"<seed>:<kind>:<id>"`` as hex (see the module's docstring)."""
    return hashlib.sha256(f"{seed}:{kind}:{unit_id}".encode()).hexdigest()


def draw_sample(unit_ids: Iterable[int], n: int, *, seed: int, kind: str) -> list[int]:
    """The ``n`` units of ``unit_ids`` with the smallest draw keys, in draw order (all of them when fewer).

    >>> draw_sample(range(10), 3, seed=42, kind="cell") == draw_sample(reversed(range(10)), 3, seed=42, kind="cell")
    True
    """
    if kind not in SAMPLE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SAMPLE_KINDS)}, got {kind!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ids = sorted({int(i) for i in unit_ids})
    return sorted(ids, key=lambda i: (sample_key(seed, kind, i), i))[:n]


def finding_deductions(findings: pd.DataFrame) -> pd.DataFrame:
    """Each finding's deductions: ``found_d`` (always), ``overdue_d`` (when ``overdue``), ``repeat_d`` (when ``repeat``).

    ``findings`` has ``found``, ``overdue_points``, ``repeat_points`` (the item's
    deductions), and booleans ``overdue`` and ``repeat``.  Returns a copy with
    the three columns and their sum ``total_d``.
    """
    out = findings.copy()
    out["found_d"] = out["found"].astype(float)
    out["overdue_d"] = out["overdue_points"].astype(float).where(out["overdue"].astype(bool), 0.0)
    out["repeat_d"] = out["repeat_points"].astype(float).where(out["repeat"].astype(bool), 0.0)
    out["total_d"] = out["found_d"] + out["overdue_d"] + out["repeat_d"]
    return out


#: The finding columns that name the unit it counts against, per unit kind.
UNIT_COLUMNS = {
    "town": "town_id",
    "community": "community_id",
    "street": "street_id",
    "segment": "segment_id",
    "cell": "cell_id",
    "person": "person_id",
    "department": "department_id",
    "frontage": "frontage_unit_id",  # a frontage unit (门前三包) the finding's case went to
}


def unit_scores(findings: pd.DataFrame, covered: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """A round's score per unit: ``max(0, 100 − Σ deductions)`` of the findings counting against it.

    Parameters
    ----------
    findings : DataFrame
        One row per finding, as :func:`finding_deductions` returns it, with
        the unit columns of :data:`UNIT_COLUMNS` (NaN/None where none).
    covered : mapping of unit kind to ids
        Units the round covered: they score 100 without a finding.

    Returns
    -------
    DataFrame
        ``unit_kind``, ``unit_id``, ``score``, ``deductions``,
        ``found_deductions``, ``overdue_deductions``, ``repeat_deductions``,
        ``findings``, ``overdue``, ``repeats``; sorted by kind (as
        :data:`UNIT_KINDS`) and id.  Sums are rounded to 2 decimals (the
        stored precision) before the score is taken.
    """
    parts = []
    for kind, column in UNIT_COLUMNS.items():
        ids = set(int(i) for i in covered.get(kind, ()))
        if len(findings) and column in findings:
            f = findings[findings[column].notna()]
            grouped = (
                f.assign(unit_id=f[column].astype("int64"))
                .groupby("unit_id")
                .agg(
                    found_deductions=("found_d", "sum"),
                    overdue_deductions=("overdue_d", "sum"),
                    repeat_deductions=("repeat_d", "sum"),
                    findings=("found_d", "size"),
                    overdue=("overdue", "sum"),
                    repeats=("repeat", "sum"),
                )
            )
        else:
            grouped = pd.DataFrame(
                columns=[
                    "found_deductions",
                    "overdue_deductions",
                    "repeat_deductions",
                    "findings",
                    "overdue",
                    "repeats",
                ]
            )
        ids |= set(int(i) for i in grouped.index)
        frame = grouped.reindex(sorted(ids)).fillna(0)
        frame.index.name = "unit_id"
        frame = frame.reset_index()
        frame.insert(0, "unit_kind", kind)
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    for col in ("found_deductions", "overdue_deductions", "repeat_deductions"):
        out[col] = out[col].astype(float).round(2)
    out["deductions"] = (out["found_deductions"] + out["overdue_deductions"] + out["repeat_deductions"]).round(2)
    out["score"] = (FULL_SCORE - out["deductions"]).clip(lower=0.0).round(2)
    for col in ("findings", "overdue", "repeats"):
        out[col] = out[col].astype(int)
    out["unit_id"] = out["unit_id"].astype(int)
    return out[
        [
            "unit_kind",
            "unit_id",
            "score",
            "deductions",
            "found_deductions",
            "overdue_deductions",
            "repeat_deductions",
            "findings",
            "overdue",
            "repeats",
        ]
    ]


def parse_deduction(value: Any, label: str, problems: Problems, *, item: str = "") -> float | None:
    """A deduction in points: a number from 0 to 100 with at most 2 decimals (``item`` names the checklist item)."""
    text = str(value if value is not None else "").strip().replace("，", ".")
    where = {"item": item, "label": label}
    if not text:
        problems.append((N_("%(item)s: %(label)s is needed"), where))
        return None
    if not re.fullmatch(r"\d{1,3}(\.\d{1,2})?", text):
        problems.append(
            (
                N_("%(item)s: %(label)s must be a number of points like 0.5 (at most 2 decimals), not %(value)s"),
                {**where, "value": repr(text[:20])},
            )
        )
        return None
    out = float(text)
    if out > FULL_SCORE:
        problems.append((N_("%(item)s: %(label)s must be at most 100, not %(value)s"), {**where, "value": text}))
        return None
    return out
