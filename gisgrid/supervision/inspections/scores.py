"""Ending a round and its scores: 100 minus the deductions per unit (``inspection_score``), and the stored scores
the rankings read (:func:`round_scores`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.errors import Conflict
from gisgrid.supervision import inspection as rules
from gisgrid.supervision.inspections.checklist import checklist
from gisgrid.supervision.inspections.rounds import get_round

LOGGER = logging.getLogger(__name__)


def end_round(
    conn: sa.Connection, actor: Actor, scope: Scope, round_id: int, *, now: dt.datetime | None = None
) -> dict:
    """End a round and store its scores (``inspection_score``): 100 minus the deductions per unit, never below 0.

    A finding is *overdue* when its case (or the case it was merged into) was
    not closed by its deadline at ``now``.  The deductions used are stored
    with the round (``rule``), so later edits of the checklist do not change
    an ended round.  Returns counts per unit kind.  Ending a round twice is a
    :class:`Conflict`.
    """
    rnd = get_round(conn, scope, round_id)
    locked = conn.execute(
        sa.text("SELECT ended_at FROM inspection_round WHERE id = :r FOR UPDATE"), {"r": round_id}
    ).scalar()
    if locked is not None or rnd["ended_at"] is not None:
        raise Conflict(f"round {round_id} has ended already")
    now = now or conn.execute(sa.text("SELECT now()")).scalar()
    findings = pd.read_sql_query(
        sa.text("""
        SELECT f.id, f.item_id, CAST(i.found AS float) AS found, CAST(i.overdue AS float) AS overdue_points,
               CAST(i.repeat AS float) AS repeat_points, f.repeat_of_id IS NOT NULL AS repeat,
               COALESCE(m.due_at, r.due_at) IS NOT NULL
                 AND COALESCE(m.closed_at, r.closed_at, CAST(:now AS timestamptz)) > COALESCE(m.due_at, r.due_at)
                 AND r.status <> 'rejected' AS overdue,
               f.segment_id, f.street_id, f.cell_id, f.person_id, f.department_id, f.community_id, f.town_id,
               r.frontage_unit_id
        FROM inspection_finding f JOIN inspection_checklist_item i ON i.id = f.item_id
        JOIN report r ON r.id = f.report_id LEFT JOIN report m ON m.id = r.merged_into_id
        WHERE f.round_id = :r ORDER BY f.id"""),
        conn,
        params={"r": round_id, "now": now},
    )
    covered = _covered_units(conn, round_id, rnd["period_end"])
    scores = rules.unit_scores(rules.finding_deductions(findings), covered)
    scores["unit_name"] = _unit_names(conn, scores)
    conn.execute(sa.text("DELETE FROM inspection_score WHERE round_id = :r"), {"r": round_id})
    if len(scores):
        records = scores.assign(round_id=round_id).to_dict("records")
        conn.execute(
            sa.text("""
            INSERT INTO inspection_score (round_id, unit_kind, unit_id, unit_name, score, deductions, found_deductions,
                                          overdue_deductions, repeat_deductions, findings, overdue, repeats)
            VALUES (:round_id, :unit_kind, :unit_id, :unit_name, :score, :deductions, :found_deductions,
                    :overdue_deductions, :repeat_deductions, :findings, :overdue, :repeats)"""),
            records,
        )
    rule = {
        "version": "inspection-deductions-1",
        "full": rules.FULL_SCORE,
        "repeat_days": rules.REPEAT_DAYS,
        "items": {
            str(r["id"]): [r["found"], r["overdue"], r["repeat"]]
            for r in checklist(conn)
            if r["id"] in set(findings["item_id"])
        },
        "ended_at": str(now),
    }
    conn.execute(
        sa.text(
            "UPDATE inspection_round SET ended_at = :now, ended_by = :by, rule = CAST(:rule AS jsonb) WHERE id = :r"
        ),  # fmt: skip
        {"now": now, "by": actor.name, "rule": json.dumps(rule, ensure_ascii=False), "r": round_id},
    )
    summary = {k: int((scores["unit_kind"] == k).sum()) for k in rules.UNIT_KINDS}
    record_action(conn, actor, "inspection.end", target_type="inspection_round", target_id=round_id,
                  after={"findings": len(findings), "scores": summary})  # fmt: skip
    return {"findings": len(findings), "overdue": int(findings["overdue"].sum()) if len(findings) else 0, **summary}


def _covered_units(conn: sa.Connection, round_id: int, day: dt.date) -> dict[str, list[int]]:
    """Units the round covered (scored 100 without a finding): its targets, their streets, communities, towns,
    and their owners on the round's last day (段长 of segments, 网格员/网格长 of cells)."""
    rows = conn.execute(
        sa.text("""
        WITH t AS (SELECT unit_kind, unit_id FROM inspection_target WHERE round_id = :r),
        places AS (
            SELECT s.jurisdiction_id AS jid FROM t JOIN segment g ON t.unit_kind = 'segment' AND g.id = t.unit_id
                   JOIN street s ON s.id = g.street_id
            UNION SELECT c.jurisdiction_id FROM t JOIN grid_cell c ON t.unit_kind = 'cell' AND c.id = t.unit_id),
        owners AS (
            SELECT o.person_id, o.department_id FROM t JOIN owner_on(CAST(:d AS date)) o
                   ON o.target_type = t.unit_kind AND o.target_id = t.unit_id
                   AND o.role IN ('段长', '网格员', '网格长'))
        SELECT 'segment' AS k, unit_id AS id FROM t WHERE unit_kind = 'segment'
        UNION ALL SELECT 'cell', unit_id FROM t WHERE unit_kind = 'cell'
        UNION SELECT 'street', g.street_id FROM t JOIN segment g ON t.unit_kind = 'segment' AND g.id = t.unit_id
        UNION SELECT 'community', j.id FROM places p JOIN jurisdiction j ON j.id = p.jid WHERE j.level = 'community'
        UNION SELECT 'town', CASE WHEN j.level = 'town' THEN j.id ELSE j.parent_id END FROM places p
              JOIN jurisdiction j ON j.id = p.jid WHERE j.level IN ('town', 'community')
        UNION SELECT 'frontage', u.id FROM t JOIN frontage_unit u ON t.unit_kind = 'segment' AND u.segment_id = t.unit_id
        UNION SELECT 'person', person_id FROM owners WHERE person_id IS NOT NULL
        UNION SELECT 'department', department_id FROM owners WHERE department_id IS NOT NULL"""),
        {"r": round_id, "d": day},
    ).all()
    out: dict[str, list[int]] = {k: [] for k in rules.UNIT_KINDS}
    for kind, uid in rows:
        if uid is not None:
            out[kind].append(int(uid))
    return out


