"""Operations: ``/metrics`` (Prometheus) and ``/readyz`` (readiness); ``/healthz`` (liveness) is in :mod:`api`.

Who may read ``/metrics`` (see docs/operations.md): a request made on this machine (from 127.0.0.1 or ::1,
not forwarded by a proxy), or one sending ``Authorization: Bearer <GISGRID_METRICS_TOKEN>`` when that
setting is set.  Anybody else gets 404, as for a page that does not exist.
"""

from __future__ import annotations

import hmac
import logging
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request

from gisgrid.monitoring import make_registry, readiness, render
from gisgrid.web.db import get_conn

LOGGER = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

_LOOPBACK = {"127.0.0.1", "::1"}
_FORWARDED = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def metrics_allowed() -> bool:
    """Whether this request may read the metrics: made on this machine, or carrying the metrics token."""
    token = current_app.config["GISGRID_SETTINGS"].metrics_token
    sent = request.headers.get("Authorization", "")
    if token and sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].strip(), token):
        return True
    # behind a proxy on this machine every request comes from 127.0.0.1: a forwarded one is not local
    return request.remote_addr in _LOOPBACK and not any(h in request.headers for h in _FORWARDED)


@bp.get("/metrics")
def metrics():
    """The process's metrics in Prometheus text format."""
    if not metrics_allowed():
        abort(404)
    body, content_type = render(current_app.extensions["gisgrid.metrics"][0])
    return Response(body, content_type=content_type)


@bp.get("/readyz")
def readyz():
    """200 when the database answers and its schema is at head, 503 (with the reason) otherwise."""
    ready, detail = readiness(get_conn)
    return jsonify(detail), 200 if ready else 503


def init_app(app: Flask) -> None:
    """Register the blueprint and time every request into the latency histogram."""
    registry, latency = make_registry(
        app.extensions["gisgrid.engine"], app.config["GISGRID_SETTINGS"], app.extensions.get("gisgrid.snapshots")
    )
    app.extensions["gisgrid.metrics"] = (registry, latency)
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer():
        g.gisgrid_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("gisgrid_started", None)
        if started is not None:
            endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
            latency.labels(endpoint, request.method, str(response.status_code)).observe(time.perf_counter() - started)
        return response
