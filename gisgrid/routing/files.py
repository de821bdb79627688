"""Routing whole files: :func:`assign_file` streams a file of reports to another file.

Files are read in chunks by the one table reader (:mod:`gisgrid.io.tables`),
reading ahead in a thread, routed by :mod:`gisgrid.routing.index`, and written
behind in a thread by the one writer (:class:`gisgrid.io.TableWriter`: formula
text neutralised) or, for GeoJSON/GeoPackage output, by GDAL.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisgrid.config import MAX_TEXT_CHARS
from gisgrid.crs import STORAGE_SRID, InputCRS
from gisgrid.errors import FileFormatError, InputError
from gisgrid.io._tabular import X_NAMES, Y_NAMES
from gisgrid.io.points import (
    check_areas,
    parse_coordinates,
    point_coordinates,
)
from gisgrid.io.rows import check_text
from gisgrid.io.tables import TableChunk, open_table
from gisgrid.io.write import TableWriter
from gisgrid.ownership.history import OwnerHistory
from gisgrid.routing.frames import (
    assign_prepared,
    attach,
    find_column,
    optional_column,
    street_columns,
)
from gisgrid.routing.index import AssignmentIndex
from gisgrid.routing.rules import (
    CATEGORY_NAMES,
    DATE_NAMES,
    RULES,
    _RowErrors,
)

LOGGER = logging.getLogger(__name__)


# --- files ----------------------------------------------------------------------------------
#: Output formats by extension; any table :func:`gisgrid.io.tables.open_table` reads is an input.
TABULAR_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx"}
VECTOR_FORMATS = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}
_DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG"}


@dataclass(frozen=True)
class AssignSummary:
    """What :func:`assign_file` did: rows, counts by rule and by error code, time taken."""

    source: Path
    output: Path
    rows: int
    by_rule: dict[str, int]
    by_error: dict[str, int]
    seconds: float
    ruleset_version: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf

    def __str__(self) -> str:
        lines = [
            f"{self.rows} rows: {self.source} → {self.output} in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s), rules {self.ruleset_version}"
        ]
        lines += [f"  {rule:<22}{self.by_rule.get(rule, 0):>10}" for rule in RULES]
        lines += [f"  error {code:<16}{count:>10}" for code, count in sorted(self.by_error.items())]
        return "\n".join(lines)


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    fmt = TABULAR_FORMATS.get(suffix) or VECTOR_FORMATS.get(suffix)
    if fmt is None:
        raise FileFormatError(
            f"{path.name}: unsupported file type {suffix!r}; use "
            f"{', '.join(sorted({*TABULAR_FORMATS, *VECTOR_FORMATS}))}"
        )
    return fmt


class _VectorWriter:
    def __init__(self, path: Path, fmt: str, crs: str | None, layer: str):
        self._path, self._driver, self._crs, self._layer = path, _DRIVERS[fmt], crs, layer
        self._first = True
        if path.exists():
            path.unlink()

    def write(self, frame: pd.DataFrame, geoms: np.ndarray) -> None:
        import pyogrio  # noqa: PLC0415

        plain = frame.copy()
        for name in plain.columns:
            if isinstance(plain[name].dtype, pd.CategoricalDtype):
                plain[name] = plain[name].astype(object)
        gdf = gpd.GeoDataFrame(plain, geometry=gpd.GeoSeries(geoms, index=plain.index), crs=self._crs)
        pyogrio.write_dataframe(gdf, self._path, layer=self._layer, driver=self._driver, append=not self._first)
        self._first = False

    def close(self) -> None:
        pass


def _prefetch(chunks: Iterator[TableChunk], depth: int = 2) -> Iterator[TableChunk]:
    """Read ahead in a thread so that file decoding overlaps the assignment (pyarrow releases the GIL)."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    thread = threading.Thread(target=run, name="gisgrid-assign-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def assign_file(
    index: AssignmentIndex,
    src: str | Path,
    dst: str | Path,
    *,
    crs: str | int | InputCRS | None = None,
    lon: str | None = None,
    lat: str | None = None,
    category: str | None = None,
    date: str | None = None,
    extent: Sequence[float] | None = None,
    sheet: str | None = None,
    layer: str | None = None,
    owners: OwnerHistory | None = None,
    role: str = "段长",
    chunk_rows: int = 200_000,
    progress: bool = True,
    address_street: str | None = None,
    cross_street: str | None = None,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> AssignSummary:
    """Route every row of a file of reports and write them, with the result columns, to another file.

    The source is read by the one table reader (:mod:`gisgrid.io.tables`),
    in chunks of about ``chunk_rows`` rows: CSV/TXT (encoding and delimiter
    detected, a title row above the header skipped), XLSX (first sheet or
    ``sheet``), GeoJSON, GeoPackage or Shapefile (points).  The output has
    every input row and column, in order, followed by :data:`RESULT_COLUMNS`
    (and :data:`OWNER_COLUMNS` with ``owners``), written by the one writer
    (:class:`gisgrid.io.TableWriter`: formula text neutralised).  A row that
    cannot be split into the header's columns keeps its place with empty
    cells, error ``malformed_row`` and its number, reason and text in
    ``error_message``.  Blank rows are not data rows and are skipped.

    Parameters
    ----------
    index : AssignmentIndex
    src, dst : str or Path
        Input and output files; the output format follows ``dst``'s suffix:
        the input's format, or CSV/XLSX for any input (a vector source's
        geometry then goes into a ``wkt`` column).
    crs : str, int or InputCRS
        CRS of the coordinates; required for CSV/XLSX.  For a vector file the
        one rule of :func:`gisgrid.crs.reconcile_crs`: the file's CRS (a
        GeoJSON without a ``crs`` member is WGS84) unless declared; a
        declaration must agree with what the file states (EPSG:4326 and
        EPSG:4490 agree; GCJ-02/BD-09 may be declared for a lon/lat file).
    lon, lat : str, optional
        Coordinate columns of a CSV/XLSX source; found by name when omitted.
    category, date, extent, owners, role
        As in :func:`assign_frame`.
    sheet, layer : str, optional
        Worksheet of an XLSX source; layer of a GeoPackage source.
    chunk_rows : int, default 200000
    progress : bool, default True
        Show a tqdm progress bar on stderr.
    address_street, cross_street : str, optional
        Columns naming the street of each row's written address (and the
        second street of a crossing): as in :func:`assign_frame`, rule (a′).
    max_text_chars : int
        A row with a text cell longer than this (or holding a NUL) is an error row ``bad_text``
        (as import and geocode refuse it: :attr:`gisgrid.config.Settings.max_text_chars`).

    Returns
    -------
    AssignSummary

    Raises
    ------
    InputError, FileFormatError, CRSError
        For whole-file problems; per-row problems are in the output.
    """
    from tqdm import tqdm  # noqa: PLC0415

    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"file not found: {src}")
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, not {chunk_rows}")
    fmt_out = _format_of(dst)
    if src.resolve() == dst.resolve():
        raise InputError("the output file must differ from the input file")
    table = open_table(src, sheet=sheet, layer=layer)
    vector_in = table.is_vector
    if fmt_out in VECTOR_FORMATS.values() and not vector_in:
        raise InputError(f"a {table.kind.upper()} source is written as CSV or XLSX, not {fmt_out}")
    in_crs = table.crs(crs)
    box = check_areas(extent) if extent is not None else index.areas
    total = table.size_hint()
    if fmt_out in {"csv", "xlsx"}:
        writer: Any = TableWriter(dst, sheet="assigned")
    else:
        stated = table.stated_crs or f"EPSG:{in_crs.epsg or STORAGE_SRID}"
        writer = _VectorWriter(dst, fmt_out, stated, layer=dst.stem)

    rows = 0
    by_rule: Counter = Counter()
    by_error: Counter = Counter()
    columns: tuple[str | None, str | None, str | None, str | None] | None = None
    bar = tqdm(
        total=total if total and total > 0 else None, unit="row", unit_scale=True, disable=not progress, desc=src.name
    )
    # the writer works one chunk behind in its own thread (pyarrow and GDAL release the GIL while writing)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gisgrid-assign-writer")
    pending: Future | None = None
    try:
        for chunk in _prefetch(table.chunks(chunk_rows)):
            frame = _with_malformed_rows(chunk)
            n = len(frame)
            if columns is None:
                columns = _file_columns(frame, vector_in, lon, lat, category, date)
            x_col, y_col, cat_col, date_col = columns
            errors = _RowErrors(n)
            if chunk.malformed:  # rows that could not be read keep their place, with their reason
                at = frame.index.get_indexer(list(chunk.malformed))
                errors.add(at, "malformed_row", [f"row {r} {why}" for r, why in chunk.malformed.items()])
            check_text(frame, errors, "bad_text", limit=max_text_chars)  # as import and geocode do
            if chunk.rejected:  # a geometry that could not be read
                at = frame.index.get_indexer(list(chunk.rejected))
                errors.add(at, "missing_coordinates", ["; ".join(why) for why in chunk.rejected.values()])
            if vector_in:
                x, y = point_coordinates(chunk.geoms, errors)
            else:
                x = parse_coordinates(frame[x_col], x_col, errors)
                y = parse_coordinates(frame[y_col], y_col, errors)
            result = assign_prepared(
                index,
                n,
                x,
                y,
                in_crs,
                categories=frame[cat_col] if cat_col in frame.columns else None,
                dates=frame[date_col] if date_col in frame.columns else None,
                extent=box,
                errors=errors,
                owners=owners,
                role=role,
                row_index=frame.index,
                streets=street_columns(frame, address_street, cross_street),
            )
            out = attach(frame, result)
            if vector_in and fmt_out not in VECTOR_FORMATS.values():
                wkt_name = "wkt" if "wkt" not in out.columns else "wkt_geometry"
                out.insert(len(frame.columns), wkt_name, shapely.to_wkt(chunk.geoms))
            if pending is not None:
                pending.result()
            pending = pool.submit(writer.write, out, *((chunk.geoms,) if isinstance(writer, _VectorWriter) else ()))
            rows += n
            by_rule.update(_counts(result["rule"]))
            by_error.update(_counts(result["error_code"]))
            bar.update(n)
        if pending is not None:
            pending.result()
        if rows == 0:
            where = ""
            if table.sheet is not None and len(table.sheets) > 1:
                where = f" in sheet {table.sheet!r}; its sheets are {', '.join(table.sheets)}: choose one with --sheet"
            raise FileFormatError(f"file is empty: {src.name} has no data rows{where}")
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        writer.close()
        dst.unlink(missing_ok=True)  # no half-written output
        raise
    pool.shutdown(wait=True)
    bar.close()
    writer.close()
    summary = AssignSummary(
        source=src,
        output=dst,
        rows=rows,
        by_rule=dict(by_rule),
        by_error=dict(by_error),
        seconds=time.perf_counter() - started,
        ruleset_version=index.ruleset.version,
    )
    LOGGER.info("%s", summary)
    return summary


