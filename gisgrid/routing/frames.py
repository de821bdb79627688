"""Routing a table of points (a pandas frame in any supported CRS) with the in-memory index.

:func:`assign_frame` takes a frame and its coordinate columns and returns it with the routing
columns of :class:`gisgrid.routing.index.AssignmentIndex` attached; :mod:`gisgrid.routing.files`
streams files through the same steps.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gisgrid.crs import InputCRS, parse_crs
from gisgrid.errors import CRSError, InputError
from gisgrid.io.points import (
    check_areas,
    check_points,
    parse_coordinates,
    point_coordinates,
)
from gisgrid.ownership.history import OwnerHistory
from gisgrid.routing.index import AssignmentIndex
from gisgrid.routing.rules import (
    CATEGORY_NAMES,
    DATE_NAMES,
    _encode_categories,
    _parse_dates,
    _RowErrors,
    _text,
)

LOGGER = logging.getLogger(__name__)


# --- frames -------------------------------------------------------------------------------
def find_column(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lowered = {str(c).strip().lower(): c for c in reversed(list(columns))}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def optional_column(frame: pd.DataFrame, given: str | None, names: Sequence[str], what: str) -> str | None:
    if given is None:
        return find_column(frame.columns, names)
    if given not in frame.columns:
        raise InputError(
            f"{what} column {given!r} not found; columns are: {', '.join(map(str, frame.columns))}", column=given
        )
    return given


def assign_prepared(
    index: AssignmentIndex,
    n: int,
    x: np.ndarray,
    y: np.ndarray,
    crs: InputCRS,
    *,
    categories: Any,
    dates: Any,
    extent: tuple | None,
    errors: _RowErrors,
    owners: OwnerHistory | None,
    role: str,
    row_index: pd.Index,
    streets: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Validation, conversion to storage and metric, rules and owners: the result columns for ``n`` rows;
    ``streets`` the written street and crossing street per row (rule a′), or None."""
    lon, lat, _ = check_points(x, y, crs, areas=extent, problems=errors)
    cat = (
        np.full(n, -1, dtype=np.int64)
        if categories is None
        else _encode_categories(categories, n, index._cat_codes, errors)
    )
    day = None if dates is None else _parse_dates(dates, n, errors)
    ok = np.flatnonzero(errors.ok)
    if streets is not None:  # the valid rows' names, as object arrays
        streets = tuple(None if s is None else _text(s, n).to_numpy(dtype=object)[ok] for s in streets)
        result = index._route_storage(n, ok, lon[ok], lat[ok], cat[ok], errors, row_index, streets)
    else:
        result = index._route_storage(n, ok, lon[ok], lat[ok], cat[ok], errors, row_index)
    if owners is not None:
        when = (
            np.full(n, np.datetime64(dt.date.today(), "D"))
            if day is None
            else np.where(np.isnat(day), np.datetime64(dt.date.today(), "D"), day)
        )
        if hasattr(owners, "owners_for"):  # a deployment's own owner rules (roles per target type, chain)
            found = owners.owners_for(
                result["target_type"], result["target_id"], when, segment_ids=result["segment_id"]
            )
            for column in found.columns:
                result[column] = found[column].array
            if hasattr(owners, "frontage_step"):  # 门前三包: the unit step of intake, on the whole table
                codes = np.asarray(index._cat_codes, dtype=object)
                category_codes = np.where(cat >= 0, codes[np.maximum(cat, 0)] if len(codes) else None, None)
                result = owners.frontage_step(result, lon, lat, category_codes, when)
            return result
        found = owners.owners_on(result["target_type"], result["target_id"], when, role=role)
        result["owner_name"] = found["owner_name"].to_numpy()
        result["owner_person_id"] = found["person_id"].array
        result["owner_department_id"] = found["department_id"].array
    return result


def attach(frame: pd.DataFrame, result: pd.DataFrame) -> pd.DataFrame:
    """The input columns followed by the result columns (earlier result columns are replaced)."""
    stale = [c for c in result.columns if c in frame.columns]
    if stale:
        LOGGER.warning("replacing columns %s from an earlier run with new results", stale)
        frame = frame.drop(columns=stale)
    if isinstance(frame, gpd.GeoDataFrame):
        out = frame.copy()
        for name in result.columns:
            out[name] = result[name].array
        return out
    return pd.concat([frame, result.set_axis(frame.index)], axis=1)


