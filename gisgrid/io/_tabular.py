"""Spreadsheets (CSV/TXT, XLSX) as text tables, and the geometry in their columns.

Every table is returned with all cells as text (``str`` dtype, missing cells as
NaN) and indexed by its 1-based data row number: the first row after the header
is row 1, as a user counts rows below the header in a spreadsheet program.
Blank rows keep their number but are not part of the table.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer
import numpy as np
import pandas as pd
import shapely
from shapely.errors import GEOSException

from gisgrid.errors import FileFormatError, InputError
from gisgrid.io.points import POINT_ERRORS, parse_coordinates
from gisgrid.io.rows import RowProblems

LOGGER = logging.getLogger(__name__)

#: Non-UTF-8 encodings considered, in the order charset-normalizer weighs them:
#: GB18030 (superset of GBK/GB2312, mainland offices), Big5-HKSCS (Hong Kong,
#: Taiwan) and Windows-1252 (Excel on western-European Windows).
FALLBACK_ENCODINGS = ("gb18030", "big5hkscs", "cp1252")

#: Column names recognised as coordinates or geometry, compared case-insensitively.
X_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经", "point_x", "x坐标")
Y_NAMES = ("lat", "latitude", "y", "纬度", "北纬", "point_y", "y坐标")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape", "几何")

_DELIMITERS = (",", "\t", ";", "|")


class UnreadableTable(FileFormatError):
    """A file that cannot be read as a table.

    ``problem`` says why, for callers that word it themselves (the web page, in
    the user's language): ``"workbook"`` (no XLSX workbook), ``"csv"`` (no
    readable CSV), ``"encoding"`` (unknown text encoding) or ``"empty"``
    (``sheet`` names the empty worksheet, if it is one).
    """

    def __init__(self, problem: str, reason: str, *, sheet: str | None = None):
        super().__init__(reason)
        self.problem, self.sheet = problem, sheet


class SheetNotFound(InputError):
    """No worksheet ``sheet`` in a workbook whose sheets are ``sheets``."""

    def __init__(self, sheet: str, sheets: list[str], reason: str):
        super().__init__(reason)
        self.sheet, self.sheets = sheet, sheets


# --- reading ---------------------------------------------------------------------
_GB2312_PAIR = re.compile(rb"[\xb0-\xf7][\xa1-\xfe]|[\xa1-\xa9][\xa1-\xfe]")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _looks_like_gb(data: bytes) -> bool:
    """GBK/GB18030 text: its non-ASCII bytes come in GB2312 pairs and decode strictly.

    A file of mostly Latin text with a few Chinese cells defeats statistical
    detectors (they guess a Western code page); Latin code pages put isolated
    high bytes between ASCII letters instead (Mäkinen: one byte).
    """
    high = len(_HIGH_BYTE.findall(data))
    if not high:
        return False
    paired = 2 * len(_GB2312_PAIR.findall(data))
    if paired < 0.9 * high:
        return False
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(data: bytes) -> str:
    """The text encoding of a CSV file's bytes.

    UTF-8 (with or without BOM) and UTF-16 with BOM are recognised exactly;
    otherwise charset-normalizer chooses among :data:`FALLBACK_ENCODINGS`.

    Raises
    ------
    UnreadableTable
        When no candidate decodes the bytes.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    if _looks_like_gb(data):
        return "gb18030"
    best = charset_normalizer.from_bytes(data, cp_isolation=list(FALLBACK_ENCODINGS)).best()
    if best is None:
        raise UnreadableTable("encoding", "cannot tell the text encoding; save the file as UTF-8 CSV")
    encoding = best.encoding
    if encoding in {"gbk", "gb2312", "gb18030"}:
        encoding = "gb18030"  # decodes everything GBK and GB2312 do
    return encoding


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _frame(header: list[str], records: list[list[str | None]], rows: list[int]) -> pd.DataFrame:
    """A text table from parsed records, empty cells as NaN, indexed by row number."""
    columns = unique_names(header)
    table = pd.DataFrame(records, columns=columns, dtype="str")
    table = table.mask(table == "")
    table.index = pd.Index(rows, name="row", dtype="int64")
    return table


def unique_names(header) -> list[str]:
    """Header names as stripped text; blanks become ``column_N`` and repeats get ``_2``, ``_3`` ….

    A generated name never takes a name that appears anywhere in ``header``:
    ``备注, 备注, 备注_2`` gives ``备注, 备注_3, 备注_2``, so the user's own
    ``备注_2`` keeps its name.
    """
    raw = [("" if h is None else str(h)).strip() for h in header]
    taken = set(raw)
    names: list[str] = []
    for i, name in enumerate(raw, start=1):
        candidate = name
        if not name or name in names:
            base = name or f"column_{i}"
            candidate, n = base, 1
            while candidate in taken:
                n += 1
                candidate = f"{base}_{n}"
        taken.add(candidate)
        names.append(candidate)
    return names


