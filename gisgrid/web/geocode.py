"""The clerks' geocoding page: upload a CSV/XLSX of written addresses, see points and owners, fix rows by hand.

A job is a directory ``<var_dir>/geocode/<job id>/`` holding the uploaded file
(``input.csv`` or ``input.xlsx``), ``job.json`` (original name, address column,
sheet, the category and date columns used for routing, as the CLI's
``--category`` and ``--date``, and the input's number columns, written back
to XLSX as numbers)
and ``result.csv`` (every input row with the geocode and route columns); see
:mod:`gisgrid.geocode.upload`.  Uploads up to ``geocode_inline_max_bytes``
(setting) are geocoded in the request; larger ones become a background job
(:mod:`gisgrid.jobs`) of the same id, and the job's page shows its progress
until ``result.csv`` is there.  Job ids are random hex; anything else in a URL
is a 404, so no path can leave the job folder.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from pathlib import Path

import pandas as pd
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from gisgrid.db import layers
from gisgrid.errors import InputError, NotFound
from gisgrid.geocode.batch import ColumnNotFound, xlsx_number_columns
from gisgrid.geocode.route import input_columns, needs_review, output_names, route_located
from gisgrid.geocode.upload import UPLOAD_TYPES, write_result
from gisgrid.io.points import PointError, check_point
from gisgrid.io.tables import SheetNotFound, UnreadableTable
from gisgrid.maps import map_parts
from gisgrid.maps.geocode import (
    MANUAL_QUALITY,
    QUALITY_COLOURS,
    context_box,
    located_points,
    quality_labels,
    result_bounds,
    result_map,
)
from gisgrid.web.db import get_conn
from gisgrid.web.i18n import map_language, say_geocode_note, say_roles, say_routing_reason

LOGGER = logging.getLogger(__name__)

bp = Blueprint("geocode", __name__, url_prefix="/geocode")

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
#: Largest upload accepted, bytes.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Rows drawn on the map and shown in the table (the download always has all of them).
MAX_SHOWN_ROWS = 2000
#: Streets drawn around the results at most.
MAX_CONTEXT_STREETS = 3000
_LOCK = threading.Lock()  # one writer of result.csv at a time (clerks may place rows quickly)


def _quality_labels() -> dict[str, str]:
    """Quality codes as the page shows them (in zh: 地址点, 失败 …); the files keep the codes."""
    return quality_labels(map_language())


def _jobs_dir() -> Path:
    return Path(current_app.config["GISGRID_SETTINGS"].var_dir) / "geocode"


def _job_dir(job: str) -> Path:
    if not JOB_ID.fullmatch(job or ""):
        raise NotFound(_("No geocoding job %(job)s.", job=job))
    path = _jobs_dir() / job
    if not (path / "result.csv").is_file():
        raise NotFound(_("No geocoding job %(job)s.", job=job))
    owner = _job_meta(path).get("user_id")
    if owner is not None and owner != current_user.id and not current_user.is_admin:
        raise NotFound(_("No geocoding job %(job)s.", job=job))  # another clerk's job: nothing is said
    return path


def _gazetteers():
    """The database gazetteers, rebuilt (by one thread) when streets, address points or jurisdictions change."""
    return current_app.extensions["gisgrid.snapshots"].gazetteers.get(get_conn())


def _job_meta(path: Path) -> dict:
    """The job's ``job.json``: name, column, sheet, category, date (the last two missing in older jobs)."""
    return json.loads((path / "job.json").read_text(encoding="utf-8"))


