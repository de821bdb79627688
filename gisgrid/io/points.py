"""The one rule for a point entering gisgrid: file import, file assign, the API and geocoding.

A point arrives as two coordinates in a declared CRS (EPSG:4326, EPSG:4490,
GCJ-02, BD-09 or a projected EPSG code; see :func:`gisgrid.crs.parse_crs`) and
leaves as storage lon/lat (EPSG:4326), or as a problem of its row:

``missing_coordinates``
    a coordinate is blank or missing (or a geometry is missing);
``bad_coordinates``
    a coordinate is text that is not a finite number;
``not_a_point``
    a geometry that is not a point (a MultiPoint of one point counts);
``swapped_lonlat``
    the point lies outside every area the deployment serves, but inside one
    with x and y exchanged: reported, never silently corrected;
``out_of_range``
    outside the valid range of its CRS (longitude −180..180, latitude
    −90..90; a projected CRS's area of use, generously), or not convertible.

The areas served are lon/lat boxes, one per area of a deployment (Helsinki and
Shenzhen are not one box: a point between them is not "inside").  A point
merely outside them is no error: it is a legitimate "outside coverage".

Everything works on whole arrays and collects every row's problems in a
:class:`~gisgrid.io.rows.RowProblems`; :func:`check_point` is the one-point
form for single requests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gisgrid.crs import InputCRS, geographic_bounds, parse_crs, to_storage
from gisgrid.errors import InputError
from gisgrid.io.rows import RowProblems
from gisgrid.text import N_

#: The problems a point can have, in priority order, with what they mean.
POINT_ERRORS: Mapping[str, str] = MappingProxyType(
    {
        "missing_coordinates": N_("longitude or latitude is missing"),
        "bad_coordinates": N_("a coordinate is not a number"),
        "not_a_point": N_("the geometry is not a point"),
        "swapped_lonlat": N_("longitude and latitude look swapped (not corrected)"),
        "out_of_range": N_("the coordinates are outside the valid range of their CRS"),
    }
)
#: Text read as a blank cell.
BLANK_TEXT = frozenset({"", "nan", "null", "none", "na", "n/a", "#n/a"})

Box = tuple[float, float, float, float]


class PointError(InputError):
    """One point refused: ``code`` is one of :data:`POINT_ERRORS`, ``reason`` says why."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code

    def translated(self, gettext) -> str:
        """In another language than English, what :data:`POINT_ERRORS` says of the code, with the
        coordinates as given; in English the full reason."""
        short = POINT_ERRORS.get(self.code)
        said = gettext(str(short)) if short is not None else None
        if said is None or said == str(short):
            return super().translated(gettext)
        numbers = ", ".join(dict.fromkeys(re.findall(r"-?\d+(?:\.\d+)?", str(self.reason))))
        return f"{said}（{numbers}）" if numbers else said


# --- areas served ---------------------------------------------------------------------------
def check_areas(areas: Sequence | None) -> tuple[Box, ...] | None:
    """Validate the areas served: one lon/lat box ``(xmin, ymin, xmax, ymax)`` or a sequence of them.

    Returns
    -------
    tuple of boxes, or None when ``areas`` is None or empty.

    Raises
    ------
    InputError
        Naming the value that is not a box.
    """
    if areas is None:
        return None
    items = list(areas)
    if not items:
        return None
    if not isinstance(items[0], (Sequence, np.ndarray)) or isinstance(items[0], str):
        items = [items]  # a single box
    boxes = []
    for item in items:
        try:
            box = tuple(float(v) for v in item)
        except (TypeError, ValueError) as exc:
            raise InputError(f"an area must be (min lon, min lat, max lon, max lat), not {item!r}") from exc
        if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[0] > box[2] or box[1] > box[3]:
            raise InputError(f"an area must be (min lon, min lat, max lon, max lat), not {item!r}")
        boxes.append(box)
    return tuple(boxes)


def in_areas(lon: np.ndarray, lat: np.ndarray, areas: Sequence[Box] | Box) -> np.ndarray:
    """Whether each point (lon/lat) lies in one of ``areas`` (boundary included; NaN is outside)."""
    return _in_boxes(lon, lat, check_areas(areas) or ())


