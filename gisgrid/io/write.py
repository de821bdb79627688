"""Write layers: GeoJSON (RFC 7946), GeoPackage, Shapefile (plain or zipped), CSV and XLSX.

GeoJSON, CSV and XLSX are written in WGS84 lon/lat (EPSG:4326) with
coordinates rounded to ``precision`` decimals (7 decimals ≈ 1 cm);
GeoPackage and Shapefile keep the frame's CRS.  Text cells of CSV and XLSX
that a spreadsheet program would run as a formula are neutralised (see
:func:`neutralise_formula`).
"""

from __future__ import annotations

import codecs
import datetime as dt
import decimal
import enum
import io
import json
import logging
import re
import tempfile
import uuid
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gisgrid.crs import STORAGE_SRID
from gisgrid.errors import CRSError, FileFormatError, InputError

LOGGER = logging.getLogger(__name__)

#: File extension → driver.
WRITE_FORMATS: dict[str, str] = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".zip": "ESRI Shapefile",
    ".csv": "CSV",
    ".xlsx": "XLSX",
}
_DRIVER_NAMES = {
    "geojson": "GeoJSON",
    "gpkg": "GPKG",
    "esri shapefile": "ESRI Shapefile",
    "shapefile": "ESRI Shapefile",
    "shp": "ESRI Shapefile",
    "csv": "CSV",
    "xlsx": "XLSX",
}

#: Leading characters that make Excel, LibreOffice or Google Sheets evaluate a cell.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: Excel refuses longer cell texts.
XLSX_MAX_CELL_CHARS = 32767
#: Characters XML 1.0 (and so XLSX) cannot hold.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralise_formula(value):
    """Make a text cell safe from spreadsheet formula execution (CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is
    prefixed with a single quote (``'``), so spreadsheet programs show it as
    text instead of running it.  Plain numbers written as text (``"-5"``,
    ``"+1.5e3"``) are left alone: they are no formula.  Values that are not
    ``str`` are returned unchanged.

    Examples
    --------
    >>> neutralise_formula("=cmd|' /C calc'!A0")
    "'=cmd|' /C calc'!A0"
    >>> neutralise_formula("学清路")
    '学清路'
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _driver(path: Path, driver: str | None) -> str:
    if driver is not None:
        name = _DRIVER_NAMES.get(driver.strip().lower())
        if name is None:
            raise FileFormatError(f"unsupported driver {driver!r}; drivers: GeoJSON, GPKG, ESRI Shapefile, CSV, XLSX")
        return name
    name = WRITE_FORMATS.get(path.suffix.lower())
    if name is None:
        raise FileFormatError(
            f"cannot write {path.suffix or '(no extension)'!r} files; supported: "
            ".geojson, .json, .gpkg, .shp, .zip (zipped Shapefile), .csv, .xlsx"
        )
    return name


def _has_geometry(frame: pd.DataFrame) -> bool:
    if not isinstance(frame, gpd.GeoDataFrame):
        return False
    try:
        frame.geometry  # noqa: B018 - raises when no active geometry column is set
    except AttributeError:
        return False
    return True


def _checked(frame: pd.DataFrame, *, lonlat: bool) -> pd.DataFrame:
    """A copy with a stated CRS, in EPSG:4326 when ``lonlat``; frames without geometry pass."""
    if not _has_geometry(frame):
        return frame.copy()
    if frame.crs is None:
        raise CRSError("the layer has no CRS; set one (gdf.set_crs) before writing")
    if lonlat and frame.crs.to_epsg() != STORAGE_SRID:
        return frame.to_crs(STORAGE_SRID)
    return frame.copy()


def _plain_value(value):
    """Objects spreadsheets and GDAL cannot take, as text: dates ISO 8601, JSON for dicts/lists."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attribute_columns(frame: pd.DataFrame, *, as_text_dates: bool) -> pd.DataFrame:
    """Attribute columns ready for a writer; datetimes as ISO strings when ``as_text_dates``."""
    out = pd.DataFrame(frame.drop(columns=[frame.geometry.name]) if _has_geometry(frame) else frame)
    for column in out.columns:
        series = out[column]
        if as_text_dates and (pd.api.types.is_datetime64_any_dtype(series) or isinstance(series.dtype, pd.PeriodDtype)):
            out[column] = series.map(lambda v: None if pd.isna(v) else v.isoformat()).astype(object)
        elif series.dtype == object:
            out[column] = series.map(_plain_value)
    return out


