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

from gisgrid.config import TextLimits
from gisgrid.geocode import batch
from gisgrid.geocode.batch import RESULT_COLUMNS, added_names, read_table, xlsx_number_columns
from gisgrid.geocode.store import AreaGazetteers

LOGGER = logging.getLogger(__name__)

#: Columns the routing step adds after the geocoding columns.
ROUTE_COLUMNS = ("target_type", "target_id", "target", "rule", "owner_name", "chain", "route_note")
#: Rows below this confidence, or of these qualities, need a clerk's look.
REVIEW_CONFIDENCE = 0.6
REVIEW_QUALITIES = ("failed", "street", "jurisdiction")
CHUNK_ROWS = 2000
#: Qualities of a point located on the street a written address names (a house number, or the street alone).
ON_STREET_QUALITIES = ("address_point", "interpolated", "street")
#: How :func:`gisgrid.geocode.match.geocode` notes a point placed at a landmark, not on a street.
LANDMARK_NOTE = "landmark"


#: Every column a routed result adds to its input, in order.
ADDED_COLUMNS = (*RESULT_COLUMNS, *ROUTE_COLUMNS)


def output_names(input_columns) -> dict[str, str]:
    """Each of :data:`ADDED_COLUMNS` → its name beside ``input_columns`` (see :func:`batch.added_names`)."""
    return added_names(input_columns, ADDED_COLUMNS)


def input_columns(result_columns) -> list[str]:
    """The input columns of a routed result: all but the :data:`ADDED_COLUMNS`, which come last."""
    return list(result_columns[: len(result_columns) - len(ADDED_COLUMNS)])


def needs_review(result: pd.DataFrame, names: dict[str, str]) -> pd.Series:
    """True for rows a clerk should look at: quality failed/street/jurisdiction, confidence < 0.6 or no owner.

    A located row without an owner (routing failed, e.g. an unreadable date or
    unknown category, or no rule assigns the place) says why in its route note.
    ``names`` are the result's added columns (:func:`output_names`).
    """
    conf = pd.to_numeric(result[names["confidence"]], errors="coerce").fillna(0.0)
    no_owner = result[names["owner_name"]].fillna("").astype(str).str.strip().eq("")
    return result[names["quality"]].isin(REVIEW_QUALITIES) | (conf < REVIEW_CONFIDENCE) | no_owner


