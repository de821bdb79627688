"""Planning an inspection round: who may inspect, which places the planner may choose, the units a scope covers,
the sample drawn (:func:`gisgrid.supervision.inspection.draw_sample`) and the round's rows.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa

from gisgrid.accounts.roles import INSPECTOR_ROLES
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.supervision import inspection as rules
from gisgrid.supervision.inspection import N_

LOGGER = logging.getLogger(__name__)


def inspector_choices(conn: sa.Connection) -> list[dict]:
    """Active users holding the inspector (督查员) or patrol (网格员) role: who may inspect a round."""
    rows = conn.execute(
        sa.text("""
        SELECT u.id, u.username, COALESCE(p.name, u.username) AS name,
               string_agg(DISTINCT g.role, ',' ORDER BY g.role) AS roles
        FROM user_account u JOIN role_grant g ON g.user_id = u.id LEFT JOIN person p ON p.id = u.person_id
        WHERE u.active AND g.role = ANY(:roles)
        GROUP BY u.id, u.username, p.name ORDER BY u.username"""),
        {"roles": list(INSPECTOR_ROLES)},
    ).mappings()
    return [dict(r) for r in rows]


def scope_choices(conn: sa.Connection, scope: Scope) -> dict[str, list[dict]]:
    """Towns and streets the user may put in a round's scope (those they see)."""
    towns = conn.execute(
        sa.text(f"""SELECT t.id, t.code, t.name FROM jurisdiction t
                    WHERE t.level = 'town' AND {scope.sql("jurisdiction", "t")} ORDER BY t.code"""),
        scope.params(),
    ).mappings()
    streets = conn.execute(
        sa.text(f"""SELECT s.id, s.name, j.name AS town FROM street s LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
                    WHERE {scope.sql("street", "s")} ORDER BY j.code, s.name, s.id"""),
        scope.params(),
    ).mappings()
    return {"towns": [dict(r) for r in towns], "streets": [dict(r) for r in streets]}


