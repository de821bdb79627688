"""The composite score (综合指标值), grades, the order of a ranking and who is commended or named.

Composite score
    ``Σ weight_k × part_k`` over the parts, each out of 100: the filed-cases
    score (立案数得分, read from a band table), closure rate × 100, on-time
    rate × 100, (1 − rework rate) × 100 and, when weighted, the inspection
    score.  The default weights follow the digital city-management
    department formula: filed 10 %, closure 30 %, on-time 30 %, rework 30 %.
    Weights are settings and must add up to 1.  A rate with nothing to
    measure (no case due, no case handled) counts as full marks; a missing
    inspection score counts as 0 when inspections are weighted.
Grades
    The first band whose floor the score reaches: A ≥ 90, B ≥ 75, C ≥ 60,
    D ≥ 40, else E (:data:`GRADES_AE`); or good ≥ 85, middle ≥ 70, else poor
    (:data:`GRADES_GMP`).
Order (the tie-break rule)
    By composite score rounded to 2 decimals, highest first; an equal score
    goes to the higher on-time rate, then the higher closure rate, then the
    lower rework rate, then more cases filed, and last the unit's name (then
    its id) in code-point order, so the order is always total and repeatable.
Commended and named
    The first ``top_n`` are commended (表扬), the last ``bottom_n`` named (通报
    批评); with fewer than ``top_n + bottom_n`` units, nobody is both.

Pure: pandas and numpy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from gisgrid.errors import ConfigError

#: Bumped when the meaning of a rule changes (an indicator's formula, the order); part of every snapshot.
RULES_VERSION = "2026.1"
#: Filed-cases score bands: (at least this many cases filed, score), checked from the top.
FILED_BANDS = ((20, 100.0), (10, 90.0), (5, 80.0), (1, 60.0), (0, 0.0))
GRADES_AE = ((90.0, "A"), (75.0, "B"), (60.0, "C"), (40.0, "D"), (float("-inf"), "E"))
GRADES_GMP = ((85.0, "good"), (70.0, "middle"), (float("-inf"), "poor"))
GRADE_TABLES = {"A-E": GRADES_AE, "good-middle-poor": GRADES_GMP}
DEFAULT_WEIGHTS = {"filed": 0.10, "closure": 0.30, "on_time": 0.30, "rework": 0.30, "inspection": 0.0}
#: The columns of a ranking row besides the indicators.
RANK_COLUMNS = ("filed_score", "composite", "grade", "rank", "commended", "named")


@dataclass(frozen=True)
class Rules:
    """The settings of a ranking: weights, bands, grades, N.  Stored with every published ranking.

    Parameters
    ----------
    weights : dict
        ``filed``, ``closure``, ``on_time``, ``rework``, ``inspection``: shares adding up to 1.
    filed_bands : tuple of (int, float)
        (minimum cases filed, score out of 100), from the highest minimum down; the last minimum 0.
    grades : {"A-E", "good-middle-poor"}
    top_n, bottom_n : int
        How many are commended and named.
    inspection_weights : dict, optional
        Round id → weight, when the rounds of a period are combined unequally.
    inspection_order_weights : tuple of float, optional
        Weights of the period's rounds in the order they end, e.g. (0.4, 0.6): the first round 40 %,
        the second 60 % (one town's rule).  Empty: equal shares.
    """

    weights: dict = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    filed_bands: tuple = FILED_BANDS
    grades: str = "A-E"
    top_n: int = 3
    bottom_n: int = 3
    inspection_weights: dict = field(default_factory=dict)
    inspection_order_weights: tuple = ()

    def __post_init__(self):
        problems = []
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            problems.append(f"unknown weight(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_WEIGHTS)}")
        values = [float(v) for v in self.weights.values()]
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-9:
            problems.append(f"weights must be non-negative and add up to 1, not {self.weights}")
        mins = [b[0] for b in self.filed_bands]
        if not mins or mins != sorted(mins, reverse=True) or mins[-1] != 0:
            problems.append("filed-cases bands must run from the highest minimum down to 0")
        if self.grades not in GRADE_TABLES:
            problems.append(f"grades must be one of {', '.join(GRADE_TABLES)}, not {self.grades!r}")
        if self.top_n < 0 or self.bottom_n < 0:
            problems.append("top_n and bottom_n must be 0 or more")
        if problems:
            raise ConfigError("ranking rules: " + "; ".join(problems))

    def weight(self, part: str) -> float:
        return float(self.weights.get(part, 0.0))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["filed_bands"] = [list(b) for b in self.filed_bands]
        d["inspection_weights"] = {str(k): v for k, v in self.inspection_weights.items()}
        d["inspection_order_weights"] = [float(v) for v in self.inspection_order_weights]
        return d

    @classmethod
    def from_settings(cls, settings) -> Rules:
        """The deployment's rules: the ``ranking_rules`` setting over the defaults."""
        return cls.from_dict(dict(getattr(settings, "ranking_rules", None) or {}))

    @classmethod
    def from_dict(cls, d: dict) -> Rules:
        return cls(
            weights=dict(d.get("weights", DEFAULT_WEIGHTS)),
            filed_bands=tuple((int(a), float(b)) for a, b in d.get("filed_bands", FILED_BANDS)),
            grades=d.get("grades", "A-E"),
            top_n=int(d.get("top_n", 3)),
            bottom_n=int(d.get("bottom_n", 3)),
            inspection_weights={int(k) if str(k).isdigit() else k: float(v)
                                for k, v in d.get("inspection_weights", {}).items()},
            inspection_order_weights=tuple(float(v) for v in d.get("inspection_order_weights", ())),
        )  # fmt: skip

    @property
    def version(self) -> str:
        """The rule version: :data:`RULES_VERSION` and a digest of these settings."""
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
        return f"{RULES_VERSION}+{digest}"


def filed_score(filed, bands=FILED_BANDS) -> np.ndarray:
    """立案数得分: the score of the first band whose minimum the number of cases filed reaches."""
    n = np.asarray(filed, dtype=float)
    out = np.zeros(n.shape)
    done = np.zeros(n.shape, dtype=bool)
    for minimum, score in bands:
        hit = ~done & (n >= minimum)
        out[hit] = score
        done |= hit
    return out


def composite_score(table: pd.DataFrame, rules: Rules) -> pd.Series:
    """综合指标值 out of 100 (the formula in the module docstring), rounded to 2 decimals."""
    full = 1.0  # a rate with nothing to measure counts as full marks
    parts = {
        "filed": pd.Series(filed_score(table["cases_filed"], rules.filed_bands), index=table.index),
        "closure": table["closure_rate"].fillna(full) * 100.0,
        "on_time": table["on_time_rate"].fillna(full) * 100.0,
        "rework": (1.0 - table["rework_rate"].fillna(0.0)) * 100.0,
        "inspection": table["inspection_score"].fillna(0.0),
    }
    total = sum(rules.weight(k) * v for k, v in parts.items())
    return total.astype(float).round(2)


def grade(scores, table: str = "A-E") -> np.ndarray:
    """The grade of each score: the first band of ``GRADE_TABLES[table]`` whose floor it reaches."""
    bands = GRADE_TABLES[table]
    s = np.asarray(scores, dtype=float)
    out = np.full(s.shape, bands[-1][1], dtype=object)
    done = np.zeros(s.shape, dtype=bool)
    for floor, name in bands:
        hit = ~done & (s >= floor)
        out[hit] = name
        done |= hit
    return out


def rank_units(table: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """The ranking: ``table`` (:func:`gisgrid.supervision.indicators.indicator_table` with ``unit_name``)
    plus ``filed_score``, ``composite``, ``grade``, ``rank`` (1 best), ``commended`` and ``named``, in rank order.

    The order is the tie-break rule of the module docstring.
    """
    out = table.copy()
    out["filed_score"] = filed_score(out["cases_filed"], rules.filed_bands)
    out["composite"] = composite_score(out, rules)
    out["grade"] = grade(out["composite"], rules.grades)
    names = out["unit_name"] if "unit_name" in out.columns else pd.Series("", index=out.index)
    keys = pd.DataFrame(
        {
            "composite": -out["composite"],
            "on_time": -out["on_time_rate"].fillna(1.0),
            "closure": -out["closure_rate"].fillna(1.0),
            "rework": out["rework_rate"].fillna(0.0),
            "filed": -out["cases_filed"],
            "name": names.fillna("").astype(str),
            "id": out.index.to_numpy(),
        },
        index=out.index,
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index
    out = out.loc[order]
    n = len(out)
    out["rank"] = np.arange(1, n + 1)
    top = min(rules.top_n, n)
    bottom = min(rules.bottom_n, n - top)
    out["commended"] = out["rank"] <= top
    out["named"] = out["rank"] > n - bottom
    return out


def compare(published: pd.DataFrame, current: pd.DataFrame) -> dict:
    """How a re-run differs from a published ranking (both indexed by unit id).

    Returns ``changed`` (units whose composite, grade or rank differ, or that
    appear in one only), ``max_composite_change`` (points), ``rank_changes``
    (units whose rank moved), ``added``/``removed`` (units) and ``units``
    (per changed unit: before and after).
    """
    a, b = published, current
    ids = a.index.union(b.index)
    units = []
    max_change = 0.0
    rank_changes = 0
    for uid in ids:
        before = a.loc[uid] if uid in a.index else None
        after = b.loc[uid] if uid in b.index else None
        if before is None or after is None:
            units.append({"unit_id": uid, "before": _brief(before), "after": _brief(after)})
            continue
        delta = float(after["composite"]) - float(before["composite"])
        moved = int(after["rank"]) != int(before["rank"])
        if abs(delta) > 0.005 or moved or after["grade"] != before["grade"]:
            units.append({"unit_id": uid, "before": _brief(before), "after": _brief(after), "delta": round(delta, 2)})
            max_change = max(max_change, abs(delta))
            rank_changes += int(moved)
    return {
        "changed": len(units),
        "max_composite_change": round(max_change, 2),
        "rank_changes": rank_changes,
        "added": [u["unit_id"] for u in units if u["before"] is None],
        "removed": [u["unit_id"] for u in units if u["after"] is None],
        "units": units,
    }


def _brief(row) -> dict | None:
    if row is None:
        return None
    return {"composite": float(row["composite"]), "rank": int(row["rank"]), "grade": str(row["grade"])}
