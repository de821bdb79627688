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
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

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
    return "it has signed no agreement"


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
        note = f"in the frontage of unit {unit['name']} (frontage duty), but {why}: stays with the segment chief"
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
        reason=f"in the frontage of unit {unit['name']} (frontage duty), agreement valid until {unit['expires_on']}",
    )
    return out


# --- the same step on a batch (gisgrid assign FILE, assign --rerun, the dask path) ---------------------
#: The columns the unit step adds to a routed table: the unit that took the report, and the segment chief
#: who supervises it (both empty where no unit took it).
FRONTAGE_COLUMNS = ("frontage_unit_id", "supervisor")


@dataclass
class FrontageUnits:
    """What the unit step needs, read once for a batch.

    Attributes
    ----------
    units : geopandas.GeoDataFrame
        ``id``, ``name``, ``contact_name``, ``person_id``, ``segment_id`` and
        the frontage polygon (EPSG:4326) of every unit that has one.
    agreements : pandas.DataFrame
        ``unit_id``, ``id``, ``signed_on``, ``expires_on`` of every agreement.
    duty_categories : frozenset of str
        The codes of the categories marked ``frontage_duty``.
    """

    units: gpd.GeoDataFrame
    agreements: pd.DataFrame
    duty_categories: frozenset[str] = frozenset()
    _tree: shapely.STRtree | None = field(default=None, repr=False)

    @property
    def tree(self) -> shapely.STRtree:
        if self._tree is None:
            self._tree = shapely.STRtree(self.units.geometry.to_numpy())
        return self._tree

    def __getstate__(self) -> dict:  # shipped to dask workers: the tree is rebuilt there on first use
        return {**self.__dict__, "_tree": None}


def agreements_on(pairs: pd.DataFrame, agreements: pd.DataFrame) -> pd.DataFrame:
    """The agreement that matters for each (row, unit) pair on the row's day: the one holding then, else
    the latest (as :func:`gisgrid.routing.store.frontage_units_at` chooses it in SQL).

    ``pairs`` has ``row``, ``unit_id`` and ``day`` (datetime64[D]); returns it with ``signed_on`` and
    ``expires_on`` (NaT for a unit without any agreement), in the same order.
    """
    out = pairs.reset_index(drop=True).assign(_pair=lambda f: np.arange(len(f)))
    joined = out.merge(agreements[["unit_id", "id", "signed_on", "expires_on"]], on="unit_id", how="left")
    signed = pd.to_datetime(joined["signed_on"]).to_numpy(dtype="datetime64[D]")
    expires = pd.to_datetime(joined["expires_on"]).to_numpy(dtype="datetime64[D]")
    day = joined["day"].to_numpy(dtype="datetime64[D]")
    joined["_holds"] = (signed <= day) & (day < expires)
    joined["_expires"] = expires
    best = joined.sort_values(["_pair", "_holds", "_expires", "id"], ascending=[True, False, False, False],
                              na_position="last", kind="stable").drop_duplicates("_pair")  # fmt: skip
    return best.sort_values("_pair")[["row", "unit_id", "day", "signed_on", "expires_on"]].reset_index(drop=True)


