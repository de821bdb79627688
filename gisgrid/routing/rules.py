"""The routing rules: what each rule does, the rule set of a deployment, and the per-row checks.

A report point is routed by the first rule that applies, in this order:

(a) ``category_route``
    The category's routing spec (:class:`RuleSet`) sends it to a department:
    always (``{"mode": "department", "department_id": N}``) or only when the
    segment found by rules (a′)/(b)/(c) has one of the listed road classes
    (``{"mode": "by_road_class", "road_classes": {"primary": N, ...}}``).
(a′) ``address_street``
    A point located from a written address that names a street goes to the
    nearest segment of that street within the rule set's
    ``address_tolerance_m``, even inside another street's frontage area; a
    written crossing goes to a segment of one of its streets by the rule set's
    ``intersection_rule`` (see :mod:`gisgrid.routing.address`).  Points given
    as coordinates only name no street and skip this rule.
(b) ``segment_area``
    The segment whose frontage area polygon contains the point (boundary
    included).
(c) ``nearest_segment``
    Else the segment whose centerline is nearest, if it is within the rule
    set's tolerance (default 30 m, the bound included).
(d) ``grid_cell``
    Else the grid cell containing the point (boundary included).
(e) ``jurisdiction_default``
    Else the smallest jurisdiction containing the point (属地兜底): community
    before town before county.
(f) ``unassigned``
    Else no target, with reason ``"outside coverage"``.  Such a row is kept:
    it is the evidence of a coverage gap.

Ties are broken the same way on every run, whatever the order of the input
points or of the layers:

* a point in several segment areas (on a shared boundary, or in an overlap a
  planner left behind) goes to the segment whose *centerline is nearest*, then
  to the *lowest segment id*;
* a point at the same distance from several centerlines goes to the *lowest
  segment id*;
* distances are compared rounded to the micrometre (:data:`TIE_DECIMALS`), so
  that floating-point noise (of a reprojection, say) never decides between two
  equidistant segments, nor whether a point exactly at the tolerance is within it;
* a point on the border of several grid cells goes to the *lowest cell id*;
* among the jurisdictions containing a point: the lowest level (community,
  then town, then county), then the smallest area, then the lowest id.

The rules are applied by :mod:`gisgrid.routing.index` (in memory) and
:mod:`gisgrid.routing.files` (files).  Rows that cannot be assigned because of
bad input keep their place in the output with an ``error_code``
(:data:`ERROR_CODES`) and a readable ``error_message`` and no target: rows in
= rows out, always.  The per-row checks are available alone as
:func:`validate_points` (the one point rule, :mod:`gisgrid.io.points`),
:func:`validate_categories` and :func:`parse_dates`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from gisgrid.config import DEFAULT_ADDRESS_STREET_TOLERANCE_M
from gisgrid.errors import InputError
from gisgrid.io.fields import FIELD_NAMES
from gisgrid.io.points import (
    BLANK_TEXT,
    POINT_ERRORS,
    check_points,
)
from gisgrid.io.rows import RowProblems
from gisgrid.routing.address import (
    ADDRESS_RULE,
    INTERSECTION_RULES,
)
from gisgrid.text import N_, Patterns

try:  # pyarrow parses ISO dates several times faster; pandas is the fallback
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - exercised only without pyarrow
    pa = pc = None

LOGGER = logging.getLogger(__name__)

#: Default tolerance of the nearest-centerline rule, in metres.
DEFAULT_TOLERANCE_M = 30.0
#: Distances are compared rounded to this many decimals of a metre when breaking ties.
TIE_DECIMALS = 6

#: The rules, in the order they are tried.
RULES = (
    "category_route",
    ADDRESS_RULE,
    "segment_area",
    "nearest_segment",
    "grid_cell",
    "jurisdiction_default",
    "unassigned",
)
_R_CATEGORY, _R_ADDRESS, _R_AREA, _R_NEAREST, _R_CELL, _R_JURISDICTION, _R_UNASSIGNED = range(len(RULES))
#: Target types a rule can produce.
TARGET_TYPES = ("department", "segment", "cell", "jurisdiction")
_RULE_TARGET = np.array([0, 1, 1, 1, 2, 3, -1], dtype=np.int8)  # target type code by rule code
OUTSIDE_COVERAGE = "outside coverage"
#: Every routing reason's pattern (the engine and the unit step write them as English strings, stored with
#: each assignment); pages say them in their language with ``REASONS.say(reason, gettext)``.
REASONS = Patterns(
    (
        N_("outside coverage"),
        N_("nothing to route to"),
        N_("category %(code)s routes to department %(dept)s"),
        N_("category %(code)s on a %(road)s road routes to department %(dept)s"),
        N_("address street %(name)s: the written address names it"),
        N_("address street %(name)s: %(which)s of the crossing the address names"),
        N_("the street written first"),
        N_("the street of the higher road class"),
        N_("in the frontage of unit %(unit)s (frontage duty), but %(why)s: stays with the segment chief"),
        N_("in the frontage of unit %(unit)s (frontage duty), agreement valid until %(until)s"),
        N_("its agreement expired on %(day)s"),
        N_("its agreement starts on %(day)s"),
        N_("it has signed no agreement"),
        N_("it names no contact person"),
        # a located row of the geocoding page that no owner answers for (gisgrid.geocode.route)
        N_("outside every street segment and grid cell: unassigned"),
        N_("no owner on record for %(place)s"),
        N_("the place"),
    )
)

#: Per-row error codes, in priority order (a row with several problems gets the first code and all messages);
#: the point codes are those of the one point rule, :data:`gisgrid.io.points.POINT_ERRORS`.
ERROR_CODES: Mapping[str, str] = MappingProxyType(
    {
        "malformed_row": "the row cannot be split into the header's columns",
        "bad_text": "a text cell is longer than max_text_chars or holds a NUL character",
        **POINT_ERRORS,
        "unknown_category": "the category code is not in the rule set",
        "bad_date": "the date cannot be read",
    }
)
_ERROR_LIST = tuple(ERROR_CODES)
_ERROR_INDEX = {code: i for i, code in enumerate(_ERROR_LIST)}

#: Result columns added to every row, in this order.
RESULT_COLUMNS = (
    "target_type",
    "target_id",
    "rule",
    "distance_m",
    "segment_id",
    "reason",
    "ruleset_version",
    "error_code",
    "error_message",
)
#: Owner columns added when an :class:`OwnerHistory` is given.
OWNER_COLUMNS = ("owner_name", "owner_person_id", "owner_department_id")

#: Jurisdiction levels, smallest first (the default-owner rule prefers the smallest).
JURISDICTION_LEVELS = ("community", "town", "county")
ROUTE_MODES = ("location", "department", "by_road_class")

#: Column names recognised as the category and the report date, compared case-insensitively.
CATEGORY_NAMES = ("category", *FIELD_NAMES["category"])  # the names import reads, gisgrid.io.fields
DATE_NAMES = ("date", "report_date", "reported_at", *FIELD_NAMES["reported_at"])

_NA_TEXT = BLANK_TEXT


# --- rule set -----------------------------------------------------------------------
@dataclass(frozen=True)
class RuleSet:
    """The routing configuration of a deployment, versioned.

    Parameters
    ----------
    version : str
        Recorded with every result (e.g. ``"2026.1"``), so that a result can be
        explained after the rules change.
    tolerance_m : float, default 30.0
        Largest distance, in metres, from the point to a centerline for rule (c).
    category_routes : mapping of str to mapping
        Category code → routing spec, as in the category table's ``routing``
        JSON: ``{"mode": "location"}`` (or ``{}``: no override),
        ``{"mode": "department", "department_id": N}`` (always that department),
        ``{"mode": "by_road_class", "road_classes": {"primary": N, ...}}``
        (that department when the point's segment has one of the road classes,
        else by location).  A category code absent here is unknown: a row
        carrying it is a per-row error.
    address_tolerance_m : float, default 150.0
        Largest distance, in metres, from a point located from a written
        address to a centerline of the street it names, for rule (a′).
    intersection_rule : {'first_written', 'road_class'}, default 'first_written'
        Which street of a written crossing answers under rule (a′).

    Raises
    ------
    InputError
        Listing every invalid part of the rule set at once.
    """

    version: str
    tolerance_m: float = DEFAULT_TOLERANCE_M
    category_routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    address_tolerance_m: float = DEFAULT_ADDRESS_STREET_TOLERANCE_M
    intersection_rule: str = "first_written"

    def __post_init__(self) -> None:
        problems: list[str] = []
        try:
            address_tolerance = float(self.address_tolerance_m)
        except (TypeError, ValueError):
            address_tolerance = math.nan
        if not math.isfinite(address_tolerance) or address_tolerance < 0:
            problems.append(f"address_tolerance_m must be a finite number >= 0, not {self.address_tolerance_m!r}")
        if self.intersection_rule not in INTERSECTION_RULES:
            problems.append(
                f"intersection_rule must be one of {', '.join(INTERSECTION_RULES)}, not {self.intersection_rule!r}"
            )
        if not isinstance(self.version, str) or not self.version.strip():
            problems.append(f"version must be non-empty text, not {self.version!r}")
        try:
            tolerance = float(self.tolerance_m)
        except (TypeError, ValueError):
            tolerance = math.nan
        if not math.isfinite(tolerance) or tolerance < 0:
            problems.append(f"tolerance_m must be a finite number >= 0, not {self.tolerance_m!r}")
        routes: dict[str, Mapping[str, Any]] = {}
        for code, spec in dict(self.category_routes or {}).items():
            key = str(code).strip()
            spec = dict(spec or {})
            mode = spec.get("mode", "location")
            if not key:
                problems.append("an empty category code")
            elif key in routes:
                problems.append(f"category {key!r} given twice")
            if mode == "location":
                spec = {"mode": "location"}
            elif mode == "department":
                if not _is_id(spec.get("department_id")):
                    problems.append(
                        f"category {key!r}: mode 'department' needs an integer department_id, "
                        f"not {spec.get('department_id')!r}"
                    )
                else:
                    spec = {"mode": "department", "department_id": int(spec["department_id"])}
            elif mode == "by_road_class":
                classes = spec.get("road_classes")
                if not isinstance(classes, Mapping) or not classes:
                    problems.append(
                        f"category {key!r}: mode 'by_road_class' needs road_classes {{road class: department_id, ...}}"
                    )
                else:
                    bad = {rc: d for rc, d in classes.items() if not _is_id(d) or not str(rc).strip()}
                    if bad:
                        problems.append(
                            f"category {key!r}: road_classes need text keys and integer department ids, not {bad!r}"
                        )
                    spec = {
                        "mode": "by_road_class",
                        "road_classes": {_norm_road_class(rc): int(d) for rc, d in classes.items() if rc not in bad},
                    }
            else:
                problems.append(f"category {key!r}: mode must be one of {', '.join(ROUTE_MODES)}, not {mode!r}")
            routes[key] = MappingProxyType(spec)
        if problems:
            raise InputError("invalid rule set: " + "; ".join(problems))
        object.__setattr__(self, "tolerance_m", tolerance)
        object.__setattr__(self, "address_tolerance_m", address_tolerance)
        object.__setattr__(self, "category_routes", MappingProxyType(routes))

    def __reduce__(self):
        # a MappingProxyType does not pickle: a rule set travels (to the workers of gisgrid.routing.distributed)
        # as its fields with plain dicts, and is validated again on arrival
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        kwargs["category_routes"] = {code: dict(spec) for code, spec in self.category_routes.items()}
        return (_rule_set_from_fields, (kwargs,))

    @classmethod
    def from_categories(
        cls,
        categories: pd.DataFrame | Iterable[Mapping[str, Any]],
        *,
        version: str,
        tolerance_m: float = DEFAULT_TOLERANCE_M,
        address_tolerance_m: float = DEFAULT_ADDRESS_STREET_TOLERANCE_M,
        intersection_rule: str = "first_written",
    ) -> RuleSet:
        """A rule set from rows of the category table (``code``, ``routing``, optional ``department_id``).

        ``routing`` is the JSON object (a dict or its text); ``{"mode": "department"}``
        without a ``department_id`` takes the category row's ``department_id``.
        """
        import json  # noqa: PLC0415 - only for routing given as text

        rows = categories.to_dict("records") if isinstance(categories, pd.DataFrame) else list(categories)
        routes: dict[str, dict] = {}
        for row in rows:
            routing = row.get("routing") or {}
            if isinstance(routing, str):
                try:
                    routing = json.loads(routing) if routing.strip() else {}
                except ValueError as exc:
                    raise InputError(f"category {row.get('code')!r}: routing is not JSON: {exc}") from exc
            routing = dict(routing)
            if (
                routing.get("mode") == "department"
                and routing.get("department_id") is None
                and _is_id(row.get("department_id"))
            ):
                routing["department_id"] = int(row["department_id"])
            routes[str(row.get("code", "")).strip()] = routing
        return cls(
            version=version,
            tolerance_m=tolerance_m,
            category_routes=routes,
            address_tolerance_m=address_tolerance_m,
            intersection_rule=intersection_rule,
        )


def _is_id(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        return float(value).is_integer()
    except (TypeError, ValueError):
        return False


def _norm_road_class(value: Any) -> str:
    return str(value).strip().lower()


# --- per-row errors ---------------------------------------------------------------------
class _RowErrors(RowProblems):
    """Error code and messages per row, codes as in :data:`ERROR_CODES`."""

    def __init__(self, n: int):
        super().__init__(n, _ERROR_LIST)


def validate_points(
    lon: Sequence[float] | np.ndarray, lat: Sequence[float] | np.ndarray, *, extent: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check lon/lat degrees (EPSG:4326) row by row with the one point rule (:func:`gisgrid.io.points.check_points`).

    Parameters
    ----------
    lon, lat : array-like of float
        Longitudes and latitudes (NaN where missing).
    extent : box or sequence of boxes (min lon, min lat, max lon, max lat), optional
        The areas served.  A point outside them but inside one with lon and
        lat exchanged is flagged ``swapped_lonlat`` (and not corrected).  A
        point merely outside is *not* an error: it is a legitimate
        ``unassigned`` result.

    Returns
    -------
    ok : numpy.ndarray of bool
    error_code : numpy.ndarray of object
        ``None``, ``"missing_coordinates"``, ``"out_of_range"`` or ``"swapped_lonlat"``.
    message : numpy.ndarray of object
        A readable message per failed row, ``None`` elsewhere.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    errors = _RowErrors(len(lon) if lon.ndim == 1 else 0)
    check_points(lon, lat, "EPSG:4326", areas=extent, problems=errors)
    return errors.ok, errors.codes(), errors.messages()


def _text(values: Any, n: int) -> pd.Series:
    """Values as a text Series (NaN where missing); integral numbers without '.0'."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if len(s) != n:
        raise InputError(f"expected {n} values, got {len(s)}")
    s = s.reset_index(drop=True)
    if pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype):
        return s
    if pd.api.types.infer_dtype(s, skipna=True) in {"string", "empty"}:
        return s.astype("str")
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("str")
    # numbers (XLSX cells, typed vector attributes): 101.0 is the code "101"
    obj = s.astype(object).to_numpy()
    out = np.empty(n, dtype=object)
    for i, v in enumerate(obj):  # mixed object columns only; they come from XLSX, whose reader loops anyway
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out[i] = None
        elif isinstance(v, (float, np.floating)) and float(v).is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return pd.Series(out, dtype="str")


