"""What every table reader shares: the chunk of rows, the reader's errors, header and cell rules.

The readers themselves are :mod:`gisgrid.io.tables` (CSV and the entry point),
:mod:`gisgrid.io.sheets` (XLSX) and :mod:`gisgrid.io.vectors` (GeoJSON, GeoPackage, Shapefile).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gisgrid.errors import FileFormatError, InputError

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
#: Rows searched for the header (title rows above it are skipped).
HEADER_SEARCH_ROWS = 10
#: Rows per chunk unless the caller says otherwise.
CHUNK_ROWS = 200_000


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


def blank(record) -> bool:
    return not any(c is not None and str(c).strip() for c in record)


def row_index(numbers) -> pd.Index:
    return pd.Index(np.asarray(numbers, dtype=np.int64), name="row")


def text_frame(columns: list[str], records, rows) -> pd.DataFrame:
    return pd.DataFrame(records, columns=columns, dtype="str").set_axis(row_index(rows), axis=0)
