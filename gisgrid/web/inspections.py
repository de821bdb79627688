"""Inspection rounds in the browser: plan (managers), the round page, end and score, the checklist, coverage.

Thin: the rules are in :mod:`gisgrid.supervision` (the plan's checks, the
sample draw, the scores: :mod:`~gisgrid.supervision.inspection`; the store
applying the round visibility rule: :mod:`~gisgrid.supervision.inspections`).
Findings are recorded on the phone page of the cases (``/cases/phone/``):
:func:`record_finding` is what its intake calls when a round is picked.
Access to each route is in :data:`gisgrid.web.access.RULES`.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from gisgrid import timeutil
from gisgrid.cases.intake import parse_case_input
from gisgrid.demo import ATTRIBUTION
from gisgrid.errors import Conflict, Forbidden, GisgridError, InputError, NotFound
from gisgrid.maps import inspections as insp_maps
from gisgrid.maps._base import map_parts
from gisgrid.supervision import inspection as rules
from gisgrid.supervision import inspections as store
from gisgrid.web.access import current_scope
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine

LOGGER = logging.getLogger(__name__)

bp = Blueprint("inspections", __name__)

KIND_LABELS = {"announced": _l("announced inspection"), "unannounced": _l("unannounced visit")}
SCOPE_LABELS = {"town": _l("towns"), "street": _l("streets"), "cell": _l("grid cells")}
SAMPLE_LABELS = {"segment": _l("segments"), "cell": _l("grid cells")}
#: Where a case came from (``report.source``), in the page's language: the channels and the two round kinds.
SOURCE_LABELS = {
    "web": _l("web form"),
    "phone": _l("phone page"),
    "api": _l("API"),
    "import": _l("imported file"),
    "geocode": _l("geocoding page"),
    "reopen": _l("reopened"),
    "inspection": _l("announced inspection"),
    "unannounced": _l("unannounced visit"),
}
UNIT_LABELS = {
    "town": _l("Towns"),
    "community": _l("Communities"),
    "street": _l("Streets"),
    "segment": _l("Segments"),
    "cell": _l("Grid cells"),
    "person": _l("Owners (persons)"),
    "department": _l("Owners (departments)"),
    "frontage": _l("Frontage units"),
}


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def _lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh_CN"


def _today():
    return timeutil.local_today(_settings().timezone)


def explain(exc: Exception) -> str:
    """An error's message in the page's language: each problem of a ProblemsError translated, else its text."""
    problems = getattr(exc, "problems", None)
    if not problems:
        return str(exc)
    parts = []
    for message, values in problems:
        values = {k: _translated(k, v) for k, v in values.items()}
        parts.append(_(message, **values))
    return ("；" if _lang() == "zh_CN" else "; ").join(parts)


def _translated(key: str, value):
    if key == "label" and isinstance(value, str):
        return _(value)
    if key == "kind":
        return str({**SCOPE_LABELS, **SAMPLE_LABELS}.get(value, value))
    return value


@bp.app_context_processor
def _labels():
    return {
        "round_kind_label": lambda k: str(KIND_LABELS.get(k, k)),
        "round_scope_label": lambda k: str(SCOPE_LABELS.get(k, k)),
        "round_unit_label": lambda k: str(UNIT_LABELS.get(k, k)),
        "round_sample_label": lambda k: str(SAMPLE_LABELS.get(k, k)),
        "case_source_label": lambda k: str(SOURCE_LABELS.get(k, k or "")),
    }


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    """A round that does not exist or is out of the user's sight (an unannounced one): the same 404."""
    if request.path.startswith("/api/"):
        return jsonify(error="NotFound", detail=_("No such inspection round, or not one you may see.")), 404
    return render_template("error.html", error=_("No such inspection round, or not one you may see."), status=404), 404


# --- rounds ------------------------------------------------------------------------------------
@bp.get("/inspections/")
def index():
    rounds = store.list_rounds(get_conn(), current_scope())
    today = _today()
    for r in rounds:
        r["open"] = store.is_open(r, today)
    return render_template("inspections/index.html", rounds=rounds, today=today)