def write_layer(
    gdf: pd.DataFrame, path: str | Path, *, layer: str | None = None, driver: str | None = None, precision: int = 7
) -> Path:
    """Write a layer to a file; the format follows the extension unless ``driver`` is given.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame or pandas.DataFrame
        The layer, not modified.  It must state its CRS.  A plain DataFrame
        (no geometry) can be written to CSV or XLSX only.
    path : str or Path
        Target file: ``.geojson``/``.json`` (RFC 7946), ``.gpkg``, ``.shp``,
        ``.zip`` (zipped Shapefile), ``.csv`` or ``.xlsx``.  Overwritten if it
        exists (in a GeoPackage only the layer is replaced).
    layer : str, optional
        Layer or sheet name; the file's stem by default.
    driver : {"GeoJSON", "GPKG", "ESRI Shapefile", "CSV", "XLSX"}, optional
        Overrides the extension.
    precision : int
        Decimals of lon/lat kept in GeoJSON, CSV and XLSX (7 ≈ 1 cm).

    Returns
    -------
    Path
        The file written.

    Notes
    -----
    GeoJSON follows RFC 7946: WGS84 lon/lat, counter-clockwise exterior rings,
    no ``crs`` member.  CSV (UTF-8 with BOM, so Excel reads Chinese) and XLSX
    hold the geometry as WKT in a ``wkt`` column, plus ``lon``/``lat`` columns
    when every geometry is a point; dates and times become ISO 8601 text and
    formula-like text is neutralised.
    """
    path = Path(path)
    name = _driver(path, driver)
    layer = layer or path.stem
    if name in {"GeoJSON", "GPKG", "ESRI Shapefile"} and not _has_geometry(gdf):
        raise InputError(f"the layer has no geometry; write it as CSV or XLSX, not {name}")
    frame = _checked(gdf, lonlat=name in {"GeoJSON", "CSV", "XLSX"})
    if name == "GeoJSON":
        path.write_bytes(to_geojson_bytes(frame, precision=precision, layer=layer))
    elif name == "GPKG":
        _write_ogr(frame, path, layer, "GPKG")
    elif name == "ESRI Shapefile" and path.suffix.lower() == ".zip":
        _write_zipped_shapefile(frame, path, layer)
    elif name == "ESRI Shapefile":
        _write_ogr(frame, path, layer, "ESRI Shapefile", ENCODING="UTF-8")
    elif name == "CSV":
        _write_csv(frame, path, precision)
    else:
        _write_xlsx(frame, path, layer, precision)
    LOGGER.info("wrote %d rows to %s (%s)", len(frame), path, name)
    return path


def _write_ogr(frame: gpd.GeoDataFrame, path: Path | io.BytesIO, layer: str, driver: str, **options) -> None:
    attributes = _attribute_columns(frame, as_text_dates=False)
    if driver == "GPKG":
        # the GeoPackage standard stores DATETIME in UTC
        for column in attributes.columns:
            if isinstance(attributes[column].dtype, pd.DatetimeTZDtype):
                attributes[column] = attributes[column].dt.tz_convert("UTC")
    geoms = uniform_family(np.asarray(frame.geometry.values, dtype=object))
    data = gpd.GeoDataFrame(attributes, geometry=gpd.GeoSeries(geoms, crs=frame.crs, index=attributes.index))
    pyogrio.write_dataframe(data, path, layer=layer, driver=driver, **options)


