"""Batch geocoding of tables and files (CSV in UTF-8/GBK, XLSX), resumable.

Rows in = rows out: every input row and column is kept and six columns are
added (:data:`RESULT_COLUMNS`, named by :func:`added_names`).  Each distinct
address string is parsed and matched once (hotline spreadsheets repeat
addresses a lot).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gisgrid.config import TextLimits
from gisgrid.errors import FileFormatError, InputError
from gisgrid.geocode.gazetteer import Gazetteer
from gisgrid.geocode.match import GeocodeResult, geocode
from gisgrid.io.rows import RowProblems, check_text
from gisgrid.io.tables import open_table
from gisgrid.io.write import csv_bytes, write_table

LOGGER = logging.getLogger(__name__)

#: Columns added to every table, in this order.
RESULT_COLUMNS = ("lon", "lat", "quality", "confidence", "matched_name", "geocode_note")
#: Added columns that hold numbers (written as numbers to XLSX).
NUMBER_COLUMNS = ("lon", "lat", "confidence")
#: Rows written per chunk of a file; the progress file is updated after each.
CHUNK_ROWS = 2000


def added_names(columns, names=RESULT_COLUMNS) -> dict[str, str]:
    """The name each added column gets beside the input ``columns``: the only place that decides it.

    A name the input already uses (a downloaded result uploaded again) gets
    the suffix ``_geocoded``, then ``_geocoded_2``, ``_geocoded_3`` … until
    it is free, so no input column is ever overwritten.

    Parameters
    ----------
    columns : iterable of str
        The input table's columns.
    names : iterable of str
        The added columns in order (default :data:`RESULT_COLUMNS`; the router
        passes these followed by its own).

    Returns
    -------
    dict of str to str
        Added column (as in ``names``) → its name in the output.
    """
    taken = {str(c) for c in columns}
    out: dict[str, str] = {}
    for name in names:
        candidate, n = name, 1
        while candidate in taken:
            candidate = f"{name}_geocoded" if n == 1 else f"{name}_geocoded_{n}"
            n += 1
        taken.add(candidate)
        out[name] = candidate
    return out


def geocode_table(
    frame: pd.DataFrame,
    column: str,
    gazetteer: Gazetteer,
    *,
    cache: dict | None = None,
    limits: TextLimits | None = None,
    malformed: dict[int, str] | None = None,
) -> pd.DataFrame:
    """Geocode the addresses in one column of a table.

    Parameters
    ----------
    frame : pandas.DataFrame
        Not modified.
    column : str
        The column holding the written addresses.
    gazetteer : Gazetteer
    cache : dict, optional
        Results by address text, shared between calls (chunks of one file).
    limits : TextLimits, optional
        A row whose address is longer than ``limits.address``, or with any
        other cell longer than ``limits.text``, is not geocoded: it comes out
        'failed' with the reason (default :class:`gisgrid.config.TextLimits`).
    malformed : dict of int to str, optional
        Rows of the file that could not be read (the empty rows
        :func:`read_table` puts in their place), by index label: they come out
        'failed' with the reason.

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` (same index, same rows) with :data:`RESULT_COLUMNS`
        added: lon/lat in EPSG:4326 (NaN when failed), quality, confidence
        0..1, matched_name and geocode_note (the reason when failed).  An input
        column with one of these names is kept and the new one is named by
        :func:`added_names` (``lon_geocoded`` …).

    Raises
    ------
    InputError
        When ``column`` is not in the table (the message lists the columns).
    """
    _check_column(frame.columns, column)
    cache = {} if cache is None else cache
    limits = limits or TextLimits()
    refused = RowProblems(len(frame), ("malformed", "bad_text"))
    if malformed:
        unread = frame.index.isin(list(malformed))
        refused.add(unread, "malformed", [malformed[label] for label in frame.index[unread]])
    others = [i for i, c in enumerate(frame.columns) if c != column]
    check_text(frame.iloc[:, others], refused, "bad_text", limit=limits.text)
    text = frame[column].astype(object).where(frame[column].notna() & refused.ok, "").astype(str)
    codes, uniques = pd.factorize(text, sort=False)
    results: list[GeocodeResult] = []
    for value in uniques:
        hit = cache.get(value)
        if hit is None:
            try:
                hit = geocode(value, gazetteer, max_chars=limits.address)
            except Exception as exc:  # noqa: BLE001 - one address must not stop the file; the row says why
                LOGGER.exception("geocoding %r failed", value)
                hit = GeocodeResult(
                    np.nan,
                    np.nan,
                    "failed",
                    0.0,
                    None,
                    f"internal error while geocoding ({type(exc).__name__}: {exc}); please report it",
                )
            cache[value] = hit
        results.append(hit)
    table = np.array(
        [(r.lon, r.lat, r.quality, r.confidence, r.matched_name or "", r.note) for r in results], dtype=object
    ).reshape(len(results), 6)
    picked = table[codes] if len(codes) else np.empty((0, 6), dtype=object)
    if not refused.ok.all():
        bad = ~refused.ok
        picked[bad] = (np.nan, np.nan, "failed", 0.0, "", "")
        picked[bad, 5] = refused.messages()[bad]
    out = frame.copy()
    for i, (name, target) in enumerate(added_names(frame.columns).items()):
        values = picked[:, i]
        out[target] = values.astype(float) if name in NUMBER_COLUMNS else values.astype(str)
    return out


class ColumnNotFound(InputError):
    """A column name the table does not have.

    Attributes
    ----------
    column : str
        The name asked for.
    columns : list of str
        The table's columns: exactly the names that would be accepted.
    sheet : str or None
        The worksheet read (XLSX).
    sheets : list of str
        The workbook's sheets when none was chosen and it has several (the
        column may be on another one); else empty.
    """

    def __init__(self, column: str, columns, *, sheet: str | None = None, sheets=()):
        self.columns, self.sheet, self.sheets = [str(c) for c in columns], sheet, list(sheets)
        where = "" if sheet is None else f" in sheet {sheet!r}"
        reason = f"column {column!r} not found{where}; columns are: {', '.join(self.columns)}"
        if self.sheets:
            reason += f"; the workbook has sheets {', '.join(self.sheets)}: choose one with --sheet"
        super().__init__(reason)  # not column=: the reason names it already
        self.column = column


def _check_column(columns, column: str) -> None:
    if column not in columns:
        raise ColumnNotFound(column, columns)


# --- files ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GeocodeFileResult:
    """What :func:`geocode_file` did: rows in the source, rows already done before, rows done now."""

    dst: Path
    rows_total: int
    rows_skipped: int
    rows_geocoded: int
    complete: bool
    quality_counts: dict


def read_table(src: Path, *, sheet: str | None = None, column: str | None = None) -> pd.DataFrame:
    """Read a CSV or XLSX file as text with the one table reader (:mod:`gisgrid.io.tables`).

    Encoding (UTF-8, GBK/GB18030, Big5 …), delimiter, title rows above the
    header, a two-row header under merged group names and merged cells are
    handled there; blank rows are not data rows.  The header does not depend
    on ``column`` unless the column is found in a lower row, so the columns a
    wrong name lists are exactly the names accepted.

    A row the reader cannot split into the header's columns (too many fields,
    a quote never closed) stays in its place as an empty row, and
    ``frame.attrs["malformed"]`` gives its position → "row N could not be
    read: why", so that it comes out 'failed' with the reason (rows in = rows
    out) while the other rows are geocoded.

    ``frame.attrs["number_columns"]`` lists the XLSX columns whose every filled
    cell is a number in the workbook, so that they are written back as numbers
    (:func:`xlsx_number_columns`); a column with any text cell ('007',
    '13800138000') stays text.  A CSV has none.

    Raises
    ------
    ColumnNotFound
        ``column`` is not in the table (lists the columns, and the sheets of
        a workbook with several when no ``sheet`` was given).
    SheetNotFound
        Unknown sheet (lists the sheets).
    UnreadableTable
        Unreadable or empty file.
    FileFormatError
        Neither CSV nor XLSX.
    """
    src = Path(src)
    suffix = src.suffix.lower()
    if suffix not in {".xlsx", ".xlsm", ".csv", ".txt", ".tsv"}:
        raise FileFormatError(f"{src.name}: unsupported file type {suffix!r}; use CSV or XLSX")
    table = open_table(src, sheet=sheet, column=column)
    chunk = table.read()
    frame = chunk.frame
    if chunk.malformed:  # kept in their place, empty, so that rows in = rows out; the reason goes with them
        unread = pd.DataFrame("", index=pd.Index(sorted(chunk.malformed), name="row"), columns=frame.columns)
        frame = pd.concat([frame, unread.astype(frame.dtypes.to_dict())]).sort_index()
    numbers = frame.index.to_numpy()
    frame = frame.reset_index(drop=True)
    frame.attrs["number_columns"] = chunk.number_columns
    frame.attrs["malformed"] = {
        pos: f"row {n} could not be read: {chunk.malformed[n]}"
        for pos, n in enumerate(numbers.tolist())
        if n in chunk.malformed
    }
    if column is not None and column not in frame.columns:
        sheets = table.sheets if sheet is None and len(table.sheets) > 1 else ()
        raise ColumnNotFound(column, frame.columns, sheet=table.sheet, sheets=sheets)
    return frame


def xlsx_number_columns(input_numbers, names: dict[str, str]) -> list[str]:
    """The columns written to XLSX as numbers: the input's and the added lon, lat and confidence.

    ``input_numbers`` is :func:`read_table`'s ``attrs["number_columns"]``;
    ``names`` are the added columns' names (:func:`added_names`).
    """
    return [*input_numbers, *(names[c] for c in NUMBER_COLUMNS)]


def _signature(src: Path, column: str, sheet: str | None) -> str:
    h = hashlib.sha256()
    with open(src, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    h.update(f"\0{column}\0{sheet}".encode())
    return h.hexdigest()


def _progress_path(dst: Path) -> Path:
    return dst.with_name(dst.name + ".progress.json")


def _part_path(dst: Path) -> Path:
    return dst if dst.suffix.lower() == ".csv" else dst.with_name(dst.name + ".part.csv")


def geocode_file(
    src,
    dst,
    column: str,
    gazetteer: Gazetteer,
    *,
    sheet: str | None = None,
    progress: bool = True,
    resume: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    max_rows: int | None = None,
    limits: TextLimits | None = None,
) -> GeocodeFileResult:
    """Geocode a CSV or XLSX file into ``dst`` (CSV or XLSX, by its suffix), resumably.

    Results are written in chunks of ``chunk_rows``; after each, a small
    progress file ``<dst>.progress.json`` records the rows done and the byte
    length of the output.  Running again after an interruption (a crash,
    Ctrl-C, or ``max_rows``) skips the rows done, as long as the source file,
    column and sheet are unchanged; the progress file is removed when the file
    is complete.  An XLSX ``dst`` is assembled from ``<dst>.part.csv`` at the end.

    Parameters
    ----------
    src, dst : path
    column : str
        Column with the written addresses.
    gazetteer : Gazetteer
    sheet : str, optional
        XLSX worksheet name (first sheet by default).
    progress : bool
        Show a tqdm progress bar.
    resume : bool
        Continue an interrupted run (else start over).
    chunk_rows : int
    max_rows : int, optional
        Stop after about this many rows (rounded up to whole chunks) in this
        call; a later call resumes.
    limits : TextLimits, optional
        The longest address and cell read; a row over them fails with the reason.

    Returns
    -------
    GeocodeFileResult
    """
    src, dst = Path(src), Path(dst)
    check_output(dst, chunk_rows)
    frame = read_table(src, sheet=sheet, column=column)
    names = added_names(frame.columns)
    counts: dict[str, int] = {}
    cache: dict = {}

    def process(chunk: pd.DataFrame) -> pd.DataFrame:
        out = geocode_table(chunk, column, gazetteer, cache=cache, limits=limits, malformed=frame.attrs["malformed"])
        for q, n in out[names["quality"]].value_counts().items():
            counts[q] = counts.get(q, 0) + int(n)
        return out

    skipped, done, complete = write_resumably(
        src,
        dst,
        frame,
        _signature(src, column, sheet),
        process,
        empty_columns=[*frame.columns, *names.values()],
        number_columns=xlsx_number_columns(frame.attrs["number_columns"], names),
        progress=progress,
        resume=resume,
        chunk_rows=chunk_rows,
        max_rows=max_rows,
    )
    return GeocodeFileResult(dst, len(frame), skipped, done - skipped, complete, counts)


def check_output(dst: Path, chunk_rows: int) -> None:
    """Refuse an output name that is neither .csv nor .xlsx, and a chunk size below one."""
    if dst.suffix.lower() not in {".csv", ".xlsx"}:
        raise InputError(f"output {dst.name}: use a .csv or .xlsx file name")
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, not {chunk_rows}")


def write_resumably(
    src: Path,
    dst: Path,
    frame: pd.DataFrame,
    signature: str,
    process: Callable[[pd.DataFrame], pd.DataFrame],
    *,
    empty_columns: list[str],
    number_columns: list[str],
    progress: bool,
    resume: bool,
    chunk_rows: int,
    max_rows: int | None,
) -> tuple[int, int, bool]:
    """Run ``process`` over ``frame`` in chunks, appending each result to ``dst``, resumably.

    After each chunk a progress file ``<dst>.progress.json`` records the rows
    done and the byte length of the output; a later call with the same
    ``signature`` (source, columns, sheet) skips those rows, and one with
    another signature starts over.  Text that a spreadsheet would run as a
    formula is neutralised and values holding CR or LF are quoted
    (:class:`gisgrid.io.TableWriter`'s rules).  An XLSX ``dst`` is assembled from ``<dst>.part.csv``
    when the last chunk is written, with ``number_columns`` as numbers
    (:func:`xlsx_number_columns`).

    Returns
    -------
    (rows skipped, rows done, complete)
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    progress_file, part = _progress_path(dst), _part_path(dst)
    done, size = 0, 0
    if resume and progress_file.exists() and part.exists():
        state = json.loads(progress_file.read_text(encoding="utf-8"))
        if state.get("signature") == signature:
            done, size = int(state["rows_done"]), int(state["bytes"])
            LOGGER.info("%s: resuming after %d of %d rows", src.name, done, len(frame))
        else:
            LOGGER.warning("%s: source, columns or sheet changed since the interrupted run; starting over", src.name)
    if done == 0:
        part.unlink(missing_ok=True)
    else:
        with open(part, "r+b") as fh:  # drop a chunk written after the last recorded state
            fh.truncate(size)
    skipped = done
    budget = len(frame) - done if max_rows is None else max(0, min(max_rows, len(frame) - done))
    bar = tqdm(total=len(frame), initial=done, disable=not progress, unit="row", desc=src.name)
    try:
        processed = 0
        while done < len(frame) and processed < budget:
            chunk = frame.iloc[done : done + chunk_rows]
            out = process(chunk)
            with open(part, "ab") as fh:
                fh.write((codecs.BOM_UTF8 if done == 0 else b"") + csv_bytes(out, header=(done == 0)))
                fh.flush()
                os.fsync(fh.fileno())
            done += len(chunk)
            processed += len(chunk)
            _write_state(progress_file, signature, done, part.stat().st_size)
            bar.update(len(chunk))
    finally:
        bar.close()
    complete = done >= len(frame)
    if complete:
        if len(frame) == 0:
            write_table(pd.DataFrame(columns=empty_columns), part)
        if part != dst:
            result = pd.read_csv(part, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            write_table(result, dst, number_columns=number_columns)
            part.unlink()
        progress_file.unlink(missing_ok=True)
    return skipped, done, complete


def _write_state(path: Path, signature: str, rows_done: int, size: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"signature": signature, "rows_done": rows_done, "bytes": size}), encoding="utf-8")
    os.replace(tmp, path)