def _plan_context(form: dict | None = None) -> dict:
    conn = get_conn()
    today = _today()
    start = today.replace(day=1)
    end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    default = {
        "kind": "announced",
        "period_start": str(start),
        "period_end": str(end - dt.timedelta(days=1)),
        "scope_kind": "town",
    }
    return {
        "form": form or default,
        "choices": store.scope_choices(conn, current_scope()),
        "inspectors": store.inspector_choices(conn),
        "kinds": KIND_LABELS,
        "scope_kinds": SCOPE_LABELS,
        "sample_kinds": SAMPLE_LABELS,
    }


def _form_values() -> dict:
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    kind = form.get("scope_kind")
    form["scope_ids"] = request.form.getlist("town_ids") if kind == "town" else request.form.getlist("street_ids")
    if kind == "cell":
        form["scope_ids"] = []
    form["inspector_ids"] = request.form.getlist("inspector_ids")
    if not form.get("sample"):
        form["sample_kind"] = None
    return form


@bp.route("/inspections/new", methods=["GET", "POST"])
def new():
    if request.method == "GET":
        return render_template("inspections/new.html", **_plan_context())
    form = _form_values()
    try:
        with get_engine().begin() as conn:
            round_id = store.plan_round(conn, current_actor(), current_scope(), form)
    except InputError as exc:
        return render_template("inspections/new.html", error=explain(exc), **_plan_context(form)), 400
    flash(_("Round %(id)s planned.", id=round_id))
    return redirect(url_for("inspections.show", round_id=round_id), 303)


@bp.get("/inspections/<int:round_id>")
def show(round_id: int):
    conn = get_conn()
    scope = current_scope()
    rnd = store.get_round(conn, scope, round_id)
    findings = store.round_findings(conn, scope, round_id)
    targets = store.round_targets(conn, round_id, _settings())
    scores = store.round_score_table(conn, scope, round_id) if rnd["ended_at"] else None
    points = findings.assign(label=[f"#{r} {i}" for r, i in zip(findings["report_id"], findings["item"])])
    m = insp_maps.round_map(targets, points, attribution=ATTRIBUTION, lang=_lang())
    by_kind = {}
    if scores is not None:
        for kind in rules.UNIT_KINDS:
            part = scores[scores["unit_kind"] == kind]
            if len(part):
                by_kind[kind] = part.head(200).to_dict("records")
    may_plan = current_user.may("plan_inspections")
    return render_template(
        "inspections/show.html",
        rnd=rnd,
        open=store.is_open(rnd, _today()),
        findings=findings.to_dict("records"),
        targets=targets.drop(columns="geometry").head(300).to_dict("records"),
        n_targets=len(targets),
        scores=by_kind,
        may_end=may_plan and rnd["ended_at"] is None,
        **map_parts(m),
    )


@bp.post("/inspections/<int:round_id>/end")
def end(round_id: int):
    try:
        with get_engine().begin() as conn:
            summary = store.end_round(conn, current_actor(), current_scope(), round_id)
    except Conflict:
        flash(_("This round has ended already."))
        return redirect(url_for("inspections.show", round_id=round_id), 303)
    flash(_("Round ended: %(n)s findings scored.", n=summary["findings"]))
    return redirect(url_for("inspections.show", round_id=round_id), 303)


# --- the checklist -----------------------------------------------------------------------------
@bp.route("/inspections/checklist", methods=["GET", "POST"])
def checklist():
    conn = get_conn()
    if request.method == "POST":
        form = {k: v for k, v in request.form.items() if k != "csrf_token"}
        try:
            with get_engine().begin() as wconn:
                n = store.update_checklist(wconn, current_actor(), form)
        except InputError as exc:
            items = store.checklist(conn)
            return render_template("inspections/checklist.html", items=items, form=form, error=explain(exc)), 400
        flash(_("%(n)s checklist items changed.", n=n))
        return redirect(url_for("inspections.checklist"), 303)
    if not store.checklist(conn):
        with get_engine().begin() as wconn:
            store.ensure_checklist(wconn)
    return render_template("inspections/checklist.html", items=store.checklist(get_conn()), form=None)