def _write_zipped_shapefile(frame: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write_ogr(frame, Path(tmp) / f"{layer}.shp", layer, "ESRI Shapefile", ENCODING="UTF-8")
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(tmp).iterdir()):
                archive.write(part, part.name)


def uniform_family(geoms: np.ndarray) -> np.ndarray:
    """Single and multi parts of one family made all multi, so a layer has one geometry type.

    A layer mixing Polygon and MultiPolygon (or LineString and MultiLineString,
    Point and MultiPoint) is read by GDAL as geometry type "Unknown"; promoting
    the single parts keeps every shape and gives other systems one type.
    Layers of one type, or of several families, are returned unchanged.
    """
    present = ~shapely.is_missing(geoms)
    if not present.any():
        return geoms
    types = set(shapely.get_type_id(geoms[present]).tolist())
    pairs = {
        frozenset({shapely.GeometryType.POINT, shapely.GeometryType.MULTIPOINT}): shapely.multipoints,
        frozenset({shapely.GeometryType.LINESTRING, shapely.GeometryType.MULTILINESTRING}): shapely.multilinestrings,
        frozenset({shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON}): shapely.multipolygons,
    }
    make = pairs.get(frozenset(types))
    if make is None or len(types) != 2:
        return geoms
    out = geoms.copy()
    single = present & np.isin(shapely.get_type_id(geoms), [min(types)])
    out[single] = [make([g]) for g in geoms[single]]
    return out


def _without_crumbs(geom, min_area: float):
    """A repaired polygon without the parts smaller than one grid cell of the rounding.

    Rounding can pinch off a crumb of ~1e-15 square degrees whose ring
    orientation is then decided by float noise; it holds no area anyone drew.
    """
    if geom is None or geom.geom_type != "MultiPolygon":
        return geom
    parts = [p for p in geom.geoms if p.area >= min_area]
    if not parts or len(parts) == len(geom.geoms):
        return geom
    return shapely.MultiPolygon(parts)


def _trim_floats(text: str, precision: int) -> str:
    """Rewrite binary float noise (``40.006297000000004``) as at most ``precision`` decimals."""
    noisy = re.compile(rf"-?\d+\.\d{{{precision + 1},}}(?:[eE][-+]?\d+)?")

    def short(match: re.Match) -> str:
        return repr(round(float(match.group(0)), precision))

    return noisy.sub(short, text)


def to_geojson_bytes(gdf: gpd.GeoDataFrame, precision: int = 7, *, layer: str = "layer") -> bytes:
    """A layer as RFC 7946 GeoJSON, for downloads and other systems.

    WGS84 lon/lat (reprojected if the frame is in another CRS), exterior rings
    counter-clockwise and holes clockwise, no ``crs`` member, coordinates
    rounded to ``precision`` decimals (7 ≈ 1 cm; RFC 7946 § 11.2 advises about
    6) and printed without binary float noise (``40.006297``, never
    ``40.006297000000004``).  A layer mixing single and multi parts of
    one family is written all multi (one geometry type).  An ``id`` column
    becomes each feature's top-level ``id`` as well.

    Raises
    ------
    CRSError
        When the frame has no CRS.
    InputError
        When it has no geometry.
    """
    if not _has_geometry(gdf):
        raise InputError("the layer has no geometry; export it as CSV or XLSX")
    frame = _checked(gdf, lonlat=True)
    # Written here rather than by GDAL: GDAL's RFC7946 mode re-cuts polygons for the antimeridian
    # and turned some valid MultiPolygons that touch themselves into GeometryCollections.
    geoms = shapely.transform(frame.geometry.values, lambda xy: np.round(xy, precision))
    # rounding can pinch a valid ring into a self-touching one: repair those, keeping their dimension
    broken = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    if broken.any():
        repaired = shapely.make_valid(geoms[broken], method="structure", keep_collapsed=False)
        geoms[broken] = [_without_crumbs(g, (10.0**-precision) ** 2) for g in repaired]
    geoms = uniform_family(np.asarray(shapely.orient_polygons(geoms, exterior_cw=False), dtype=object))
    attrs = _attribute_columns(frame, as_text_dates=True)
    attrs = attrs.astype(object).where(attrs.notna(), None)
    ids = attrs["id"].tolist() if "id" in attrs.columns else [None] * len(attrs)
    features = []
    for fid, geom_json, props in zip(ids, shapely.to_geojson(geoms), attrs.to_dict("records")):
        id_member = "" if fid is None else f'"id":{json.dumps(_plain_value(fid), ensure_ascii=False, default=str)},'
        properties = json.dumps(props, ensure_ascii=False, default=_plain_value)
        features.append(
            f'{{"type":"Feature",{id_member}"properties":{properties},'
            f'"geometry":{_trim_floats(geom_json, precision) if geom_json else "null"}}}'
        )
    head = f'{{"type":"FeatureCollection","name":{json.dumps(layer, ensure_ascii=False)},"features":['
    return (head + ",\n".join(features) + "]}\n").encode("utf-8")


