"""JSON API: health and (later) assignment."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, jsonify

from gisgrid.web.db import get_conn

LOGGER = logging.getLogger(__name__)

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz():
    """200 with PostGIS version when the database answers, 503 otherwise."""
    try:
        conn = get_conn()
        postgis = conn.execute(sa.text("SELECT postgis_lib_version()")).scalar()
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.SQLAlchemyError as exc:
        LOGGER.warning("health check failed: %s", exc)
        return jsonify(status="error", database="unreachable", detail=str(exc.__class__.__name__)), 503
    return jsonify(status="ok", database="ok", postgis=postgis, schema_revision=revision)