def route_table_to_units(
    result: pd.DataFrame,
    lon: np.ndarray,
    lat: np.ndarray,
    categories: np.ndarray,
    days: np.ndarray,
    frontage: FrontageUnits | None,
) -> pd.DataFrame:
    """A routed table (:func:`gisgrid.routing.frames.assign_prepared` with owners and chain) after the unit
    step: :func:`route_to_unit`, the intake's rule, for every row it concerns.

    Parameters
    ----------
    result : pandas.DataFrame
        One row per report: ``rule``, ``target_type``, ``target_id``,
        ``segment_id``, ``reason``, ``owner_name``, ``owner_person_id``,
        ``owner_department_id``, ``chain``, ``error_code``.  Not modified.
    lon, lat : numpy.ndarray of float
        The reports' points in EPSG:4326 (NaN where bad).
    categories : numpy.ndarray of object
        Each report's category code (None where blank).
    days : numpy.ndarray of datetime64[D]
        Each report's local day (the agreement must hold then).
    frontage : FrontageUnits or None
        None: nothing to do (the columns are added, empty).

    Returns
    -------
    pandas.DataFrame
        ``result`` with :data:`FRONTAGE_COLUMNS`, and the rows a unit takes
        (or declines, for want of an agreement) changed as :func:`route_to_unit` says.
    """
    out = result.copy()
    out["frontage_unit_id"] = pd.array([None] * len(out), dtype="Int64")
    out["supervisor"] = pd.Series([None] * len(out), dtype=object, index=out.index)
    if frontage is None or not len(frontage.units) or not frontage.duty_categories or not len(out):
        return out
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    duty = pd.Series(categories, dtype=object).isin(frontage.duty_categories).to_numpy()
    ok = out["error_code"].isna().to_numpy() if "error_code" in out else np.ones(len(out), dtype=bool)
    todo = np.flatnonzero(duty & ok & ~np.isnan(lon) & ~np.isnan(lat))
    if not todo.size:
        return out
    # one spatial join of the points against the frontages (an STRtree query, exact intersects)
    hit_point, hit_unit = frontage.tree.query(shapely.points(lon[todo], lat[todo]), predicate="intersects")
    if not hit_point.size:
        return out
    units = frontage.units.iloc[hit_unit].reset_index(drop=True)
    pairs = pd.DataFrame({"row": todo[hit_point], "unit_id": units["id"].to_numpy(),
                          "day": np.asarray(days, dtype="datetime64[D]")[todo[hit_point]]})  # fmt: skip
    dated = agreements_on(pairs, frontage.agreements)
    candidates = units.drop(columns=units.geometry.name).assign(
        row=dated["row"].to_numpy(), signed_on=dated["signed_on"].to_numpy(), expires_on=dated["expires_on"].to_numpy()
    )
    candidates = candidates.astype(object).where(candidates.notna(), None)
    here: dict[int, list[dict]] = {}
    for unit in candidates.to_dict("records"):  # plain dicts once, grouped by report
        here.setdefault(int(unit.pop("row")), []).append(unit)
    rows = np.fromiter(here, dtype=np.int64, count=len(here))
    given = {c: out[c].to_numpy(dtype=object)[rows] if c in out else [None] * len(rows)
             for c in ("segment_id", "reason", "chain", "owner_name")}  # fmt: skip
    day = np.asarray(days, dtype="datetime64[D]")[rows].astype(object)  # datetime.date
    # per report that lies in a frontage (a small share of a batch): the one rule intake applies, so that
    # a batch and a single report cannot disagree
    decided = [
        route_to_unit(
            {
                "segment_id": _plain(given["segment_id"][k]),
                "reason": _plain(given["reason"][k]),
                "chain": _plain(given["chain"][k]),
                "owner": _plain(given["owner_name"][k]),
            },
            here[int(row)],
            frontage_duty=True,
            day=day[k],
        )  # fmt: skip
        for k, row in enumerate(rows)
    ]
    took = np.array([d["frontage_unit_id"] is not None for d in decided], dtype=bool)
    positions = {c: i for i, c in enumerate(out.columns)}
    for column, source in (("reason", "reason"), ("frontage_unit_id", "frontage_unit_id"), ("supervisor", "supervisor"),
                           ("rule", "rule"), ("target_type", "target_type"), ("target_id", "target_id"),
                           ("segment_id", "segment_id"), ("owner_name", "owner"), ("owner_person_id", "owner_person_id"),
                           ("owner_department_id", "owner_department_id"), ("chain", "chain")):  # fmt: skip
        if column not in positions:
            continue
        # a declined report keeps its route and gains the reason why; a taken one changes wholesale
        which = np.ones(len(rows), dtype=bool) if column == "reason" else took
        if not which.any():
            continue
        values = [d.get(source) for d, w in zip(decided, which) if w]
        series = out[column]
        if isinstance(series.dtype, pd.CategoricalDtype):  # the engine's rule and target type columns
            new = pd.unique(pd.Series(values, dtype=object).dropna())
            out[column] = series.cat.add_categories([v for v in new if v not in series.cat.categories])
        out.iloc[rows[which], positions[column]] = values
    return out


def _plain(value):
    """A table cell as route_to_unit reads it: None for a missing value, a Python int for an integer."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.integer | float) and float(value).is_integer():
        return int(value)
    return value
