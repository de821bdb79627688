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

import json
import logging
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError as _PyprojCRSError

from gisgrid.crs import STORAGE_SRID, WGS84, InputCRS, parse_crs
from gisgrid.errors import CRSError, FileFormatError, InputError
from gisgrid.io._tabular import (
    decode_geometries,
    find_geometry_columns,
    parse_geometry,
    read_csv_table,
    read_xlsx_table,
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
_GDAL_ERRORS = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError)


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
    if not path.is_file():
        raise FileFormatError(f"file not found: {path}")
    kind = READ_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise FileFormatError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path.name}; supported: "
            "GeoJSON (.geojson, .json), GeoPackage (.gpkg), Shapefile (.shp or zipped .zip), "
            "CSV (.csv, .txt), Excel (.xlsx)"
        )
    if path.stat().st_size == 0:
        raise FileFormatError(f"file is empty: {path.name} has 0 bytes")

    if kind in {"csv", "xlsx"}:
        if crs is None:
            raise CRSError(
                f"{path.name}: say which CRS the coordinates are in with --crs "
                "(e.g. EPSG:4326, EPSG:4490, gcj02, bd09 or a projected EPSG code)"
            )
        input_crs = parse_crs(crs)
        if kind == "csv":
            table, malformed = read_csv_table(path)
        else:
            table, malformed = read_xlsx_table(path, sheet)
        columns = find_geometry_columns(list(table.columns), geometry=geometry, x=x, y=y, wkt=wkt)
        geoms, rejected, repaired = parse_geometry(table, columns)
        consumed = columns.consumed
        points = columns.kind == "xy"
    else:
        table, geoms, rejected, repaired, input_crs = _read_vector(path, kind, layer, crs)
        malformed, consumed, points = {}, (), False

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


# --- vector files ---------------------------------------------------------------------
def _dataset(path: Path, kind: str, layer: str | None) -> tuple[str, str | None]:
    """The GDAL dataset name and layer to open (a zip's Shapefile through /vsizip/)."""
    if kind == "shp":
        siblings = {str(p).lower() for p in path.parent.iterdir()}
        _require_shapefile_parts(str(path), archive_names=siblings, where=path.name)
    if kind != "zip":
        return str(path), layer
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".shp") and not n.startswith("__MACOSX/")]
    except zipfile.BadZipFile as exc:
        raise FileFormatError(f"{path.name} is not a readable zip file: {exc}") from exc
    if not members:
        raise FileFormatError(f"{path.name} holds no Shapefile (.shp)")
    names = [PurePosixPath(m).stem for m in members]
    if layer is not None:
        if layer not in names:
            raise InputError(f"layer {layer!r} not found in {path.name}; layers: {', '.join(names)}")
        member = members[names.index(layer)]
    elif len(members) > 1:
        raise InputError(f"{path.name} holds several Shapefiles; choose one with --layer: {', '.join(names)}")
    else:
        member = members[0]
    _require_shapefile_parts(member, archive_names=set(_lower(n) for n in _zip_names(path)), where=path.name)
    return f"/vsizip/{path.resolve()}/{member}", None


def _lower(name: str) -> str:
    return name.lower()


def _zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


#: The parts a Shapefile cannot be read without, and what each holds.
_SHAPEFILE_PARTS = {".shx": "its index", ".dbf": "its attribute table"}


def _require_shapefile_parts(shp: str, *, archive_names: set[str], where: str) -> None:
    """Name the missing companion files of a Shapefile instead of GDAL's "not recognized"."""
    stem = shp[: -len(".shp")]
    missing = [
        f"{PurePosixPath(stem).name}{ext} ({what})"
        for ext, what in _SHAPEFILE_PARTS.items()
        if (stem + ext).lower() not in archive_names
    ]
    if missing:
        raise FileFormatError(
            f"{where}: the Shapefile {PurePosixPath(shp).name} comes without {' and '.join(missing)}; "
            "a Shapefile is several files: put the .shp, .shx, .dbf and .prj together"
        )


_KIND_NAMES = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "shp": "Shapefile", "zip": "zipped Shapefile"}


def _gdal_reason(exc: Exception, kind: str) -> str:
    """GDAL's error as a reason a clerk can act on."""
    text = str(exc)
    if "not recognized as" in text or "not recognised as" in text or "Failed to read GeoJSON" in text:
        return f"its contents are not {_KIND_NAMES.get(kind, kind)} (is the file of another kind, or damaged?)"
    if "No such file" in text:
        return "the file does not exist"
    # keep GDAL's own words, without the dataset path it starts with
    return text.split(": ", 1)[-1] if text.startswith(("/", "/vsizip/")) else text


