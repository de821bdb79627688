"""Recording findings: a finding is a case (routed like any other) of the round's source, with an
``inspection_finding`` row keeping its checklist item and the units it counts against, frozen when recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor, User
from gisgrid.cases import store as cases
from gisgrid.cases.intake import CaseInput
from gisgrid.config import Settings
from gisgrid.errors import Conflict, Forbidden
from gisgrid.supervision import inspection as rules
from gisgrid.supervision.inspection import N_
from gisgrid.supervision.inspections.rounds import get_round, is_open

LOGGER = logging.getLogger(__name__)


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