def read_csv_table(path: Path) -> tuple[pd.DataFrame, dict[int, str]]:
    """Read a delimited text file as a text table.

    The encoding is detected (:func:`detect_encoding`) and the delimiter taken
    from the header line (comma, tab, semicolon or bar).

    Returns
    -------
    table : pandas.DataFrame
        All cells as text, indexed by 1-based data row number (header excluded).
    malformed : dict of int to str
        Rows that could not be split into the header's fields, by row number.

    Raises
    ------
    FileFormatError
        When the file cannot be decoded or has no header or no data rows.
    """
    data = path.read_bytes()
    encoding = detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{path.name} is not valid {encoding} text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from exc
    text = text.lstrip("\ufeff")
    LOGGER.debug("%s: encoding %s", path, encoding)
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # leading blank lines are not the header
        if header is None:
            raise FileFormatError(f"file is empty: {path.name} has no header and no data rows")
        width = len(header)
        records: list[list[str]] = []
        rows: list[int] = []
        malformed: dict[int, str] = {}
        for number, record in enumerate(reader, start=1):
            if not any(cell.strip() for cell in record):
                continue  # a blank line is not a data row
            if len(record) > width and any(cell.strip() for cell in record[width:]):
                malformed[number] = (
                    f"has {len(record)} fields but the header has {width} (an unquoted delimiter inside a value?)"
                )
                continue
            records.append((record + [""] * width)[:width])
            rows.append(number)
    except csv.Error as exc:
        raise FileFormatError(f"{path.name} is not a readable CSV file: {exc}") from exc
    if not records and not malformed:
        raise FileFormatError(f"file is empty: {path.name} has a header but no data rows")
    return _frame(header, records, rows), malformed


def _cell_text(value) -> str | None:
    """A spreadsheet cell as the text a user sees (numbers without a spurious ``.0``, 2026-07-01 for a date)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):  # a date cell is a datetime at midnight
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def open_sheet(path: Path, sheet: str | None, *, read_only: bool):
    """Open an XLSX workbook and one worksheet by name (the first by default); the caller closes it.

    ``read_only`` is faster but loses merged-cell ranges.

    Raises
    ------
    UnreadableTable
        When the file is not a workbook.
    SheetNotFound
        When ``sheet`` names no worksheet (the message lists them).
    """
    import zipfile  # noqa: PLC0415

    import openpyxl  # noqa: PLC0415 - only needed for XLSX
    from openpyxl.utils.exceptions import InvalidFileException  # noqa: PLC0415

    try:
        workbook = openpyxl.load_workbook(path, read_only=read_only, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        # BadZipFile: not a zip at all, e.g. a CSV renamed to .xlsx
        raise UnreadableTable("workbook", f"{path.name} is not a readable XLSX workbook: {exc}") from exc
    if sheet is None:
        return workbook, workbook.worksheets[0]
    if sheet in workbook.sheetnames:
        return workbook, workbook[sheet]
    names = list(workbook.sheetnames)
    workbook.close()
    raise SheetNotFound(sheet, names, f"sheet {sheet!r} not found in {path.name}; sheets: {', '.join(names)}")


def read_xlsx_table(path: Path, sheet: str | None = None) -> tuple[pd.DataFrame, dict[int, str]]:
    """Read one worksheet of an XLSX workbook as a text table.

    Row 1 of the sheet is the header; data row N is sheet row N + 1.  Formula
    cells give their last computed value.

    Parameters
    ----------
    path : Path
        The workbook.
    sheet : str, optional
        Worksheet name; the first sheet by default.

    Returns
    -------
    table, malformed
        As :func:`read_csv_table` (``malformed`` is always empty for XLSX).

    Raises
    ------
    InputError
        When ``sheet`` names no worksheet (the message lists them).
    FileFormatError
        When the file is not a workbook or the sheet has no data rows.
    """
    workbook, worksheet = open_sheet(path, sheet, read_only=True)
    try:
        cells = [[_cell_text(v) for v in row] for row in worksheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    if not cells or not any(c is not None and str(c).strip() for c in cells[0]):
        raise FileFormatError(f"file is empty: sheet {worksheet.title!r} of {path.name} has no header row")
    header = [c or "" for c in cells[0]]
    while header and not header[-1].strip():
        header.pop()  # formatted but empty columns at the right
    width = len(header)
    records: list[list[str | None]] = []
    rows: list[int] = []
    for number, record in enumerate(cells[1:], start=1):
        if not any(c is not None and c.strip() for c in record):
            continue
        # read-only sheets may report trailing empty columns: the header sets the width
        records.append((record + [None] * width)[:width])
        rows.append(number)
    if not records:
        raise FileFormatError(f"file is empty: sheet {worksheet.title!r} of {path.name} has a header but no data rows")
    return _frame(header, records, rows), {}


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


def decode_geometries(
    values: np.ndarray, decode, what: str, rejected: dict[int, list[str]], repaired: dict[int, list[str]]
) -> np.ndarray:
    """Geometries from WKT or WKB values (``decode`` is :func:`shapely.from_wkt` or ``from_wkb``).

    A ring that was not closed is closed and noted in ``repaired``; anything
    else unreadable, and a missing value, is noted in ``rejected`` (by
    position), the reason naming ``what`` was read ("WKT in 'wkt'", "geometry").
    """
    geoms = decode(values, on_invalid="ignore")
    failed = np.flatnonzero(np.equal(geoms, None) & np.not_equal(values, None))
    if failed.size:
        # "fix" closes rings that were not closed; anything else stays unreadable
        fixed = decode(values[failed], on_invalid="fix")
        for pos, geom in zip(failed, fixed, strict=True):
            if geom is not None:
                geoms[pos] = geom
                repaired[pos] = [f"ring in {what} was not closed; closed it"]
            else:
                rejected[pos] = [f"unreadable {what}: {_decode_error(decode, values[pos])}"]
    for pos in np.flatnonzero(np.equal(values, None)):
        rejected[pos] = [f"missing {what}"]
    return geoms


def _decode_error(decode, value) -> str:
    try:
        decode(value)
    except GEOSException as exc:
        return str(exc)
    return "not a geometry"
