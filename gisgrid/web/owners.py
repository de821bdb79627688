"""Owners in the browser: a unit's page with its ownership timeline; managers search people, appoint and end.

``GET  /units/<type>/<id>``                 a segment, street, cell or jurisdiction: its owners over time
``POST /units/<type>/<id>/appoint``         appoint a person or department in a role from a date (managers)
``POST /owners/appointments/<id>/end``      end an appointment on a date (managers)
``GET  /owners/``                           search people (by name, phone, title or id; each with its id)
``GET  /owners/people.json?q=``             the same as JSON, for the pages' owner search as you type
``GET  /owners/bulk``                       appoint many from a sheet: upload (managers)
``POST /owners/bulk``                       check every row of the sheet, nothing written: the preview
``POST /owners/bulk/<token>``               confirm: appoint the good rows, report the others
``GET  /audit-log/``                        search the audit log (admins)

A unit the user does not see answers 404, whether it exists or not.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import shutil
import time
from pathlib import Path

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from gisgrid.accounts.roles import Permission
from gisgrid.accounts.store import is_visible, search_audit_log
from gisgrid.errors import InputError, NotFound
from gisgrid.io.records import records
from gisgrid.io.tables import read_table
from gisgrid.ownership.store import (
    APPOINTABLE_ROLES,
    appoint_owner,
    appointment_unit,
    assignment_history,
    bulk_appoint,
    end_appointment,
    search_people,
    unit_label,
)
from gisgrid.web.access import current_scope
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine
from gisgrid.web.i18n import reason

LOGGER = logging.getLogger(__name__)

bp = Blueprint("owners", __name__)

#: Sheets a manager may upload for many appointments at once.
SHEET_SUFFIXES = (".xlsx", ".csv")
#: A checked sheet's folder name.
TOKEN = re.compile(r"^[0-9a-f]{32}$")

UNIT_TYPES = ("segment", "street", "cell", "jurisdiction")


def _unit(unit_type: str, unit_id: int) -> str:
    """The unit's label, if the user sees it on the day; 404 otherwise."""
    if unit_type not in UNIT_TYPES or not is_visible(get_conn(), current_scope(), unit_type, unit_id):
        raise NotFound(_("No such unit."))
    return unit_label(get_conn(), unit_type, unit_id)