def address_streets(geocoded: pd.DataFrame, names: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    """The street each geocoded row's written address names, and the second street of a crossing.

    A row located on a street (:data:`ON_STREET_QUALITIES`) names its matched
    street; a crossing (quality ``intersection``, matched ``"A / B"``) names A
    (written first) and B.  A landmark, a jurisdiction, a point a clerk placed
    by hand and a failed row name none: they are routed by their point.  These
    feed the routing rule ``address_street`` (:mod:`gisgrid.routing.address`).

    Returns
    -------
    street, cross_street : pandas.Series of str
        Same index as ``geocoded``; ``""`` where none.
    """
    quality = geocoded[names["quality"]].astype(object).fillna("").astype(str)
    matched = geocoded[names["matched_name"]].astype(object).fillna("").astype(str).str.strip()
    notes = geocoded[names["geocode_note"]].astype(object).fillna("").astype(str)
    landmark = notes.map(lambda text: LANDMARK_NOTE in text.split("; "))
    on_street = quality.isin(ON_STREET_QUALITIES) & ~landmark
    crossing = quality.eq("intersection")
    parts = matched.str.partition(" / ")  # columns 0 (A), 1 (the separator), 2 (B)
    street = matched.where(on_street, parts[0].where(crossing, ""))
    cross = parts[2].where(crossing, "")
    return street, cross


def route_located(
    geocoded: pd.DataFrame, deployment, names: dict[str, str], *, category: str | None = None, date: str | None = None
) -> pd.DataFrame:
    """Set the route columns of geocoded rows (rows in = rows out; rows without a point get empty owners).

    A row located from a written address goes to a segment of the street it
    names (rule ``address_street``, see :func:`address_streets`); other rows by
    their point.

    Parameters
    ----------
    geocoded : pandas.DataFrame
        The input columns and the geocode columns, lon/lat in EPSG:4326 (NaN
        or empty where not located); route columns already there (a row
        placed by hand) are replaced.  Not modified.
    deployment : gisgrid.routing.store.Deployment
    names : dict of str to str
        The added columns' names (:func:`output_names` of the input columns).
    category, date : str, optional
        Category-code and report-date columns (owners valid on that date).
    """
    for col in (category, date):
        if col is not None:
            batch._check_column(geocoded.columns, col)
    out = geocoded.copy()
    for name in ROUTE_COLUMNS:
        out[names[name]] = ""
    x = pd.to_numeric(geocoded[names["lon"]], errors="coerce")
    y = pd.to_numeric(geocoded[names["lat"]], errors="coerce")
    located = x.notna() & y.notna()
    if not located.any():
        return out
    street, cross = address_streets(geocoded, names)
    pts = pd.DataFrame(
        {"lon": x[located], "lat": y[located], "street": street[located], "cross_street": cross[located]}
    )
    if category is not None:
        pts["category"] = geocoded.loc[located, category].astype(str)
    if date is not None:
        pts["date"] = geocoded.loc[located, date].astype(str)
    routed = deployment.assign_table(
        pts,
        lon="lon",
        lat="lat",
        crs="EPSG:4326",
        category="category" if category is not None else None,
        date="date" if date is not None else None,
        address_street="street",
        cross_street="cross_street",
    )
    targets = [
        deployment.target_name(t, int(i)) if isinstance(t, str) and pd.notna(i) else None
        for t, i in zip(routed["target_type"], routed["target_id"])
    ]
    values = {
        "target_type": routed["target_type"],
        "target_id": routed["target_id"],
        "target": pd.Series(targets, index=routed.index),
        "rule": routed["rule"],
        "owner_name": routed["owner_name"],
        "chain": routed.get("chain"),
        "route_note": _route_notes(routed, targets),
    }
    for name, series in values.items():
        if series is None:
            continue
        text = series.astype(object).where(series.notna(), "")
        if name == "target_id":
            text = series.map(lambda v: "" if pd.isna(v) else str(int(v)))
        out.loc[located, names[name]] = text.astype(str).to_numpy()
    return out


def _route_notes(routed: pd.DataFrame, targets: list) -> pd.Series:
    """The engine's message, else why a located row has no owner (the review list shows it)."""
    notes = routed["error_message"].astype(object).where(routed["error_message"].notna(), "")
    ownerless = (notes == "") & routed["owner_name"].fillna("").astype(str).str.strip().eq("")
    for i, (idx, rule) in enumerate(zip(routed.index, routed["rule"], strict=True)):
        if ownerless[idx]:
            notes[idx] = (
                "outside every street segment and grid cell: unassigned"
                if rule == "unassigned"
                else f"no owner on record for {targets[i] or 'the place'}"
            )
    return notes


def geocode_and_route(
    frame: pd.DataFrame,
    column: str,
    gazetteers: AreaGazetteers,
    deployment,
    *,
    category: str | None = None,
    date: str | None = None,
    caches: dict | None = None,
    limits: TextLimits | None = None,
    malformed: dict[int, str] | None = None,
) -> pd.DataFrame:
    """Geocode ``column`` and route the located rows: the input columns + :data:`ADDED_COLUMNS`.

    The added columns are named by :func:`output_names`; input columns are never changed.

    Raises
    ------
    gisgrid.geocode.batch.ColumnNotFound
        When ``column``, ``category`` or ``date`` is not a column of ``frame``.
    """
    for col in (column, category, date):
        if col is not None:
            batch._check_column(frame.columns, col)
    geocoded = gazetteers.geocode_table(frame, column, caches=caches, limits=limits, malformed=malformed)
    return route_located(geocoded, deployment, output_names(frame.columns), category=category, date=date)


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
    to_review: int
    unreadable: tuple[str, ...] = ()  # "row N could not be read: why", for each row the reader could not split

    def lines(self) -> list[str]:
        from gisgrid.geocode.match import QUALITIES

        out = [
            f"{self.rows_total} rows: {self.rows_skipped} done before, {self.rows_done} geocoded now"
            + ("" if self.complete else " (interrupted: run again to resume)")
        ]
        total = sum(self.quality_counts.values()) or 1
        for q in QUALITIES:
            n = self.quality_counts.get(q, 0)
            out.append(f"  {q:>14}: {n:7d}  {100.0 * n / total:5.1f}%")
        out.append(f"  {'with an owner':>14}: {self.with_owner:7d}")
        out.append(f"  {'needs review':>14}: {self.to_review:7d}")
        out += [f"  {reason}" for reason in self.unreadable]  # kept in the output as failed rows, with the reason
        return out


def geocode_route_file(
    src,
    dst,
    column: str,
    gazetteers: AreaGazetteers,
    deployment,
    *,
    sheet: str | None = None,
    category: str | None = None,
    date: str | None = None,
    progress: bool = True,
    resume: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    max_rows: int | None = None,
    limits: TextLimits | None = None,
) -> RouteFileResult:
    """Geocode and route a CSV or XLSX file into ``dst`` (.csv or .xlsx), resumably; rows in = rows out.

    Parameters
    ----------
    src, dst : path
    column : str
        Column of written addresses (a wrong name lists the columns).
    gazetteers : AreaGazetteers
        From :func:`gisgrid.geocode.store.load_gazetteer`.
    deployment : gisgrid.routing.store.Deployment
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
    limits : TextLimits, optional
        The longest address and cell read; a row over them fails with the reason.

    Returns
    -------
    RouteFileResult
        Counts by quality code cover the rows done in this call.
    """
    src, dst = Path(src), Path(dst)
    batch.check_output(dst, chunk_rows)
    frame = read_table(src, sheet=sheet, column=column)
    for col in (category, date):
        if col is not None:
            batch._check_column(frame.columns, col)
    names = output_names(frame.columns)
    counts: dict[str, int] = {}
    with_owner = to_review = 0
    caches: dict = {}

    def process(chunk: pd.DataFrame) -> pd.DataFrame:
        nonlocal with_owner, to_review
        out = geocode_and_route(
            chunk,
            column,
            gazetteers,
            deployment,
            category=category,
            date=date,
            caches=caches,
            limits=limits,
            malformed=frame.attrs["malformed"],
        )
        for q, n in out[names["quality"]].value_counts().items():
            counts[q] = counts.get(q, 0) + int(n)
        with_owner += int(out[names["owner_name"]].astype(str).str.strip().ne("").sum())
        to_review += int(needs_review(out, names).sum())
        return out

    skipped, done, complete = batch.write_resumably(
        src,
        dst,
        frame,
        batch._signature(src, f"{column}\0{category}\0{date}", sheet),
        process,
        empty_columns=[*frame.columns, *names.values()],
        number_columns=xlsx_number_columns(frame.attrs["number_columns"], names),
        progress=progress,
        resume=resume,
        chunk_rows=chunk_rows,
        max_rows=max_rows,
    )
    unreadable = tuple(frame.attrs["malformed"][pos] for pos in sorted(frame.attrs["malformed"]))
    return RouteFileResult(
        dst, len(frame), skipped, done - skipped, complete, counts, with_owner, to_review, unreadable
    )


__all__ = [
    "ADDED_COLUMNS",
    "REVIEW_CONFIDENCE",
    "REVIEW_QUALITIES",
    "ROUTE_COLUMNS",
    "RouteFileResult",
    "address_streets",
    "geocode_and_route",
    "geocode_route_file",
    "input_columns",
    "needs_review",
    "output_names",
    "route_located",
]