def _tabular(frame: pd.DataFrame, precision: int) -> pd.DataFrame:
    """Attributes plus ``lon``/``lat`` (all-point layers) and ``wkt`` columns."""
    out = _attribute_columns(frame, as_text_dates=True)
    if _has_geometry(frame):
        geoms = frame.geometry.values.to_numpy()
        present = np.not_equal(geoms, None) & ~shapely.is_empty(geoms)
        derived = ["wkt"]
        if present.any() and (shapely.get_type_id(geoms[present]) == shapely.GeometryType.POINT).all():
            derived = ["lon", "lat", "wkt"]
            with np.errstate(invalid="ignore"):
                out["lon"] = np.round(shapely.get_x(geoms), precision)
                out["lat"] = np.round(shapely.get_y(geoms), precision)
        replaced = [c for c in derived if c in frame.columns and c != frame.geometry.name]
        if replaced:
            LOGGER.warning("columns %s replaced by values derived from the geometry", replaced)
        out["wkt"] = shapely.to_wkt(geoms, rounding_precision=precision, trim=True)
        out = out[[c for c in out.columns if c not in derived] + derived]
    return out


def _write_csv(frame: pd.DataFrame, path: Path, precision: int) -> None:
    write_table(_tabular(frame, precision), path)


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str, precision: int) -> None:
    write_table(_tabular(frame, precision), path, sheet=sheet)


# --- tables: the one CSV/XLSX writer ----------------------------------------------------
TABLE_FORMATS = (".csv", ".xlsx")


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def neutralise_series(series: pd.Series) -> pd.Series:
    """:func:`neutralise_formula` over a column, vectorised; any text dtype, categoricals too.

    Object, ``StringDtype`` (pandas 3 text) and categorical columns with text
    categories are neutralised; other columns (numbers, dates, booleans) are
    returned as they are.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        if not _is_text(pd.Series(categories)):
            return series
        safe = pd.Index([neutralise_formula(c) for c in categories])
        if safe.equals(categories):
            return series
        if safe.is_unique:
            return series.cat.rename_categories(safe)
        series = series.astype(object)  # "=a" and "'=a" both present: no longer distinct categories
    if not _is_text(series):
        return series
    text = series
    if series.dtype == object:  # numbers and other objects beside the text are no formula
        text = series.where(series.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool))
    first = text.str[:1]
    hit = first.isin(FORMULA_TRIGGERS) & ~text.str.fullmatch(_PLAIN_NUMBER.pattern).fillna(False).astype(bool)
    if not hit.any():
        return series
    out = series.copy()
    out[hit] = "'" + text[hit]
    return out


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text column and the header neutralised (:func:`neutralise_formula`)."""
    out = pd.DataFrame(frame, copy=True)
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        safe = neutralise_series(column)
        if safe is not column:
            out.isetitem(position, safe)
    out.columns = [neutralise_formula(str(c)) for c in out.columns]
    return out