def _with_malformed_rows(chunk: TableChunk) -> pd.DataFrame:
    """The chunk's rows with an empty row in the place of each row that could not be read."""
    if not chunk.malformed:
        return chunk.frame
    filler = pd.DataFrame(
        {c: pd.Series([""] * len(chunk.malformed), dtype="str") for c in chunk.frame.columns},
        index=pd.Index(list(chunk.malformed), dtype="int64", name="row"),
    )
    return pd.concat([chunk.frame, filler]).sort_index()


def _file_columns(
    frame: pd.DataFrame, vector: bool, lon: str | None, lat: str | None, category: str | None, date: str | None
) -> tuple[str | None, str | None, str | None, str | None]:
    listing = ", ".join(map(str, frame.columns))
    if vector:
        x_col = y_col = None
    else:
        x_col = lon if lon is not None else find_column(frame.columns, X_NAMES)
        y_col = lat if lat is not None else find_column(frame.columns, Y_NAMES)
        if x_col is None or y_col is None or x_col not in frame.columns or y_col not in frame.columns:
            raise InputError(f"no coordinate columns found (give lon= and lat=); columns are: {listing}")
    return (
        x_col,
        y_col,
        optional_column(frame, category, CATEGORY_NAMES, "category"),
        optional_column(frame, date, DATE_NAMES, "date"),
    )


def _counts(values: pd.Series) -> dict[str, int]:
    codes = values.cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories))
    return {str(label): int(c) for label, c in zip(values.cat.categories, counts) if c}
