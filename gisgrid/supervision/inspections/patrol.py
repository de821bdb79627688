"""Patrol check-ins ("patrolled here") and coverage: which segments and cells nobody inspected or patrolled in
a period (:data:`VISITS_SQL` says what counts as a visit).
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.roles import INSPECTOR_ROLES
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import Actor
from gisgrid.config import Settings
from gisgrid.db.frames import query_geo_frame
from gisgrid.errors import InputError
from gisgrid.io.points import PointError, check_point
from gisgrid.supervision import inspection as rules
from gisgrid.supervision.inspection import N_

LOGGER = logging.getLogger(__name__)


def record_checkin(
    conn: sa.Connection, actor: Actor, *, lon: object, lat: object, crs: object = "EPSG:4326", client_id=None
) -> dict:
    """ "Patrolled here" at a point: kept with the segment (its area holds the point) and the cell holding it.

    Sending the same check-in twice (its client id) keeps one.  Returns
    ``id``, ``created``, ``segment`` and ``cell`` (names, None outside them).
    """
    try:
        x, y = check_point(lon, lat, str(crs or "EPSG:4326"))
    except PointError as exc:
        raise InputError(str(exc)) from exc
    if client_id is not None:
        client_id = str(client_id).strip() or None
        if client_id is not None and not cases_client_id_ok(client_id):
            raise rules.ProblemsError([(N_("client_id must be 8 to 64 letters, digits or . _ : - (a UUID fits)"), {})])
    row = conn.execute(
        sa.text("""
        WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS pt)
        INSERT INTO patrol_checkin (user_id, person_id, actor_name, geom, segment_id, cell_id, client_id)
        SELECT :uid, :pid, :name, p.pt,
               (SELECT g.id FROM segment g WHERE g.area && p.pt AND ST_Intersects(g.area, p.pt) ORDER BY g.id LIMIT 1),
               (SELECT c.id FROM grid_cell c WHERE c.geom && p.pt AND ST_Intersects(c.geom, p.pt) ORDER BY c.id LIMIT 1),
               :client
        FROM p ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id, segment_id, cell_id"""),
        {"x": x, "y": y, "uid": actor.user_id, "pid": actor.person_id, "name": actor.name, "client": client_id},
    ).first()
    created = row is not None
    if row is None:
        row = conn.execute(
            sa.text("SELECT id, segment_id, cell_id FROM patrol_checkin WHERE client_id = :c"), {"c": client_id}
        ).one()
    names = conn.execute(
        sa.text("""SELECT (SELECT s.name || ' ' || g.name FROM segment g JOIN street s ON s.id = g.street_id
                           WHERE g.id = :g), (SELECT code FROM grid_cell WHERE id = :c)"""),
        {"g": row.segment_id, "c": row.cell_id},
    ).one()
    return {"id": row.id, "created": created, "segment": names[0], "cell": names[1]}


def cases_client_id_ok(value: str) -> bool:
    from gisgrid.cases.intake import CLIENT_ID

    return bool(CLIENT_ID.fullmatch(value))


def month_bounds(month: str | None, settings: Settings) -> tuple[dt.date, dt.date]:
    """A month written ``YYYY-MM`` (default: this month, locally) as its first and last day."""
    if not month:
        today = timeutil.local_today(settings.timezone)
        start = today.replace(day=1)
    else:
        try:
            start = dt.date.fromisoformat(f"{str(month).strip()[:7]}-01")
        except ValueError:
            start = None
        if start is None or len(str(month).strip()) != 7:
            raise rules.ProblemsError(
                [(N_("the month must be written like 2026-05, not %(value)s"), {"value": repr(str(month)[:20])})]
            )
    end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return start, end


#: Visits between ``:a`` and ``:b`` (instants): findings, case steps by patrol members and inspectors (users
#: holding one of ``:roles``) at the case's place, and "patrolled here" check-ins.  Columns kind, geom, at.
VISITS_SQL = """
    SELECT 'finding' AS kind, r.geom, f.found_at AS at FROM inspection_finding f JOIN report r ON r.id = f.report_id
    WHERE f.found_at >= :a AND f.found_at < :b
    UNION ALL
    SELECT 'case_step', r.geom, e.at FROM case_event e JOIN report r ON r.id = e.report_id
    WHERE e.at >= :a AND e.at < :b AND r.geom IS NOT NULL
      AND e.actor_user_id IN (SELECT g.user_id FROM role_grant g WHERE g.role = ANY(:roles))
    UNION ALL
    SELECT 'checkin', c.geom, c.at FROM patrol_checkin c WHERE c.at >= :a AND c.at < :b"""


def coverage(
    conn: sa.Connection, scope: Scope, settings: Settings, *, start: dt.date, end: dt.date, town_id: int | None = None
) -> dict:
    """Which segments and cells nobody inspected or patrolled between ``start`` and ``end`` (local days, inclusive).

    A unit is *visited* when, in the period, a finding was recorded in it, a
    patrol member or inspector (a user with the inspector or 网格员 role) took
    a step on a case located in it (``case_event``), or someone checked in
    there ("patrolled here" on the phone page).  Limited to what the user sees
    (and to one town when ``town_id`` is given).

    Returns ``{"segments": GeoDataFrame, "cells": GeoDataFrame, "visits":
    GeoDataFrame, "totals": {...}}``; the unit frames hold every unit with a
    boolean ``visited`` and ``visits`` (count).
    """
    tz = settings.timezone
    params = {
        "a": timeutil.day_start(start, tz),
        "b": timeutil.day_start(end + dt.timedelta(days=1), tz),
        "roles": list(INSPECTOR_ROLES),
        "town": town_id,
        **scope.params(),
    }
    visits_sql = VISITS_SQL
    town_filter_seg = "AND (CAST(:town AS integer) IS NULL OR sj.id = :town OR sj.parent_id = :town)"
    segments = query_geo_frame(
        conn,
        f"""
        WITH v AS ({visits_sql}),
        hit AS (SELECT hg.id, count(*) AS n FROM v JOIN segment hg ON hg.area && v.geom AND ST_Intersects(hg.area, v.geom)
                GROUP BY hg.id)
        SELECT g.id, s.name || ' ' || g.name AS name, sj.name AS town, COALESCE(hit.n, 0) AS visits,
               ST_AsBinary(g.area) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id LEFT JOIN jurisdiction sj ON sj.id = s.jurisdiction_id
        LEFT JOIN hit ON hit.id = g.id
        WHERE g.area IS NOT NULL AND {scope.sql("segment", "g")} {town_filter_seg}
        ORDER BY g.id""",
        params,
    )
    cells = query_geo_frame(
        conn,
        f"""
        WITH v AS ({visits_sql}),
        hit AS (SELECT hc.id, count(*) AS n FROM v JOIN grid_cell hc ON hc.geom && v.geom AND ST_Intersects(hc.geom, v.geom)
                GROUP BY hc.id)
        SELECT c.id, c.code AS name, sj.name AS town, COALESCE(hit.n, 0) AS visits, ST_AsBinary(c.geom) AS geom
        FROM grid_cell c LEFT JOIN jurisdiction sj ON sj.id = c.jurisdiction_id LEFT JOIN hit ON hit.id = c.id
        WHERE {scope.sql("cell", "c")} {town_filter_seg}
        ORDER BY c.id""",
        params,
    )
    visits = query_geo_frame(
        conn,
        f"""WITH v AS ({visits_sql}) SELECT v.kind, v.at, ST_AsBinary(v.geom) AS geom FROM v
            WHERE EXISTS (SELECT 1 FROM jurisdiction sj WHERE sj.geom && v.geom AND ST_Intersects(sj.geom, v.geom)
                          AND {scope.sql("jurisdiction", "sj")}
                          AND (CAST(:town AS integer) IS NULL OR sj.id = :town))
            ORDER BY v.at LIMIT 5000""",
        params,
    )
    for frame in (segments, cells):
        frame["visits"] = frame["visits"].astype(int)
        frame["visited"] = frame["visits"] > 0
    totals = {
        "segments": len(segments),
        "segments_unvisited": int((~segments["visited"]).sum()),
        "cells": len(cells),
        "cells_unvisited": int((~cells["visited"]).sum()),
        "visits": len(visits),
    }
    return {"segments": segments, "cells": cells, "visits": visits, "totals": totals}


def coverage_towns(conn: sa.Connection, scope: Scope) -> list[dict]:
    """Towns the coverage page offers (those holding something the user sees)."""
    rows = conn.execute(
        sa.text(
            f"SELECT t.id, t.code, t.name FROM jurisdiction t WHERE t.level = 'town' AND {scope.towns_sql('t')} "
            "ORDER BY t.code"
        ),  # fmt: skip
        scope.params(),
    ).mappings()
    return [dict(r) for r in rows]
