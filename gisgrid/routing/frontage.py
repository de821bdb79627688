"""The frontage-duty step of routing (门前三包), after the location rules (pure: no database, no Flask).

A report whose category is a frontage duty (``category.frontage_duty``: goods
outside the shop 出店经营, piled garbage or a dirty pavement in front of a
shop) and that lies in a unit's frontage goes to that unit: its contact is the
owner, and the segment chief stays in the chain as supervisor (the case stays
on the segment, whose chain escalates it).  A unit without a valid agreement
(责任书) does not take it: the report stays with the segment chief, and the
routing explanation says why.

The agreement rule lives here, the lowest place that needs it:
:func:`agreement_state` (also used by the unit pages, the audit and the
red and black list).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

FRONTAGE_RULE = "frontage_unit"


def agreement_state(signed_on, expires_on, day: dt.date, *, expiry_days: int = 30) -> str:
    """``none``, ``valid``, ``expiring`` (valid, ending within ``expiry_days``), ``expired`` or ``future``.

    An agreement holds from ``signed_on`` until the day before ``expires_on``
    (exclusive, as owner assignments' ``valid_to``).
    """
    if signed_on is None or expires_on is None or pd.isna(signed_on) or pd.isna(expires_on):
        return "none"
    signed_on, expires_on = pd.Timestamp(signed_on).date(), pd.Timestamp(expires_on).date()
    if day < signed_on:
        return "future"
    if day >= expires_on:
        return "expired"
    return "expiring" if (expires_on - day).days <= expiry_days else "valid"


def holds(state: str) -> bool:
    """True when an agreement in ``state`` binds the unit (valid, or valid but expiring soon)."""
    return state in ("valid", "expiring")


def _why_not(unit: dict, state: str) -> str:
    if state == "expired":
        return f"its agreement expired on {unit['expires_on']}"
    if state == "future":
        return f"its agreement starts on {unit['signed_on']}"
    return "it has signed no agreement (责任书)"


def route_to_unit(route: dict, units: list[dict], *, frontage_duty: bool, day: dt.date) -> dict:
    """The routing explanation ``route`` (:func:`gisgrid.routing.store.explain_point`) after the unit step.

    Parameters
    ----------
    route : dict
        As routed by location; not modified.
    units : list of dict
        The units whose frontage holds the point: ``id``, ``name``,
        ``contact_name``, ``person_id``, ``segment_id``, ``signed_on``,
        ``expires_on`` (their latest agreement).
    frontage_duty : bool
        The category is a frontage duty; otherwise ``route`` is returned as is.
    day : date
        The local day the report was made (the agreement must hold then).

    Returns
    -------
    dict
        With ``frontage_unit_id`` (None when no unit takes the report) and,
        when a unit takes it, rule ``frontage_unit``, the unit's contact as
        owner and ``supervisor`` (the segment chief by location).
    """
    out = dict(route)
    out.setdefault("frontage_unit_id", None)
    if not frontage_duty or not units:
        return out
    seg = route.get("segment_id")
    # on a shared edge: the unit on the routed segment, then the lowest id (the same answer every time)
    unit = sorted(units, key=lambda u: (u.get("segment_id") != seg, u["id"]))[0]
    state = agreement_state(unit.get("signed_on"), unit.get("expires_on"), day)
    label = f"{unit['name']}（{unit['contact_name']}）" if unit.get("contact_name") else unit["name"]
    if not holds(state) or unit.get("person_id") is None:
        why = _why_not(unit, state) if not holds(state) else "it names no contact person"
        note = f"in the frontage of unit {unit['name']} (门前三包), but {why}: stays with the segment chief"
        out["reason"] = "; ".join(r for r in (route.get("reason"), note) if r)
        return out
    chain = route.get("chain")
    out.update(
        rule=FRONTAGE_RULE,
        target_type="segment",
        target_id=unit.get("segment_id") or seg,
        segment_id=unit.get("segment_id") or seg,
        owner=label,
        owner_person_id=unit["person_id"],
        owner_department_id=None,
        supervisor=route.get("owner"),
        chain=f"门前三包 {label} → {chain}" if chain else f"门前三包 {label}",
        frontage_unit_id=unit["id"],
        reason=f"in the frontage of unit {unit['name']} (门前三包), agreement valid until {unit['expires_on']}",
    )
    return out
