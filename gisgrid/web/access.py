"""Who may open which route: ONE table, checked before every request.

:data:`RULES` names, for every endpoint of the app, either :data:`PUBLIC`,
:data:`SIGNED_IN` or the :class:`~gisgrid.accounts.roles.Permission` it needs.
An endpoint missing from the table is refused (and a test fails): a new route
cannot slip in unguarded.

* not signed in: pages redirect to the login page (302), JSON routes answer 401 (OGC API – Features in its
  ``{code, description}`` shape unless a browser asks for HTML; Open311 403 in its error list);
* signed in without the permission: 403;
* signed in, but the place asked for is outside the user's sight: 404, from
  the views through :func:`current_scope` and the stores
  (:mod:`gisgrid.accounts.scope`), so that nobody learns it exists.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask, abort, g, jsonify, redirect, request, url_for
from flask_login import current_user

from gisgrid.accounts.roles import Permission
from gisgrid.accounts.scope import Scope
from gisgrid.web.security import wants_json

LOGGER = logging.getLogger(__name__)

PUBLIC = "public"
SIGNED_IN = "signed_in"
P = Permission

#: endpoint -> PUBLIC | SIGNED_IN | Permission.  The one place where routes meet roles.
RULES: dict[str, str | Permission] = {
    "static": PUBLIC,
    "api.healthz": PUBLIC,
    "api.openapi": PUBLIC,  # describes the API, holds no data
    "ops.readyz": PUBLIC,  # readiness: database answers, schema at head (no data)
    # Prometheus: only from this machine (not through a proxy) or with GISGRID_METRICS_TOKEN, checked in
    # gisgrid.web.ops.metrics_allowed (404 otherwise); no user account, so a scraper needs no login
    "ops.metrics": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": SIGNED_IN,
    "auth.password": SIGNED_IN,
    "pages.home": P.view_own,
    "api.api_assign": P.route,
    "export.export_layer": P.view_area,
    # the manager map limits every report, unit and jurisdiction by the user's sight: a chief sees theirs
    "manager.manager_map": P.view_own,
    "manager.export_html": P.view_own,
    "manager.export_png": P.view_own,
    "manager.summary_xlsx": P.view_own,
    "audit.audit_page": P.view_area,
    "audit.export_geojson": P.view_area,
    "audit.export_xlsx": P.view_area,
    "geocode.upload_form": P.geocode,
    "geocode.upload": P.geocode,
    "geocode.show_job": P.geocode,
    "geocode.place": P.geocode,
    "geocode.download": P.geocode,
    "plan.plan_page": P.edit_plan,
    "plan.units": P.edit_plan,
    "plan.check": P.edit_plan,
    "plan.save": P.edit_plan,
    "plan.history": P.edit_plan,
    "owners.unit": P.view_own,  # within sight (404 otherwise)
    "owners.appoint": P.manage_owners,
    "owners.end": P.manage_owners,
    "owners.search": P.manage_owners,
    "owners.bulk_form": P.manage_owners,
    "owners.bulk_upload": P.manage_owners,
    "owners.bulk_confirm": P.manage_owners,  # a checked sheet is its uploader's (404 to others)
    "owners.people_json": P.view_area,  # the owner search of the manager map and the appoint form
    "owners.audit_log": P.read_audit_log,
    # user management (admins): the store functions of `gisgrid users`, each write in the audit log
    "users.index": P.manage_users,
    "users.new": P.manage_users,
    "users.show": P.manage_users,
    "users.set_active": P.manage_users,
    "users.reset_password": P.manage_users,
    "users.grant": P.manage_users,
    "users.revoke": P.manage_users,
    "users.create_key": P.manage_users,
    "users.revoke_key": P.manage_users,
    # background jobs (map PNG, large geocoding uploads): the pages that start them are guarded above; a job
    # is its user's, anybody else but an admin gets 404 (gisgrid.web.jobs.visible_job)
    "jobs.show": SIGNED_IN,
    "jobs.status": SIGNED_IN,
    "jobs.job_file": SIGNED_IN,
    # cases: which steps a user may take on a case is gisgrid.cases.workflow.TRANSITIONS
    "cases.case_list": P.view_cases,
    "cases.owners_json": P.view_cases,
    "cases.area_json": P.view_cases,  # the box and streets of the user's area (the list's area map)  # people owning a place the user sees (the list's owner picker)
    "cases.case_page": P.view_cases,
    "cases.case_step": P.act_on_cases,
    "cases.photo": P.view_cases,
    "cases.photo_thumb": P.view_cases,
    "cases.intake": P.report_case,
    "cases.inbox": P.view_cases,
    "cases.inbox_read": P.view_cases,
    "cases.api_create": P.report_case,
    "cases.api_case": P.view_cases,
    "cases.api_step": P.act_on_cases,
    "cases.api_geocode": P.report_case,
    "cases.export": P.view_cases,
    "cases.calendar": P.manage_calendar,
    "cases.phone": P.report_case,
    "cases.phone_worker": P.report_case,
    "cases.api_phone": P.report_case,
    "cases.from_geocode": P.report_case,  # the job itself must be the clerk's (404 otherwise)
    # inspection rounds: which round a user sees is gisgrid.accounts.scope.round_visible_sql (404 otherwise);
    # findings are recorded through the phone page (cases.api_phone) by the round's own inspectors
    "inspections.index": P.view_own,
    "inspections.show": P.view_own,
    "inspections.new": P.plan_inspections,
    "inspections.end": P.plan_inspections,
    "inspections.checklist": P.plan_inspections,
    "inspections.coverage": P.view_own,  # limited to the units the user sees
    "inspections.api_checkin": P.inspect,
    # rankings (issue 20): figures of the jurisdictions the user sees (404 otherwise); publishing is a manager's
    "rankings.index": P.view_area,
    "rankings.unit": P.view_area,
    "rankings.snapshot": P.view_area,
    "rankings.bulletin_pdf": P.view_area,
    "rankings.bulletin_xlsx": P.view_area,
    "rankings.publish": P.publish_rankings,
    # frontage units (门前三包): pages within sight (a unit is seen with its segment); managers add agreements
    # and import registry exports; planners adjust frontages in /plan
    "frontage.segment_page": P.view_own,
    "frontage.unit_page": P.view_own,
    "frontage.agreement_document": P.view_own,
    "frontage.add_agreement": P.manage_owners,
    "frontage.import_units": P.manage_owners,
    "frontage.redblack": P.view_area,
    "frontage.plan_frontages": P.edit_plan,
    "frontage.plan_save": P.edit_plan,
    # the residents' channel: no login (abuse limits per device and address, gisgrid.web.public)
    "public.report_form": PUBLIC,
    "public.report_submit": PUBLIC,
    "public.case_status": PUBLIC,
    "public.segment": PUBLIC,
    # Open311 GeoReport v2 (gisgrid.web.open311): the services are the public category list; requests are
    # read within the key's account's sight (nothing, for an account that sees nothing)
    "open311.discovery": PUBLIC,
    "open311.services": PUBLIC,
    "open311.service_definition": PUBLIC,
    "open311.list_requests": SIGNED_IN,
    "open311.get_request": SIGNED_IN,
    "open311.token": SIGNED_IN,
    "open311.create_request": P.report_case,
    # OGC API - Features (gisgrid.web.ogc): every row within the caller's sight; the cases collection needs
    # view_cases and the audit problems view_area (checked per collection)
    "api.openapi_doc": PUBLIC,  # describes the API, holds no data
    "ogc.landing": PUBLIC,
    "ogc.conformance": PUBLIC,
    "ogc.collections": P.view_own,
    "ogc.collection": P.view_own,
    "ogc.items": P.view_own,
    "ogc.item": P.view_own,
    # finding one's way (gisgrid.web.wayfinding): the basemap is the place's geography (tiles, or boundaries
    # and street lines from gisgrid's own layers), as a tile service would show it to anybody signed in; the
    # search finds only what the user sees (gisgrid.search.store applies the scope); help holds no data
    "wayfinding.tile": SIGNED_IN,
    "wayfinding.context": SIGNED_IN,
    "wayfinding.search": SIGNED_IN,
    "wayfinding.help_page": PUBLIC,
}
#: Routes a user who must change their password may still open.
_BEFORE_PASSWORD_CHANGE = {
    "static",
    "auth.login",
    "auth.logout",
    "auth.password",
    "api.healthz",
    "ops.readyz",
    "ops.metrics",
}


def current_scope(day: dt.date | None = None) -> Scope:
    """What the signed-in user sees on ``day`` (default today): pass it to the stores.

    A user who sees everything (an area role with no jurisdiction, checked on
    this request's grants) gets the unlimited scope: the stores then add no
    visibility predicate at all, rather than one whose first term is always
    true but which the planner still evaluates per row (issue 15: +26 % on
    ``/map`` at 100k reports).
    """
    day = day or dt.date.today()
    if current_user.active and current_user.sees_everything:
        return Scope.everything(day)
    return Scope(current_user.id, day)


def rule_for(endpoint: str | None):
    return RULES.get(endpoint or "")


def _browser() -> bool:
    """The request prefers an HTML page (a person's browser) to JSON."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"], default="application/json")
    return best == "text/html" and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]


def _refuse_anonymous():
    if request.path.startswith("/open311/"):  # the specification's error list
        from gisgrid.text import N_
        from gisgrid.web.open311 import error_response

        return error_response(403, N_("api_key is missing or not valid"))
    if request.path.startswith("/ogc/") and (request.headers.get("Authorization") or not _browser()):
        from gisgrid.text import N_
        from gisgrid.web.i18n import api_say

        # OGC API - Features' own error shape, in the language the request asks for
        said = api_say(N_("send a valid API key (Authorization: Bearer …) or sign in"))
        return jsonify(code="Unauthorized", description=said), 401
    if request.headers.get("Authorization"):  # a machine client whose key was refused: no login page for it
        return jsonify(error="Unauthorized", detail="the API key is not valid (revoked, or its account disabled)"), 401
    if wants_json():
        return jsonify(error="Unauthorized", detail="sign in first (/auth/login)"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def init_app(app: Flask) -> None:
    @app.context_processor
    def _routes():
        return {"url_rules": app.view_functions}

    @app.before_request
    def _check_access():
        endpoint = request.endpoint
        if endpoint is None:  # no such route: Flask answers 404 (or 405) itself
            return None
        rule = rule_for(endpoint)
        if rule is None:
            LOGGER.error("route %s has no access rule: refused", endpoint)
            abort(403)
        if rule == PUBLIC:
            return None
        if not current_user.is_authenticated:
            return _refuse_anonymous()
        by_key = g.get("gisgrid_api_key") is not None  # a key is a credential of its own, not the password
        if current_user.must_change_password and not by_key and endpoint not in _BEFORE_PASSWORD_CHANGE:
            if wants_json():
                return jsonify(error="PasswordChangeRequired", detail="change your password first"), 403
            return redirect(url_for("auth.password", next=request.full_path.rstrip("?")))
        if rule == SIGNED_IN:
            return None
        if not current_user.may(rule):
            abort(403)
        return None
