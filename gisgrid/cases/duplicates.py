"""Duplicates at intake: open cases of the same category near a new one in place and time."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.config import Settings
from gisgrid.db import sql

LOGGER = logging.getLogger(__name__)


def find_duplicates(
    conn: sa.Connection,
    settings: Settings,
    *,
    category_id: int,
    lon: float,
    lat: float,
    at: dt.datetime,
    case_id: int | None = None,
    scope: Scope | None = None,
) -> list[dict]:
    """Open cases of the same category within ``duplicate_radius_m`` and ``duplicate_days`` of a point
    and time, nearest first (id, status, reported_at, address, description, distance_m)."""
    scope = scope or Scope.everything()
    radius = float(settings.duplicate_radius_m)
    # a box in degrees around the point first (the GiST index), then the exact distance in metres
    dlat = radius / 110_574.0
    dlon = radius / max(111_320.0 * np.cos(np.radians(min(abs(lat), 89.0))), 1.0)
    rows = conn.execute(
        sa.text(f"""
        SELECT r.id, r.status, r.reported_at, r.address, r.description,
               round(CAST(ST_Distance(CAST(r.geom AS geography), CAST(p.pt AS geography)) AS numeric), 1) AS distance_m
        FROM report r, (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt) p
        WHERE r.category_id = :cat AND {sql.report_is_open("r")} AND r.id IS DISTINCT FROM :me
          AND r.geom && ST_MakeEnvelope(:lon - :dlon, :lat - :dlat, :lon + :dlon, :lat + :dlat, 4326)
          AND ST_DWithin(CAST(r.geom AS geography), CAST(p.pt AS geography), :radius)
          AND r.reported_at BETWEEN CAST(:at AS timestamptz) - make_interval(secs => :window)
                                AND CAST(:at AS timestamptz) + make_interval(secs => :window)
          AND {scope.case_sql("r")}
        ORDER BY distance_m, r.id LIMIT 10"""),
        {
            "lon": lon,
            "lat": lat,
            "cat": category_id,
            "me": case_id,
            "dlon": dlon,
            "dlat": dlat,
            "radius": radius,
            "at": at,
            "window": float(settings.duplicate_days) * 86400.0,
            **scope.params(),
        },
    )
    return [
        {**dict(r._mapping), "distance_m": float(r.distance_m), "reported_at": r.reported_at.isoformat()} for r in rows
    ]
