"""The trail a case leaves: its events (``case_event``), the inbox rows (``notification``) and the inbox.

Every function takes a connection and works in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import Actor, User

LOGGER = logging.getLogger(__name__)


def now(conn: sa.Connection) -> dt.datetime:
    return conn.execute(sa.text("SELECT now()")).scalar()


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


# --- events and notifications ----------------------------------------------------------------------------
def record_event(
    conn: sa.Connection,
    case_id: int,
    actor: Actor,
    action: str,
    from_status: str | None,
    to_status: str | None,
    version: int | None,
    *,
    note: str | None = None,
    reason: str | None = None,
    detail: dict | None = None,
) -> int:
    return conn.execute(
        sa.text("""
        INSERT INTO case_event (report_id, actor_user_id, actor_person_id, actor_name, action, from_status, to_status,
                                version, note, reason, detail)
        VALUES (:r, :u, :p, :n, :a, :f, :t, :v, :note, :reason, CAST(:detail AS jsonb)) RETURNING id"""),
        {
            "r": case_id,
            "u": actor.user_id,
            "p": actor.person_id,
            "n": actor.name,
            "a": action,
            "f": from_status,
            "t": to_status,
            "v": version,
            "note": note,
            "reason": reason,
            "detail": _json(detail),
        },
    ).scalar()


def notify(
    conn: sa.Connection,
    case_id: int,
    kind: str,
    *,
    person_id: int | None = None,
    department_id: int | None = None,
    detail: dict | None = None,
    dedupe: str | None = None,
) -> None:
    if person_id is None and department_id is None:
        return
    conn.execute(
        sa.text("""
        INSERT INTO notification (person_id, department_id, report_id, kind, detail, dedupe)
        VALUES (:p, :d, :r, :k, CAST(:detail AS jsonb), :dedupe) ON CONFLICT (dedupe) DO NOTHING"""),
        {
            "p": person_id if department_id is None else None,
            "d": department_id,
            "r": case_id,
            "k": kind,
            "detail": _json(detail),
            "dedupe": dedupe,
        },
    )


def notify_role(conn: sa.Connection, case_id: int, role: str, kind: str, *, version: int, detail: dict) -> int:
    """An inbox row for every active account holding ``role`` over the case's place (a grant on its
    jurisdiction or above, or everywhere): a "not ours" for the dispatchers, a request for more time for
    the managers.  Returns how many were told."""
    return conn.execute(
        sa.text("""
        INSERT INTO notification (person_id, report_id, kind, detail, dedupe)
        SELECT DISTINCT u.person_id, :r, :k, CAST(:detail AS jsonb), :k || ':' || :r || ':' || u.person_id || ':' || :v
        FROM user_account u JOIN role_grant g ON g.user_id = u.id AND g.role = :role
        WHERE u.active AND (g.jurisdiction_id IS NULL OR (SELECT c.jurisdiction_id FROM report c WHERE c.id = :r) IN (
            WITH RECURSIVE t(id) AS (SELECT g.jurisdiction_id
                                     UNION SELECT j.id FROM jurisdiction j JOIN t ON j.parent_id = t.id)
            SELECT id FROM t))
        ON CONFLICT (dedupe) DO NOTHING"""),
        {"r": case_id, "k": kind, "role": role, "v": version, "detail": _json(detail)},
    ).rowcount


# --- the inbox ------------------------------------------------------------------------------
def _recipient_sql(alias: str = "n") -> str:
    return f"({alias}.person_id = :me OR {alias}.department_id = ANY(CAST(:my_depts AS integer[])))"


def _recipient_params(user: User) -> dict:
    return {
        "me": user.person_id,
        "my_depts": [g.department_id for g in user.grants if g.role == "department" and g.department_id],
    }


def inbox(
    conn: sa.Connection, user: User, scope: Scope, *, unread_only: bool = False, limit: int = 100
) -> pd.DataFrame:
    """The user's inbox, newest first: rows for their person or their departments, on cases they see."""
    frame = pd.read_sql_query(
        sa.text(f"""
        SELECT n.id, n.kind, n.created_at, n.read_at, n.detail, n.report_id, c.status, c.due_at, c.address,
               cat.code AS category, cat.name AS category_name, cat.name_en AS category_name_en
        FROM notification n JOIN report c ON c.id = n.report_id LEFT JOIN category cat ON cat.id = c.category_id
        WHERE {_recipient_sql()} AND {scope.case_sql("c")} {"AND n.read_at IS NULL" if unread_only else ""}
        ORDER BY n.id DESC LIMIT :limit"""),
        conn,
        params={**_recipient_params(user), **scope.params(), "limit": max(1, min(int(limit), 1000))},
    )
    return frame


def unread_count(conn: sa.Connection, user: User) -> int:
    return int(
        conn.execute(
            sa.text(f"SELECT count(*) FROM notification n WHERE {_recipient_sql()} AND n.read_at IS NULL"),
            _recipient_params(user),
        ).scalar()
    )


def mark_read(conn: sa.Connection, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (``ids`` None: all of them); returns how many changed."""
    params = _recipient_params(user)
    only = ""
    if ids is not None:
        only = "AND n.id = ANY(CAST(:ids AS bigint[]))"
        params["ids"] = [int(i) for i in ids]
    return conn.execute(
        sa.text(f"UPDATE notification n SET read_at = now() WHERE {_recipient_sql()} AND n.read_at IS NULL {only}"),
        params,
    ).rowcount
