"""Who owned what on a day, in memory: the one rule, its chain and "has no owner".

The same rules exist once in SQL (migration ``0008``: functions ``owner_on``,
``owner_chain_on`` and ``unit_has_owner``; their names and fragments are in
:mod:`gisgrid.db.sql`); tests cross-check both forms on the same data.

Owner on a day
    An assignment is valid on day ``d`` when ``valid_from <= d < valid_to``;
    ``valid_to`` is exclusive and empty (NULL, NaT, None) while the
    assignment is open-ended.  Where several assignments of one role on one
    target are valid on the same day (a data error: nothing forbids it), the
    one that started last answers, and among those the one recorded last
    (highest assignment id; in a frame without ``id``, the later row).

The owner chain (段长 → 二级街长 → 一级街长 → 总街长)
    Each role of a segment's chain is taken from the most specific level
    that has an owner valid on the day: the segment, then its street, then
    the street's jurisdiction and its ancestors (community → town → county).
    A street without a 一级街长 of its own thus shows its town's, on the
    map and in a routing explanation alike.  A role nobody holds at any level
    is left out of the chain's text (:func:`chain_text`).

Has no owner (无人负责)
    A unit has an owner on day ``d`` when an assignment *targeting the unit
    itself* in the unit's owning role (:data:`UNIT_ROLES`: 段长 for a
    segment, 网格员 or 网格长 for a grid cell) is valid on ``d``.  Owners
    inherited from the street or the jurisdiction do not count: the town
    answers by default (属地兜底) for routing, but a segment without a chief of
    its own is exactly the gap (没人管) the audit and the manager's map must
    show.  Other roles on the unit (e.g. a 门前三包 frontage unit) do not make
    it owned either.

Pure: numpy and pandas only, no database and no Flask.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gisgrid.errors import InputError
from gisgrid.text import N_

#: The chain of chiefs of a segment, from the segment up.
CHAIN_ROLES = ("段长", "二级街长", "一级街长", "总街长")
#: How many jurisdiction levels above a street the chain climbs (its jurisdiction and two ancestors:
#: community → town → county); the SQL function ``owner_chain_on`` climbs as far.
CHAIN_JURISDICTION_DEPTH = 3
#: The role that owns each kind of unit: a unit without a valid assignment of its own in one of
#: these roles has no owner.  Routing sends a report on the unit to the same roles.
UNIT_ROLES: Mapping[str, tuple[str, ...]] = {"segment": ("段长",), "cell": ("网格员", "网格长")}

#: The owner roles as an English page says them (the roles are stored as the office writes them, in Chinese; a
#: Chinese page shows them as stored).  gisgrid.web.i18n's ``roles`` filter says them on English pages.
ROLE_TEXT: Mapping[str, Any] = {
    "总街长": N_("general street chief"),
    "一级街长": N_("first-level street chief"),
    "二级街长": N_("second-level street chief"),
    "段长": N_("segment chief"),
    "网格长": N_("grid leader"),
    "网格员": N_("grid worker"),
}


def say_roles(text: str | None, gettext) -> str:
    """``text`` holding owner role names (a role; a chain "段长 A → 二级街长 B …") with each role said by
    ``gettext`` (:data:`ROLE_TEXT`): English where the language is English.  Chinese catalogs give the roles
    back as the office writes them, so call this only for a language other than Chinese."""
    from gisgrid.text import translate

    out = "" if text is None else str(text)
    for role in sorted(ROLE_TEXT, key=len, reverse=True):  # 一级街长 before 街长-like shorter names
        if role in out:
            out = out.replace(role, translate(ROLE_TEXT[role], gettext))
    return out


_DAY_OFFSET = 1 << 20  # days added so that dates from about 900 AD on are non-negative
_ID_BITS = 36
_TARGET_CODES = ("jurisdiction", "street", "segment", "cell", "department")


# --- the rule itself -----------------------------------------------------------------------
def valid_on(valid_from: dt.date, valid_to: dt.date | None, day: dt.date) -> bool:
    """True when an assignment from ``valid_from`` to ``valid_to`` (exclusive; None open-ended) holds on ``day``."""
    return valid_from <= day and (valid_to is None or day < valid_to)


def valid_mask(valid_from: Any, valid_to: Any, day: dt.date | np.datetime64 | Any) -> np.ndarray:
    """:func:`valid_on` for whole arrays of assignments (one ``day``, or one day per row)."""
    vf = as_days(valid_from)
    vt = as_days(valid_to)
    d = np.asarray(day, dtype="datetime64[D]") if not isinstance(day, dt.date) else np.datetime64(day, "D")
    return (vf <= d) & (np.isnat(vt) | (d < vt))


def has_owner(layer: str, roles: Sequence[str], valid: Sequence[bool] | None = None) -> bool:
    """True when ``roles`` (of assignments on the unit itself, valid on the day) include an owning role."""
    own = UNIT_ROLES.get(layer, ())
    if valid is None:
        return any(r in own for r in roles)
    return any(r in own and v for r, v in zip(roles, valid))


def owned_units(assignments: pd.DataFrame, day: dt.date) -> set[tuple[str, int]]:
    """The ``(target_type, target_id)`` of units that have an owner on ``day`` (see the module doc).

    ``assignments`` has ``target_type``, ``target_id``, ``role``, ``valid_from``
    and ``valid_to``; assignments of other targets are ignored.
    """
    if assignments is None or len(assignments) == 0:
        return set()
    types = assignments["target_type"].astype(object).to_numpy()
    roles = assignments["role"].astype(object).to_numpy()
    owning = np.zeros(len(assignments), dtype=bool)
    for layer, own in UNIT_ROLES.items():
        owning |= (types == layer) & np.isin(roles, list(own))
    vt = assignments["valid_to"] if "valid_to" in assignments.columns else [None] * len(assignments)
    owning &= valid_mask(assignments["valid_from"], vt, day)
    raw = assignments["target_id"].to_numpy(dtype=object)[owning]
    ids = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    # ids compare as int when integral (1 == 1.0 == np.int64(1)), else as given
    keys = [int(i) if np.isfinite(i) and float(i).is_integer() else r for i, r in zip(ids, raw)]
    return set(zip(types[owning], keys))


def chain_text(names: Mapping[str, str | None]) -> str:
    """ "段长 A → 二级街长 B → 一级街长 — → 总街长 D": every chain role, "—" where nobody holds it."""
    parts = []
    for role in CHAIN_ROLES:
        v = names.get(role)
        if not (v is None or v != v or v == ""):  # None, NaN or empty: nobody holds the role
            parts.append(f"{role} {v}")
    return " → ".join(parts)


def as_days(values: Any) -> np.ndarray:
    """Dates as numpy ``datetime64[D]`` (NaT where missing).

    Aware timestamps keep their own wall-clock date; to take the calendar day
    of an instant in a time zone use :func:`gisgrid.timeutil.local_days`.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    parsed = pd.to_datetime(s, errors="coerce", format="mixed")
    return parsed.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