def validate_categories(values: Any, ruleset: RuleSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check category codes against a rule set, vectorised.

    A blank category is allowed (the row is routed by location); a code absent
    from ``ruleset.category_routes`` is ``unknown_category``.

    Returns
    -------
    ok, error_code, message : numpy arrays as in :func:`validate_points`.
    """
    n = len(values)
    errors = _RowErrors(n)
    _encode_categories(values, n, pd.Index(list(ruleset.category_routes), dtype=object), errors)
    return errors.ok, errors.codes(), errors.messages()


def _encode_categories(values: Any, n: int, codes: pd.Index, errors: _RowErrors) -> np.ndarray:
    """Index into ``codes`` per row; -1 for a blank category; unknown codes are added to ``errors``."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):  # already factorized (bulk reads)
        if len(values) != n:
            raise InputError(f"expected {n} values, got {len(values)}")
        found = np.asarray(values.cat.codes if isinstance(values, pd.Series) else values.codes, dtype=np.int64)
        cats = values.cat.categories if isinstance(values, pd.Series) else values.categories
        uniques = _text(pd.Series(cats), len(cats)).to_numpy(dtype=object)
    else:
        found, uniques = pd.factorize(_text(values, n))  # strip and look up each distinct code once
    stripped = pd.Series(np.asarray(uniques, dtype=object), dtype="str").str.strip()
    k_unique = codes.get_indexer(stripped.to_numpy(dtype=object))
    blank_unique = (stripped == "").to_numpy(dtype=bool)
    k = np.where(found >= 0, k_unique[np.maximum(found, 0)] if len(uniques) else -1, -1)
    blank = (found < 0) | (blank_unique[np.maximum(found, 0)] if len(uniques) else True)
    unknown = np.flatnonzero((k < 0) & ~blank)
    if unknown.size:
        raw = stripped.to_numpy(dtype=object)[found[unknown]]
        errors.add(unknown, "unknown_category", [f"unknown category {c!r}" for c in raw])
    return np.where(blank, -1, k)


def parse_dates(values: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Report dates from text (ISO 8601, ``2026/3/1``, ``2026年3月1日`` …), dates or datetimes.

    A blank date is allowed (NaT); text that is not a date is ``bad_date``.
    Times of day and time-zone suffixes are dropped: the calendar date as
    written is the day whose owner answers.

    Returns
    -------
    dates : numpy.ndarray of datetime64[D]
        NaT where blank or bad.
    ok, error_code, message : numpy arrays as in :func:`validate_points`.
    """
    n = len(values)
    errors = _RowErrors(n)
    dates = _parse_dates(values, n, errors)
    return dates, errors.ok, errors.codes(), errors.messages()


#: What may follow an ISO date: a time of day and a time-zone designator (dropped: the written date counts).
_ISO_TAIL = r"^(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$"


def _parse_dates(values: Any, n: int, errors: _RowErrors) -> np.ndarray:
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    if pd.api.types.is_object_dtype(s.dtype) and pd.api.types.infer_dtype(s, skipna=True) not in {"string", "empty"}:
        # XLSX cells: dates and datetimes beside text
        s = s.map(lambda v: v.isoformat() if isinstance(v, (dt.date, pd.Timestamp)) else v)
    text = _text(s, n).str.strip()
    blank = (text.isna() | text.str.lower().isin(list(_NA_TEXT))).to_numpy(dtype=bool)
    text = text.where(~blank)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    todo = np.flatnonzero(~blank)
    if todo.size and pa is not None:  # fast path: ISO dates, with or without a time of day
        arr = pa.array(text.iloc[todo], type=pa.string(), from_pandas=True)
        day = pc.strptime(pc.utf8_slice_codeunits(arr, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True)
        fast = pc.and_(pc.is_valid(day), pc.match_substring_regex(pc.utf8_slice_codeunits(arr, 10), _ISO_TAIL))
        fast = fast.fill_null(False).to_numpy(zero_copy_only=False)
        out[todo[fast]] = day.to_numpy(zero_copy_only=False)[fast].astype("datetime64[D]")
        todo = todo[~fast]
    if not todo.size:
        return out
    sub = text.iloc[todo]
    # the written local date: drop a time-zone designator after a time of day
    if sub.str.contains(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d:?\d\d)$", regex=True).any():
        sub = sub.str.replace(r"(\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(?:Z|[+-]\d\d:?\d\d)$", r"\1", regex=True)
    parsed = pd.to_datetime(sub, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():  # 2026/3/1, 2026.3.1, 2026年3月1日 8时, 3/1/2026 …
        alt = (
            sub[bad]
            .str.replace(r"[年月/.]", "-", regex=True)
            .str.replace(r"[日号]", " ", regex=True)
            .str.replace(r"(\d+)时(\d+)分?", r"\1:\2", regex=True)
            .str.strip()
        )
        retry = pd.to_datetime(alt, errors="coerce", format="ISO8601")
        still = retry.isna().to_numpy()
        if still.any():
            retry[still] = pd.to_datetime(alt[still], errors="coerce", format="mixed")
        parsed[bad] = retry
        bad = parsed.isna().to_numpy()
    out[todo] = parsed.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    if bad.any():
        pos = todo[bad]
        errors.add(
            pos,
            "bad_date",
            [f"date {t!r} cannot be read (write e.g. 2026-03-01)" for t in sub[bad].to_numpy(dtype=object)],
        )
    return out


def _rule_set_from_fields(kwargs: dict) -> RuleSet:
    """A pickled :class:`RuleSet` back (see ``RuleSet.__reduce__``)."""
    return RuleSet(**kwargs)
