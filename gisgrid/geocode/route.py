"""Geocode written addresses, then route every located row to its owner (the clerks' batch).

The two steps run per chunk: each chunk of rows is geocoded against the
database gazetteer(s) and routed by the assignment engine before it is
appended to the output, and a progress file records the rows done.  Routing per
chunk (rather than in a second pass over the finished file) keeps one output
file, one progress file and one resume rule: a finished chunk is never
geocoded or routed again.  The resume rules (source signature, byte length of
the partial output, XLSX assembled at the end) are those of
:func:`gisgrid.geocode.geocode_file`, whose helpers are reused here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gisgrid.errors import InputError
from gisgrid.geocode import batch
from gisgrid.geocode.batch import RESULT_COLUMNS, read_table
from gisgrid.geocode.store import AreaGazetteers

LOGGER = logging.getLogger(__name__)

#: Columns the routing step adds after the geocoding columns.
ROUTE_COLUMNS = ("target_type", "target_id", "target", "rule", "owner_name", "chain", "route_note")
#: Rows below this confidence, or of these qualities, need a clerk's look.
REVIEW_CONFIDENCE = 0.6
REVIEW_QUALITIES = ("failed", "street", "jurisdiction")
CHUNK_ROWS = 2000


def needs_review(result: pd.DataFrame) -> pd.Series:
    """True for rows a clerk should place by hand: quality failed/street/jurisdiction or confidence < 0.6."""
    conf = pd.to_numeric(result["confidence"], errors="coerce").fillna(0.0)
    return result["quality"].isin(REVIEW_QUALITIES) | (conf < REVIEW_CONFIDENCE)


def _new_name(frame_columns, name: str) -> str:
    return name if name not in frame_columns else f"{name}_geocoded"


def route_located(geocoded: pd.DataFrame, deployment, *, lon: str = "lon", lat: str = "lat",
                  category: str | None = None, date: str | None = None,
                  keep: pd.Index | None = None) -> pd.DataFrame:
    """Add :data:`ROUTE_COLUMNS` to geocoded rows (rows in = rows out; rows without a point get empty owners).

    Parameters
    ----------
    geocoded : pandas.DataFrame
        Rows with lon/lat in EPSG:4326 (NaN where not located).  Not modified.
    deployment : gisgrid.assign_store.Deployment
    lon, lat : str
        The coordinate columns.
    category, date : str, optional
        Category-code and report-date columns (owners valid on that date).
    keep : pandas.Index, optional
        The columns of the result before the route columns (default: those of ``geocoded``).
    """
    for col in (category, date):
        if col is not None and col not in geocoded.columns:
            raise InputError(f"column {col!r} not found; columns are: {', '.join(map(str, geocoded.columns))}",
                             column=col)
    keep = geocoded.columns if keep is None else keep
    out = geocoded[list(keep)].copy()
    for name in ROUTE_COLUMNS:
        out[_new_name(keep, name)] = ""
    x = pd.to_numeric(geocoded[lon], errors="coerce")
    y = pd.to_numeric(geocoded[lat], errors="coerce")
    located = x.notna() & y.notna()
    if not located.any():
        return out
    pts = pd.DataFrame({"lon": x[located], "lat": y[located]})
    if category is not None:
        pts["category"] = geocoded.loc[located, category].astype(str)
    if date is not None:
        pts["date"] = geocoded.loc[located, date].astype(str)
    routed = deployment.assign_table(pts, lon="lon", lat="lat", crs="EPSG:4326",
                                     category="category" if category is not None else None,
                                     date="date" if date is not None else None)
    names = [deployment.target_name(t, int(i)) if isinstance(t, str) and pd.notna(i) else None
             for t, i in zip(routed["target_type"], routed["target_id"])]
    values = {
        "target_type": routed["target_type"], "target_id": routed["target_id"], "target": pd.Series(names,
                                                                                                    index=routed.index),
        "rule": routed["rule"], "owner_name": routed["owner_name"], "chain": routed.get("chain"),
        "route_note": routed["error_message"],
    }
    for name, series in values.items():
        if series is None:
            continue
        text = series.astype(object).where(series.notna(), "")
        if name == "target_id":
            text = series.map(lambda v: "" if pd.isna(v) else str(int(v)))
        out.loc[located, _new_name(keep, name)] = text.astype(str).to_numpy()
    return out


def geocode_and_route(frame: pd.DataFrame, column: str, gazetteers: AreaGazetteers, deployment, *,
                      category: str | None = None, date: str | None = None, caches: dict | None = None) -> pd.DataFrame:
    """Geocode ``column`` and route the located rows: the input columns + geocode columns + route columns."""
    batch._check_column(frame.columns, column)
    geocoded = gazetteers.geocode_table(frame, column, caches=caches)
    return route_located(geocoded, deployment, lon=_new_name(frame.columns, "lon"),
                         lat=_new_name(frame.columns, "lat"), category=category, date=date)


@dataclass(frozen=True)
class RouteFileResult:
    """What :func:`geocode_route_file` did."""

    dst: Path
    rows_total: int
    rows_skipped: int
    rows_done: int
    complete: bool
    quality_counts: dict
    with_owner: int

    def lines(self) -> list[str]:
        from gisgrid.geocode.match import QUALITIES

        out = [f"{self.rows_total} rows: {self.rows_skipped} done before, {self.rows_done} geocoded now"
               + ("" if self.complete else " (interrupted: run again to resume)")]
        total = sum(self.quality_counts.values()) or 1
        for q in QUALITIES:
            n = self.quality_counts.get(q, 0)
            out.append(f"  {q:>14}: {n:7d}  {100.0 * n / total:5.1f}%")
        out.append(f"  {'with an owner':>14}: {self.with_owner:7d}")
        return out


def geocode_route_file(src, dst, column: str, gazetteers: AreaGazetteers, deployment, *, sheet: str | None = None,
                       category: str | None = None, date: str | None = None, progress: bool = True,
                       resume: bool = True, chunk_rows: int = CHUNK_ROWS,
                       max_rows: int | None = None) -> RouteFileResult:
    """Geocode and route a CSV or XLSX file into ``dst`` (.csv or .xlsx), resumably; rows in = rows out.

    Parameters
    ----------
    src, dst : path
    column : str
        Column of written addresses (a wrong name lists the columns).
    gazetteers : AreaGazetteers
        From :func:`gisgrid.geocode.store.load_gazetteer`.
    deployment : gisgrid.assign_store.Deployment
    sheet : str, optional
        XLSX worksheet by name.
    category, date : str, optional
        Category-code and report-date columns for routing.
    progress : bool
        Show a tqdm progress bar.
    resume : bool
        Continue an interrupted run of the same source, column and sheet.
    chunk_rows : int
    max_rows : int, optional
        Stop after about this many rows in this call (a later call resumes).

    Returns
    -------
    RouteFileResult
        Counts by quality code cover the rows done in this call.
    """
    src, dst = Path(src), Path(dst)
    batch.check_output(dst, chunk_rows)
    frame = read_table(src, sheet=sheet, column=column)
    for col in (category, date):
        if col is not None and col not in frame.columns:
            raise InputError(f"column {col!r} not found; columns are: {', '.join(map(str, frame.columns))}",
                             column=col)
    counts: dict[str, int] = {}
    with_owner = 0
    caches: dict = {}

    def process(chunk: pd.DataFrame) -> pd.DataFrame:
        nonlocal with_owner
        out = geocode_and_route(chunk, column, gazetteers, deployment, category=category, date=date, caches=caches)
        for q, n in out[_new_name(frame.columns, "quality")].value_counts().items():
            counts[q] = counts.get(q, 0) + int(n)
        with_owner += int(out[_new_name(frame.columns, "owner_name")].astype(str).str.strip().ne("").sum())
        return out

    skipped, done, complete = batch.write_resumably(
        src, dst, frame, batch._signature(src, f"{column}\0{category}\0{date}", sheet), process,
        empty_columns=[*frame.columns, *RESULT_COLUMNS, *ROUTE_COLUMNS], progress=progress, resume=resume,
        chunk_rows=chunk_rows, max_rows=max_rows)
    return RouteFileResult(dst, len(frame), skipped, done - skipped, complete, counts, with_owner)


__all__ = ["REVIEW_CONFIDENCE", "REVIEW_QUALITIES", "ROUTE_COLUMNS", "RouteFileResult", "geocode_and_route",
           "geocode_route_file", "needs_review", "route_located"]
