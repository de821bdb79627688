"""Overdue cases climb the chain, and assignees are warned before their deadline (the ``cases_tick`` job).

The levels are :func:`gisgrid.cases.workflow.escalation_levels`; who holds each level over a case is the
segment's chain (``owner_chain_on``), else the chiefs of the case's jurisdiction and above.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.cases import trail
from gisgrid.cases import workflow as wf
from gisgrid.config import Settings
from gisgrid.db import sql

LOGGER = logging.getLogger(__name__)


#: Who takes the system's steps (escalation, deadline warnings).
SYSTEM_ACTOR = Actor.system("gisgrid (escalation)")


def _chain_people(conn: sa.Connection, cases: pd.DataFrame, day: dt.date) -> dict[tuple[int, str], int]:
    """(case id, chain role) → person holding that role over the case on ``day``: the segment's chain
    (``owner_chain_on``), else the case's jurisdiction and its parents."""
    if cases.empty:
        return {}
    params = {
        "day": day,
        "ids": cases["id"].astype(int).tolist(),
        "segs": sorted({int(s) for s in cases["assigned_segment_id"].dropna()}),
    }
    rows = conn.execute(
        sa.text(f"""
        SELECT c.id, ch.role, ch.person_id
        FROM report c JOIN {sql.owner_chain_on(":day", ":segs")} ch ON ch.segment_id = c.assigned_segment_id
        WHERE c.id = ANY(CAST(:ids AS integer[])) AND ch.person_id IS NOT NULL"""),
        params,
    ).all()
    # a case routed to a cell, a jurisdiction or a department: the chiefs of its jurisdiction and above
    rows += conn.execute(
        sa.text(f"""
        SELECT DISTINCT ON (c.id, a.role) c.id, a.role, a.person_id
        FROM report c
        JOIN jurisdiction j1 ON j1.id = c.jurisdiction_id
        LEFT JOIN jurisdiction j2 ON j2.id = j1.parent_id
        CROSS JOIN LATERAL (VALUES (j1.id, 1), (j2.id, 2), (j2.parent_id, 3)) AS up(jid, depth)
        JOIN {sql.owner_on(":day")} a ON a.target_type = 'jurisdiction' AND a.target_id = up.jid
        WHERE c.id = ANY(CAST(:ids AS integer[])) AND c.assigned_segment_id IS NULL AND a.person_id IS NOT NULL
          AND a.role IN ('二级街长', '一级街长', '总街长')
        ORDER BY c.id, a.role, up.depth, a.valid_from DESC, a.id DESC"""),
        params,
    ).all()
    out: dict[tuple[int, str], int] = {}
    for cid, role, pid in rows:
        out.setdefault((int(cid), role), int(pid))
    return out


