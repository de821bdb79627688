"""Inspection rounds against the database: plan, record findings, end and score, patrol coverage.

Every function takes a connection and works in the caller's transaction.
Which rounds a user sees is :func:`gisgrid.accounts.scope.round_visible_sql`
(``Scope.round_sql``): a round outside it answers :class:`NotFound` (404),
exactly like one that does not exist — an unannounced round (暗访) is hidden
from the inspected until it ends.  The rules themselves (the plan's checks,
the sample draw, the scores) are pure, in :mod:`gisgrid.supervision.inspection`.

A finding is a case (:func:`gisgrid.cases.store.create_case`), routed like any
other, with ``report.source`` ``inspection`` (督查) or ``unannounced`` (暗访)
and ``report.inspection_round_id``; the ``inspection_finding`` row keeps its
checklist item and the units it counts against, frozen when it is recorded.
Ending a round writes ``inspection_score`` (one row per unit), read by
:func:`round_scores`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.roles import INSPECTOR_ROLES
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor, User
from gisgrid.cases import store as cases
from gisgrid.cases.intake import CaseInput
from gisgrid.config import Settings
from gisgrid.db.frames import query_geo_frame
from gisgrid.errors import Conflict, Forbidden, InputError, NotFound
from gisgrid.io.points import PointError, check_point
from gisgrid.supervision import inspection as rules
from gisgrid.supervision.inspection import N_

LOGGER = logging.getLogger(__name__)

#: The columns of a round row the pages show.
_ROUND_COLUMNS = """
    r.id, r.kind, r.name, r.period_start, r.period_end, r.scope_kind, r.scope_ids, r.jurisdiction_id,
    j.name AS jurisdiction_name, r.sample_kind, r.sample_size, r.seed, r.note, r.created_by, r.created_at,
    r.ended_at, r.ended_by, r.rule,
    (SELECT count(*) FROM inspection_finding f WHERE f.round_id = r.id) AS findings,
    (SELECT count(*) FROM inspection_target t WHERE t.round_id = r.id) AS targets"""


# --- the checklist ---------------------------------------------------------------------------
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


# --- planning ----------------------------------------------------------------------------------
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


# --- reading rounds ----------------------------------------------------------------------------
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


# --- findings ----------------------------------------------------------------------------------
def record_finding(
    conn: sa.Connection,
    actor: Actor,
    user: User,
    deployment,
    settings: Settings,
    *,
    round_id: object,
    item_id: object,
    data: CaseInput,
    photos: Sequence = (),
    now: dt.datetime | None = None,
) -> cases.NewCase:
    """A finding of an open round by one of its inspectors: a case (routed like any other) and its finding row.

    The case's category is the checklist item's, its source ``inspection``
    (督查) or ``unannounced`` (暗访).  The point must lie in the round's scope.
    Sending the same finding twice (its client id) makes one case and one
    finding.

    Raises
    ------
    InputError
        Not a round id, an unknown or inactive item, a point outside the scope.
    NotFound
        A round the user does not see.
    Conflict
        The round is not open (ended, or today outside its period).
    Forbidden
        The user is not one of the round's inspectors.
    """
    rid = _id(round_id, N_("the round"))
    iid = _id(item_id, N_("the checklist item"))
    scope = Scope(user.id, timeutil.local_today(settings.timezone))
    rnd = get_round(conn, scope, rid)
    if user.id not in {i["id"] for i in rnd["inspectors"]}:
        raise Forbidden("only the round's inspectors record its findings")
    today = timeutil.local_today(settings.timezone)
    if not is_open(rnd, today):
        raise Conflict(
            f"round {rid} is not open: it has ended" if rnd["ended_at"] is not None
            else f"round {rid} is not open on {today}: its period is {rnd['period_start']} to {rnd['period_end']}"
        )  # fmt: skip
    return store_finding(conn, actor, deployment, settings, rnd, iid, data, inspector_user_id=user.id,
                         photos=photos, now=now)  # fmt: skip


def store_finding(
    conn: sa.Connection,
    actor: Actor,
    deployment,
    settings: Settings,
    rnd: Mapping,
    item_id: int,
    data: CaseInput,
    *,
    inspector_user_id: int | None,
    photos: Sequence = (),
    now: dt.datetime | None = None,
) -> cases.NewCase:
    """The finding itself, once :func:`record_finding` checked who and when (the demo loader calls it for past
    rounds): the case, its round, the units it counts against, whether it repeats an earlier report."""
    rid = rnd["id"]
    iid = item_id
    item = conn.execute(
        sa.text("""SELECT i.id, c.code FROM inspection_checklist_item i JOIN category c ON c.id = i.category_id
                   WHERE i.id = :i AND i.active"""),
        {"i": iid},
    ).first()
    if item is None:
        raise rules.ProblemsError([(N_("no such checklist item: %(id)s"), {"id": iid})])
    data = CaseInput(
        lon=data.lon, lat=data.lat, crs=data.crs, category=item.code, description=data.description,
        address=data.address, client_id=data.client_id, reported_at=data.reported_at,
        source=rules.CASE_SOURCE[rnd["kind"]],
    )  # fmt: skip
    made = cases.create_case(conn, actor, deployment, settings, data, now=now)
    if not made.created:
        return made
    if photos:
        cases.add_photos(conn, actor, made.id, photos, kind="before")
    conn.execute(sa.text("UPDATE report SET inspection_round_id = :r WHERE id = :i"), {"r": rid, "i": made.id})
    where = _finding_units(conn, made.id)
    if not _in_scope(conn, rid, rnd["scope_kind"], where):
        names = ", ".join(rnd["scope_names"][:5])
        raise rules.ProblemsError([(N_("the place is outside this round's scope (%(names)s)"), {"names": names})])
    repeat_of = conn.execute(
        sa.text(f"""
        SELECT e.id FROM report r, report e
        WHERE r.id = :i AND e.id <> r.id AND e.category_id = r.category_id
          AND e.status NOT IN ('rejected', 'merged') AND (e.inspection_round_id IS DISTINCT FROM :round)
          AND e.reported_at < r.reported_at
          AND e.reported_at >= r.reported_at - make_interval(days => {int(rules.REPEAT_DAYS)})
          AND ST_DWithin(CAST(e.geom AS geography), CAST(r.geom AS geography), :radius)
        ORDER BY e.reported_at DESC LIMIT 1"""),
        {"i": made.id, "round": rid, "radius": float(settings.duplicate_radius_m)},
    ).scalar()
    fid = conn.execute(
        sa.text("""
        INSERT INTO inspection_finding (round_id, report_id, item_id, inspector_user_id, found_at, repeat_of_id,
                                        segment_id, street_id, cell_id, person_id, department_id, community_id, town_id)
        SELECT :r, :i, :item, :u, reported_at, :rep, :seg, :street, :cell, :pid, :did, :com, :town
        FROM report WHERE id = :i RETURNING id"""),
        {"r": rid, "i": made.id, "item": iid, "u": inspector_user_id, "rep": repeat_of, **where},
    ).scalar_one()
    record_action(conn, actor, "inspection.finding", target_type="inspection_round", target_id=rid,
                  after={"finding": fid, "case": made.id, "item": iid, "repeat_of": repeat_of})  # fmt: skip
    return made


def _id(value: object, label: str) -> int:
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or len(text) > 9:
        raise rules.ProblemsError(
            [(N_("%(label)s must be an id, not %(value)s"), {"label": label, "value": repr(text[:40])})]
        )
    return int(text)


def _finding_units(conn: sa.Connection, case_id: int) -> dict:
    """The units a case counts against: its segment and street, the cell holding it, its owner, community and town."""
    row = (
        conn.execute(
            sa.text("""
        SELECT COALESCE(r.assigned_segment_id, CASE WHEN r.assigned_type = 'segment' THEN r.assigned_id END) AS seg,
               CASE WHEN r.assigned_type = 'cell' THEN r.assigned_id END AS assigned_cell,
               r.assignee_person_id AS pid, r.assignee_department_id AS did, r.jurisdiction_id AS jid, r.geom
        FROM report r WHERE r.id = :i"""),
            {"i": case_id},
        )
        .mappings()
        .one()
    )
    street = None
    if row["seg"] is not None:
        street = conn.execute(sa.text("SELECT street_id FROM segment WHERE id = :s"), {"s": row["seg"]}).scalar()
    cell = row["assigned_cell"]
    if cell is None:
        cell = conn.execute(
            sa.text("""SELECT c.id FROM grid_cell c, report r WHERE r.id = :i AND c.geom && r.geom
                       AND ST_Intersects(c.geom, r.geom) ORDER BY c.id LIMIT 1"""),
            {"i": case_id},
        ).scalar()
    community = town = None
    if row["jid"] is not None:
        j = conn.execute(
            sa.text("SELECT j.id, j.level, j.parent_id FROM jurisdiction j WHERE j.id = :j"), {"j": row["jid"]}
        ).one()
        if j.level == "community":
            community, town = j.id, j.parent_id
        elif j.level == "town":
            town = j.id
    return {"seg": row["seg"], "street": street, "cell": cell, "pid": row["pid"], "did": row["did"],
            "com": community, "town": town}  # fmt: skip


def _in_scope(conn: sa.Connection, round_id: int, scope_kind: str, where: dict) -> bool:
    """Does a finding at these units belong to the round's scope (its towns, streets or cells)?"""
    ids = conn.execute(sa.text("SELECT scope_ids FROM inspection_round WHERE id = :r"), {"r": round_id}).scalar()
    if scope_kind == "town":
        return where["town"] in ids
    if scope_kind == "street":
        return where["street"] in ids
    return where["cell"] in ids


# --- ending a round: the scores ----------------------------------------------------------------
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


# --- patrol check-ins and coverage ---------------------------------------------------------------
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
            raise rules.ProblemsError(
                [(N_("the month must be written like 2026-05, not %(value)s"), {"value": repr(str(month)[:20])})]
            ) from None
        if len(str(month).strip()) != 7:
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