def _choose_layer(dataset: str, path: Path, layer: str | None) -> str:
    layers = pyogrio.list_layers(dataset)
    names = [str(name) for name, _ in layers]
    if layer is not None:
        if layer not in names:
            raise InputError(f"layer {layer!r} not found in {path.name}; layers: {', '.join(names)}")
        return layer
    spatial = [str(name) for name, geometry_type in layers if geometry_type is not None]
    if len(names) == 1:
        return names[0]
    if len(spatial) == 1:
        return spatial[0]
    raise InputError(f"{path.name} holds several layers; choose one with --layer: {', '.join(names)}")


def _geojson_declares_crs(path: Path) -> bool:
    """Whether a GeoJSON file has a (pre-RFC 7946) ``crs`` member; GDAL reports WGS84 either way."""
    try:
        with path.open("rb") as handle:
            document = json.load(handle)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and (
        document.get("crs") is not None or document.get("spatialReference") is not None
    )


def _read_vector(
    path: Path, kind: str, layer: str | None, declared
) -> tuple[pd.DataFrame, np.ndarray, dict[int, list[str]], dict[int, list[str]], InputCRS]:
    """Attributes (indexed by feature number), geometries and parse findings of a vector layer."""
    dataset, layer = _dataset(path, kind, layer)
    try:
        layer = _choose_layer(dataset, path, layer)
        with warnings.catch_warnings():
            # GDAL warns about unclosed rings; they are reported per row below
            warnings.filterwarnings("ignore", message="Non closed ring detected")
            attributes = pyogrio.read_dataframe(dataset, layer=layer, read_geometry=False)
            meta, _, wkb, _ = pyogrio.raw.read(dataset, layer=layer, columns=[], read_geometry=True)
    except _GDAL_ERRORS as exc:
        raise FileFormatError(f"cannot read {path.name}: {_gdal_reason(exc, kind)}") from exc
    if len(attributes) == 0:
        raise FileFormatError(f"file is empty: {path.name} has no features")
    if wkb is None or len(wkb) != len(attributes):
        raise FileFormatError(f"cannot read geometries of {path.name}")
    attributes.index = pd.RangeIndex(1, len(attributes) + 1, name="row")

    rejected: dict[int, list[str]] = {}
    repaired: dict[int, list[str]] = {}
    geoms = decode_geometries(np.asarray(wkb, dtype=object), shapely.from_wkb, "geometry", rejected, repaired)

    declares = meta.get("crs") is not None and (kind != "geojson" or _geojson_declares_crs(path))
    input_crs = _vector_crs(path, declared, meta.get("crs") if declares else None, default_wgs84=kind == "geojson")
    return attributes, geoms, rejected, repaired, input_crs


def _vector_crs(path: Path, declared, stated: str | None, *, default_wgs84: bool) -> InputCRS:
    """Reconcile the CRS a user declared with the one the file states."""
    user = parse_crs(declared) if declared is not None else None
    if stated is None:
        if user is not None:
            return user
        if default_wgs84:
            return parse_crs(WGS84)  # RFC 7946: GeoJSON without a crs member is WGS84 lon/lat
        raise CRSError(f"{path.name} states no CRS; declare it with --crs (e.g. EPSG:4490, gcj02 or an EPSG code)")
    try:
        own = parse_crs(stated)
    except CRSError:
        own = None
    if user is None:
        if own is None:
            raise CRSError(f"{path.name} states a CRS without an EPSG code; declare its EPSG code with --crs")
        return own
    if own == user:
        return user
    if own is not None and own.epsg == WGS84 and user.kind in {"gcj02", "bd09"}:
        LOGGER.info("%s is labelled WGS84; reading it as declared, %s", path.name, user.name)
        return user
    if own is None and user.epsg is not None and _same_crs(stated, user.epsg):
        return user
    stated_name = own.name if own is not None else "a CRS without an EPSG code"
    raise CRSError(
        f"{path.name} states {stated_name} but {user.name} was declared; "
        "drop --crs to use the file's CRS, or fix the file"
    )


def _same_crs(stated: str, epsg: int) -> bool:
    try:
        return CRS.from_user_input(stated).equals(CRS.from_epsg(epsg), ignore_axis_order=True)
    except _PyprojCRSError:
        return False


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