def _date(value: str | None, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        raise InputError(_("%(what)s must be a date YYYY-MM-DD.", what=what)) from None


@bp.get("/units/<unit_type>/<int:unit_id>")
def unit(unit_type: str, unit_id: int):
    label = _unit(unit_type, unit_id)
    history = assignment_history(get_conn(), unit_type, unit_id)
    today = dt.date.today()
    rows = []
    for r in history.itertuples():
        current = r.valid_from <= today and (r.valid_to is None or today < r.valid_to)
        rows.append({**r._asdict(), "current": current, "valid_to": r.valid_to or None})
    return render_template(
        "unit.html",
        unit_type=unit_type,
        unit_id=unit_id,
        label=label,
        rows=rows,
        roles=APPOINTABLE_ROLES[unit_type],
        may_manage=current_user.may(Permission.manage_owners),
        today=today,
    )


@bp.post("/units/<unit_type>/<int:unit_id>/appoint")
def appoint(unit_type: str, unit_id: int):
    _unit(unit_type, unit_id)
    form = request.form
    owner = (form.get("owner") or "").strip()  # "person:12" or "department:3", as the search offers
    kind, _sep, raw_id = owner.partition(":")
    if kind not in ("person", "department") or not raw_id.isdigit():
        raise InputError(_("Choose the person or department from the search list."))
    with get_engine().begin() as conn:
        appoint_owner(
            conn,
            current_actor(),
            unit_type=unit_type,
            unit_id=unit_id,
            role=form.get("role", ""),
            valid_from=_date(form.get("valid_from"), _("Start date")),
            person_id=int(raw_id) if kind == "person" else None,
            department_id=int(raw_id) if kind == "department" else None,
        )
    flash(_("Appointed."))
    return redirect(url_for("owners.unit", unit_type=unit_type, unit_id=unit_id))


@bp.post("/owners/appointments/<int:assignment_id>/end")
def end(assignment_id: int):
    unit_type, unit_id = appointment_unit(get_conn(), assignment_id)
    _unit(unit_type, unit_id)
    day = _date(request.form.get("valid_to"), _("End date"))
    with get_engine().begin() as conn:
        end_appointment(conn, current_actor(), assignment_id, day)
    flash(_("Appointment ended."))
    return redirect(url_for("owners.unit", unit_type=unit_type, unit_id=unit_id))


@bp.get("/owners/")
def search():
    q = request.args.get("q", "")
    people = search_people(get_conn(), q, limit=100).to_dict("records") if q.strip() else []
    return render_template("owners.html", q=q, people=people)


@bp.get("/owners/people.json")
def people_json():
    q = request.args.get("q", "")
    if len(q.strip()) < 1:
        return jsonify(people=[])
    frame = search_people(get_conn(), q, limit=20)
    return jsonify(
        people=[
            {
                "key": f"{r.kind}:{r.id}",
                "label": f"{r.name} · {r.kind} {r.id}"
                + (f" · {r.title}" if r.title else "")
                + (f" · {r.phone}" if r.phone else ""),
                "units": int(r.units),
            }
            for r in frame.itertuples()
        ]
    )


# --- many appointments from a sheet -------------------------------------------------------------
#: Largest sheet accepted (bytes).
MAX_SHEET_BYTES = 5 * 1024 * 1024
#: A checked sheet waits this long for its confirmation (older ones are removed at the next upload).
SHEET_KEPT_S = 24 * 3600


def _sheets_dir() -> Path:
    return Path(current_app.config["GISGRID_SETTINGS"].var_dir) / "bulk-appointments"


def _sheet_dir(token: str) -> Path:
    """The folder of a checked sheet, if it exists and is this user's (another's: 404, as a missing one)."""
    path = _sheets_dir() / token
    if not TOKEN.fullmatch(token or "") or not (path / "meta.json").is_file():
        raise NotFound(_("No such sheet: upload it again."))
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    if meta.get("user_id") != current_user.id:
        raise NotFound(_("No such sheet: upload it again."))
    return path


def _sheet_rows(path: Path):
    """(the sheet's rows as the one table reader reads them, the file's name as uploaded)."""
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    _table, rows = read_table(path / meta["file"], sheet=meta.get("sheet") or None)
    return rows, meta["name"]


def _clean_old_sheets() -> None:
    root = _sheets_dir()
    if not root.is_dir():
        return
    cutoff = time.time() - SHEET_KEPT_S
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def _bulk_page(status: int = 200, **context):
    context = {"preview": False, "done": False, "error": None, "appointable": APPOINTABLE_ROLES, **context}
    return render_template("owners_bulk.html", **context), status


@bp.get("/owners/bulk")
def bulk_form():
    return _bulk_page()


@bp.post("/owners/bulk")
def bulk_upload():
    """Save the sheet, check every row (nothing is written) and show the preview."""
    file = request.files.get("file")
    name = Path(file.filename).name if file is not None and file.filename else ""
    suffix = Path(name).suffix.lower()
    if not name or suffix not in SHEET_SUFFIXES:
        return _bulk_page(400, error=_("Choose an .xlsx or .csv file."))
    data = file.read(MAX_SHEET_BYTES + 1)
    if len(data) > MAX_SHEET_BYTES:
        return _bulk_page(400, error=_("The file is larger than %(mb)s MB.", mb=MAX_SHEET_BYTES // (1024 * 1024)))
    _clean_old_sheets()
    token = secrets.token_hex(16)
    path = _sheets_dir() / token
    path.mkdir(parents=True)
    (path / f"sheet{suffix}").write_bytes(data)
    meta = {"user_id": current_user.id, "name": name, "file": f"sheet{suffix}", "sheet": request.form.get("sheet", "")}
    (path / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    try:
        rows, source = _sheet_rows(path)
        result = bulk_appoint(get_conn(), current_actor(), rows, source=source, scope=current_scope())
    except InputError as exc:  # unreadable file, no such worksheet, a column missing
        shutil.rmtree(path, ignore_errors=True)
        return _bulk_page(400, error=_("%(name)s cannot be used: %(why)s", name=name, why=reason(exc)))
    return _bulk_page(preview=True, result=result, token=token)


@bp.post("/owners/bulk/<token>")
def bulk_confirm(token: str):
    """Appoint the good rows of a checked sheet (checked again: the map may have changed since)."""
    path = _sheet_dir(token)
    rows, source = _sheet_rows(path)
    with get_engine().begin() as conn:
        result = bulk_appoint(conn, current_actor(), rows, source=source, scope=current_scope(), apply=True)
    shutil.rmtree(path, ignore_errors=True)
    return _bulk_page(done=True, result=result)


@bp.get("/audit-log/")
def audit_log():
    args = request.args
    since = _date(args["from"], _("From")) if args.get("from") else None
    until = _date(args["to"], _("To")) if args.get("to") else None
    rows = search_audit_log(
        get_conn(),
        actor=args.get("actor") or None,
        action=args.get("action") or None,
        target_type=args.get("target_type") or None,
        target_id=args.get("target_id") or None,
        since=since,
        until=until,
        limit=500,
    )
    return render_template("audit_log.html", rows=records(rows), args=args)
