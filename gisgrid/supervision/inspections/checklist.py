"""The inspection checklist: one item per category with its deductions (per problem found, not fixed in time,
reported before), and the form that sets them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import sqlalchemy as sa

from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.supervision import inspection as rules
from gisgrid.supervision.inspection import N_

LOGGER = logging.getLogger(__name__)


def ensure_checklist(conn: sa.Connection) -> int:
    """One checklist item per category that has none, with the default deductions; returns how many were added."""
    return conn.execute(
        sa.text("""
        INSERT INTO inspection_checklist_item (category_id, name, name_en, found, overdue, repeat)
        SELECT c.id, c.name, c.name_en, :found, :overdue, :repeat FROM category c
        WHERE NOT EXISTS (SELECT 1 FROM inspection_checklist_item i WHERE i.category_id = c.id)
        ORDER BY c.code"""),
        {"found": rules.DEFAULT_FOUND, "overdue": rules.DEFAULT_OVERDUE, "repeat": rules.DEFAULT_REPEAT},
    ).rowcount


def checklist(conn: sa.Connection, *, active_only: bool = False) -> list[dict]:
    """The checklist items with their category and deductions, by category code."""
    rows = conn.execute(
        sa.text(f"""
        SELECT i.id, i.name, i.name_en, CAST(i.found AS float) AS found, CAST(i.overdue AS float) AS overdue,
               CAST(i.repeat AS float) AS repeat, i.active, c.code AS category, c.name AS category_name,
               c.name_en AS category_name_en
        FROM inspection_checklist_item i LEFT JOIN category c ON c.id = i.category_id
        {"WHERE i.active" if active_only else ""}
        ORDER BY c.code NULLS LAST, i.id""")
    ).mappings()
    return [dict(r) for r in rows]


def update_checklist(conn: sa.Connection, actor: Actor, values: Mapping[str, object]) -> int:
    """Set the deductions of the checklist from a form (``found_<id>``, ``overdue_<id>``, ``repeat_<id>``,
    ``active_<id>``): every value is checked first, and nothing is written when one is bad
    (:class:`InputError` naming each).  Returns how many items changed; the change is in the audit log."""
    items = checklist(conn)
    problems: rules.Problems = []
    new: dict[int, tuple] = {}
    for item in items:
        i = item["id"]
        if f"found_{i}" not in values:
            continue
        label = item["name"]  # the item's own name: not translated
        found = rules.parse_deduction(values.get(f"found_{i}"), N_("per problem found"), problems, item=label)
        overdue = rules.parse_deduction(values.get(f"overdue_{i}"), N_("not fixed in time"), problems, item=label)
        repeat = rules.parse_deduction(values.get(f"repeat_{i}"), N_("reported before"), problems, item=label)
        active = str(values.get(f"active_{i}") or "") in ("1", "on", "true")
        new[i] = (found, overdue, repeat, active)
    if problems:
        raise rules.ProblemsError(problems)
    changed = []
    for item in items:
        if item["id"] not in new:
            continue
        found, overdue, repeat, active = new[item["id"]]
        if (found, overdue, repeat, active) == (item["found"], item["overdue"], item["repeat"], item["active"]):
            continue
        conn.execute(
            sa.text(
                "UPDATE inspection_checklist_item SET found = :f, overdue = :o, repeat = :r, active = :a WHERE id = :i"
            ),  # fmt: skip
            {"f": found, "o": overdue, "r": repeat, "a": active, "i": item["id"]},
        )
        changed.append(
            {
                "id": item["id"],
                "before": [item["found"], item["overdue"], item["repeat"], item["active"]],
                "after": [found, overdue, repeat, active],
            }  # fmt: skip
        )
    if changed:
        record_action(conn, actor, "inspection.checklist", target_type="inspection_checklist",
                      detail={"changed": changed})  # fmt: skip
    return len(changed)
