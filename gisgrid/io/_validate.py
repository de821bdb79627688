"""Checks of the rows read from a file, done on whole arrays of geometries.

Problems are collected per row (by position in the arrays) rather than raised:
a rejected row carries every reason found for it, a repaired row keeps its
repaired geometry and a note of what was done.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import pandas as pd
import shapely

from gisgrid.crs import InputCRS, geographic_bounds, to_storage
from gisgrid.errors import InputError
from gisgrid.io.points import POINT_ERRORS, boxes_meet_areas, check_areas, check_points, point_coordinates
from gisgrid.io.rows import RowProblems

LOGGER = logging.getLogger(__name__)

#: Geometry families an input layer may be restricted to, as shapely type ids
#: (single part, multi part).
FAMILIES: dict[str, tuple[int, int]] = {
    "point": (shapely.GeometryType.POINT, shapely.GeometryType.MULTIPOINT),
    "line": (shapely.GeometryType.LINESTRING, shapely.GeometryType.MULTILINESTRING),
    "polygon": (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON),
}
_NAMES = {"point": "Point or MultiPoint", "line": "LineString or MultiLineString", "polygon": "Polygon or MultiPolygon"}
_FAMILY_ALIASES = {
    "point": "point",
    "points": "point",
    "multipoint": "point",
    "line": "line",
    "lines": "line",
    "linestring": "line",
    "multilinestring": "line",
    "polygon": "polygon",
    "polygons": "polygon",
    "multipolygon": "polygon",
}


class Findings:
    """Reasons for rejecting or repairing rows, keyed by position."""

    def __init__(self, n: int):
        self.n = n
        self.rejected: dict[int, list[str]] = defaultdict(list)
        self.repaired: dict[int, list[str]] = defaultdict(list)

    def reject(self, pos: int, reason: str) -> None:
        self.rejected[int(pos)].append(reason)

    def repair(self, pos: int, reason: str) -> None:
        self.repaired[int(pos)].append(reason)

    def merge(self, rejected: dict[int, list[str]], repaired: dict[int, list[str]]) -> None:
        for pos, reasons in rejected.items():
            self.rejected[int(pos)].extend(reasons)
        for pos, reasons in repaired.items():
            self.repaired[int(pos)].extend(reasons)

    def accepted(self) -> np.ndarray:
        """Boolean mask of the rows not rejected so far."""
        mask = np.ones(self.n, dtype=bool)
        mask[list(self.rejected)] = False
        return mask


def expected_family(value: str | None) -> str | None:
    """Normalise ``expected_geom`` to 'point', 'line' or 'polygon' (None: any type).

    Raises
    ------
    InputError
        For any other value.
    """
    if value is None:
        return None
    family = _FAMILY_ALIASES.get(str(value).strip().lower())
    if family is None:
        raise InputError(f"expected_geom must be 'point', 'line' or 'polygon', not {value!r}")
    return family


def check_extent(extent) -> tuple[tuple[float, float, float, float], ...] | None:
    """Validate the areas served: one lon/lat box ``(xmin, ymin, xmax, ymax)`` in degrees, or several."""
    return check_areas(extent)


def _describe(bounds: np.ndarray) -> str:
    xmin, ymin, xmax, ymax = bounds
    if xmin == xmax and ymin == ymax:
        return f"({xmin:.8g}, {ymin:.8g})"
    return f"bounds ({xmin:.8g}, {ymin:.8g}, {xmax:.8g}, {ymax:.8g})"


def _lonlat_boxes(bounds: np.ndarray, crs: InputCRS, *, swap: bool) -> np.ndarray:
    """Storage lon/lat boxes of boxes in ``crs`` (corner transform, for coarse tests)."""
    xs, ys = bounds[:, [0, 2]], bounds[:, [1, 3]]
    if swap:
        xs, ys = ys, xs
    with np.errstate(invalid="ignore"):
        lon, lat = to_storage(xs.ravel(), ys.ravel(), crs)
    lon, lat = lon.reshape(-1, 2), lat.reshape(-1, 2)
    return np.column_stack([lon.min(axis=1), lat.min(axis=1), lon.max(axis=1), lat.max(axis=1)])


def check_geometries(
    geoms: np.ndarray,
    crs: InputCRS,
    findings: Findings,
    *,
    extent: tuple[tuple[float, float, float, float], ...] | None = None,
    family: str | None = None,
) -> np.ndarray:
    """Check and repair geometries in their declared CRS; record findings per row.

    In order: empty or non-finite geometries; lon/lat swapped (only with an
    ``extent``: the row misses the extent and meets it when x and y are
    exchanged; reported, never fixed); coordinates outside the CRS's valid
    range; invalid geometries, repaired with ``shapely.make_valid`` (structure
    method) unless that changes their dimension or leaves nothing; the
    geometry ``family``, single parts promoted to multi for lines and polygons.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries or None
        Geometries in ``crs``; None rows must already be rejected.
    crs : InputCRS
        The declared CRS.
    findings : Findings
        Collects the reasons; rows already rejected are not checked again.
    extent : tuple of boxes, optional
        The lon/lat boxes (EPSG:4326 degrees) the deployment serves (:func:`check_extent`).
    family : {'point', 'line', 'polygon'}, optional
        Geometry family the layer must have.

    Returns
    -------
    numpy.ndarray
        The geometries, repaired and promoted where that was done.
    """
    geoms = geoms.copy()

    def alive() -> np.ndarray:
        return np.flatnonzero(findings.accepted() & np.not_equal(geoms, None))

    idx = alive()
    for pos in idx[shapely.is_empty(geoms[idx])]:
        findings.reject(pos, "empty geometry")

    idx = alive()
    coords, owner = shapely.get_coordinates(geoms[idx], return_index=True)
    for pos in np.unique(idx[owner[~np.isfinite(coords).all(axis=1)]]):
        findings.reject(pos, "coordinates are not finite numbers")

    idx = alive()
    bounds = shapely.bounds(geoms[idx])
    swapped = np.zeros(len(idx), dtype=bool)
    if extent is not None and len(idx):
        swapped = ~boxes_meet_areas(_lonlat_boxes(bounds, crs, swap=False), extent) & boxes_meet_areas(
            _lonlat_boxes(bounds, crs, swap=True), extent
        )
        for pos, box in zip(idx[swapped], bounds[swapped], strict=True):
            findings.reject(
                pos,
                f"lon/lat appear swapped: {_describe(box)} lies outside the area served "
                "but inside it with x and y exchanged (not corrected)",
            )
    xmin, ymin, xmax, ymax = geographic_bounds(crs)
    outside = ~swapped & ((bounds[:, 0] < xmin) | (bounds[:, 1] < ymin) | (bounds[:, 2] > xmax) | (bounds[:, 3] > ymax))
    for pos, box in zip(idx[outside], bounds[outside], strict=True):
        findings.reject(
            pos,
            f"coordinates {_describe(box)} outside the valid range of {crs.name} "
            f"(x {xmin:.8g}..{xmax:.8g}, y {ymin:.8g}..{ymax:.8g})",
        )

    idx = alive()
    invalid = idx[~shapely.is_valid(geoms[idx])]
    if invalid.size:
        reasons = shapely.is_valid_reason(geoms[invalid])
        fixed = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
        before, after = shapely.get_dimensions(geoms[invalid]), shapely.get_dimensions(fixed)
        for pos, reason, geom, dim_before, dim_after in zip(invalid, reasons, fixed, before, after, strict=True):
            if geom.is_empty or dim_after != dim_before:
                result = "nothing" if geom.is_empty else f"a {geom.geom_type}"
                findings.reject(pos, f"invalid geometry ({reason}) that repair would turn into {result}")
            else:
                geoms[pos] = geom
                findings.repair(pos, f"invalid geometry ({reason}) repaired as a valid {geom.geom_type}")

    if family is not None:
        idx = alive()
        single, multi = FAMILIES[family]
        type_ids = shapely.get_type_id(geoms[idx])
        wrong = ~np.isin(type_ids, (single, multi))
        for pos in idx[wrong]:
            findings.reject(pos, f"{geoms[pos].geom_type} in a {family} layer (expected {_NAMES[family]})")
        promote = idx[type_ids == single]
        if family != "point" and promote.size:
            make_multi = shapely.multilinestrings if family == "line" else shapely.multipolygons
            geoms[promote] = make_multi(geoms[promote], indices=np.arange(promote.size))
    return geoms


def check_point_geometries(
    geoms: np.ndarray,
    crs: InputCRS,
    findings: Findings,
    *,
    extent: tuple[tuple[float, float, float, float], ...] | None = None,
) -> np.ndarray:
    """Points by the one point rule (:func:`gisgrid.io.points.check_points`), as ``gisgrid assign`` checks them.

    Rows already rejected are left alone; the others are rejected with the
    rule's reason (missing, not a point, lon/lat swapped, out of range) or
    converted.

    Returns
    -------
    numpy.ndarray
        Storage lon/lat (EPSG:4326) 2-D points; None where rejected.
    """
    out = np.full(len(geoms), None, dtype=object)
    alive = np.flatnonzero(findings.accepted())
    problems = RowProblems(len(alive), tuple(POINT_ERRORS))
    x, y = point_coordinates(geoms[alive], problems)
    lon, lat, problems = check_points(x, y, crs, areas=extent, problems=problems)
    for pos, reason in problems.reasons().items():
        findings.reject(alive[pos], reason)
    ok = problems.ok
    out[alive[ok]] = shapely.points(lon[ok], lat[ok])
    return out


def check_duplicate_ids(ids: pd.Series, rows: np.ndarray, findings: Findings, *, column: str = "id") -> None:
    """Reject rows whose id repeats an earlier row's, naming that row's number.

    Blank ids are not compared.  ``ids`` and ``rows`` are aligned by position.
    """
    key = ids.reset_index(drop=True)
    if pd.api.types.is_string_dtype(key):
        key = key.str.strip().mask(lambda s: s == "")
    present = key.notna().to_numpy()
    repeated = key.duplicated(keep="first").to_numpy() & present
    if not repeated.any():
        return
    first_row = {value: rows[pos] for pos, value in key[present].drop_duplicates(keep="first").items()}
    for pos in np.flatnonzero(repeated):
        value = key.iloc[pos]
        findings.reject(pos, f"duplicate {column} {value!r}: same as row {first_row[value]}")


def geometries_to_storage(geoms: np.ndarray, crs: InputCRS) -> np.ndarray:
    """Geometries in ``crs`` → 2-D storage lon/lat (EPSG:4326), vertex by vertex.

    GCJ-02 and BD-09 are converted per vertex by :func:`gisgrid.crs.to_storage`;
    Z values are dropped because storage is 2-D.  None stays None.
    """
    out = geoms.copy()
    present = np.not_equal(geoms, None)

    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_storage(coords[:, 0], coords[:, 1], crs)
        return np.column_stack([lon, lat])

    out[present] = shapely.transform(geoms[present], convert)
    return out