def _in_boxes(x: np.ndarray, y: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    inside = np.zeros(x.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for xmin, ymin, xmax, ymax in boxes:
            inside |= (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    return inside


def boxes_meet_areas(bounds: np.ndarray, areas: Sequence[Box]) -> np.ndarray:
    """Whether each box (rows of ``xmin, ymin, xmax, ymax``) meets one of ``areas``."""
    meets = np.zeros(len(bounds), dtype=bool)
    with np.errstate(invalid="ignore"):
        for xmin, ymin, xmax, ymax in areas:
            meets |= (bounds[:, 2] >= xmin) & (bounds[:, 0] <= xmax) & (bounds[:, 3] >= ymin) & (bounds[:, 1] <= ymax)
    return meets


# --- messages ---------------------------------------------------------------------------------
def _number(value: float) -> str:
    return "missing" if not np.isfinite(value) else f"{value:.10g}"


def _names(crs: InputCRS) -> tuple[str, str]:
    return ("lon", "lat") if crs.is_lonlat else ("x", "y")


def swapped_message(x: float, y: float, crs: InputCRS) -> str:
    """Why a point is ``swapped_lonlat``."""
    nx, ny = _names(crs)
    return (
        f"{nx}/{ny} appear swapped: {nx} {_number(x)}, {ny} {_number(y)} lies outside the area served but inside it "
        "with the two exchanged; check the order of the coordinate columns (not corrected)"
    )


def range_message(x: float, y: float, crs: InputCRS) -> str:
    """Why a point is ``out_of_range``."""
    nx, ny = _names(crs)
    limits = " (longitude -180..180, latitude -90..90)" if crs.is_lonlat else ""
    return f"{nx} {_number(x)}, {ny} {_number(y)} is outside the valid range of {crs.name}{limits}"


# --- reading coordinates --------------------------------------------------------------------------
def parse_coordinates(values: Any, label: str, problems: RowProblems) -> np.ndarray:
    """Floats from a column of numbers or text, for :func:`check_points`.

    Blank cells (:data:`BLANK_TEXT`) are ``missing_coordinates`` ("missing
    lon"); text that is not a finite number is ``bad_coordinates`` ("lon
    '东经116' is not a number").  Both become NaN.

    Parameters
    ----------
    values : array-like
        One coordinate per row; text, numbers, or XLSX cells of both.
    label : str
        The column's name, used in the messages.
    problems : RowProblems
        Receives the rows' problems.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if len(s) != problems.n:
        raise InputError(f"expected {problems.n} values of {label}, got {len(s)}")
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        out = np.array(s.to_numpy(dtype=float, na_value=np.nan))  # a copy: the input is not changed
        problems.add(np.isnan(out), "missing_coordinates", f"missing {label}")
        bad = np.isinf(out)
        problems.add(bad, "bad_coordinates", [f"{label} {v!r} is not a number" for v in out[bad]])
        out[bad] = np.nan
        return out
    out = _fast_numbers(s)
    if out is None:
        text = s.map(lambda v: v if v is None or isinstance(v, str) else str(v), na_action="ignore")
        out = pd.to_numeric(text.str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    suspect = ~np.isfinite(out)
    if suspect.any():  # blank, or not a number: which, and what did it say
        out = np.array(out, dtype=float)  # writable
        pos = np.flatnonzero(suspect)
        raw = s.iloc[pos].to_numpy(dtype=object)
        text = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() for v in raw]
        blank = np.array([t.lower() in BLANK_TEXT for t in text], dtype=bool)
        problems.add(pos[blank], "missing_coordinates", f"missing {label}")
        problems.add(
            pos[~blank], "bad_coordinates", [f"{label} {t!r} is not a number" for t, b in zip(text, blank) if not b]
        )
        out[pos] = np.nan
    return out


def _fast_numbers(s: pd.Series) -> np.ndarray | None:
    """Text → floats with pyarrow when every cell is a number or empty (None when some is not)."""
    if not pd.api.types.is_string_dtype(s.dtype):
        return None
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.compute as pc  # noqa: PLC0415
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return None
    try:
        arr = pc.utf8_trim_whitespace(pa.array(s, type=pa.string(), from_pandas=True))
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def point_coordinates(geoms: np.ndarray, problems: RowProblems) -> tuple[np.ndarray, np.ndarray]:
    """x/y of point geometries, for :func:`check_points`.

    A MultiPoint of one point counts as that point; a missing or empty
    geometry is ``missing_coordinates``, any other type ``not_a_point``.
    """
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    kind = shapely.get_type_id(geoms)
    multi1 = (kind == shapely.GeometryType.MULTIPOINT) & (shapely.get_num_geometries(geoms) == 1)
    geoms = np.where(multi1, shapely.get_geometry(geoms, 0), geoms)
    not_point = ~missing & (kind != shapely.GeometryType.POINT) & ~multi1
    problems.add(
        not_point,
        "not_a_point",
        [f"a {shapely.GeometryType(t).name.lower()} is not a point" for t in kind[not_point]],
    )
    problems.add(missing, "missing_coordinates", "missing geometry")
    usable = ~missing & ~not_point
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    x[usable] = shapely.get_x(geoms[usable])
    y[usable] = shapely.get_y(geoms[usable])
    return x, y


# --- the rule -----------------------------------------------------------------------------------
def check_points(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    crs: str | int | InputCRS,
    *,
    areas: Sequence | None = None,
    problems: RowProblems | None = None,
) -> tuple[np.ndarray, np.ndarray, RowProblems]:
    """Check points in their declared CRS and convert the good ones to storage lon/lat (EPSG:4326).

    Parameters
    ----------
    x, y : array-like of float
        Longitude/easting and latitude/northing in ``crs``; NaN where missing.
    crs : str, int or InputCRS
        The declared CRS.
    areas : box or sequence of boxes, optional
        The lon/lat boxes the deployment serves, for the swapped check
        (without them a swap cannot be told from a faraway place).
    problems : RowProblems, optional
        Problems found earlier (e.g. by :func:`parse_coordinates`); those rows
        are not checked again.  A new one is made when omitted.

    Returns
    -------
    lon, lat : numpy.ndarray of float
        Storage lon/lat; NaN for every row with a problem.
    problems : RowProblems
        Every row's problems, codes as in :data:`POINT_ERRORS`.
    """
    crs = parse_crs(crs)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"x and y must be 1-d arrays of one length, not {x.shape} and {y.shape}")
    n = len(x)
    if problems is None:
        problems = RowProblems(n, tuple(POINT_ERRORS))
    areas = check_areas(areas)
    live = problems.ok.copy()
    missing = live & (np.isnan(x) | np.isnan(y))
    problems.add(missing, "missing_coordinates", POINT_ERRORS["missing_coordinates"])
    live &= ~missing
    bounds = [geographic_bounds(crs)]  # may be infinite: no area of use
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    convert = np.flatnonzero(live & _in_boxes(x, y, bounds))
    with np.errstate(invalid="ignore", over="ignore"):
        lon[convert], lat[convert] = to_storage(x[convert], y[convert], crs)
    bad = live & ~_in_boxes(lon, lat, [(-180.0, -90.0, 180.0, 90.0)])
    if areas is not None:
        candidates = np.flatnonzero(live & (bad | ~_in_boxes(lon, lat, areas)))
        candidates = candidates[_in_boxes(y[candidates], x[candidates], bounds)]
        if candidates.size:
            with np.errstate(invalid="ignore", over="ignore"):
                slon, slat = to_storage(y[candidates], x[candidates], crs)
            swapped = candidates[_in_boxes(slon, slat, areas)]
            problems.add(swapped, "swapped_lonlat", [swapped_message(x[i], y[i], crs) for i in swapped])
            bad[swapped] = False
    pos = np.flatnonzero(bad)
    problems.add(pos, "out_of_range", [range_message(x[i], y[i], crs) for i in pos])
    lon[~problems.ok] = np.nan
    lat[~problems.ok] = np.nan
    return lon, lat, problems


def check_point(lon: Any, lat: Any, crs: str | int | InputCRS = "EPSG:4326", *, areas=None) -> tuple[float, float]:
    """One point by :func:`check_points`' rule: its storage lon/lat, or :class:`PointError`.

    ``lon`` and ``lat`` may be numbers or text (as a JSON body or a form gives them).

    Raises
    ------
    PointError
        With the row's code and reason.
    gisgrid.errors.CRSError
        For an unknown CRS.
    """
    crs = parse_crs(crs)
    problems = RowProblems(1, tuple(POINT_ERRORS))
    nx, ny = _names(crs)
    x = _scalar(lon, nx, problems)  # as parse_coordinates, without pandas: single requests are hot
    y = _scalar(lat, ny, problems)
    slon, slat, problems = check_points(np.array([x]), np.array([y]), crs, areas=areas, problems=problems)
    if not problems.ok[0]:
        raise PointError(str(problems.codes()[0]), str(problems.messages()[0]))
    return float(slon[0]), float(slat[0])


def _scalar(value: Any, label: str, problems: RowProblems) -> float:
    """One coordinate by :func:`parse_coordinates`' rule."""
    if isinstance(value, bool):
        value = str(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        problems.add(np.array([0]), "missing_coordinates", f"missing {label}")
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    else:
        text = str(value).strip()
        if text.lower() in BLANK_TEXT:
            problems.add(np.array([0]), "missing_coordinates", f"missing {label}")
            return math.nan
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            problems.add(np.array([0]), "bad_coordinates", f"{label} {text!r} is not a number")
            return math.nan
    if not math.isfinite(number):
        problems.add(np.array([0]), "bad_coordinates", f"{label} {value!r} is not a number")
        return math.nan
    return number