# --- where a segment's chain looks ------------------------------------------------------------
@dataclass
class ChainTopology:
    """Segment → street → jurisdiction → parent links, for resolving chains in memory.

    Series map ids to ids (NaN where missing): ``segment_street`` (segment id →
    street id), ``street_jurisdiction`` (street id → jurisdiction id) and
    ``jurisdiction_parent`` (jurisdiction id → parent id).
    """

    segment_street: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    street_jurisdiction: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    jurisdiction_parent: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    def levels(self, segment_ids: Any) -> list[tuple[str, np.ndarray]]:
        """The targets of each segment's chain, most specific first: ``[(target_type, ids), …]``.

        The segment, its street, the street's jurisdiction and up to two of its
        ancestors (NaN where a level is missing).
        """
        seg = pd.to_numeric(pd.Series(segment_ids, copy=False), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        street = _map_ids(self.segment_street, seg)
        out = [("segment", seg), ("street", street)]
        jur = _map_ids(self.street_jurisdiction, street)
        for _ in range(CHAIN_JURISDICTION_DEPTH):
            out.append(("jurisdiction", jur))
            jur = _map_ids(self.jurisdiction_parent, jur)
        return out

    def level_of(self, segment_id: int) -> list[tuple[str, int]]:
        """:meth:`levels` of one segment, as a plain list without the missing levels."""
        return [(t, int(ids[0])) for t, ids in self.levels([segment_id]) if not np.isnan(ids[0])]


def _map_ids(mapping: pd.Series, keys: np.ndarray) -> np.ndarray:
    """``mapping[key]`` for float keys (NaN where missing), vectorised through a dense array."""
    keys = np.asarray(keys, dtype=float)
    if mapping is None or mapping.empty:
        return np.full(len(keys), np.nan)
    index = mapping.index.to_numpy(dtype=np.int64)
    dense = np.full(int(index.max()) + 2, np.nan)
    dense[index] = pd.to_numeric(mapping, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(keys) & (keys >= 0) & (keys < len(dense) - 1)
    out = np.full(len(keys), np.nan)
    out[ok] = dense[keys[ok].astype(np.int64)]
    return out


# --- vectorised: bulk routing ------------------------------------------------------------------
class OwnerHistory:
    """Owner assignments with their validity dates, for vectorised owner-on-a-date lookups.

    The rule and its tie-break are the module's (``valid_from <= d < valid_to``;
    the latest start, then the highest id, wins), as in SQL ``owner_on``.

    Parameters
    ----------
    assignments : pandas.DataFrame
        Columns ``target_type``, ``target_id``, ``role``, ``valid_from`` and
        optionally ``valid_to``, ``id``, ``person_id``, ``department_id``, ``owner_name``.
    department_names : mapping of int to str, optional
        Names of departments, for rows routed to a department (which is its own owner).

    Raises
    ------
    InputError
        Listing missing columns, missing or bad dates and unknown target types.
    """

    def __init__(self, assignments: pd.DataFrame, *, department_names: Mapping[int, str] | None = None):
        required = ("target_type", "target_id", "role", "valid_from")
        missing = [c for c in required if c not in assignments.columns]
        if missing:
            raise InputError(f"owner assignments lack columns {missing}")
        vf = as_days(assignments["valid_from"])
        vt = (
            as_days(assignments["valid_to"])
            if "valid_to" in assignments.columns
            else np.full(len(assignments), np.datetime64("NaT"), dtype="datetime64[D]")
        )
        a = pd.DataFrame(
            {
                "target_type": assignments["target_type"].astype(object).to_numpy(),
                "target_id": pd.to_numeric(assignments["target_id"], errors="coerce").to_numpy(
                    dtype=float, na_value=np.nan
                ),
                "role": assignments["role"].astype(object).to_numpy(),
                "valid_from": vf,
                "valid_to": vt,
                # the tie-break among equal starts: the assignment recorded last (highest id, else later row)
                "_order": (
                    pd.to_numeric(assignments["id"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                    if "id" in assignments.columns
                    else np.arange(len(assignments), dtype=float)
                ),
            }
        )
        for name in ("person_id", "department_id"):
            a[name] = (
                pd.array(pd.to_numeric(assignments[name], errors="coerce"), dtype="Int64")
                if name in assignments.columns
                else pd.array([pd.NA] * len(a), dtype="Int64")
            )
        a["owner_name"] = (
            assignments["owner_name"].to_numpy(dtype=object) if "owner_name" in assignments.columns else None
        )
        problems = []
        bad_type = ~a["target_type"].isin(_TARGET_CODES)
        if bad_type.any():
            problems.append(f"unknown target types {sorted(set(map(str, a.loc[bad_type, 'target_type'])))}")
        if a["target_id"].isna().any():
            problems.append(f"{int(a['target_id'].isna().sum())} rows without target_id")
        if np.isnat(vf).any():
            problems.append(f"{int(np.isnat(vf).sum())} rows without a valid_from date")
        ends_early = ~np.isnat(vt) & (vt <= vf)
        if ends_early.any():
            problems.append(f"{int(ends_early.sum())} rows with valid_to not after valid_from")
        if problems:
            raise InputError("owner assignments: " + "; ".join(problems))
        tcode = pd.Index(_TARGET_CODES).get_indexer(a["target_type"]).astype(np.int64)
        a["_key"] = (tcode << _ID_BITS) | a["target_id"].to_numpy(dtype=np.int64)
        a["_from"] = vf.astype(np.int64) + _DAY_OFFSET  # days since 1970, shifted non-negative
        a["_to"] = np.where(np.isnat(vt), np.iinfo(np.int64).max, vt.astype(np.int64) + _DAY_OFFSET)
        self._by_role: dict[str, pd.DataFrame] = {}
        self._targets: dict[tuple[str, str], np.ndarray] = {}
        for role, sub in a.groupby("role", sort=False):
            sub = sub.sort_values(["_key", "_from", "_order"], kind="stable").reset_index(drop=True)
            sub["_composite"] = (sub["_key"].to_numpy() << 21) | sub["_from"].to_numpy()
            self._by_role[str(role)] = sub
            for ttype, part in sub.groupby("target_type", sort=False):
                self._targets[(str(role), str(ttype))] = np.unique(part["target_id"].to_numpy(dtype=float))
        self.department_names = dict(department_names or {})

    @property
    def roles(self) -> list[str]:
        return list(self._by_role)

    def holds_any(self, role: str, target_type: str, target_ids: np.ndarray) -> np.ndarray:
        """True where a target has ever had an assignment in ``role`` (a cheap filter before :meth:`owners_on`)."""
        known = self._targets.get((role, target_type))
        if known is None:
            return np.zeros(len(target_ids), dtype=bool)
        return np.isin(target_ids, known)

    def owners_on(
        self,
        target_types: Sequence[str | None] | pd.Series,
        target_ids: Sequence[Any] | pd.Series,
        dates: Any,
        *,
        role: str = "段长",
    ) -> pd.DataFrame:
        """The owner in ``role`` of each (target, date), vectorised.

        Parameters
        ----------
        target_types, target_ids : array-like
            The targets, e.g. the ``target_type``/``target_id`` result columns.
            A ``department`` target is its own owner.
        dates : array-like of dates
            Day of each lookup (datetime64, dates or ISO text); NaT gives no owner.
        role : str, default "段长"

        Returns
        -------
        pandas.DataFrame
            One row per lookup (RangeIndex): ``person_id``, ``department_id``
            (Int64), ``owner_name``, ``valid_from``, ``valid_to``; missing where
            nobody held the role on that day.
        """
        # numpy object arrays go straight through: a Series of text would be stored as arrow strings
        # (pandas 3 with pyarrow) and converted back at a cost of seconds per million rows
        types = (
            target_types
            if isinstance(target_types, np.ndarray) and target_types.dtype == object
            else pd.Series(target_types, copy=False).astype(object).to_numpy()
        )
        n = len(types)
        ids = pd.to_numeric(pd.Series(target_ids, copy=False), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        days = dates if isinstance(dates, np.ndarray) and dates.dtype == "datetime64[D]" else as_days(dates)
        if len(ids) != n or len(days) != n:
            raise InputError(f"target_types, target_ids and dates differ in length ({n}, {len(ids)}, {len(days)})")
        person = np.zeros(n, dtype=np.int64)
        person_na = np.ones(n, dtype=bool)
        dept = np.zeros(n, dtype=np.int64)
        dept_na = np.ones(n, dtype=bool)
        name = np.full(n, None, dtype=object)
        vfrom = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        vto = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        tcode = pd.Index(_TARGET_CODES).get_indexer(types).astype(np.int64)
        usable = (tcode >= 0) & np.isfinite(ids) & ~np.isnat(days)
        is_dept = usable & (types == "department")
        dept[is_dept] = ids[is_dept].astype(np.int64)
        dept_na[is_dept] = False
        if self.department_names and is_dept.any():
            name[is_dept] = [self.department_names.get(int(i)) for i in ids[is_dept]]
        sub = self._by_role.get(role)
        look = np.flatnonzero(usable & ~is_dept)
        if sub is not None and look.size:
            key = (tcode[look] << _ID_BITS) | ids[look].astype(np.int64)
            day = days[look].astype(np.int64) + _DAY_OFFSET
            keys = sub["_key"].to_numpy()
            ends = sub["_to"].to_numpy()
            # the last assignment of the target starting on or before the day (latest start, then highest id) ...
            pos = np.searchsorted(sub["_composite"].to_numpy(), (key << 21) | day, side="right") - 1
            hit = np.full(look.size, -1, dtype=np.int64)
            pending = np.arange(look.size)
            while pending.size:  # ... stepping back over assignments of the same target that had already ended
                p = pos[pending]
                same = (p >= 0) & (keys[np.maximum(p, 0)] == key[pending])
                pending, p = pending[same], p[same]
                valid = day[pending] < ends[p]
                hit[pending[valid]] = p[valid]
                pending = pending[~valid]
                pos[pending] -= 1
            found = hit >= 0
            rows, at = sub.iloc[hit[found]], look[found]
            pid = rows["person_id"].array
            did = rows["department_id"].array
            person[at] = pid.fillna(0).to_numpy(dtype=np.int64)
            person_na[at] = pid.isna()
            dept[at] = did.fillna(0).to_numpy(dtype=np.int64)
            dept_na[at] = did.isna()
            name[at] = rows["owner_name"].to_numpy(dtype=object)
            vfrom[at] = rows["valid_from"].to_numpy().astype("datetime64[D]")
            vto[at] = rows["valid_to"].to_numpy().astype("datetime64[D]")
        return pd.DataFrame(
            {
                "person_id": pd.arrays.IntegerArray(person, person_na),
                "department_id": pd.arrays.IntegerArray(dept, dept_na),
                "owner_name": pd.Series(name, dtype=object),
                "valid_from": vfrom.astype("datetime64[s]"),
                "valid_to": vto.astype("datetime64[s]"),
            }
        )

    def chains_on(self, segment_ids: Any, days: Any, topology: ChainTopology) -> pd.DataFrame:
        """The owner chain of each (segment, day), vectorised (the module's rule: most specific level wins).

        Returns
        -------
        pandas.DataFrame
            One row per lookup: one column per :data:`CHAIN_ROLES` role (owner
            name or None) and ``chain`` (:func:`chain_text`; None where the
            segment id is missing or nobody holds any role).
        """
        days = days if isinstance(days, np.ndarray) and days.dtype == "datetime64[D]" else as_days(days)
        levels = topology.levels(segment_ids)
        n = len(days)
        has_segment = ~np.isnan(levels[0][1])
        out = {}
        for role in CHAIN_ROLES:
            names = np.full(n, None, dtype=object)
            todo = has_segment.copy()
            for ttype, ids in levels:
                look = todo & ~np.isnan(ids)
                look[look] = self.holds_any(role, ttype, ids[look])
                if not look.any():
                    continue
                at = np.flatnonzero(look)
                found = self.owners_on(
                    np.full(at.size, ttype, dtype=object), ids[at], days[at], role=role
                ).owner_name.to_numpy(dtype=object)
                held = ~pd.isna(found)
                names[at[held]] = found[held]
                todo[at[held]] = False
            out[role] = names
        chain = np.full(n, None, dtype=object)
        if has_segment.any():
            # the text of each distinct combination of owners, not of each row (many rows share one)
            codes, uniques = [], []
            for role in CHAIN_ROLES:
                code, values = pd.factorize(out[role][has_segment], use_na_sentinel=True)
                codes.append(code.astype(np.int64) + 1)  # 0: nobody
                uniques.append(np.concatenate([[None], np.asarray(values, dtype=object)]))
            combined = np.zeros(len(codes[0]), dtype=np.int64)
            for code, values in zip(codes, uniques):  # renumbered at each step: never overflows
                combined = pd.factorize(combined * len(values) + code)[0].astype(np.int64)
            first = pd.Series(np.arange(len(combined))).groupby(combined, sort=True).first().to_numpy()
            texts = [
                chain_text({role: values[code[i]] for role, values, code in zip(CHAIN_ROLES, uniques, codes)})
                for i in first
            ]
            chain[has_segment] = np.asarray([t or None for t in texts], dtype=object)[combined]
        frame = pd.DataFrame(out)
        frame["chain"] = chain
        return frame


# --- one at a time: a single request ----------------------------------------------------------
class OwnerLookup:
    """Owner on a date for one target at a time, in plain dicts: the single-request path (no pandas per call).

    Same rule and tie-break as :class:`OwnerHistory` and SQL ``owner_on``.
    """

    def __init__(self, assignments: pd.DataFrame):
        self._by_key: dict[tuple, list] = {}
        order = (
            pd.to_numeric(assignments["id"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if "id" in assignments.columns
            else np.arange(len(assignments), dtype=float)
        )
        for k, rec in enumerate(assignments.itertuples(index=False)):
            key = (rec.target_type, int(rec.target_id), rec.role)
            vt = getattr(rec, "valid_to", None)
            vt = None if vt is None or pd.isna(vt) else pd.Timestamp(vt).date()
            pid = getattr(rec, "person_id", None)
            did = getattr(rec, "department_id", None)
            pid = None if pid is None or pd.isna(pid) else int(pid)
            did = None if did is None or pd.isna(did) else int(did)
            name = getattr(rec, "owner_name", None)
            entry = (pd.Timestamp(rec.valid_from).date(), order[k], vt, name, pid, did)
            self._by_key.setdefault(key, []).append(entry)
        for entries in self._by_key.values():
            entries.sort(key=lambda e: (e[0], e[1]), reverse=True)  # the latest start, then the latest recorded

    def on(self, target_type: str, target_id: int, role: str, day: dt.date):
        """(name, person id, department id) of the owner in ``role`` on ``day``, or None."""
        for vf, _order, vt, name, pid, did in self._by_key.get((target_type, target_id, role), ()):
            if valid_on(vf, vt, day):
                return name, pid, did
        return None

    def chain(self, segment_id: int, day: dt.date, topology: ChainTopology) -> dict[str, str | None]:
        """The owner name of each chain role of one segment on ``day`` (most specific level wins)."""
        levels = topology.level_of(segment_id)
        out: dict[str, str | None] = {}
        for role in CHAIN_ROLES:
            out[role] = None
            for ttype, tid in levels:
                found = self.on(ttype, tid, role, day)
                if found:
                    out[role] = found[0]
                    break
        return out