def _neutralise_arrow(array):
    """:func:`neutralise_formula` over a pyarrow string array (dictionary arrays: over their dictionary)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([_neutralise_arrow(chunk) for chunk in array.chunks], type=array.type)
    if pa.types.is_dictionary(array.type):
        return pa.DictionaryArray.from_arrays(array.indices, _neutralise_arrow(array.dictionary))
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return array
    at = pa.array(_formula_starts(array), type=pa.int64())
    if len(at):  # the plain-number test only on the few cells that start like a formula
        at = pc.filter(at, pc.invert(pc.match_substring_regex(pc.take(array, at), f"^(?:{_PLAIN_NUMBER.pattern})$")))
    if not len(at):
        return array
    quote, empty = pa.scalar("'", array.type), pa.scalar("", array.type)
    mask = np.zeros(len(array), dtype=bool)
    mask[at.to_numpy()] = True
    return pc.replace_with_mask(array, pa.array(mask), pc.binary_join_element_wise(quote, pc.take(array, at), empty))


_TRIGGER_BYTES = np.frombuffer("".join(FORMULA_TRIGGERS).encode("ascii"), dtype=np.uint8)


def _formula_starts(array) -> np.ndarray:
    """Positions of the values of a pyarrow (large) string array whose first character is a formula trigger.

    Read from the array's buffers with numpy (the triggers are ASCII, so the
    first byte tells): a few milliseconds for a million values.
    """
    import pyarrow as pa  # noqa: PLC0415

    n = len(array)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    validity, offsets, data = array.buffers()
    if data is None or data.size == 0:
        return np.empty(0, dtype=np.int64)
    kind = np.int64 if pa.types.is_large_string(array.type) else np.int32
    ends = np.frombuffer(offsets, dtype=kind)[array.offset : array.offset + n + 1]
    starts, stops = ends[:-1], ends[1:]
    filled = np.flatnonzero(stops > starts)
    first = np.frombuffer(data, dtype=np.uint8)[starts[filled]]
    at = filled[np.isin(first, _TRIGGER_BYTES)]
    if at.size and validity is not None and array.null_count:
        at = at[array.is_valid().to_numpy(zero_copy_only=False)[at]]
    return at.astype(np.int64)


def _arrow_table(frame: pd.DataFrame):
    """``frame`` as a pyarrow table for the CSV writer: objects as text, text neutralised."""
    import pyarrow as pa  # noqa: PLC0415

    arrays = []
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if series.dtype == object:
            try:  # text and missing values only, as read from a file
                array = pa.array(series.to_numpy(), type=pa.string(), from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                values = series.map(_plain_value, na_action="ignore")
                values = values.map(lambda v: v if isinstance(v, str) else str(v), na_action="ignore")
                array = pa.array(values.to_numpy(dtype=object, na_value=None), type=pa.string(), from_pandas=True)
        elif isinstance(series.dtype, pd.PeriodDtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
            array = pa.array(
                series.map(lambda v: v.isoformat(), na_action="ignore").to_numpy(dtype=object, na_value=None),
                type=pa.string(),
            )
        else:
            array = pa.Array.from_pandas(series)
        arrays.append(_neutralise_arrow(array))
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def _csv_line(values) -> str:
    """One CSV record, each field quoted only when it holds a delimiter, quote, CR or LF."""
    out = []
    for value in values:
        text = "" if value is None else str(value)
        if any(ch in text for ch in ',"\r\n'):
            text = '"' + text.replace('"', '""') + '"'
        out.append(text)
    return ",".join(out) + "\n"


def csv_bytes(frame: pd.DataFrame, *, header: bool = True) -> bytes:
    """``frame`` as UTF-8 CSV (no BOM), text neutralised, values with a delimiter, quote, CR or LF quoted.

    A bare carriage return inside a value is quoted like a line feed, so that
    every row stays one row for every reader (RFC 4180).  Fields are quoted only
    where a chunk holds such a value (pyarrow writes the rows).
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.csv as pacsv  # noqa: PLC0415

    sink = io.BytesIO()
    if header:
        sink.write(_csv_line(neutralise_formula(str(c)) for c in frame.columns).encode("utf-8"))
    if len(frame) == 0:
        return sink.getvalue()
    table = _arrow_table(frame)
    start = sink.tell()
    try:  # unquoted, as a person would write it, unless a value needs quotes
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    except pa.ArrowInvalid:
        sink.seek(start)
        sink.truncate()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


