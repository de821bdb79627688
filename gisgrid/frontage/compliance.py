"""The monthly red and black list (红黑榜) of frontage units, by configurable rules (pure).

Facts per unit and month come from :func:`gisgrid.frontage.store.compliance_facts`:
``cases`` (accepted cases against the unit in the month — a resident's report
counts once a dispatcher confirmed it), ``findings`` (problems found by
inspection rounds: cases from 督查/暗访, or an inspection provider plugged in),
``overdue`` (cases closed late or still open past their deadline), ``rework``
(failed checks) and ``agreement`` (its state on the month's last day).

Rules (the ``frontage_redblack_rules`` setting, JSON; :data:`DEFAULT_RULES`):

* ``red``: every condition must hold — at most ``max_cases`` cases, at most
  ``max_findings`` findings, an agreement in ``agreement_states``;
* ``black``: any condition puts the unit there — ``min_cases`` cases or more,
  ``min_findings`` findings or more, ``min_overdue`` overdue, ``min_rework``
  rework, or (``no_agreement``) no agreement holding.

Black wins over red.  A published list is kept with its rules and rows
(``frontage_ranking``): later edits of cases do not change it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gisgrid.errors import InputError
from gisgrid.text import N_

DEFAULT_RULES: dict[str, Any] = {
    "version": "2026.1",
    "red": {"max_cases": 0, "max_findings": 0, "agreement_states": ["valid", "expiring"]},
    "black": {"min_cases": 3, "min_findings": 2, "min_overdue": 1, "min_rework": 1, "no_agreement": True},
}
FACT_COLUMNS = ("unit_id", "name", "cases", "findings", "overdue", "rework", "agreement")


def load_rules(text: str | Mapping | None) -> dict:
    """Rules from the setting's JSON (or a mapping), checked; the defaults fill what is not given."""
    if not text:
        return json.loads(json.dumps(DEFAULT_RULES))
    try:
        given = json.loads(text) if isinstance(text, str) else dict(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"the red and black list rules are not JSON: {exc}") from None
    rules = json.loads(json.dumps(DEFAULT_RULES))
    problems = []
    for part in ("red", "black"):
        for key, value in dict(given.get(part) or {}).items():
            if key not in rules[part]:
                problems.append(f"{part}.{key} is not a rule; rules: {', '.join(rules[part])}")
            elif isinstance(rules[part][key], bool) != isinstance(value, bool) or (
                isinstance(rules[part][key], int) and not isinstance(value, int)
            ):
                problems.append(f"{part}.{key} must be like {rules[part][key]!r}, not {value!r}")
            else:
                rules[part][key] = value
    if "version" in given:
        rules["version"] = str(given["version"])
    if problems:
        raise InputError("; ".join(problems))
    return rules


def red_black(facts: pd.DataFrame, rules: Mapping) -> pd.DataFrame:
    """Each unit's list (``red``, ``black`` or ``""``) and why, black first then red, by name.

    ``facts`` has :data:`FACT_COLUMNS`; it is not modified.
    """
    missing = [c for c in FACT_COLUMNS if c not in facts.columns]
    if missing:
        raise InputError(f"facts lack the columns {', '.join(missing)}")
    f = facts.copy()
    red, black = rules["red"], rules["black"]
    holds = f["agreement"].isin(["valid", "expiring"])
    why_black = pd.DataFrame(
        {
            "cases": f["cases"] >= black["min_cases"],
            "findings": f["findings"] >= black["min_findings"],
            "overdue": f["overdue"] >= black["min_overdue"],
            "rework": f["rework"] >= black["min_rework"],
            "agreement": ~holds if black["no_agreement"] else False,
        }
    )
    is_black = why_black.any(axis=1)
    is_red = (
        ~is_black
        & (f["cases"] <= red["max_cases"])
        & (f["findings"] <= red["max_findings"])
        & f["agreement"].isin(red["agreement_states"])
    )
    # a text per unit naming the facts that put it on the black list (a gisgrid.text.Text: English here, the
    # page's language where shown)
    words = {
        "cases": lambda n: N_("%(n)s cases filed", n=n),
        "findings": lambda n: N_("%(n)s inspection findings", n=n),
        "overdue": lambda n: N_("%(n)s overdue", n=n),
        "rework": lambda n: N_("%(n)s rework", n=n),
    }
    states = {
        "expired": N_("expired"),
        "expiring": N_("expiring soon"),
        "none": N_("none"),
        "future": N_("not yet in force"),
    }
    reasons = []
    for i in range(len(f)):
        parts = [say(int(f[k].iloc[i])) for k, say in words.items() if why_black[k].iloc[i]]
        if why_black["agreement"].iloc[i]:
            state = f["agreement"].iloc[i]
            parts.append(N_("agreement %(state)s", state=states.get(state, state)))
        reasons.append(
            N_.join("; ", parts) if is_black.iloc[i] else (N_("no case, no finding") if is_red.iloc[i] else "")
        )
    f["list"] = ["black" if b else ("red" if r else "") for b, r in zip(is_black, is_red)]
    f["why"] = pd.Series(reasons, index=f.index, dtype=object)  # object: the texts stay gisgrid.text.Text
    order = f["list"].map({"black": 0, "red": 1, "": 2})
    return f.assign(_o=order).sort_values(["_o", "name", "unit_id"]).drop(columns="_o").reset_index(drop=True)
