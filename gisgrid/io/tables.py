"""The one table reader: CSV/TXT, XLSX and vector files, in chunks, each row with its number.

This module is the entry point and reads CSV; workbooks are :mod:`gisgrid.io.sheets`,
vector files :mod:`gisgrid.io.vectors`, and what they share :mod:`gisgrid.io.cells`.

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
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import charset_normalizer
import numpy as np
import pandas as pd

from gisgrid.crs import WGS84, InputCRS, parse_crs, reconcile_crs
from gisgrid.errors import CRSError, FileFormatError, InputError
from gisgrid.io.cells import (
    CHUNK_ROWS,
    HEADER_SEARCH_ROWS,
    TABLE_KINDS,
    VECTOR_KINDS,
    SheetNotFound,
    TableChunk,
    UnreadableTable,
    blank,
    header_rows,
    row_index,
    text_frame,
    unique_names,
)
from gisgrid.io.sheets import open_xlsx, xlsx_chunks
from gisgrid.io.vectors import open_vector, vector_chunks

__all__ = ["SheetNotFound", "Table", "TableChunk", "UnreadableTable", "detect_encoding", "open_table", "read_table"]

LOGGER = logging.getLogger(__name__)

#: Non-UTF-8 encodings considered, in the order charset-normalizer weighs them:
#: GB18030 (superset of GBK/GB2312, mainland offices), Big5-HKSCS (Hong Kong,
#: Taiwan) and Windows-1252 (Excel on western-European Windows).
FALLBACK_ENCODINGS = ("gb18030", "big5hkscs", "cp1252")
_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE_BYTES = 1 << 20


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
            return xlsx_chunks(self, chunk_rows)
        return vector_chunks(self, chunk_rows)

    def read(self) -> TableChunk:
        """Every row at once, as one chunk (``number_columns`` over the whole table)."""
        parts = list(self.chunks())
        if not parts:
            return TableChunk(pd.DataFrame({c: pd.Series(dtype="str") for c in self.columns}, index=row_index([])))
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
        open_xlsx(table, sheet, column)
    else:
        open_vector(table, layer)
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
            if blank(record):
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
            frame.index = row_index(np.arange(done + 1, done + 1 + len(frame)))
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
                elif blank(record):
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
                    yield TableChunk(text_frame(table.columns, records, rows), malformed)
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
            yield TableChunk(text_frame(table.columns, records, rows), malformed)
