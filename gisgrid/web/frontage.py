"""Frontage units (门前三包) in the browser: a segment's units on a map, a unit's page, agreements, imports,
the red and black list, and the /plan layer of frontages.

``GET  /frontage/segment/<id>``          the segment's units and their frontages (within sight: 404 otherwise)
``GET  /frontage/unit/<id>``             a unit: its frontage drawn, agreements, cases, inspection findings
``POST /frontage/unit/<id>/agreement``   record a signed agreement with its scanned document (managers)
``GET  /frontage/agreement/<id>/document``  the scanned document
``GET|POST /frontage/import``            import a registry export (XLSX/CSV); bad rows listed, good rows in
``GET  /frontage/redblack?month=YYYY-MM``  the monthly red and black list (红黑榜); ``&format=xlsx``
``GET  /api/plan/frontages?town=CODE``   the /plan layer; ``POST /api/plan/frontage`` saves one unit's frontage

Thin: every rule is in :mod:`gisgrid.frontage`.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
from pathlib import Path

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from gisgrid.accounts.roles import Permission
from gisgrid.accounts.store import is_visible, list_towns, visible_jurisdiction
from gisgrid.demo import ATTRIBUTION
from gisgrid.errors import InputError, NotFound
from gisgrid.frontage import store
from gisgrid.io.records import records
from gisgrid.maps import map_parts
from gisgrid.maps.frontage import frontage_map
from gisgrid.text import translate
from gisgrid.web.access import current_scope
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine

LOGGER = logging.getLogger(__name__)

bp = Blueprint("frontage", __name__)

DOCUMENT_TYPES = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
SHEETS = (".xlsx", ".csv")


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def _lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh_CN"


def _segment_visible(segment_id: int | None) -> None:
    if segment_id is None:
        if not current_user.sees_everything:
            raise NotFound(_("No such unit."))
        return
    if not is_visible(get_conn(), current_scope(), "segment", int(segment_id)):
        raise NotFound(_("No such unit."))


def _state_label(state: str) -> str:
    return {
        "valid": _("valid"),
        "expiring": _("expiring soon"),
        "expired": _("expired"),
        "none": _("no agreement"),
        "future": _("not yet in force"),
    }.get(state, state)


def _kind_label(kind: str) -> str:
    return {"shop": _("shop"), "institution": _("institution"), "residential": _("residential building")}.get(
        kind, kind
    )


@bp.get("/frontage/segment/<int:segment_id>")
def segment_page(segment_id: int):
    _segment_visible(segment_id)
    data = store.segment_frontage(get_conn(), _settings(), segment_id)
    m = frontage_map(area=data["area"], centerline=data["centerline"], frontages=data["frontages"],
                     units=data["locations"], attribution=ATTRIBUTION, lang=_lang())  # fmt: skip
    return render_template("frontage/segment.html", data=data, state_label=_state_label, kind_label=_kind_label,
                           **map_parts(m))  # fmt: skip


@bp.get("/frontage/unit/<int:unit_id>")
def unit_page(unit_id: int):
    conn = get_conn()
    unit = store.get_unit(conn, _settings(), unit_id)
    _segment_visible(unit["segment_id"])
    data = store.segment_frontage(conn, _settings(), unit["segment_id"]) if unit["segment_id"] else None
    parts = {}
    if data is not None:
        mine = data["frontages"][data["frontages"]["name"] == unit["name"]]
        spots = data["locations"][data["locations"]["name"] == unit["name"]]
        m = frontage_map(area=data["area"], centerline=data["centerline"], frontages=mine, units=spots,
                         attribution=ATTRIBUTION, lang=_lang())  # fmt: skip
        parts = map_parts(m)
    return render_template(
        "frontage/unit.html",
        unit=unit,
        cases=store.unit_cases(conn, unit_id),
        state_label=_state_label,
        kind_label=_kind_label,
        may_manage=current_user.may(Permission.manage_owners),
        today=dt.date.today(),
        **parts,
    )


@bp.post("/frontage/unit/<int:unit_id>/agreement")
def add_agreement(unit_id: int):
    conn = get_conn()
    unit = store.get_unit(conn, _settings(), unit_id)
    _segment_visible(unit["segment_id"])
    try:
        signed = dt.date.fromisoformat(request.form.get("signed_on", ""))
        expires = dt.date.fromisoformat(request.form.get("expires_on", ""))
    except ValueError:
        raise InputError(_("Enter the signed date and the expiry as dates.")) from None
    duties = [d for d in request.form.getlist("duties") if d in ("clean", "order", "green")] or [
        "clean",
        "order",
        "green",
    ]
    path = name = None
    upload = request.files.get("document")
    if upload and upload.filename:
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in DOCUMENT_TYPES:
            raise InputError(_("The scanned agreement must be a PDF, JPEG or PNG file."))
        blob = upload.read(MAX_DOCUMENT_BYTES + 1)
        if len(blob) > MAX_DOCUMENT_BYTES:
            raise InputError(_("The scanned agreement is larger than 10 MB."))
        folder = Path(_settings().var_dir) / "frontage_documents" / str(unit_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{secrets.token_hex(8)}{suffix}"
        target.write_bytes(blob)
        path, name = str(target), upload.filename[:120]
    if expires <= signed:
        raise InputError(_("The agreement must expire after it was signed."))
    with get_engine().begin() as wconn:
        store.add_agreement(wconn, current_actor(), unit_id, signed, expires, duties=duties, document_path=path,
                            document_name=name)  # fmt: skip
    flash(_("Agreement recorded."))
    return redirect(url_for("frontage.unit_page", unit_id=unit_id), 303)


@bp.get("/frontage/agreement/<int:agreement_id>/document")
def agreement_document(agreement_id: int):
    doc = store.agreement_document(get_conn(), agreement_id)
    _segment_visible(doc["segment_id"])
    path = Path(doc["document_path"])
    if not path.is_file():
        raise NotFound(_("The scanned document is missing."))
    return send_file(path, mimetype=DOCUMENT_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                     download_name=doc["document_name"] or path.name)  # fmt: skip


@bp.route("/frontage/import", methods=["GET", "POST"])
def import_units():
    if request.method == "GET":
        return render_template("frontage/import.html", result=None, columns=_import_columns())
    upload = request.files.get("file")
    if not upload or not upload.filename:
        raise InputError(_("Choose a file (XLSX or CSV) first."))
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in SHEETS:
        raise InputError(_("The file must be an XLSX or CSV sheet."))
    folder = Path(_settings().var_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"frontage-{secrets.token_hex(8)}{suffix}"
    upload.save(target)
    try:
        with get_engine().begin() as conn:
            result = store.import_units(conn, current_actor(), _settings(), target)
    finally:
        target.unlink(missing_ok=True)
    return render_template("frontage/import.html", result=result, file=upload.filename, columns=_import_columns())


def _import_columns() -> list[tuple[str, str, tuple[str, ...], bool]]:
    """The import's fields as the page lists them: (field, label in the page's language, column names, required)."""
    from gisgrid.frontage.units import COLUMNS

    labels = {
        "name": (_("Name"), True),
        "uscc": (_("Unified social credit code"), True),
        "address": (_("Address"), True),
        "contact_name": (_("Contact person"), True),
        "contact_phone": (_("Contact phone"), True),
        "kind": (_("Type"), False),
        "signed_on": (_("Agreement signed on"), False),
        "expires_on": (_("Agreement expires on"), False),
        "lon": (_("Longitude"), False),
        "lat": (_("Latitude"), False),
    }
    return [(f, label, COLUMNS[f], required) for f, (label, required) in labels.items() if f in COLUMNS]


@bp.get("/frontage/redblack")
def redblack():
    month = request.args.get("month") or (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    code = request.args.get("jurisdiction") or None
    conn = get_conn()
    if code:
        visible_jurisdiction(conn, current_scope(), code)
    elif not current_user.sees_everything:  # the user's first town (as the audit page)
        towns = list_towns(conn, current_scope(), whole=True)
        if not towns:
            raise NotFound(_("No jurisdiction of yours to show."))
        code = towns[0]["code"]
    table, rules = store.red_black_list(conn, _settings(), month, jurisdiction_code=code)
    if request.args.get("format") == "xlsx":
        buf = io.BytesIO()
        # sheets, columns, agreement states and reasons in the page's language
        said = table.assign(
            agreement=[_state_label(v) for v in table["agreement"]],
            why=[translate(v, _) for v in table["why"]],
        )
        labels = {
            "black": _("Black list"),
            "red": _("Red list"),
            "name": _("Unit name"),
            "street": _("Street"),
            "segment": _("Segment"),
            "cases": _("Cases"),
            "findings": _("Inspection findings"),
            "overdue": _("Overdue"),
            "rework": _("Rework"),
            "agreement": _("Agreement"),
            "why": _("Why"),
        }
        store.write_ranking_xlsx(said, buf, labels=labels)
        buf.seek(0)
        return send_file(buf, download_name=f"redblack-{month}.xlsx", as_attachment=True,
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")  # fmt: skip
    rows = records(table)
    return render_template("frontage/redblack.html", month=month, code=code, rules=rules,
                           black=[r for r in rows if r["list"] == "black"], red=[r for r in rows if r["list"] == "red"],
                           state_label=_state_label)  # fmt: skip


@bp.get("/api/plan/frontages")
def plan_frontages():
    code = request.args.get("town", "")
    if not code:
        raise InputError("town is required")
    conn = get_conn()
    visible_jurisdiction(conn, current_scope(), code)
    return jsonify(units=store.plan_frontages(conn, code))


@bp.post("/api/plan/frontage")
def plan_save():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError("send the frontage as a JSON object {id, revision, geometry}")
    try:
        unit_id, revision = int(body.get("id")), int(body.get("revision"))
    except (TypeError, ValueError):
        raise InputError("id and revision must be integers") from None
    conn = get_conn()
    unit = store.get_unit(conn, _settings(), unit_id)
    _segment_visible(unit["segment_id"])
    with get_engine().begin() as wconn:
        out = store.set_frontage(wconn, current_actor(), unit_id, body.get("geometry"), revision=revision)
    return jsonify(out)
