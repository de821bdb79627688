"""What the public pages may show (公示): a segment's board and recent closed cases; a resident's own report.

No personal data beyond what the signboard prints: chiefs' names and phones,
units' names; never a reporter, a description, a photo or an address.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets

import sqlalchemy as sa

from gisgrid.config import Settings
from gisgrid.errors import NotFound
from gisgrid.frontage.signboards import board_for_segment

#: Public case states: what a resident sees of the workflow.
PUBLIC_STATES = {
    "reported": "waiting",
    "accepted": "accepted",
    "rejected": "rejected",
    "dispatched": "in_hand",
    "returned": "accepted",
    "handled": "in_hand",
    "verified": "in_hand",
    "suspended": "in_hand",
    "closed": "closed",
    "merged": "merged",
}


def new_token() -> str:
    """The secret a resident follows their report with (in the link they are given)."""
    return secrets.token_urlsafe(24)


def segment_page(
    conn: sa.Connection, settings: Settings, segment_id: int, *, days: int = 90, day: dt.date | None = None
) -> dict:
    """A segment's public page: its board, the units answering for its frontage, cases closed in ``days`` days."""
    board = board_for_segment(conn, settings, segment_id, day=day)
    units = [
        r[0]
        for r in conn.execute(
            sa.text("SELECT name FROM frontage_unit WHERE segment_id = :s ORDER BY name, id"), {"s": segment_id}
        )
    ]
    closed = [
        dict(r._mapping)
        for r in conn.execute(
            sa.text("""
            SELECT r.id, c.name AS category, c.name_en AS category_en, r.reported_at, r.closed_at
            FROM report r LEFT JOIN category c ON c.id = r.category_id
            WHERE r.assigned_segment_id = :s AND r.status = 'closed' AND r.closed_at >= now() - make_interval(days => :d)
            ORDER BY r.closed_at DESC LIMIT 30"""),
            {"s": segment_id, "d": int(days)},
        )
    ]
    return {"board": board, "units": units, "closed": closed}


def resident_case(conn: sa.Connection, case_id: int, token: str | None) -> dict:
    """A resident's report by its number and token: state, category, dates; NotFound for a wrong token."""
    row = conn.execute(
        sa.text("""
        SELECT r.id, r.status, r.public_token, r.reported_at, r.closed_at, c.name AS category, c.name_en AS category_en,
               g.name AS segment, s.name AS street, r.assigned_segment_id AS segment_id
        FROM report r LEFT JOIN category c ON c.id = r.category_id LEFT JOIN segment g ON g.id = r.assigned_segment_id
        LEFT JOIN street s ON s.id = g.street_id
        WHERE r.id = :id AND r.source = 'public'"""),
        {"id": int(case_id)},
    ).first()
    if row is None or not token or not row.public_token or not hmac.compare_digest(row.public_token, str(token)):
        raise NotFound(f"no report {case_id} with this link")
    out = dict(row._mapping)
    out.pop("public_token")
    out["state"] = PUBLIC_STATES.get(out["status"], "accepted")
    return out