def _resolve_scope(conn: sa.Connection, scope: Scope, kind: str, ids: Sequence[int]) -> list[int]:
    """The scope's ids checked: each must exist and be seen by the user (:class:`InputError` naming the others)."""
    table, where = {
        "town": ("jurisdiction", "a.level = 'town'"),
        "street": ("street", "true"),
        "cell": ("grid_cell", "true"),
    }[kind]
    unit = {"town": "jurisdiction", "street": "street", "cell": "cell"}[kind]
    found = {
        r[0]
        for r in conn.execute(
            sa.text(f"SELECT a.id FROM {table} a WHERE a.id = ANY(:ids) AND {where} AND {scope.sql(unit, 'a')}"),
            {"ids": list(ids), **scope.params()},
        )
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise rules.ProblemsError(
            [
                (
                    N_("not in your area, or no such place: %(kind)s %(ids)s"),
                    {"kind": kind, "ids": ", ".join(map(str, missing))},
                )
            ]
        )
    return list(ids)


def cells_by_code(conn: sa.Connection, scope: Scope, codes: Iterable[str]) -> list[int]:
    """The ids of grid cells given by their codes (:class:`InputError` naming codes not found in the user's area)."""
    codes = [c.strip() for c in codes if c and c.strip()]
    if not codes:
        return []
    rows = dict(
        conn.execute(
            sa.text(f"SELECT c.code, c.id FROM grid_cell c WHERE c.code = ANY(:codes) AND {scope.sql('cell', 'c')}"),
            {"codes": codes, **scope.params()},
        ).all()
    )
    missing = [c for c in codes if c not in rows]
    if missing:
        raise rules.ProblemsError(
            [(N_("no such cell in your area: %(codes)s"), {"codes": ", ".join(m[:40] for m in missing[:20])})]
        )
    return [rows[c] for c in codes]


def _candidates(conn: sa.Connection, kind: str, scope_kind: str, ids: Sequence[int]) -> dict[str, list[int]]:
    """The segments and cells a scope covers (a town: its streets' segments and its communities' cells)."""
    p = {"ids": list(ids)}
    if scope_kind == "town":
        segs = conn.execute(
            sa.text("""SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id
                       JOIN jurisdiction j ON j.id = s.jurisdiction_id
                       WHERE j.id = ANY(:ids) OR j.parent_id = ANY(:ids) ORDER BY g.id"""),
            p,
        ).scalars()
        cells = conn.execute(
            sa.text("""SELECT c.id FROM grid_cell c JOIN jurisdiction j ON j.id = c.jurisdiction_id
                       WHERE j.id = ANY(:ids) OR j.parent_id = ANY(:ids) ORDER BY c.id"""),
            p,
        ).scalars()
        return {"segment": list(segs), "cell": list(cells)}
    if scope_kind == "street":
        segs = conn.execute(sa.text("SELECT g.id FROM segment g WHERE g.street_id = ANY(:ids) ORDER BY g.id"), p)
        return {"segment": list(segs.scalars()), "cell": []}
    return {"segment": [], "cell": sorted(ids)}


def _round_jurisdiction(conn: sa.Connection, scope_kind: str, ids: Sequence[int]) -> int | None:
    """The lowest jurisdiction holding the whole scope (its managers see the round)."""
    sql = {
        "town": "SELECT unnest(CAST(:ids AS integer[]))",
        "street": "SELECT s.jurisdiction_id FROM street s WHERE s.id = ANY(:ids)",
        "cell": "SELECT c.jurisdiction_id FROM grid_cell c WHERE c.id = ANY(:ids)",
    }[scope_kind]
    places = {r[0] for r in conn.execute(sa.text(sql), {"ids": list(ids)}) if r[0] is not None}
    if not places:
        return None
    parent = dict(conn.execute(sa.text("SELECT id, parent_id FROM jurisdiction")).all())

    def chain(j):
        out = []
        while j is not None and j not in out:
            out.append(j)
            j = parent.get(j)
        return out

    chains = [chain(j) for j in places]
    common = set(chains[0]).intersection(*map(set, chains[1:]))
    return next((j for j in chains[0] if j in common), None)


def plan_round(conn: sa.Connection, actor: Actor, scope: Scope, raw: Mapping[str, object]) -> int:
    """Plan a round from a form or JSON (:func:`gisgrid.supervision.inspection.parse_round_plan`); returns its id.

    The scope's units must be in the planner's sight, the inspectors active
    users with the inspector or patrol (网格员) role.  Without a sample the
    round covers every segment and cell of its scope; with one, the drawn
    units (``inspection_target.rank`` is the draw order).  A sample planned
    without a seed gets a random one, stored with the round.
    """
    raw = dict(raw)
    if raw.get("scope_kind") == "cell" and raw.get("cell_codes") and not raw.get("scope_ids"):
        raw["scope_ids"] = cells_by_code(conn, scope, str(raw["cell_codes"]).replace(",", " ").split())
    plan = rules.parse_round_plan(raw, seed_if_missing=secrets.randbelow(1_000_000_000))
    _resolve_scope(conn, scope, plan.scope_kind, plan.scope_ids)
    allowed = {u["id"] for u in inspector_choices(conn)}
    bad = [i for i in plan.inspector_ids if i not in allowed]
    if bad:
        raise rules.ProblemsError(
            [(N_("not an active inspector or patrol member: user %(ids)s"), {"ids": ", ".join(map(str, bad))})]
        )
    candidates = _candidates(conn, plan.sample_kind, plan.scope_kind, plan.scope_ids)
    if plan.sample_kind:
        pool = candidates[plan.sample_kind]
        if not pool:
            raise rules.ProblemsError([(N_("the scope has no %(kind)s to sample"), {"kind": plan.sample_kind})])
        drawn = rules.draw_sample(pool, plan.sample_size, seed=plan.seed, kind=plan.sample_kind)
        targets = [(plan.sample_kind, u, k + 1) for k, u in enumerate(drawn)]
    else:
        targets = [(k, u, None) for k in ("segment", "cell") for u in candidates[k]]
    round_id = conn.execute(
        sa.text("""
        INSERT INTO inspection_round (kind, name, period_start, period_end, scope_kind, scope_ids, jurisdiction_id,
                                      sample_kind, sample_size, seed, note, created_by_user_id, created_by)
        VALUES (:kind, :name, :start, :end, :sk, :ids, :jid, :smk, :sms, :seed, :note, :uid, :by) RETURNING id"""),
        {
            "kind": plan.kind,
            "name": plan.name,
            "start": plan.period_start,
            "end": plan.period_end,
            "sk": plan.scope_kind,
            "ids": list(plan.scope_ids),
            "jid": _round_jurisdiction(conn, plan.scope_kind, plan.scope_ids),
            "smk": plan.sample_kind,
            "sms": plan.sample_size,
            "seed": plan.seed,
            "note": plan.note,
            "uid": actor.user_id,
            "by": actor.name,
        },
    ).scalar_one()
    conn.execute(
        sa.text("INSERT INTO inspection_inspector (round_id, user_id) SELECT :r, unnest(CAST(:u AS integer[]))"),
        {"r": round_id, "u": list(plan.inspector_ids)},
    )
    if targets:
        conn.execute(
            sa.text("INSERT INTO inspection_target (round_id, unit_kind, unit_id, rank) VALUES (:r, :k, :u, :n)"),
            [{"r": round_id, "k": k, "u": u, "n": n} for k, u, n in targets],
        )
    record_action(
        conn,
        actor,
        "inspection.plan",
        target_type="inspection_round",
        target_id=round_id,
        after={"kind": plan.kind, "period": [str(plan.period_start), str(plan.period_end)],
               "scope": [plan.scope_kind, list(plan.scope_ids)], "inspectors": list(plan.inspector_ids),
               "sample": [plan.sample_kind, plan.sample_size, plan.seed], "targets": len(targets)},
    )  # fmt: skip
    return round_id