def _xlsx_value(value):
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    value = _plain_value(value)
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return neutralise_formula(_XML_ILLEGAL.sub("", value))
    return value


def _sheet_title(name: str) -> str:
    # sheet titles: at most 31 characters, none of []:*?/\
    return re.sub(r"[\[\]:*?/\\]", "_", str(name))[:31] or "data"


class _XlsxSheet:
    """One worksheet of a write-only workbook, filled frame by frame (bold, frozen header)."""

    def __init__(self, book, name: str, number_columns=(), labels=None):
        self.labels = dict(labels or {})
        self.sheet = book.create_sheet(_sheet_title(self.labels.get(str(name), name)))
        self.sheet.freeze_panes = "A2"
        self.number_columns = set(number_columns)
        self.header = False
        self.too_long = 0

    def write(self, frame: pd.DataFrame, number_columns=()) -> None:
        from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415
        from openpyxl.styles import Font  # noqa: PLC0415

        if not self.header:
            bold = Font(bold=True)
            cells = []
            for name in frame.columns:
                cell = WriteOnlyCell(self.sheet, value=_xlsx_value(self.labels.get(str(name), str(name))))
                cell.font = bold
                cells.append(cell)
            self._fit(frame)
            self.sheet.append(cells)
            self.header = True
        numbers_wanted = self.number_columns | set(number_columns)
        columns = []
        for position, name in enumerate(frame.columns):
            series = frame.iloc[:, position]
            if isinstance(series.dtype, pd.CategoricalDtype):
                series = series.astype(object)
            if str(name) in numbers_wanted and _is_text(series):
                numbers = pd.to_numeric(series, errors="coerce")
                series = series.astype(object).where(numbers.isna(), numbers.astype(object))
            columns.append(series.astype(object).to_numpy())
        for record in zip(*columns) if columns else ():
            values = [_xlsx_value(v) for v in record]
            self.too_long += sum(isinstance(v, str) and len(v) > XLSX_MAX_CELL_CHARS for v in values)
            self.sheet.append(values)

    def _fit(self, frame: pd.DataFrame) -> None:
        """Column widths from the header and the first rows (write-only sheets take them before any row)."""
        from openpyxl.utils import get_column_letter  # noqa: PLC0415

        head = frame.head(200)
        for position, name in enumerate(frame.columns, start=1):
            values = head.iloc[:, position - 1]
            header = self.labels.get(str(name), str(name))
            width = max([len(header)] + [len(str(v)) for v in values[values.notna()]]) + 2
            self.sheet.column_dimensions[get_column_letter(position)].width = min(width, 60)

    def finish(self, what: str) -> None:
        if self.too_long:
            LOGGER.warning(
                "%s: %d cells exceed Excel's %d characters (long WKT?); Excel will truncate them, "
                "use GeoPackage or GeoJSON for such geometries",
                what,
                self.too_long,
                XLSX_MAX_CELL_CHARS,
            )


def _book():
    import openpyxl  # noqa: PLC0415 - only needed for XLSX

    return openpyxl.Workbook(write_only=True)


