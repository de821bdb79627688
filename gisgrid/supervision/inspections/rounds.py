"""Reading inspection rounds as the user sees them (``Scope.round_sql``): the list, one round, the open rounds of
an inspector, a round's units, findings and stored scores.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.roles import INSPECTOR_ROLES
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import User
from gisgrid.config import Settings
from gisgrid.db.frames import query_geo_frame
from gisgrid.errors import NotFound
from gisgrid.supervision import inspection as rules
from gisgrid.supervision.inspections.patrol import VISITS_SQL

LOGGER = logging.getLogger(__name__)


#: The columns of a round row the pages show.
_ROUND_COLUMNS = """
    r.id, r.kind, r.name, r.period_start, r.period_end, r.scope_kind, r.scope_ids, r.jurisdiction_id,
    j.name AS jurisdiction_name, r.sample_kind, r.sample_size, r.seed, r.note, r.created_by, r.created_at,
    r.ended_at, r.ended_by, r.rule,
    (SELECT count(*) FROM inspection_finding f WHERE f.round_id = r.id) AS findings,
    (SELECT count(*) FROM inspection_target t WHERE t.round_id = r.id) AS targets"""


def list_rounds(conn: sa.Connection, scope: Scope, *, limit: int = 200) -> list[dict]:
    """The rounds the user sees, newest period first."""
    rows = conn.execute(
        sa.text(f"""SELECT {_ROUND_COLUMNS} FROM inspection_round r LEFT JOIN jurisdiction j ON j.id = r.jurisdiction_id
                    WHERE {scope.round_sql("r")} ORDER BY r.period_start DESC, r.id DESC LIMIT :lim"""),
        {"lim": limit, **scope.params()},
    ).mappings()
    return [dict(r) for r in rows]


def get_round(conn: sa.Connection, scope: Scope, round_id: int) -> dict:
    """One round with its inspectors; :class:`NotFound` when it does not exist or the user may not see it."""
    row = (
        conn.execute(
            sa.text(f"""SELECT {_ROUND_COLUMNS} FROM inspection_round r
                        LEFT JOIN jurisdiction j ON j.id = r.jurisdiction_id
                        WHERE r.id = :id AND {scope.round_sql("r")}"""),
            {"id": round_id, **scope.params()},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no inspection round {round_id}")
    out = dict(row)
    out["inspectors"] = [
        dict(r)
        for r in conn.execute(
            sa.text("""SELECT u.id, u.username, COALESCE(p.name, u.username) AS name FROM inspection_inspector i
                       JOIN user_account u ON u.id = i.user_id LEFT JOIN person p ON p.id = u.person_id
                       WHERE i.round_id = :r ORDER BY u.username"""),
            {"r": round_id},
        ).mappings()
    ]
    out["scope_names"] = _scope_names(conn, out["scope_kind"], out["scope_ids"])
    return out


def _scope_names(conn: sa.Connection, kind: str, ids: Sequence[int]) -> list[str]:
    sql = {
        "town": "SELECT name FROM jurisdiction WHERE id = ANY(:ids) ORDER BY code",
        "street": "SELECT name FROM street WHERE id = ANY(:ids) ORDER BY name",
        "cell": "SELECT code FROM grid_cell WHERE id = ANY(:ids) ORDER BY code",
    }[kind]
    return list(conn.execute(sa.text(sql), {"ids": list(ids)}).scalars())


def is_open(rnd: Mapping, today: dt.date) -> bool:
    """A round takes findings while it has not ended and ``today`` is in its period."""
    return rnd["ended_at"] is None and rnd["period_start"] <= today <= rnd["period_end"]


def open_rounds_for(conn: sa.Connection, user: User, today: dt.date) -> list[dict]:
    """Rounds ``user`` inspects that are open on ``today`` (the phone page's choice)."""
    rows = conn.execute(
        sa.text("""SELECT r.id, r.kind, r.name, r.period_start, r.period_end FROM inspection_round r
                   JOIN inspection_inspector i ON i.round_id = r.id AND i.user_id = :u
                   WHERE r.ended_at IS NULL AND :d BETWEEN r.period_start AND r.period_end
                   ORDER BY r.period_end, r.id"""),
        {"u": user.id, "d": today},
    ).mappings()
    return [dict(r) for r in rows]


def round_targets(conn: sa.Connection, round_id: int, settings: Settings | None = None) -> gpd.GeoDataFrame:
    """The round's units as areas (``unit_kind``, ``unit_id``, ``name``, ``rank``, ``findings``, ``visits``).

    ``visits`` counts what :func:`coverage` counts, within the round's period
    (up to now): a unit of the round nobody has visited yet shows on its map.
    """
    rnd = conn.execute(
        sa.text("SELECT period_start, period_end FROM inspection_round WHERE id = :r"), {"r": round_id}
    ).one()
    tz = settings.timezone if settings is not None else "UTC"
    return query_geo_frame(
        conn,
        f"""
        WITH v AS ({VISITS_SQL}),
        t AS (SELECT t.*, COALESCE(g.area, ST_Multi(ST_Buffer(CAST(g.geom AS geography), 8)::geometry), c.geom) AS shape,
                     COALESCE(s.name || ' ' || g.name, c.code) AS name
              FROM inspection_target t
              LEFT JOIN segment g ON t.unit_kind = 'segment' AND g.id = t.unit_id
              LEFT JOIN street s ON s.id = g.street_id
              LEFT JOIN grid_cell c ON t.unit_kind = 'cell' AND c.id = t.unit_id
              WHERE t.round_id = :r)
        SELECT t.unit_kind, t.unit_id, t.rank, t.name,
               (SELECT count(*) FROM inspection_finding f WHERE f.round_id = t.round_id
                AND ((t.unit_kind = 'segment' AND f.segment_id = t.unit_id)
                     OR (t.unit_kind = 'cell' AND f.cell_id = t.unit_id))) AS findings,
               (SELECT count(*) FROM v WHERE v.geom && t.shape AND ST_Intersects(t.shape, v.geom)) AS visits,
               ST_AsBinary(t.shape) AS geom
        FROM t ORDER BY t.rank NULLS LAST, t.unit_kind, t.unit_id""",
        {
            "r": round_id,
            "a": timeutil.day_start(rnd.period_start, tz),
            "b": timeutil.day_start(rnd.period_end + dt.timedelta(days=1), tz),
            "roles": list(INSPECTOR_ROLES),
        },
    )


def round_findings(conn: sa.Connection, scope: Scope, round_id: int) -> pd.DataFrame:
    """The round's findings with their cases (the round must be visible: :func:`get_round` first)."""
    get_round(conn, scope, round_id)
    return pd.read_sql_query(
        sa.text("""
        SELECT f.id, f.report_id, f.found_at, i.name AS item, i.name_en AS item_en, r.status, r.due_at, r.closed_at,
               r.address, r.description, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat,
               COALESCE(p.name, d.name) AS owner, f.repeat_of_id, u.username AS inspector
        FROM inspection_finding f JOIN report r ON r.id = f.report_id
        JOIN inspection_checklist_item i ON i.id = f.item_id
        LEFT JOIN person p ON p.id = f.person_id LEFT JOIN department d ON d.id = f.department_id
        LEFT JOIN user_account u ON u.id = f.inspector_user_id
        WHERE f.round_id = :r ORDER BY f.found_at, f.id"""),
        conn,
        params={"r": round_id},
    )


def round_score_table(conn: sa.Connection, scope: Scope, round_id: int, unit_kind: str | None = None) -> pd.DataFrame:
    """The stored scores of an ended round (worst first), optionally of one unit kind."""
    get_round(conn, scope, round_id)
    return pd.read_sql_query(
        sa.text("""
        SELECT unit_kind, unit_id, unit_name, CAST(score AS float) AS score, CAST(deductions AS float) AS deductions,
               CAST(found_deductions AS float) AS found_deductions,
               CAST(overdue_deductions AS float) AS overdue_deductions,
               CAST(repeat_deductions AS float) AS repeat_deductions, findings, overdue, repeats
        FROM inspection_score WHERE round_id = :r AND (CAST(:k AS text) IS NULL OR unit_kind = :k)
        ORDER BY array_position(CAST(:kinds AS text[]), unit_kind), score, unit_name, unit_id"""),
        conn,
        params={"r": round_id, "k": unit_kind, "kinds": list(rules.UNIT_KINDS)},
    )
