"""The one table reader: CSV/TXT, XLSX and vector files, in chunks, each row with its number.

:func:`open_table` opens a file and finds its header; :meth:`Table.chunks`
then yields :class:`TableChunk` objects of about ``chunk_rows`` rows, and
:meth:`Table.read` the whole table at once.  Every entry point that reads a
table (``gisgrid import``, ``gisgrid assign``, ``gisgrid geocode``, the
geocoding upload) reads it here, so a file means the same to all of them.

The rules:

* **Row numbers** are 1-based *data* rows: the first row after the header is
  row 1 (in a vector file, the first feature).  A chunk's frame is indexed by
  them (index name ``row``).
* **Blank rows** (every cell empty or spaces) are not data rows: they keep
  their number and are left out.
* **Text**: CSV and XLSX cells come as text (pandas ``str``), an empty cell as
  ``""``; XLSX numbers without a spurious ``.0`` and dates as ISO 8601
  (:func:`cell_text`).  Vector attributes keep their types.
* **Header**: the first of the top :data:`HEADER_SEARCH_ROWS` rows with at
  least half as many different values as the fullest of them (and two or
  more), so a title row above the header (``2026年7月热线工单``, merged across
  the columns) or a line such as ``填报单位 … 填报日期 …`` is skipped.  In a
  workbook, cells merged down from the header make it two rows high (a group
  name over sub-headers) and every merged cell shows its range's value.
  Names are made unique (:func:`unique_names`).
* **CSV**: the encoding is detected (UTF-8 with or without BOM, UTF-16 with
  BOM, GB18030, Big5-HKSCS, Windows-1252: :func:`detect_encoding`), the
  delimiter (comma, tab, semicolon or bar) from the top rows.  A row with
  fewer fields than the header is padded with empty cells; a row with more
  non-empty fields cannot be read and is reported in
  :attr:`TableChunk.malformed` with its number and why, never silently
  dropped.  pyarrow reads clean files; on the first irregular row the reader
  carries on with Python's ``csv`` module from that row, which numbers every
  row exactly.
* **Vector** files (GeoJSON, GeoPackage, Shapefile, zipped Shapefile) are read
  through pyogrio in batches; geometries are decoded per row, an unclosed ring
  closed and noted, an unreadable one reported.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import io
import json
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import charset_normalizer
import numpy as np
import pandas as pd
import shapely
from shapely.errors import GEOSException

from gisgrid.crs import WGS84, InputCRS, parse_crs, reconcile_crs
from gisgrid.errors import CRSError, FileFormatError, InputError

LOGGER = logging.getLogger(__name__)

#: File extension → kind of table.
TABLE_KINDS: dict[str, str] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".zip": "zip",
}
VECTOR_KINDS = ("geojson", "gpkg", "shp", "zip")
#: Non-UTF-8 encodings considered, in the order charset-normalizer weighs them:
#: GB18030 (superset of GBK/GB2312, mainland offices), Big5-HKSCS (Hong Kong,
#: Taiwan) and Windows-1252 (Excel on western-European Windows).
FALLBACK_ENCODINGS = ("gb18030", "big5hkscs", "cp1252")
#: Rows searched for the header (title rows above it are skipped).
HEADER_SEARCH_ROWS = 10
#: Rows per chunk unless the caller says otherwise.
CHUNK_ROWS = 200_000
_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE_BYTES = 1 << 20


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


@dataclass
class TableChunk:
    """Rows of a table.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows read, indexed by their 1-based data row number (``row``).
        CSV/XLSX cells are text (``""`` when empty).
    malformed : dict of int to str
        Rows that could not be read (not in ``frame``): row number → reason.
    geoms : numpy.ndarray, optional
        Vector files: one shapely geometry per row of ``frame`` (None where
        unreadable), in the file's CRS.
    rejected, repaired : dict of int to list of str
        Vector files: geometries unreadable or missing / repaired, by row number.
    number_columns : list of str
        XLSX: the columns whose filled cells in these rows are all numbers.
    """

    frame: pd.DataFrame
    malformed: dict[int, str] = field(default_factory=dict)
    geoms: np.ndarray | None = None
    rejected: dict[int, list[str]] = field(default_factory=dict)
    repaired: dict[int, list[str]] = field(default_factory=dict)
    number_columns: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Data rows in this chunk, read or malformed."""
        return len(self.frame) + len(self.malformed)


