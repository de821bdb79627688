"""XLSX workbooks for the one table reader (:mod:`gisgrid.io.tables`): header, merged cells, chunks."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gisgrid.io.cells import (
    HEADER_SEARCH_ROWS,
    SheetNotFound,
    TableChunk,
    UnreadableTable,
    blank,
    cell_text,
    header_rows,
    text_frame,
    unique_names,
)

if TYPE_CHECKING:
    from gisgrid.io.tables import Table


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


def open_xlsx(table: Table, sheet: str | None, column) -> None:
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
    while top and blank(top[-1]):
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


def xlsx_chunks(table: Table, chunk_rows: int) -> Iterator[TableChunk]:
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
            if len(values) > width and not blank(values[width:]):
                cells = [cell_text(v) for v in values]
                wide = max(i + 1 for i, c in enumerate(cells) if c.strip())
                malformed[offset + 1] = f"has cells up to column {wide} but the header has {width} columns"
                continue
            values = (values + (None,) * width)[:width]
            cells = [cell_text(v) for v in values]
            if merged:  # before judging the row blank: a merged cell may fill it
                _fill_merged([cells], merged, start + offset, seen)
            if blank(cells):
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
    return TableChunk(text_frame(columns, records, rows), malformed, number_columns=number_columns)


# --- vector files ---------------------------------------------------------------------------------
