"""JSON API: health and (later) assignment."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from gisgrid.db import health
from gisgrid.web.db import get_conn

LOGGER = logging.getLogger(__name__)

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz():
    """200 with PostGIS version when the database answers, 503 otherwise."""
    result = health(get_conn)
    return jsonify(result), 200 if result["status"] == "ok" else 503


def current_deployment():
    """The app's routing deployment (:mod:`gisgrid.routing.snapshot`): rebuilt by one thread when the
    database's data version moves on, while the others keep answering with the previous one."""
    from flask import current_app

    return current_app.extensions["gisgrid.snapshots"].deployment.get(get_conn())


@bp.get("/api/openapi.json")
def openapi():
    """The OpenAPI 3 description of the JSON endpoints (:mod:`gisgrid.web.openapi`), as at ``/api``."""
    from gisgrid.web.openapi import openapi_spec

    return jsonify(openapi_spec())


@bp.get("/api")
def openapi_doc():
    """The OpenAPI 3 document (assign, cases, Open311, OGC API – Features), as OGC's ``service-desc``."""
    from flask import Response, json

    from gisgrid.web.openapi import openapi_spec

    return Response(
        json.dumps(openapi_spec(), ensure_ascii=False), mimetype="application/vnd.oai.openapi+json;version=3.0"
    )


@bp.post("/api/assign")
def api_assign():
    """Route one point: JSON ``{lon, lat, crs, category, date}`` → owner and explanation.

    ``crs`` defaults to EPSG:4326; ``date`` (YYYY-MM-DD) to today.  Bad input is
    a 400 with ``{error, detail}``.
    """
    from flask import request

    from gisgrid.routing.store import explain_point, route_frontage

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="bad_request", detail="send a JSON object: {lon, lat, crs, category, date}"), 400
    missing = [k for k in ("lon", "lat") if body.get(k) is None]
    if missing:
        return jsonify(error="missing_coordinates", detail=f"missing {', '.join(missing)}"), 400
    result = explain_point(
        current_deployment(),
        lon=body.get("lon"),
        lat=body.get("lat"),
        crs=body.get("crs") or "EPSG:4326",
        category=body.get("category"),
        day=body.get("date"),
    )
    if "error" in result:
        return jsonify(result), 400
    # the frontage-duty step (门前三包), as at intake: a unit answers for a frontage-duty category in its frontage
    return jsonify(route_frontage(get_conn(), result, category=body.get("category")))
