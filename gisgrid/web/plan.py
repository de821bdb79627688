"""The planners' editor ``/plan``: draw, reshape, split, merge and delete cells, reshape segment areas.

The page is a Folium base map (no tiles) with the vendored Leaflet-Geoman
plugin and ``static/plan.js``; the JSON API below does the work through
:mod:`gisgrid.grid.edit_store` and its neighbours (``edit_request``, ``edit_check``,
``edit_units``, ``edit_versions``):

``GET  /api/plan/units?town=CODE&layer=cell|segment``  units of a town (full-precision GeoJSON) and removed cells
``POST /api/plan/check``   what an edit would do: problems, overlaps, gaps (nothing written)
``POST /api/plan/save``    apply an edit: 200, 422 refused (with the check), 409 conflict (with the current units)
``GET  /api/plan/history?layer=cell&id=N``   every version of a unit, newest first
"""

from __future__ import annotations

import datetime as dt
import logging

import shapely
from flask import Blueprint, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from gisgrid.accounts.store import is_visible, list_towns, visible_jurisdiction
from gisgrid.db import layers
from gisgrid.errors import InputError, NotFound
from gisgrid.grid.edit_check import check_plan_edit
from gisgrid.grid.edit_request import LAYERS, EditConflict, EditRefused
from gisgrid.grid.edit_store import save_plan_edit
from gisgrid.grid.edit_units import load_units, units_geojson
from gisgrid.grid.edit_versions import last_version_jurisdiction, removed_cells, unit_history
from gisgrid.maps import map_parts
from gisgrid.maps.plan import plan_map
from gisgrid.web.access import current_scope
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine
from gisgrid.web.i18n import map_language

LOGGER = logging.getLogger(__name__)

bp = Blueprint("plan", __name__)

#: Layers of the page: the units the editor edits (cells, segment areas), and the frontages of 门前三包 units (gisgrid.web.frontage saves them).
PAGE_LAYERS = (*LAYERS, "frontage")


@bp.get("/plan")
def plan_page():
    conn = get_conn()
    towns = list_towns(conn, current_scope(), whole=True)  # a planner edits the towns of their grants
    if not towns:
        return render_template("plan.html", towns=[], town=None)
    code = request.args.get("town") or towns[0]["code"]
    town = next((t for t in towns if t["code"] == code), None)
    if town is None:
        raise NotFound(_("No town with code %(code)s.", code=code))
    layer = request.args.get("layer", "cell")
    if layer not in PAGE_LAYERS:
        raise InputError(_("Layer must be one of: %(layers)s.", layers=", ".join(PAGE_LAYERS)))
    boundary = layers.fetch_layer(conn, "jurisdictions", jurisdiction_code=code).geometry.iloc[0]
    m = plan_map(boundary, attribution=current_app.config["GISGRID_SETTINGS"].attribution, lang=map_language())
    return render_template(
        "plan.html",
        towns=towns,
        town=town,
        layer=layer,
        boundary=shapely.geometry.mapping(boundary),
        **map_parts(m),
    )


@bp.get("/api/plan/units")
def units():
    code = request.args.get("town", "")
    layer = request.args.get("layer", "cell")
    if not code:
        raise InputError("town is required")
    conn = get_conn()
    visible_jurisdiction(conn, current_scope(), code)
    frame = load_units(conn, code, layer)
    removed = removed_cells(conn, code) if layer == "cell" else []
    return jsonify(units=units_geojson(frame), removed=removed)


def _payload() -> dict:
    """The edit, if every unit and the town it names are the user's to edit (else 404: nothing is said)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError("send the edit as a JSON object")
    if body.get("town"):
        visible_jurisdiction(get_conn(), current_scope(), str(body["town"]))
    layer = body.get("layer", "cell")
    try:
        ids = [int(i) for i in body.get("unit_ids") or []]
    except (TypeError, ValueError):
        ids = []  # parse_edit names the problem
    if layer in LAYERS and not all(_unit_visible(layer, i) for i in ids):
        raise NotFound(_("No such unit."))
    return body


@bp.post("/api/plan/check")
def check():
    return jsonify(check_plan_edit(get_conn(), current_app.config["GISGRID_SETTINGS"], _payload()))


@bp.post("/api/plan/save")
def save():
    payload = _payload()
    settings = current_app.config["GISGRID_SETTINGS"]
    try:
        with get_engine().begin() as conn:
            result = save_plan_edit(conn, settings, payload, day=dt.date.today(), author=current_actor())
    except EditRefused as exc:
        body = exc.check.to_json()
        body.update(error="EditRefused", detail=str(exc))
        return jsonify(body), exc.http_status_code
    except EditConflict as exc:
        return jsonify(error="EditConflict", detail=str(exc), current=exc.current), exc.http_status_code
    return jsonify(result)


def _unit_visible(layer: str, unit_id: int) -> bool:
    """The user sees the unit, or (removed) the jurisdiction of its last saved version."""
    if current_user.sees_everything:  # also units that never were: the store says what is wrong with them
        return True
    conn, scope = get_conn(), current_scope()
    if is_visible(conn, scope, layer, unit_id):
        return True
    code = last_version_jurisdiction(conn, layer, unit_id)
    if code is None:
        return False
    try:
        visible_jurisdiction(conn, scope, code)
    except NotFound:
        return False
    return True


@bp.get("/api/plan/history")
def history():
    layer = request.args.get("layer", "cell")
    try:
        unit_id = int(request.args.get("id", ""))
    except ValueError:
        raise InputError("id must be an integer unit id") from None
    if layer in LAYERS and not _unit_visible(layer, unit_id):
        raise NotFound(_("No such unit."))
    return jsonify(versions=unit_history(get_conn(), current_app.config["GISGRID_SETTINGS"], layer, unit_id))