# --- patrol coverage -----------------------------------------------------------------------------
@bp.get("/inspections/coverage")
def coverage():
    conn = get_conn()
    scope = current_scope()
    towns = store.coverage_towns(conn, scope)
    month = request.args.get("month") or None
    town = request.args.get("town") or None
    error = None
    try:
        start, end = store.month_bounds(month, _settings())
    except InputError as exc:
        error = explain(exc)
        start, end = store.month_bounds(None, _settings())
    town_id = None
    if town is not None:
        if not str(town).isdigit() or int(town) not in {t["id"] for t in towns}:
            error = _("No such town in your area: %(town)s", town=str(town)[:20])
        else:
            town_id = int(town)
    if town_id is None and towns:
        town_id = towns[0]["id"]
    data = store.coverage(conn, scope, _settings(), start=start, end=end, town_id=town_id)
    m = insp_maps.coverage_map(data["segments"], data["cells"], data["visits"], attribution=ATTRIBUTION, lang=_lang())
    unvisited = {
        "segments": data["segments"][~data["segments"]["visited"]][["id", "name"]].head(300).to_dict("records"),
        "cells": data["cells"][~data["cells"]["visited"]][["id", "name"]].head(300).to_dict("records"),
    }
    return render_template(
        "inspections/coverage.html",
        towns=towns,
        town_id=town_id,
        month=start.strftime("%Y-%m"),
        start=start,
        end=end,
        totals=data["totals"],
        unvisited=unvisited,
        error=error,
        **map_parts(m),
    ), (400 if error else 200)


# --- the phone page: findings and check-ins ------------------------------------------------------
def phone_context() -> dict:
    """What the phone page offers an inspector: the open rounds they inspect and the checklist."""
    if not current_user.may("inspect"):
        return {"rounds": [], "items": []}
    conn = get_conn()
    rounds = store.open_rounds_for(conn, current_user.user, _today())
    return {"rounds": rounds, "items": store.checklist(conn, active_only=True) if rounds else []}


def record_finding(form: dict, photos=()):
    """A finding from the phone page (its intake, when a round is picked): a case of the item's category.

    Every refusal is an :class:`InputError` (400) in the page's language, or
    :class:`Forbidden` (403): the phone's outbox keeps such a report with
    the reason instead of sending it again and again.
    """
    raw = dict(form)
    raw["category"] = "-"  # the checklist item says the category
    try:
        data = parse_case_input(raw, source="phone")
        with get_engine().begin() as conn:
            return store.record_finding(
                conn,
                current_actor(),
                current_user.user,
                current_app.extensions["gisgrid.snapshots"].deployment.get(get_conn()),
                _settings(),
                round_id=form.get("round_id"),
                item_id=form.get("item_id"),
                data=data,
                photos=photos,
            )
    except NotFound as exc:
        raise InputError(_("No such inspection round of yours: %(id)s", id=str(form.get("round_id"))[:20])) from exc
    except Conflict as exc:
        raise InputError(_("The round is not open: it has ended, or today is outside its period.")) from exc
    except Forbidden as exc:
        raise Forbidden(_("Only the round's inspectors record its findings.")) from exc
    except InputError as exc:
        if getattr(exc, "problems", None):
            raise InputError(explain(exc)) from exc
        raise


@bp.post("/api/inspections/checkin")
def api_checkin():
    """ "Patrolled here": ``{lon, lat, crs, client_id}`` (JSON or a form) → 201 ``{id, segment, cell}``."""
    body = request.get_json(silent=True) if request.is_json else request.form
    if not isinstance(body, dict) and not hasattr(body, "get"):
        return jsonify(error="InputError", detail=_("Send lon and lat.")), 400
    try:
        with get_engine().begin() as conn:
            out = store.record_checkin(
                conn,
                current_actor(),
                lon=body.get("lon"),
                lat=body.get("lat"),
                crs=body.get("crs") or "EPSG:4326",
                client_id=body.get("client_id"),
            )
    except GisgridError as exc:
        return jsonify(error=type(exc).__name__, detail=explain(exc)), exc.http_status_code
    return jsonify(out), 201 if out["created"] else 200
