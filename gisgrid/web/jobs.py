"""Background jobs seen from the web: a progress page, its JSON for polling, and the result file.

Views only enqueue and render; the queue and the work are :mod:`gisgrid.jobs`.
A job that waits shows its place in the queue; a failed one shows its reason
(never a traceback); a finished one links to its result.  A job is its
user's: anybody else (admins excepted) gets 404, as for one that does not
exist (:meth:`gisgrid.jobs.JobRecord.seen_by`).
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, jsonify, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from gisgrid import jobs
from gisgrid.errors import NotFound
from gisgrid.web.db import get_conn, get_engine

LOGGER = logging.getLogger(__name__)

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def visible_job(job: str) -> jobs.JobRecord | None:
    """The job if it exists and is the signed-in user's (or the user is an admin); else None."""
    record = jobs.get_job(get_conn(), job)
    if record is None or not record.seen_by(current_user.id, admin=current_user.is_admin):
        return None
    return record


def _job(job: str) -> jobs.JobRecord:
    record = visible_job(job)
    if record is None:
        raise NotFound(_("No job %(job)s.", job=job))
    return record


def start_map_png(html: str) -> str:
    """Queue the PNG rendering of a standalone map page; the job id."""
    job = jobs.new_job_id()
    folder = jobs.job_dir(_settings(), job)
    folder.mkdir(parents=True)
    (folder / "map.html").write_text(html, encoding="utf-8")
    with get_engine().begin() as conn:
        jobs.enqueue(conn, jobs.MAP_PNG, {"html": "map.html"}, job_id=job, user_id=current_user.id)
    return job


def _titles() -> dict[str, str]:
    return {jobs.MAP_PNG: _("Manager map as PNG"), jobs.GEOCODE_UPLOAD: _("Geocoding upload")}


def message(record: jobs.JobRecord) -> str:
    """What the job does now, in the page's language (the job stores English and the fields apart)."""
    if not record.message:
        return ""
    return jobs.fill(_(record.message), record.message_args)


def _status_labels() -> dict[str, str]:
    return {"queued": _("waiting"), "running": _("running"), "done": _("done"), "failed": _("failed")}


def result_url(record: jobs.JobRecord) -> str | None:
    """Where a finished job's result is shown or downloaded."""
    if record.status != "done":
        return None
    if record.kind == jobs.GEOCODE_UPLOAD:
        return url_for("geocode.show_job", job=record.id)
    name = (record.result or {}).get("file")
    return url_for("jobs.job_file", job=record.id, name=name) if name else None


def progress_page(
    record: jobs.JobRecord, *, error: str | None = None, title: str | None = None, back: str | None = None
):
    """The progress page of ``record`` (also used by other blueprints for their own jobs).

    Parameters
    ----------
    error : str, optional
        The failure worded for the page (default: the job's stored reason).
    title : str, optional
        Default: the kind's name.
    back : str, optional
        A link offered when the job failed (e.g. the upload form).
    """
    return render_template(
        "job.html",
        job=record,
        title=title or _titles().get(record.kind, record.kind),
        status_labels=_status_labels(),
        ahead=jobs.queued_ahead(get_conn(), record.id) if record.status == "queued" else 0,
        error=error if error is not None else record.error,
        message=message(record),
        result_url=result_url(record),
        back=back,
        is_image=record.kind == jobs.MAP_PNG,
    )


@bp.get("/<job>")
def show(job: str):
    return progress_page(_job(job))


@bp.get("/<job>.json")
def status(job: str):
    """``{id, kind, status, progress, message, result, error, attempts, ahead, result_url}`` for polling."""
    record = visible_job(job)
    if record is None:
        return jsonify(error="not_found", detail=f"no job {job}"), 404
    ahead = jobs.queued_ahead(get_conn(), record.id) if record.status == "queued" else 0
    return jsonify(**{**record.as_dict(), "message": message(record)}, ahead=ahead, result_url=result_url(record))


@bp.get("/<job>/<name>")
def job_file(job: str, name: str):
    """The result file of a finished job (only the one its result names)."""
    record = _job(job)
    if record.status != "done" or name != (record.result or {}).get("file"):
        abort(404)
    path = jobs.job_dir(_settings(), job) / name
    if not path.is_file():
        abort(404)
    return send_file(path, as_attachment=True, download_name=name, max_age=0)