def _read_result(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The job's result table and the names of the columns the geocoder added to it."""
    frame = pd.read_csv(path / "result.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return frame, output_names(input_columns(frame.columns))


def _write_result(path: Path, frame: pd.DataFrame) -> None:
    write_result(path, frame)


@bp.get("/")
def upload_form():
    return render_template(
        "geocode.html", error=None, column=request.args.get("column", ""), sheet="", category="", date=""
    )


@bp.post("/")
def upload():
    """Save the upload as a new job, geocode and route it, and show it."""
    file = request.files.get("file")
    name = file.filename if file is not None else ""
    form = {key: (request.form.get(key) or "").strip() for key in ("column", "sheet", "category", "date")}
    try:
        job = _new_job(name, _checked_upload(file, form), form)
    except InputError as exc:
        return render_template("geocode.html", error=_upload_error(exc, name), **form), 400
    return redirect(url_for("geocode.show_job", job=job))


def _checked_upload(file, form: dict) -> bytes:
    """The uploaded bytes, once the file and the form are usable (else an InputError in the page's language)."""
    if file is None or not file.filename:
        raise InputError(_("Choose a CSV or XLSX file."))
    suffix = Path(file.filename).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        raise InputError(_("%(name)s: upload a .csv or .xlsx file.", name=file.filename))
    if not form["column"]:
        raise InputError(_("Give the name of the address column."))
    if form["sheet"] and suffix == ".csv":
        raise InputError(_("%(name)s is a CSV file, which has no sheets: leave the sheet empty.", name=file.filename))
    data = file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(_("The file is larger than %(mb)s MB.", mb=MAX_UPLOAD_BYTES // (1024 * 1024)))
    return data


def _new_job(name: str, data: bytes, form: dict) -> str:
    """Save the upload as a new job folder and geocode it, here when small, else in a background job; its id.

    Nothing is kept when geocoding in the request fails.
    """
    from gisgrid import jobs
    from gisgrid.geocode import upload as uploads
    from gisgrid.web.db import get_engine

    gazetteers = _gazetteers()
    if not len(gazetteers):
        raise InputError(_("There are no streets to geocode against: import streets (and address points) first."))
    settings = current_app.config["GISGRID_SETTINGS"]
    job = jobs.new_job_id()
    path = uploads.upload_dir(settings, job)
    uploads.save_upload(path, name, data, form, user_id=current_user.id)  # a job is its clerk's (and admins')
    if len(data) > settings.geocode_inline_max_bytes:
        with get_engine().begin() as conn:
            jobs.enqueue(conn, jobs.GEOCODE_UPLOAD, {"name": name}, job_id=job, user_id=current_user.id)
        return job
    try:
        uploads.geocode_upload(path, gazetteers, _deployment(), limits=settings.text_limits)
    except Exception:
        uploads.discard(path)
        raise
    return job


def _upload_error(exc: InputError, name: str) -> str:
    """Why an upload failed, in the page's language, naming the user's file (not the job folder's copy).

    The fixed words are translated; names of files, sheets and columns stay as they are.
    """
    if isinstance(exc, ColumnNotFound):
        where = {"name": name, "column": exc.column, "columns": ", ".join(exc.columns)}
        text = (
            _("Column “%(column)s” not found in %(name)s; its columns are: %(columns)s.", **where)
            if exc.sheet is None
            else _(
                "Column “%(column)s” not found in sheet “%(sheet)s” of %(name)s; its columns are: %(columns)s.",
                sheet=exc.sheet,
                **where,
            )
        )
        if exc.sheets:
            text += " " + _(
                "The workbook has the sheets %(sheets)s: enter one as the sheet.", sheets=", ".join(exc.sheets)
            )
        return text
    if isinstance(exc, SheetNotFound):
        return _(
            "%(name)s has no sheet “%(sheet)s”; its sheets are: %(sheets)s.",
            name=name,
            sheet=exc.sheet,
            sheets=", ".join(exc.sheets),
        )
    if isinstance(exc, UnreadableTable):
        LOGGER.info("upload %s unreadable: %s", name, exc)
        if exc.problem == "empty" and exc.sheet is not None:
            return _("Sheet “%(sheet)s” of %(name)s is empty.", sheet=exc.sheet, name=name)
        return {
            "workbook": _("%(name)s is not a readable XLSX workbook.", name=name),
            "csv": _("%(name)s is not a readable CSV file.", name=name),
            "encoding": _("Cannot tell the text encoding of %(name)s: save it as UTF-8 CSV.", name=name),
            "empty": _("%(name)s is empty.", name=name),
        }[exc.problem]
    return str(exc)


def _deployment():
    from gisgrid.web.api import current_deployment

    return current_deployment()


def _result_map(frame: pd.DataFrame, names: dict[str, str], address: pd.Series, lang: str):
    points = located_points(frame, names)
    bounds = result_bounds(points, _deployment().extent)
    streets = layers.fetch_layer(get_conn(), "streets", bbox=context_box(bounds), limit=MAX_CONTEXT_STREETS)
    return result_map(
        frame,
        names,
        address,
        points=points,
        bounds=bounds,
        streets=streets,
        max_points=MAX_SHOWN_ROWS,
        attribution=current_app.config["GISGRID_SETTINGS"].attribution,
        lang=lang,
    )


def _added_labels(frame: pd.DataFrame, names: dict[str, str]) -> dict[str, str]:
    """The headers of the columns gisgrid added, in the page's language (the page's table and the XLSX download;
    the CSV keeps the names, for machines).  A header an input column already has keeps the added column's name."""
    words = {
        "lon": _("Longitude"),
        "lat": _("Latitude"),
        "quality": _("Match quality"),
        "confidence": _("Confidence"),
        "matched_name": _("Matched name"),
        "geocode_note": _("Geocoding note"),
        "target_type": _("Unit type"),
        "target_id": _("Unit id"),
        "target": _("Responsible unit"),
        "rule": _("Rule"),
        "owner_name": _("Owner"),
        "chain": _("Chain of owners"),
        "route_note": _("Routing note"),
    }
    taken = {str(c) for c in input_columns(frame.columns)}
    labels = {}
    for key, name in names.items():
        label = str(words.get(key, name))
        if name != key:  # the input had a column of that name: say that this one is gisgrid's
            label = _("%(column)s (geocoded)", column=label)
        if label not in taken:
            labels[name] = label
            taken.add(label)
    return labels


def _shown_columns(frame: pd.DataFrame, names: dict[str, str], address: str) -> list[str]:
    """The table's columns: the address, the added ones, then the rest of the input (an uploaded result's own
    lon, quality … must not be taken for the new ones)."""
    return [address, *names.values(), *(c for c in input_columns(frame.columns) if c != address)]


def _job_progress(job: str):
    """The progress page of an upload geocoded in the background (404 when there is no such job)."""
    from gisgrid.jobs import get_job
    from gisgrid.web.jobs import progress_page

    record = get_job(get_conn(), job)
    if record is None:
        raise NotFound(_("No geocoding job %(job)s.", job=job))
    name = (record.params or {}).get("name") or ""
    error = _upload_error(_stored_error(record), name) if record.status == "failed" else None
    return progress_page(record, error=error, title=f"{_('Geocode')} · {name}", back=url_for("geocode.upload_form"))


def _stored_error(record) -> InputError:
    """The job's failure as the exception it was (so that the page words it as for a form error)."""
    detail, reason = record.error_detail or {}, record.error or ""
    kind = detail.get("type")
    if kind == "ColumnNotFound":
        return ColumnNotFound(
            detail.get("column", ""),
            detail.get("columns", []),
            sheet=detail.get("sheet"),
            sheets=detail.get("sheets", []),
        )
    if kind == "SheetNotFound":
        return SheetNotFound(detail.get("sheet", ""), detail.get("sheets", []), reason)
    if kind == "UnreadableTable" and detail.get("problem") in {"workbook", "csv", "encoding", "empty"}:
        return UnreadableTable(detail["problem"], reason, sheet=detail.get("sheet"))
    return InputError(reason)


def _said(name: str, value, names: dict):
    """A result cell as the page says it: the chain's roles, the geocoder's note and the routing reason in its
    language."""
    if name == names["chain"]:
        return say_roles(value)
    if name == names["geocode_note"]:
        return say_geocode_note(value)
    if name == names["route_note"]:
        return say_routing_reason(value)
    return value


@bp.get("/<job>")
def show_job(job: str):
    if JOB_ID.fullmatch(job or "") and not (_jobs_dir() / job / "result.csv").is_file():
        return _job_progress(job)
    path = _job_dir(job)
    meta = _job_meta(path)
    frame, names = _read_result(path)
    address = frame[meta["column"]]
    review = needs_review(frame, names)
    m = _result_map(frame, names, address, map_language())
    columns = _shown_columns(frame, names, meta["column"])
    shown = frame.head(MAX_SHOWN_ROWS)[columns].copy()
    shown[names["chain"]] = shown[names["chain"]].map(say_roles)  # the roles in the page's language
    for column, say in ((names["geocode_note"], say_geocode_note), (names["route_note"], say_routing_reason)):
        if column in shown:  # the geocoder's notes and the routing reasons in the page's language
            shown[column] = shown[column].map(say)
    for c in (names["lon"], names["lat"]):
        number = pd.to_numeric(shown[c], errors="coerce")
        shown[c] = number.map(lambda v: "" if pd.isna(v) else f"{v:.7f}")
    rows = [{"n": int(i), "cells": shown.loc[i].tolist(), "review": bool(review[i])} for i in shown.index]
    review_rows = [
        {
            "n": int(i),
            "address": address[i],
            "quality": frame.at[i, names["quality"]],
            "confidence": frame.at[i, names["confidence"]],
            "note": say_geocode_note(frame.at[i, names["geocode_note"]]),
            "route_note": say_routing_reason(frame.at[i, names["route_note"]]),
            "lon": _number(frame.at[i, names["lon"]]),
            "lat": _number(frame.at[i, names["lat"]]),
        }
        for i in frame.index[review][:MAX_SHOWN_ROWS]
    ]
    return render_template(
        "geocode_job.html",
        job=job,
        meta=meta,
        columns=columns,
        column_labels=_added_labels(frame, names),
        quality_labels=_quality_labels(),
        quality_colours=QUALITY_COLOURS,
        rows=rows,
        review_rows=review_rows,
        review_total=int(review.sum()),
        truncated=len(frame) > MAX_SHOWN_ROWS,
        **_summary(frame, names),
        **map_parts(m),
    )


def _number(value) -> float | None:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return None if pd.isna(number) else float(number)


def _summary(frame: pd.DataFrame, names: dict[str, str]) -> dict:
    """What the summary line counts: rows, rows per quality code, rows with an owner."""
    return {
        "total": len(frame),
        "counts": frame[names["quality"]].value_counts().to_dict(),
        "with_owner": int(frame[names["owner_name"]].str.strip().ne("").sum()),
    }


@bp.post("/<job>/place")
def place(job: str):
    """Store a clerk's point for one row: JSON ``{job, row, lon, lat}`` (EPSG:4326) → the re-routed row.

    The answer has the row's owner fields, ``cells`` (every added column by its
    name in the result, as stored), whether the row still needs review and the
    job's new review count.
    """
    path = _job_dir(job)
    meta = _job_meta(path)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="bad_request", detail="send a JSON object: {job, row, lon, lat}"), 400
    if body.get("job") not in (None, job):
        return jsonify(error="bad_request", detail="job in the body differs from the URL"), 400
    try:
        row = int(body.get("row"))  # JSON's 1e999 is infinity: OverflowError
    except (TypeError, ValueError, OverflowError):
        return jsonify(error="bad_request", detail="row must be an integer"), 400
    try:  # the one point rule, as for every point entering gisgrid
        lon, lat = check_point(body.get("lon"), body.get("lat"), "EPSG:4326", areas=_deployment().index.areas)
    except PointError as exc:
        return jsonify(error=exc.code, detail=exc.reason), 400
    with _LOCK:
        frame, names = _read_result(path)
        if not 0 <= row < len(frame):
            return jsonify(error="not_found", detail=f"row {row} not in this job ({len(frame)} rows)"), 404
        placed = {
            "lon": f"{lon:.7f}",
            "lat": f"{lat:.7f}",
            "quality": MANUAL_QUALITY,
            "confidence": "1.0",
            "geocode_note": "placed on the map by a clerk",
        }
        frame.loc[row, [names[c] for c in placed]] = list(placed.values())
        rerouted = route_located(
            frame.loc[[row]], _deployment(), names, category=meta.get("category"), date=meta.get("date")
        )
        frame.loc[row] = rerouted.loc[row]
        _write_result(path, frame)
    out = frame.loc[row]
    review = needs_review(frame, names)
    LOGGER.info("job %s row %d placed at %.6f, %.6f: %s", job, row, lon, lat, out[names["owner_name"]])
    return jsonify(
        job=job,
        row=row,
        lon=lon,
        lat=lat,
        note=say_routing_reason(out[names["route_note"]]),
        **{c: out[names[c]] for c in ("quality", "confidence", "owner_name", "chain", "target", "rule")},
        geocode_note=say_geocode_note(out[names["geocode_note"]]),
        chain_text=say_roles(out[names["chain"]]),  # the chain as the page says it (roles in its language)
        cells={name: _said(name, out[name], names) for name in names.values()},
        review=bool(review[row]),
        review_total=int(review.sum()),
        summary=render_template(
            "_geocode_summary.html",
            quality_labels=_quality_labels(),
            quality_colours=QUALITY_COLOURS,
            **_summary(frame, names),
        ),
    )


@bp.get("/<job>.<fmt>")
def download(job: str, fmt: str):
    """The job's result with every row: CSV (UTF-8 with BOM, for Excel) or XLSX."""
    if fmt not in {"csv", "xlsx"}:
        raise NotFound(f"unknown format {fmt!r}; use csv or xlsx")
    path = _job_dir(job)
    meta = _job_meta(path)
    name = f"{Path(meta.get('name') or 'addresses').stem}.geocoded.{fmt}"
    frame, names = _read_result(path)
    from gisgrid.io import write_table

    buffer = io.BytesIO()
    if fmt == "csv":
        write_table(frame, buffer, kind="csv")
        mimetype = "text/csv; charset=utf-8"
    else:
        write_table(
            frame,
            buffer,
            kind="xlsx",
            number_columns=xlsx_number_columns(meta.get("number_columns", []), names),
            labels=_added_labels(frame, names),
        )
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    from urllib.parse import quote

    return Response(
        buffer.getvalue(),
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename=\"geocoded.{fmt}\"; filename*=UTF-8''{quote(name)}"},
    )