def _unit_names(conn: sa.Connection, scores: pd.DataFrame) -> list[str | None]:
    names: dict[tuple[str, int], str] = {}
    sql = {
        "town": "SELECT id, name FROM jurisdiction WHERE id = ANY(:ids)",
        "community": "SELECT id, name FROM jurisdiction WHERE id = ANY(:ids)",
        "street": "SELECT id, name FROM street WHERE id = ANY(:ids)",
        "segment": "SELECT g.id, s.name || ' ' || g.name FROM segment g JOIN street s ON s.id = g.street_id "
        "WHERE g.id = ANY(:ids)",
        "cell": "SELECT id, code FROM grid_cell WHERE id = ANY(:ids)",
        "person": "SELECT id, name FROM person WHERE id = ANY(:ids)",
        "department": "SELECT id, name FROM department WHERE id = ANY(:ids)",
        "frontage": "SELECT id, name FROM frontage_unit WHERE id = ANY(:ids)",
    }
    for kind, q in sql.items():
        ids = [int(i) for i in scores.loc[scores["unit_kind"] == kind, "unit_id"]]
        if ids:
            for uid, name in conn.execute(sa.text(q), {"ids": ids}):
                names[(kind, uid)] = name
    return [names.get((k, int(i))) for k, i in zip(scores["unit_kind"], scores["unit_id"])]


def round_scores(conn: sa.Connection, period_start: dt.date, period_end: dt.date, unit_kind: str) -> list[dict]:
    """The stored scores of the ended rounds whose period lies within ``[period_start, period_end]``.

    For the rankings (their "inspection scores" indicator, and rounds
    combined with weights such as 40 / 60).  No user scope applies: the
    caller is the ranking job.

    Parameters
    ----------
    period_start, period_end : date
        Inclusive; a round counts when ``period_start <= round.period_start``
        and ``round.period_end <= period_end``.
    unit_kind : {'person', 'department', 'segment', 'street', 'cell', 'community', 'town', 'frontage'}

    Returns
    -------
    list of dict
        One per (round, unit), ordered by the round's period end, round id,
        unit id: ``round_id``, ``round_kind`` (announced / unannounced),
        ``round_name``, ``period_start``, ``period_end``, ``ended_at``,
        ``unit_kind``, ``unit_id``, ``unit_name``, ``score`` (float, 0–100),
        ``deductions``, ``found_deductions``, ``overdue_deductions``,
        ``repeat_deductions``, ``findings``, ``overdue``, ``repeats``.
    """
    if unit_kind not in rules.UNIT_KINDS:
        raise ValueError(f"unit_kind must be one of {', '.join(rules.UNIT_KINDS)}, got {unit_kind!r}")
    rows = conn.execute(
        sa.text("""
        SELECT s.round_id, r.kind AS round_kind, r.name AS round_name, r.period_start, r.period_end, r.ended_at,
               s.unit_kind, s.unit_id, s.unit_name, CAST(s.score AS float) AS score,
               CAST(s.deductions AS float) AS deductions, CAST(s.found_deductions AS float) AS found_deductions,
               CAST(s.overdue_deductions AS float) AS overdue_deductions,
               CAST(s.repeat_deductions AS float) AS repeat_deductions, s.findings, s.overdue, s.repeats
        FROM inspection_score s JOIN inspection_round r ON r.id = s.round_id
        WHERE r.ended_at IS NOT NULL AND s.unit_kind = :k AND r.period_start >= :a AND r.period_end <= :b
        ORDER BY r.period_end, r.id, s.unit_id"""),
        {"k": unit_kind, "a": period_start, "b": period_end},
    ).mappings()
    return [dict(r) for r in rows]