class TableWriter:
    """The one CSV/XLSX writer: tables written in chunks, safe to open in a spreadsheet program.

    Every text cell that a spreadsheet would run as a formula (``= + - @``,
    tab or CR first) is neutralised (:func:`neutralise_formula`), whatever the
    column's dtype (object, pandas ``StringDtype``, categorical), header
    included; a CSV value holding a delimiter, quote, CR or LF is quoted, so
    rows in = rows out.  CSV is UTF-8 with a BOM (Excel then reads Chinese);
    XLSX has a bold, frozen header row.

    Parameters
    ----------
    target : str, Path or binary file object
        ``.csv`` or ``.xlsx`` file; a file object needs ``kind``.
    kind : {"csv", "xlsx"}, optional
        Format, by default from the file's suffix.
    sheet : str
        XLSX worksheet name.
    number_columns : iterable of str
        XLSX: columns whose text cells that read as numbers are written as
        numbers (a table read as text gives its numbers back as numbers).
    labels : mapping of str to str, optional
        Header words: column name → the header written (a page's export says
        its columns in the page's language); the XLSX sheet name is looked up
        too.  Names not in it are written as they are; ``number_columns``
        name the columns, not their labels.

    Examples
    --------
    >>> with TableWriter(path) as out:          # doctest: +SKIP
    ...     for chunk in chunks:
    ...         out.write(chunk)
    """

    def __init__(self, target, *, kind: str | None = None, sheet: str = "data", number_columns=(), labels=None):
        if kind is None:
            suffix = Path(target).suffix.lower()
            if suffix not in TABLE_FORMATS:
                raise FileFormatError(f"cannot write a table to {Path(target).name}: use .csv or .xlsx")
            kind = suffix[1:]
        if kind not in {"csv", "xlsx"}:
            raise FileFormatError(f"table format must be 'csv' or 'xlsx', not {kind!r}")
        self.kind = kind
        self.rows = 0
        self._owns = not hasattr(target, "write")
        self._target = target
        self._header = True
        self._labels = dict(labels or {})
        if kind == "csv":
            self._file = open(target, "wb") if self._owns else target  # noqa: SIM115 - closed in close()
            self._file.write(codecs.BOM_UTF8)
        else:
            self._workbook = _book()
            self._sheet = _XlsxSheet(self._workbook, sheet, number_columns, self._labels)

    def write(self, frame: pd.DataFrame, *, number_columns=()) -> None:
        """Append the rows of ``frame`` (the first call writes its header)."""
        if self.kind == "csv":
            header = self._header and bool(self._labels)
            named = frame.rename(columns=lambda c: self._labels.get(str(c), c)) if header else frame
            self._file.write(csv_bytes(named, header=self._header))
        else:
            self._sheet.write(frame, number_columns)
        self._header = False
        self.rows += len(frame)

    def close(self) -> None:
        """Finish the file (an XLSX workbook is written here)."""
        if self.kind == "csv":
            if self._owns:
                self._file.close()
            return
        self._sheet.finish(str(self._target))
        self._workbook.save(self._target)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_table(
    frame: pd.DataFrame, target, *, kind: str | None = None, sheet: str = "data", number_columns=(), labels=None
):
    """Write one table to CSV or XLSX with :class:`TableWriter` (``labels``: header words); returns ``target``."""
    with TableWriter(target, kind=kind, sheet=sheet, number_columns=number_columns, labels=labels) as out:
        out.write(frame)
    return target


def write_workbook(sheets, target, *, labels=None) -> None:
    """Several tables as the sheets of one XLSX workbook, each written as :class:`TableWriter` does.

    Parameters
    ----------
    sheets : mapping of str to pandas.DataFrame
        Sheet name → table, in order.
    target : str, Path or binary file object
    labels : mapping of str to str, optional
        Sheet and column name → the name written (see :class:`TableWriter`).
    """
    book = _book()
    for name, frame in sheets.items():
        sheet = _XlsxSheet(book, name, labels=labels)
        sheet.write(frame)
        sheet.finish(f"sheet {name}")
    book.save(target)
