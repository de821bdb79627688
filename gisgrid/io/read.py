"""Read a layer from a file into storage lon/lat (EPSG:4326), validating every row.

Formats, by extension: GeoJSON (``.geojson``, ``.json``), GeoPackage
(``.gpkg``), Shapefile (``.shp``, or zipped: ``.zip``), delimited text
(``.csv``, ``.txt``) and Excel workbooks (``.xlsx``).

Whole-file problems (missing, empty or unreadable file, unknown CRS, missing
columns) raise :class:`~gisgrid.errors.InputError` or a subclass.  Problems
with single rows never stop a read: the row is rejected or repaired and
reported in the :class:`ReadResult` with its row number.

Row numbers are 1-based *data* rows: in CSV/XLSX the first row after the header
is row 1 (sheet row 2 in a spreadsheet program); in vector files the first
feature is row 1.  Blank rows in a spreadsheet keep their number and are not
counted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gisgrid.crs import STORAGE_SRID, InputCRS
from gisgrid.errors import FileFormatError, InputError
from gisgrid.io._tabular import (
    find_geometry_columns,
    parse_geometry,
)
from gisgrid.io._validate import (
    Findings,
    check_duplicate_ids,
    check_extent,
    check_geometries,
    check_point_geometries,
    expected_family,
    geometries_to_storage,
)
from gisgrid.io.tables import open_table

LOGGER = logging.getLogger(__name__)

#: File extension → reader.
READ_FORMATS: dict[str, str] = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".zip": "zip",
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
}
#: Reserved output columns; source columns with these names are kept with this suffix.
RENAMED_SUFFIX = "_orig"
_RESERVED = ("row", "geometry")


@dataclass(frozen=True)
class RowProblem:
    """A rejected or repaired row: its 1-based data row number and what was found."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass
class ReadResult:
    """What :func:`read_layer` read.

    Attributes
    ----------
    frame : geopandas.GeoDataFrame
        Accepted rows in storage lon/lat (EPSG:4326): a ``row`` column with the
        row's 1-based data row number (header excluded; features counted from
        1), the attribute columns and the geometry.
    rejected : list of RowProblem
        Rows left out, one entry per row with every reason found.
    repaired : list of RowProblem
        Accepted rows whose geometry was repaired, and how.
    total : int
        Data rows (features) read; ``len(frame) + len(rejected) == total``.
    source : str
        File name.
    crs : str
        The CRS the input was read in (before conversion to storage).
    """

    frame: gpd.GeoDataFrame
    rejected: list[RowProblem] = field(default_factory=list)
    repaired: list[RowProblem] = field(default_factory=list)
    total: int = 0
    source: str = ""
    crs: str = ""

    def summary(self) -> str:
        """One paragraph for a person: counts, CRS and the first row numbers concerned."""

        def rows(problems: list[RowProblem]) -> str:
            if not problems:
                return ""
            shown = ", ".join(str(p.row) for p in problems[:10])
            more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
            return f" (rows {shown}{more})"

        return (
            f"{self.source or 'input'}: read {self.total} rows in {self.crs or 'unknown CRS'}, "
            f"stored as EPSG:{STORAGE_SRID}; {len(self.frame)} accepted, "
            f"{len(self.rejected)} rejected{rows(self.rejected)}, "
            f"{len(self.repaired)} repaired{rows(self.repaired)}. "
            "Row numbers count data rows from 1, header excluded."
        )