def assign_frame(
    index: AssignmentIndex,
    frame: pd.DataFrame,
    *,
    lon: str = "lon",
    lat: str = "lat",
    crs: str | int | InputCRS | None = None,
    category: str | None = None,
    date: str | None = None,
    extent: Sequence[float] | None = None,
    owners: OwnerHistory | None = None,
    role: str = "段长",
    address_street: str | None = None,
    cross_street: str | None = None,
) -> pd.DataFrame:
    """Validate, convert and route every row of a table of reports.

    Parameters
    ----------
    index : AssignmentIndex
    frame : pandas.DataFrame or geopandas.GeoDataFrame
        Coordinates in columns ``lon``/``lat`` (numbers or text), or, for a
        GeoDataFrame without those columns, point geometries.  Not modified.
    lon, lat : str
        Coordinate column names (longitude/easting, latitude/northing).
    crs : str, int or InputCRS
        The CRS the coordinates are in: EPSG:4326, EPSG:4490, a projected EPSG
        code, ``"gcj02"`` or ``"bd09"``.  Required for a plain DataFrame (input
        must say which it is); a GeoDataFrame's own CRS is used when omitted.
    category, date : str, optional
        Category-code and report-date columns; by default the first column
        named as in :data:`CATEGORY_NAMES` / :data:`DATE_NAMES`, if any.
    extent : (min lon, min lat, max lon, max lat), optional
        The served area for the swapped lon/lat check; the index's extent by default.
    owners : OwnerHistory, optional
        Adds :data:`OWNER_COLUMNS`: the owner in ``role`` on each report's date
        (today for rows without a date).
    address_street, cross_street : str, optional
        Columns naming the street of each row's written address and, for a
        crossing, its second street (rule a′, :mod:`gisgrid.routing.address`);
        a blank cell means the row names no street and is routed by its point.

    Returns
    -------
    pandas.DataFrame
        The input columns followed by :data:`RESULT_COLUMNS`, one row per input
        row, same index and order.

    Raises
    ------
    InputError
        For whole-table problems (missing columns, no CRS); problems of single
        rows are reported in ``error_code`` / ``error_message``.
    """
    n = len(frame)
    errors = _RowErrors(n)
    use_geometry = isinstance(frame, gpd.GeoDataFrame) and (lon not in frame.columns or lat not in frame.columns)
    if use_geometry:
        if crs is None:
            if frame.crs is None:
                raise CRSError("the GeoDataFrame has no CRS: give crs=")
            epsg = frame.crs.to_epsg()
            if epsg is None:
                raise CRSError(f"the GeoDataFrame's CRS {frame.crs.name!r} has no EPSG code: give crs=")
            crs = epsg
        x, y = point_coordinates(frame.geometry.to_numpy(), errors)
    else:
        missing = [c for c in (lon, lat) if c not in frame.columns]
        if missing:
            raise InputError(
                f"coordinate columns {missing} not found; columns are: {', '.join(map(str, frame.columns))}"
            )
        x = parse_coordinates(frame[lon], lon, errors)
        y = parse_coordinates(frame[lat], lat, errors)
    crs = parse_crs(crs)
    category = optional_column(frame, category, CATEGORY_NAMES, "category")
    date = optional_column(frame, date, DATE_NAMES, "date")
    box = check_areas(extent) if extent is not None else index.areas
    streets = street_columns(frame, address_street, cross_street)
    result = assign_prepared(
        index,
        n,
        x,
        y,
        crs,
        categories=None if category is None else frame[category],
        dates=None if date is None else frame[date],
        extent=box,
        errors=errors,
        owners=owners,
        role=role,
        row_index=frame.index,
        streets=streets,
    )
    return attach(frame, result)


def street_columns(
    frame: pd.DataFrame, address_street: str | None, cross_street: str | None
) -> tuple[pd.Series, pd.Series | None] | None:
    """The written-street columns of a table (rule a′), checked; None when not asked for."""
    if address_street is None:
        if cross_street is not None:
            raise InputError("a cross-street column needs an address-street column too")
        return None
    listing = ", ".join(map(str, frame.columns))
    for label, name in (("address street", address_street), ("cross street", cross_street)):
        if name is not None and name not in frame.columns:
            raise InputError(f"{label} column {name!r} not found; columns are: {listing}", column=name)
    return frame[address_street], None if cross_street is None else frame[cross_street]