# --- names and cells ---------------------------------------------------------------------
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


def cell_text(value) -> str:
    """A spreadsheet cell as the text a user sees (numbers without a spurious ``.0``, 2026-07-01 for a date)."""
    if value is None:
        return ""
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


def header_rows(rows: list[list[str]], merged=(), column=None) -> tuple[int, int]:
    """The first and last (0-based) of ``rows`` (the top of a sheet, as text) that make the header.

    The header holds ``column`` (a name, or several: any of them, compared
    case-insensitively) when one of the top :data:`HEADER_SEARCH_ROWS` rows
    does (under a title of any width).  Otherwise it is the first of them
    with at least half as many different values as the fullest (and two or
    more): a title merged across the columns, or a line such as ``填报单位 …
    填报日期 …``, has fewer.  Cells merged down from it (``merged``: openpyxl
    ranges) make the header two (or more) rows high.
    """

    def spans(first: int) -> tuple[int, int]:
        last = max((rng.max_row - 1 for rng in merged if rng.min_row - 1 == first), default=first)
        return first, min(last, len(rows) - 1)

    top = rows[:HEADER_SEARCH_ROWS]
    counts = [len({c.strip() for c in row if c and c.strip()}) for row in top]
    need = max(min(2, max(counts)), -(-max(counts) // 2))
    first, last = spans(next(i for i, n in enumerate(counts) if n >= need))
    wanted = {column.strip().lower()} if isinstance(column, str) else {str(c).strip().lower() for c in column or ()}
    holding = next(
        (i for i, row in enumerate(top) if any((c or "").strip().lower() in wanted for c in row)),
        None,
    )
    if not wanted or holding is None or first <= holding <= last:
        return first, last
    # the row holding the column, with the rows merged down over it (a group name above a sub-header)
    above = [rng.min_row - 1 for rng in merged if rng.min_row - 1 < holding <= rng.max_row - 1]
    return spans(min(above, default=holding))


def _blank(record) -> bool:
    return not any(c is not None and str(c).strip() for c in record)


# --- encodings ------------------------------------------------------------------------------
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
    """The text encoding of a CSV file's bytes (or of its first megabyte).

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
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # a sample cut inside a character
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


# --- the table ----------------------------------------------------------------------------------
class Table:
    """An opened table: its kind, header and where its data starts; read it with :meth:`chunks` or :meth:`read`.

    Made by :func:`open_table`.

    Attributes
    ----------
    path : Path
    kind : {"csv", "xlsx", "geojson", "gpkg", "shp", "zip"}
    columns : list of str
        The header's names (unique), or the vector layer's attribute names.
    sheet : str or None
        The worksheet read (XLSX).
    sheets : list of str
        The workbook's sheets (XLSX).
    stated_crs : str or None
        The CRS a vector file states (None when it states none; a GeoJSON
        without a ``crs`` member states none: RFC 7946 makes it WGS84).
    """

    def __init__(self, path: Path, kind: str):
        self.path, self.kind = path, kind
        self.columns: list[str] = []
        self.sheet: str | None = None
        self.sheets: list[str] = []
        self.stated_crs: str | None = None
        self.encoding: str | None = None
        self.delimiter = ","
        self._skip_lines = 0  # CSV: physical lines before the first data row
        self._row_bytes = 64  # CSV: bytes per line in the first megabyte
        self._merged: list = []
        self._header_last = 0  # XLSX: 0-based sheet row of the header's last row
        self._dataset: str | None = None
        self._layer: str | None = None
        self._features: int | None = None

    @property
    def is_vector(self) -> bool:
        return self.kind in VECTOR_KINDS

    def crs(self, declared=None) -> InputCRS:
        """The CRS the coordinates are in: declared (required for CSV/XLSX), reconciled with the file's.

        See :func:`gisgrid.crs.reconcile_crs`.

        Raises
        ------
        gisgrid.errors.CRSError
        """
        if not self.is_vector:
            if declared is None:
                raise CRSError(
                    f"{self.path.name}: no CRS given; say which CRS the coordinates are in with --crs "
                    "(e.g. EPSG:4326, EPSG:4490, gcj02, bd09 or a projected EPSG code)"
                )
            return parse_crs(declared)
        default = WGS84 if self.kind == "geojson" else None
        return reconcile_crs(declared, self.stated_crs, source=self.path.name, default=default)

    def size_hint(self) -> int | None:
        """About how many data rows there are (for progress bars), or None."""
        if self.is_vector:
            return self._features
        if self.kind == "csv":
            n = 0
            with self.path.open("rb") as f:
                while block := f.read(1 << 24):
                    n += block.count(b"\n")
            return max(0, n - self._skip_lines)
        return None

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[TableChunk]:
        """The table's rows, ``chunk_rows`` at a time (fewer at the end and where rows are malformed)."""
        if chunk_rows < 1:
            raise InputError(f"chunk_rows must be at least 1, not {chunk_rows}")
        if self.kind == "csv":
            return _csv_chunks(self, chunk_rows)
        if self.kind == "xlsx":
            return _xlsx_chunks(self, chunk_rows)
        return _vector_chunks(self, chunk_rows)

    def read(self) -> TableChunk:
        """Every row at once, as one chunk (``number_columns`` over the whole table)."""
        parts = list(self.chunks())
        if not parts:
            return TableChunk(pd.DataFrame({c: pd.Series(dtype="str") for c in self.columns}, index=_rows([])))
        frame = pd.concat([p.frame for p in parts]) if len(parts) > 1 else parts[0].frame
        out = TableChunk(frame)
        for part in parts:
            out.malformed.update(part.malformed)
            out.rejected.update(part.rejected)
            out.repaired.update(part.repaired)
        if self.is_vector:
            out.geoms = np.concatenate([p.geoms for p in parts]) if len(parts) > 1 else parts[0].geoms
        if self.kind == "xlsx":
            numeric = set.intersection(*(set(p.number_columns) | _empty_columns(p.frame) for p in parts))
            filled = set().union(*(set(self.columns) - _empty_columns(p.frame) for p in parts))
            out.number_columns = [c for c in self.columns if c in numeric and c in filled]
        return out


def _rows(numbers) -> pd.Index:
    return pd.Index(np.asarray(numbers, dtype=np.int64), name="row")


def _empty_columns(frame: pd.DataFrame) -> set[str]:
    return {c for c in frame.columns if not (frame[c].astype(str).str.strip() != "").any()}


def open_table(path: str | Path, *, sheet: str | None = None, layer: str | None = None, column=None) -> Table:
    """Open a table file and find its header (nothing else is read yet).

    Parameters
    ----------
    path : str or Path
        CSV/TXT/TSV, XLSX, GeoJSON, GeoPackage, Shapefile or zipped Shapefile.
    sheet : str, optional
        XLSX worksheet by name; the first by default.
    layer : str, optional
        GeoPackage layer or, in a zip, Shapefile name; needed when there are several.
    column : str or sequence of str, optional
        A column the caller needs (or names it may have): the header is the
        top row holding it, when one does (see :func:`header_rows`).

    Raises
    ------
    FileFormatError
        Missing, empty, unsupported or unreadable file (:class:`UnreadableTable`
        for CSV/XLSX, with a ``problem`` code).
    SheetNotFound
        Unknown ``sheet`` (the message lists the sheets).
    InputError
        ``sheet`` for a file without sheets; unknown or ambiguous ``layer``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"file not found: {path}")
    kind = TABLE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise FileFormatError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path.name}; supported: "
            "CSV (.csv, .txt, .tsv), Excel (.xlsx), GeoJSON (.geojson, .json), GeoPackage (.gpkg), "
            "Shapefile (.shp or zipped .zip)"
        )
    if path.stat().st_size == 0:
        raise UnreadableTable("empty", f"file is empty: {path.name} has 0 bytes")
    if sheet is not None and kind != "xlsx":
        raise InputError(f"sheet={sheet!r} given but {path.name} is not a workbook, which has no sheets")
    table = Table(path, kind)
    if kind == "csv":
        _open_csv(table, column)
    elif kind == "xlsx":
        _open_xlsx(table, sheet, column)
    else:
        _open_vector(table, layer)
    return table


def read_table(
    path: str | Path, *, sheet: str | None = None, layer: str | None = None, column=None
) -> tuple[Table, TableChunk]:
    """:func:`open_table` and :meth:`Table.read` in one call."""
    table = open_table(path, sheet=sheet, layer=layer, column=column)
    return table, table.read()


# --- CSV ------------------------------------------------------------------------------------------
def _open_csv(table: Table, column) -> None:
    path = table.path
    with path.open("rb") as f:
        sample = f.read(_SAMPLE_BYTES)
    if not sample.strip():
        raise UnreadableTable("empty", f"file is empty: {path.name} has no header and no data rows")
    complete = sample if len(sample) < _SAMPLE_BYTES else sample[: sample.rfind(b"\n") + 1] or sample
    table.encoding = detect_encoding(complete)
    try:
        text = complete.decode(table.encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableTable(
            "encoding",
            f"{path.name} is not valid {table.encoding} text ({exc.reason} at byte {exc.start}); save it as UTF-8",
        ) from exc
    text = text.lstrip("\ufeff")
    lines = [line for line in text.splitlines()[: 4 * HEADER_SEARCH_ROWS] if line.strip()][:HEADER_SEARCH_ROWS]
    table.delimiter = max(_DELIMITERS, key=lambda d: max((line.count(d) for line in lines), default=0))
    if not any(table.delimiter in line for line in lines):
        table.delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=table.delimiter)
    top: list[list[str]] = []
    ends: list[int] = []  # physical lines read after each record of ``top``
    try:
        for record in reader:
            if _blank(record):
                continue  # leading blank lines are not the header
            top.append(record)
            ends.append(reader.line_num)
            if len(top) >= HEADER_SEARCH_ROWS:
                break
    except csv.Error as exc:
        raise UnreadableTable("csv", f"{path.name} is not a readable CSV file: {exc}") from exc
    if not top:
        raise UnreadableTable("empty", f"file is empty: {path.name} has no header and no data rows")
    first, _ = header_rows(top, column=column)
    header = top[first]
    while len(header) > 1 and not header[-1].strip():
        header = header[:-1]  # empty columns at the right (a trailing delimiter)
    table.columns = unique_names(header)
    table._skip_lines = ends[first]
    table._row_bytes = max(16, len(complete) // max(1, complete.count(b"\n")))
    LOGGER.debug("%s: %s, delimiter %r, header at line %d", path, table.encoding, table.delimiter, ends[first])


def _text_frame(columns: list[str], records, rows) -> pd.DataFrame:
    return pd.DataFrame(records, columns=columns, dtype="str").set_axis(_rows(rows), axis=0)


def _csv_chunks(table: Table, chunk_rows: int) -> Iterator[TableChunk]:
    """Clean files through pyarrow; from the first irregular row on, Python's csv module (exact numbers)."""
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.csv as pacsv  # noqa: PLC0415
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        yield from _csv_chunks_exact(table, chunk_rows, start=0)
        return
    names = table.columns
    if _odd_quotes(table):  # a quote opened and never closed: pyarrow would read the rest of the file as one value
        yield from _csv_chunks_exact(table, chunk_rows, start=0)
        return
    irregular: list[str] = []

    def invalid(row) -> str:
        irregular.append(row.text)
        return "skip"

    read_options = pacsv.ReadOptions(
        column_names=names,
        skip_rows=table._skip_lines,
        encoding="utf8" if table.encoding in {"utf-8", "utf-8-sig"} else table.encoding,
        block_size=int(min(max(chunk_rows * table._row_bytes, 1 << 20), 1 << 30)),
    )
    parse_options = pacsv.ParseOptions(
        delimiter=table.delimiter, newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=invalid
    )
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    done = 0  # data rows handed on so far
    try:
        reader = pacsv.open_csv(
            table.path, read_options=read_options, parse_options=parse_options, convert_options=convert_options
        )
        for batch in reader:
            if irregular:
                break  # this batch may lack the irregular row: go on exactly from the last row handed on
            if not batch.num_rows:
                continue
            frame = batch.to_pandas()
            if _swallowed_rows(frame, table.delimiter):
                irregular.append("a quoted value holding whole rows")
                break  # a stray quote: read these rows exactly, from the last row handed on
            frame.index = _rows(np.arange(done + 1, done + 1 + len(frame)))
            done += len(frame)
            yield TableChunk(_without_blank_rows(frame))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if not irregular:
            raise UnreadableTable("csv", f"{table.path.name} is not a readable CSV file: {exc}") from exc
    if irregular:
        LOGGER.info("%s: an irregular row after data row %d; reading on with the csv module", table.path.name, done)
        yield from _csv_chunks_exact(table, chunk_rows, start=done)


def _without_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its rows of empty or blank cells (vectorised: most files have none)."""
    if frame.shape[1] == 0 or not len(frame):
        return frame
    first = frame.iloc[:, 0]
    maybe = (first == "") | first.str.isspace()
    if not maybe.any():
        return frame
    candidates = frame[maybe.to_numpy()]
    blank = np.ones(len(candidates), dtype=bool)
    for position in range(candidates.shape[1]):
        values = candidates.iloc[:, position]
        blank &= ((values == "") | values.str.isspace()).to_numpy()
    return frame.drop(index=candidates.index[blank])


def _odd_quotes(table: Table) -> bool:
    """Whether a CSV file holds an odd number of quote characters: a quote opened somewhere is never closed."""
    if table.encoding and table.encoding.startswith("utf-16"):
        return True  # two bytes a character: count on the text (the exact reader does), rare enough
    count = 0
    with table.path.open("rb") as f:
        while block := f.read(1 << 24):
            count += block.count(b'"')  # GB18030 and Big5 never use byte 0x22 inside a character
    return count % 2 == 1


def _swallowed_rows(frame: pd.DataFrame, delimiter: str) -> bool:
    """Whether a value holds a line break followed by a line that looks like rows of its own (a stray quote)."""
    width = frame.shape[1]
    for position in range(width):
        values = frame.iloc[:, position]
        multi = values[values.str.contains("\n", regex=False)]
        if len(multi) and any(_looks_like_rows(v, delimiter, width) for v in multi):
            return True
    return False


def _looks_like_rows(value: str, delimiter: str, width: int) -> bool:
    """A line after the first of ``value`` holds as many delimiters as a row of ``width`` fields."""
    return any(line.count(delimiter) >= max(1, width - 1) for line in value.splitlines()[1:])


class _Lines:
    """The lines of a file for :mod:`csv`, recording those each record took; lines can be given back."""

    def __init__(self, handle):
        self.handle, self.replay, self.taken = handle, [], []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.replay.pop(0) if self.replay else next(self.handle)
        self.taken.append(line)
        return line


def _csv_records(handle, delimiter: str, width: int) -> Iterator[tuple[list[str] | None, str]]:
    """The records of CSV lines, as Python's csv module reads them, each with the text it came from.

    A record whose quote is never closed takes every line to the end of the
    file (or to the next stray quote) as one value; such a record, spanning
    lines that look like rows of their own, is given as ``(None, its first
    line)`` and the lines after that line are read again as rows.
    """
    lines = _Lines(handle)
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        lines.taken = []
        try:
            record = next(reader)
        except StopIteration:
            return
        taken = lines.taken
        if len(taken) > 1 and _swallows(record, taken, delimiter, width):
            yield None, taken[0]
            lines.replay = taken[1:] + lines.replay
            reader = csv.reader(lines, delimiter=delimiter)  # a fresh reader: out of the open quote
            continue
        yield record, ""


def _swallows(record: list[str], taken: list[str], delimiter: str, width: int) -> bool:
    """Whether a record of several lines is a quote never closed (at the end of the file, or by a stray quote)."""
    text = "".join(taken)
    if text.count('"') % 2 == 1:
        return True  # the file ended inside the quote
    return len(record) < width and any(_looks_like_rows(v, delimiter, width) for v in record if "\n" in v)


def _csv_chunks_exact(table: Table, chunk_rows: int, *, start: int) -> Iterator[TableChunk]:
    """Rows after data row ``start``, read by Python's csv module: short rows padded, long ones reported,
    and a row whose quote is never closed reported instead of taking the rows after it (:func:`_csv_records`)."""
    width = len(table.columns)
    with table.path.open("r", encoding=table.encoding, newline="", errors="strict") as handle:
        for _ in range(table._skip_lines):
            handle.readline()
        records: list[list[str]] = []
        rows: list[int] = []
        malformed: dict[int, str] = {}
        number = 0
        try:
            for record, line in _csv_records(handle, table.delimiter, width):
                number += 1
                if number <= start:
                    continue
                if record is None:
                    malformed[number] = (
                        "a quote opened in this row is never closed, so it would take the rows after it as "
                        f"its value; the row is left out (close or remove the quote): {line.rstrip()[:200]!r}"
                    )
                elif _blank(record):
                    continue
                elif len(record) > width and any(cell.strip() for cell in record[width:]):
                    text = table.delimiter.join(record)
                    malformed[number] = (
                        f"has {len(record)} fields but the header has {width} "
                        f"(an unquoted delimiter inside a value?): {text[:200]!r}"
                    )
                else:
                    records.append((record + [""] * width)[:width])
                    rows.append(number)
                if len(records) + len(malformed) >= chunk_rows:
                    yield TableChunk(_text_frame(table.columns, records, rows), malformed)
                    records, rows, malformed = [], [], {}
        except csv.Error as exc:
            raise UnreadableTable(
                "csv", f"{table.path.name} is not a readable CSV file: row {number + 1}: {exc}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise UnreadableTable(
                "encoding", f"{table.path.name}: row {number + 1} is not valid {table.encoding} text; save as UTF-8"
            ) from exc
        if records or malformed:
            yield TableChunk(_text_frame(table.columns, records, rows), malformed)


# --- XLSX -----------------------------------------------------------------------------------------
def open_sheet(path: Path, sheet: str | None, *, read_only: bool = True):
    """Open an XLSX workbook and one worksheet by name (the first by default); the caller closes it.

    Raises
    ------
    UnreadableTable
        When the file is not a workbook.
    SheetNotFound
        When ``sheet`` names no worksheet (the message lists them).
    """
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


_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell\s+ref=\"([A-Z]+[0-9]+(?::[A-Z]+[0-9]+)?)\"")


def _merged_ranges(worksheet) -> list:
    """The merged ranges of a read-only worksheet (openpyxl reads them only in full mode).

    They sit after the cell data in the sheet's XML, which is scanned once.
    """
    from openpyxl.worksheet.cell_range import CellRange  # noqa: PLC0415

    source = getattr(worksheet, "_get_source", None)
    if source is None:  # pragma: no cover - a full worksheet
        return list(getattr(worksheet, "merged_cells", ()).ranges)
    found: list = []
    tail = b""
    with source() as stream:
        while block := stream.read(1 << 20):
            data = tail + block
            found += [m.group(1).decode() for m in _MERGE_REF.finditer(data)]
            cut = data.rfind(b"<")
            tail = data[cut:] if cut >= 0 else b""
            found = found[: len(found) - sum(1 for _ in _MERGE_REF.finditer(tail))]
    return [CellRange(ref) for ref in dict.fromkeys(found) if ":" in ref]


def _open_xlsx(table: Table, sheet: str | None, column) -> None:
    workbook, worksheet = open_sheet(table.path, sheet)
    try:
        table.sheet, table.sheets = worksheet.title, list(workbook.sheetnames)
        table._merged = _merged_ranges(worksheet)
        top = []
        for values in worksheet.iter_rows(values_only=True, max_row=HEADER_SEARCH_ROWS + 10):
            top.append([cell_text(v) for v in values])
    finally:
        workbook.close()
    _fill_merged(top, table._merged, 0)
    while top and _blank(top[-1]):
        top.pop()
    if not top:
        raise UnreadableTable("empty", f"file is empty: sheet {table.sheet!r} of {table.path.name}", sheet=table.sheet)
    first, last = header_rows(top, table._merged, column)
    block = top[first : last + 1]
    width = max(len(r) for r in block)
    # per column the lowest name of the header rows: 地址 and 社区 under a merged 位置, not 位置 twice
    header = [
        next((row[i].strip() for row in reversed(block) if i < len(row) and row[i].strip()), "") for i in range(width)
    ]
    while header and not header[-1]:
        header.pop()  # formatted but empty columns at the right
    # data wider than the header (cells right of it) gets columns of its own, column_N
    filled = [max((i + 1 for i, c in enumerate(row) if c.strip()), default=0) for row in top[last + 1 :]]
    header += [""] * (max(filled, default=0) - len(header))
    table.columns = unique_names(header)
    table._header_last = last


def _fill_merged(cells: list[list[str]], merged, offset: int, values: dict | None = None) -> None:
    """Every cell of a merged range shows the range's value (rows ``offset``… of the sheet, 0-based)."""
    values = {} if values is None else values
    for rng in merged:
        top, left = rng.min_row - 1, rng.min_col - 1
        if offset <= top < offset + len(cells):
            row = cells[top - offset]
            values[rng.coord] = row[left] if left < len(row) else ""
        if rng.coord not in values:
            continue
        for r in range(max(top, offset), min(rng.max_row, offset + len(cells))):
            row = cells[r - offset]
            for c in range(left, rng.max_col):
                if c < len(row):
                    row[c] = values[rng.coord]


def _xlsx_chunks(table: Table, chunk_rows: int) -> Iterator[TableChunk]:
    workbook, worksheet = open_sheet(table.path, table.sheet)
    width = len(table.columns)
    start = table._header_last + 1  # 0-based sheet row of data row 1
    merged = [rng for rng in table._merged if rng.max_row - 1 >= start]
    seen: dict = {}  # merged range → its value, once its first row is passed
    records: list[list[str]] = []
    numbers: list[list[bool]] = []  # per cell: a number in the workbook
    rows: list[int] = []
    malformed: dict[int, str] = {}
    try:
        for offset, values in enumerate(worksheet.iter_rows(values_only=True, min_row=start + 1)):
            values = tuple(values)
            if len(values) > width and not _blank(values[width:]):
                cells = [cell_text(v) for v in values]
                wide = max(i + 1 for i, c in enumerate(cells) if c.strip())
                malformed[offset + 1] = f"has cells up to column {wide} but the header has {width} columns"
                continue
            values = (values + (None,) * width)[:width]
            cells = [cell_text(v) for v in values]
            if merged:  # before judging the row blank: a merged cell may fill it
                _fill_merged([cells], merged, start + offset, seen)
            if _blank(cells):
                continue
            records.append(cells)
            numbers.append([isinstance(v, (int, float)) and not isinstance(v, bool) for v in values])
            rows.append(offset + 1)
            if len(records) + len(malformed) >= chunk_rows:
                yield _xlsx_chunk(table.columns, records, numbers, rows, malformed)
                records, numbers, rows, malformed = [], [], [], {}
        if records or malformed:
            yield _xlsx_chunk(table.columns, records, numbers, rows, malformed)
    finally:
        workbook.close()


def _xlsx_chunk(columns: list[str], records, numbers, rows, malformed: dict[int, str]) -> TableChunk:
    numeric = np.array(numbers, dtype=bool).reshape(len(records), len(columns))
    filled = np.array([[c.strip() != "" for c in r] for r in records], dtype=bool).reshape(len(records), len(columns))
    number_columns = [c for i, c in enumerate(columns) if (numeric[:, i] | ~filled[:, i]).all()]
    return TableChunk(_text_frame(columns, records, rows), malformed, number_columns=number_columns)


# --- vector files ---------------------------------------------------------------------------------
_KIND_NAMES = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "shp": "Shapefile", "zip": "zipped Shapefile"}
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


def _dataset(path: Path, kind: str, layer: str | None) -> tuple[str, str | None]:
    """The GDAL dataset name and layer to open (a zip's Shapefile through /vsizip/)."""
    if kind == "shp":
        siblings = {str(p).lower() for p in path.parent.iterdir()}
        _require_shapefile_parts(str(path), archive_names=siblings, where=path.name)
    if kind != "zip":
        return str(path), layer
    try:
        with zipfile.ZipFile(path) as archive:
            everything = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise FileFormatError(f"{path.name} is not a readable zip file: {exc}") from exc
    members = [n for n in everything if n.lower().endswith(".shp") and not n.startswith("__MACOSX/")]
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
    _require_shapefile_parts(member, archive_names={n.lower() for n in everything}, where=path.name)
    return f"/vsizip/{path.resolve()}/{member}", None


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
    import pyogrio  # noqa: PLC0415

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


_CRS_MEMBER = re.compile(rb'"(?:crs|spatialReference)"\s*:\s*(?!null)')


def geojson_states_crs(path: Path) -> bool:
    """Whether a GeoJSON file has a (pre-RFC 7946) ``crs`` member; GDAL reports WGS84 either way.

    Top-level members sit before ``"features"`` or after the features' end, so
    the file's head (up to ``"features"``) and tail are read, not all of it.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
        handle.seek(max(0, size - (1 << 16)))
        tail = handle.read()
    before = head.split(b'"features"', 1)[0]
    after = tail.rsplit(b"]", 1)[-1] if size > len(head) else head.rsplit(b"]", 1)[-1]
    if _CRS_MEMBER.search(before) or _CRS_MEMBER.search(after):
        try:  # a small file: make sure it is the top-level member
            if size <= 1 << 24:
                document = json.loads(path.read_bytes())
                return isinstance(document, dict) and (
                    document.get("crs") is not None or document.get("spatialReference") is not None
                )
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    return False


def _gdal_errors() -> tuple[type[Exception], ...]:
    import pyogrio.errors  # noqa: PLC0415

    return (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError)


@functools.cache
def _quiet_gdal() -> None:
    """Stop GDAL printing its own warnings to stderr (``Warning 1: Non closed ring detected…``).

    Where pyogrio listens (the calling thread) a GDAL warning becomes a Python warning, filtered in
    :func:`_vector_chunks`; but the reader runs ahead in another thread (:mod:`gisgrid.routing.files`),
    where GDAL's default handler wrote straight to the terminal, between the progress bar's lines.
    Every row GDAL warns about is reported by gisgrid itself with its number and reason (a ring is not
    a point; an invalid geometry is repaired or rejected), so the default handler writes to the null
    device.  A ``CPL_LOG`` set in the environment (to debug GDAL) is left alone.
    """
    import pyogrio  # noqa: PLC0415

    if not os.environ.get("CPL_LOG"):
        pyogrio.set_gdal_config_options({"CPL_LOG": os.devnull})


def _open_vector(table: Table, layer: str | None) -> None:
    import pyogrio  # noqa: PLC0415

    _quiet_gdal()
    path = table.path
    dataset, layer = _dataset(path, table.kind, layer)
    try:
        table._layer = _choose_layer(dataset, path, layer)
        info = pyogrio.read_info(dataset, layer=table._layer)
    except _gdal_errors() as exc:
        raise FileFormatError(f"cannot read {path.name}: {_gdal_reason(exc, table.kind)}") from exc
    table._dataset = dataset
    table._features = int(info.get("features") or 0)
    if table._features == 0:
        raise FileFormatError(f"file is empty: {path.name} has no features")
    table.columns = [str(c) for c in info.get("fields", [])]
    stated = info.get("crs")
    if stated is not None and table.kind == "geojson" and not geojson_states_crs(path):
        stated = None  # RFC 7946: WGS84 by default, not stated
    table.stated_crs = stated


def _vector_chunks(table: Table, chunk_rows: int) -> Iterator[TableChunk]:
    import pyarrow as pa  # noqa: PLC0415
    import pyogrio  # noqa: PLC0415

    done = 0
    try:
        with warnings.catch_warnings():
            # GDAL warns about unclosed rings; they are reported per row
            warnings.filterwarnings("ignore", message="Non closed ring detected")
            with pyogrio.open_arrow(table._dataset, layer=table._layer, batch_size=chunk_rows, use_pyarrow=True) as (
                meta,
                reader,
            ):
                geometry = meta.get("geometry_name") or "wkb_geometry"
                for batch in reader:
                    arrow = pa.Table.from_batches([batch])
                    if geometry in arrow.column_names:
                        wkb = arrow.column(geometry).to_numpy(zero_copy_only=False)
                        arrow = arrow.drop_columns([geometry])
                    else:
                        wkb = np.full(arrow.num_rows, None, dtype=object)
                    frame = arrow.to_pandas()
                    rows = np.arange(done + 1, done + 1 + len(frame))
                    frame.index = _rows(rows)
                    done += len(frame)
                    rejected: dict[int, list[str]] = {}
                    repaired: dict[int, list[str]] = {}
                    geoms = decode_geometries(
                        np.asarray(wkb, dtype=object), shapely.from_wkb, "geometry", rejected, repaired
                    )
                    yield TableChunk(
                        frame,
                        geoms=geoms,
                        rejected={int(rows[p]): r for p, r in rejected.items()},
                        repaired={int(rows[p]): r for p, r in repaired.items()},
                    )
    except _gdal_errors() as exc:
        raise FileFormatError(f"cannot read {table.path.name}: {_gdal_reason(exc, table.kind)}") from exc


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