def read_layer(
    path: str | Path,
    *,
    crs=None,
    geometry: str = "auto",
    x: str | None = None,
    y: str | None = None,
    wkt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    sheet: str | None = None,
    layer: str | None = None,
    expected_geom: str | None = None,
    extent: Sequence[float] | None = None,
) -> ReadResult:
    """Read, validate and convert one layer of a file to storage lon/lat (EPSG:4326).

    Parameters
    ----------
    path : str or Path
        A ``.geojson``/``.json``, ``.gpkg``, ``.shp``, ``.zip`` (zipped
        Shapefile), ``.csv``/``.txt`` or ``.xlsx`` file.
    crs : str, int or InputCRS, optional
        The CRS the coordinates are in: anything :func:`gisgrid.crs.parse_crs`
        accepts (``"EPSG:4490"``, ``4547``, ``"gcj02"``, ``"bd09"``).  Required
        for CSV/XLSX.  For vector files it is used when the file states no CRS
        (a GeoJSON without a ``crs`` member is RFC 7946 WGS84 unless declared
        otherwise); when both are stated they must agree, except that GCJ-02 or
        BD-09 may be declared for a file labelled WGS84 (those systems have no
        code a file could carry).
    geometry : {"auto", "xy", "wkt"}
        CSV/XLSX: where the geometry is.  ``"auto"`` uses a WKT column
        (``wkt``, ``geometry``, ``geom``...) if there is one, else lon/lat
        columns (``lon``/``lng``/``longitude``/``x``/``经度`` and
        ``lat``/``latitude``/``y``/``纬度``).
    x, y, wkt : str, optional
        CSV/XLSX: the coordinate or WKT column names, overriding detection.
        These columns are not kept as attributes.
    mapping : dict of str to str, optional
        ``{target_field: source_column}`` renames, e.g. ``{"name": "路名"}``.  A
        column already named like a target is kept as ``<name>_orig``.
    sheet : str, optional
        XLSX worksheet; the first by default.
    layer : str, optional
        GeoPackage layer or, in a zip, Shapefile name; needed when there are several.
    expected_geom : {"point", "line", "polygon"}, optional
        Reject rows of another geometry family; lines and polygons are promoted
        to MultiLineString / MultiPolygon.
    extent : box or sequence of boxes, optional
        The areas the deployment serves, each ``(xmin, ymin, xmax, ymax)`` in
        lon/lat degrees; rows outside them that fall inside one with x and y
        exchanged are rejected as "lon/lat appear swapped" (never silently
        fixed).  Points (lon/lat columns, or ``expected_geom="point"``) are
        checked by the one point rule, :func:`gisgrid.io.points.check_points`,
        as ``gisgrid assign`` checks them.

    Returns
    -------
    ReadResult
        Accepted rows in EPSG:4326 with their 1-based data row numbers (header
        excluded; the first feature of a vector file is row 1), and the
        rejected and repaired rows with reasons.

    Raises
    ------
    FileFormatError
        File missing, empty (no bytes, no data rows or no features), of an
        unsupported type or unreadable.
    CRSError
        No CRS for a CSV/XLSX, an unknown CRS, or a declared CRS contradicting
        the file's.
    InputError
        Named columns, sheet or layer missing (the message lists those there are).
    """
    path = Path(path)
    family = expected_family(expected_geom)
    extent = check_extent(extent)
    if path.is_file() and READ_FORMATS.get(path.suffix.lower()) is None:
        raise FileFormatError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path.name}; supported: "
            "GeoJSON (.geojson, .json), GeoPackage (.gpkg), Shapefile (.shp or zipped .zip), "
            "CSV (.csv, .txt), Excel (.xlsx)"
        )
    table = open_table(path, sheet=sheet, layer=layer)
    input_crs = table.crs(crs)
    chunk = table.read()
    if table.is_vector:
        frame, geoms, consumed, points = chunk.frame, chunk.geoms, (), False
        malformed = {}
        # feature numbers are 1..n: positions are numbers - 1
        rejected = {row - 1: reasons for row, reasons in chunk.rejected.items()}
        repaired = {row - 1: reasons for row, reasons in chunk.repaired.items()}
    else:
        if not len(chunk.frame) and not chunk.malformed:
            raise FileFormatError(f"file is empty: {path.name} has a header but no data rows")
        frame, malformed = chunk.frame.mask(chunk.frame == ""), chunk.malformed
        columns = find_geometry_columns(list(frame.columns), geometry=geometry, x=x, y=y, wkt=wkt)
        geoms, rejected, repaired = parse_geometry(frame, columns)
        consumed = columns.consumed
        points = columns.kind == "xy"
    table = frame

    attributes = _attributes(table, consumed, mapping)
    return _assemble(
        path,
        attributes,
        geoms,
        rejected,
        repaired,
        malformed,
        input_crs,
        extent=extent,
        family=family,
        points=points or family == "point",
    )


# --- assembly -----------------------------------------------------------------------
def _attributes(table: pd.DataFrame, consumed: Sequence[str], mapping: Mapping[str, str] | None) -> pd.DataFrame:
    """Attribute columns: geometry columns removed, ``mapping`` applied, reserved names kept aside."""
    mapping = dict(mapping or {})
    columns = [str(c) for c in table.columns]
    missing = [source for source in mapping.values() if source not in columns]
    if missing:
        raise InputError(
            f"mapping names {', '.join(map(repr, missing))}, not a column of the file; "
            f"columns are: {', '.join(columns)}",
            column=missing[0],
        )
    reserved = [target for target in mapping if target in _RESERVED]
    if reserved:
        raise InputError(f"mapping target {reserved[0]!r} is reserved; choose another field name")
    out: dict[str, pd.Series] = {}
    for column in columns:
        targets = [target for target, source in mapping.items() if source == column]
        if targets:
            for target in targets:
                out[target] = table[column]
        elif column not in consumed:
            name = column
            if column in mapping or column in _RESERVED:
                name = f"{column}{RENAMED_SUFFIX}"
                LOGGER.info("column %r kept as %r", column, name)
            out[name] = table[column]
    return pd.DataFrame(out, index=table.index)


def _assemble(
    path: Path,
    attributes: pd.DataFrame,
    geoms: np.ndarray,
    rejected: dict[int, list[str]],
    repaired: dict[int, list[str]],
    malformed: dict[int, str],
    input_crs: InputCRS,
    *,
    extent: tuple[tuple[float, float, float, float], ...] | None,
    family: str | None,
    points: bool,
) -> ReadResult:
    """Validate, convert to storage and package the rows (points by the one point rule)."""
    rows = attributes.index.to_numpy(dtype="int64")
    findings = Findings(len(rows))
    findings.merge(rejected, repaired)
    if points:
        geoms = check_point_geometries(geoms, input_crs, findings, extent=extent)
    else:
        geoms = geometries_to_storage(
            check_geometries(geoms, input_crs, findings, extent=extent, family=family), input_crs
        )
    if "id" in attributes.columns:
        check_duplicate_ids(attributes["id"], rows, findings)
    keep = findings.accepted()

    frame = attributes.iloc[keep].reset_index(drop=True)
    frame.insert(0, "row", rows[keep])
    frame = gpd.GeoDataFrame(frame, geometry=geoms[keep], crs=STORAGE_SRID)

    problems = [RowProblem(int(row), reason) for row, reason in malformed.items()]
    problems += [RowProblem(int(rows[pos]), "; ".join(reasons)) for pos, reasons in findings.rejected.items()]
    notes = [RowProblem(int(rows[pos]), "; ".join(reasons)) for pos, reasons in findings.repaired.items() if keep[pos]]
    result = ReadResult(
        frame=frame,
        rejected=sorted(problems, key=lambda p: p.row),
        repaired=sorted(notes, key=lambda p: p.row),
        total=len(rows) + len(malformed),
        source=path.name,
        crs=input_crs.name,
    )
    LOGGER.info(result.summary())
    return result
