"""The geometry in a table's columns: lon/lat (or x/y) columns or a WKT column.

Tables are read by :mod:`gisgrid.io.tables`; this module finds where their
geometry is and parses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gisgrid.errors import InputError
from gisgrid.io.points import POINT_ERRORS, parse_coordinates
from gisgrid.io.rows import RowProblems
from gisgrid.io.vectors import decode_geometries

LOGGER = logging.getLogger(__name__)

#: Column names recognised as coordinates or geometry, compared case-insensitively.
X_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经", "point_x", "x坐标")
Y_NAMES = ("lat", "latitude", "y", "纬度", "北纬", "point_y", "y坐标")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape", "几何")


# --- geometry columns -------------------------------------------------------------
@dataclass(frozen=True)
class GeometryColumns:
    """Where a table keeps its geometry: ``x``/``y`` coordinate columns or a ``wkt`` column.

    ``consumed`` lists the columns that describe the geometry and are therefore
    not kept as attributes.
    """

    kind: str  # "xy" or "wkt"
    x: str | None = None
    y: str | None = None
    wkt: str | None = None
    consumed: tuple[str, ...] = ()


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.strip().lower(): c for c in reversed(columns)}  # first wins on repeats
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def find_geometry_columns(
    columns: list[str], *, geometry: str = "auto", x: str | None = None, y: str | None = None, wkt: str | None = None
) -> GeometryColumns:
    """Choose the columns a table's geometry comes from.

    Parameters
    ----------
    columns : list of str
        The table's column names.
    geometry : {"auto", "xy", "wkt"}
        ``"auto"`` uses ``x``/``y`` or ``wkt`` when given, else a WKT column
        (:data:`WKT_NAMES`) if there is one, else lon/lat columns
        (:data:`X_NAMES`, :data:`Y_NAMES`).  A WKT column is preferred because
        it carries any geometry type; lon/lat columns beside it (as gisgrid's own
        CSV export writes for points) are then treated as derived from it.
    x, y, wkt : str, optional
        Explicit column names.

    Raises
    ------
    InputError
        When the named columns do not exist or no geometry columns are found;
        the message lists the columns there are.
    """
    if geometry not in {"auto", "xy", "wkt"}:
        raise InputError(f"geometry must be 'auto', 'xy' or 'wkt', not {geometry!r}")
    listing = ", ".join(columns)
    for name in (x, y, wkt):
        if name is not None and name not in columns:
            raise InputError(f"column {name!r} not found; columns are: {listing}", column=name)
    if (x is None) != (y is None):
        raise InputError("give both x= and y= (the longitude/easting and latitude/northing columns)")
    if x is not None and wkt is not None:
        raise InputError("give either x=/y= or wkt=, not both")
    if x is not None:
        if geometry == "wkt":
            raise InputError("geometry='wkt' conflicts with x=/y=")
        return GeometryColumns("xy", x=x, y=y, consumed=(x, y))
    if wkt is not None:
        if geometry == "xy":
            raise InputError("geometry='xy' conflicts with wkt=")
        return GeometryColumns("wkt", wkt=wkt, consumed=(wkt,))
    found_x, found_y, found_wkt = _find(columns, X_NAMES), _find(columns, Y_NAMES), _find(columns, WKT_NAMES)
    if geometry in {"auto", "wkt"} and found_wkt is not None:
        derived = tuple(c for c in (found_x, found_y) if c is not None) if geometry == "auto" else ()
        return GeometryColumns("wkt", wkt=found_wkt, consumed=(found_wkt, *derived))
    if geometry in {"auto", "xy"} and found_x is not None and found_y is not None:
        return GeometryColumns("xy", x=found_x, y=found_y, consumed=(found_x, found_y))
    wanted = {"xy": "lon/lat columns", "wkt": "a WKT column", "auto": "lon/lat columns or a WKT column"}[geometry]
    raise InputError(f"no geometry found: expected {wanted} (or name them with x=/y= or wkt=); columns are: {listing}")


def parse_geometry(
    table: pd.DataFrame, columns: GeometryColumns
) -> tuple[np.ndarray, dict[int, list[str]], dict[int, list[str]]]:
    """Geometries from a text table's coordinate or WKT columns.

    Returns
    -------
    geoms : numpy.ndarray of shapely geometries
        In the table's (declared) CRS; None where parsing failed.
    rejected, repaired : dict of int to list of str
        Reasons, keyed by *position* in ``table``.
    """
    n = len(table)
    rejected: dict[int, list[str]] = {}
    repaired: dict[int, list[str]] = {}
    if columns.kind == "xy":
        problems = RowProblems(n, tuple(POINT_ERRORS))
        xs = parse_coordinates(table[columns.x], columns.x, problems)
        ys = parse_coordinates(table[columns.y], columns.y, problems)
        for pos, reason in problems.reasons().items():
            rejected[pos] = [reason]
        ok = problems.ok
        geoms = np.full(n, None, dtype=object)
        geoms[ok] = shapely.points(xs[ok], ys[ok])
        return geoms, rejected, repaired

    text = table[columns.wkt].str.strip().to_numpy(dtype=object, na_value=None)
    return decode_geometries(text, shapely.from_wkt, f"WKT in {columns.wkt!r}", rejected, repaired), rejected, repaired