def escalate_overdue(conn: sa.Connection, settings: Settings, *, now: dt.datetime | None = None) -> dict:
    """Escalate every overdue dispatched case whose level has risen (:func:`gisgrid.cases.workflow.escalation_levels`).

    Each escalation is an event by gisgrid, bumps the case's version, names
    the chief it reached (``escalated_person_id``: they then see it in their
    list) and puts it in their inbox.  A level whose role nobody holds on the
    case's chain is recorded, and the case goes to the nearest chief below it
    who exists.  Cases locked by a person's step right now are left for the
    next run.  Returns counts.
    """
    now = now or trail.now(conn)
    multiples = wf.parse_multiples(settings.escalation_multiples)
    cases = pd.read_sql_query(
        sa.text("""
        SELECT id, reported_at, due_at, escalation_level, escalated_person_id, assigned_segment_id, jurisdiction_id,
               version, status, frontage_unit_id IS NOT NULL AND assigned_segment_id IS NOT NULL AS unit_case
        FROM report WHERE status = 'dispatched' AND due_at < :now
        FOR UPDATE SKIP LOCKED"""),
        conn,
        params={"now": now},
    )
    if cases.empty:
        return {"checked": 0, "escalated": 0}
    # a frontage unit's case (门前三包) climbs to its segment chief first, then the usual chain
    unit = cases["unit_case"].to_numpy(dtype=bool)
    reached = np.where(
        unit,
        wf.escalation_levels(cases["reported_at"], cases["due_at"], now, wf.unit_multiples(multiples),
                             roles=wf.UNIT_ESCALATION_ROLES),
        wf.escalation_levels(cases["reported_at"], cases["due_at"], now, multiples),
    )  # fmt: skip
    rising = reached > cases["escalation_level"].to_numpy()
    todo = cases[rising].copy()
    todo["level"] = reached[rising]
    people = _chain_people(conn, todo, timeutil.local_today(settings.timezone))
    escalated = 0
    for rec in todo.itertuples():  # per case: each escalation is its own event and inbox row
        level = int(rec.level)
        roles = wf.UNIT_ESCALATION_ROLES if rec.unit_case else wf.ESCALATION_ROLES
        person = None
        holder_level = None
        for k in range(level, 0, -1):
            person = people.get((int(rec.id), roles[k]))
            if person is not None:
                holder_level = k
                break
        if person is None and not pd.isna(rec.escalated_person_id):
            person = int(rec.escalated_person_id)
        version = int(rec.version) + 1
        conn.execute(
            sa.text("""
            UPDATE report SET escalation_level = :lvl, escalated_person_id = :p, escalated_at = :now, version = :v,
                   updated_at = :now WHERE id = :id"""),
            {"lvl": level, "p": person, "now": now, "v": version, "id": int(rec.id)},
        )
        detail = {
            "from_level": int(rec.escalation_level),
            "to_level": level,
            "role": roles[level],
            "person_id": person,
        }
        if holder_level is not None and holder_level != level:
            detail["held_by"] = roles[holder_level]
        elif holder_level is None:
            detail["nobody"] = True
        trail.record_event(conn, int(rec.id), SYSTEM_ACTOR, "escalate", rec.status, rec.status, version, detail=detail)
        trail.notify(
            conn, int(rec.id), "escalated", person_id=person, detail=detail, dedupe=f"escalated:{rec.id}:{level}"
        )
        escalated += 1
    if escalated:
        record_action(
            conn, SYSTEM_ACTOR, "case.escalate", target_type="case", detail={"cases": todo["id"].astype(int).tolist()}
        )
    return {"checked": len(cases), "escalated": escalated}


def warn_deadlines(conn: sa.Connection, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """An inbox row for the assignee of every dispatched case with less than
    :data:`~gisgrid.cases.workflow.WARN_SHARE` of its time left (once per case and deadline)."""
    now = now or trail.now(conn)
    return conn.execute(
        sa.text("""
        INSERT INTO notification (person_id, department_id, report_id, kind, detail, dedupe)
        SELECT CASE WHEN r.assignee_department_id IS NULL THEN r.assignee_person_id END, r.assignee_department_id,
               r.id, 'deadline_near', jsonb_build_object('due_at', r.due_at),
               'near:' || r.id || ':' || extract(epoch FROM r.due_at)::bigint
        FROM report r
        WHERE r.status = 'dispatched' AND r.due_at > :now AND r.due_at < :now + (r.due_at - r.reported_at) * :share
          AND (r.assignee_person_id IS NOT NULL OR r.assignee_department_id IS NOT NULL)
        ON CONFLICT (dedupe) DO NOTHING"""),
        {"now": now, "share": wf.WARN_SHARE},
    ).rowcount


def tick(conn: sa.Connection, settings: Settings, *, now: dt.datetime | None = None) -> dict:
    """The periodic check (the ``cases_tick`` job, ``gisgrid cases tick``): escalate, then warn."""
    out = escalate_overdue(conn, settings, now=now)
    out["warned"] = warn_deadlines(conn, settings, now=now)
    return out
