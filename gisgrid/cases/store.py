"""Cases against the database: intake of a case, reading it, the workflow's steps, photos.

Every function takes a connection and works in the caller's transaction.
What a user may see is :func:`gisgrid.accounts.scope.case_visible_sql`
(``Scope.case_sql``), added to every query that reads cases for a user: a
case outside it answers :class:`~gisgrid.errors.NotFound` (404), exactly like
one that does not exist.  The rules themselves are pure
(:mod:`gisgrid.cases.workflow`: transitions, deadlines, escalation;
:mod:`gisgrid.cases.intake`: what a new case carries); this module applies
them and keeps the trail — a ``case_event`` per step, the ``audit_log`` row
of every write, the ``notification`` rows of the inbox.

The calendar and stored deadlines are :mod:`gisgrid.cases.calendar`; lists
:mod:`gisgrid.cases.lists`; escalation :mod:`gisgrid.cases.escalation`; events
and the inbox :mod:`gisgrid.cases.trail`; cases in bulk :mod:`gisgrid.cases.bulk`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor, User
from gisgrid.cases import trail
from gisgrid.cases import workflow as wf
from gisgrid.cases.calendar import working_time
from gisgrid.cases.duplicates import find_duplicates
from gisgrid.cases.intake import CaseInput
from gisgrid.cases.photos import KINDS as PHOTO_KINDS
from gisgrid.cases.photos import StoredPhoto
from gisgrid.cases.workflow import deadline
from gisgrid.config import Settings
from gisgrid.errors import Conflict, Forbidden, InputError, NotFound
from gisgrid.io.points import PointError, check_point
from gisgrid.routing.store import HISTORY_COLUMNS, route_frontage
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)


# --- intake --------------------------------------------------------------------------------
@dataclass
class NewCase:
    """What intake answers: the case, whether it was made now (False: the client id was seen before),
    how it was routed (``unassigned`` when outside every owner's area) and the duplicates offered."""

    id: int
    created: bool
    status: str
    due_at: dt.datetime | None
    routing: dict
    duplicates: list[dict] = field(default_factory=list)

    @property
    def unassigned(self) -> bool:
        return self.routing.get("target_type") is None and self.routing.get("owner") is None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "created": self.created,
            "status": self.status,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "unassigned": self.unassigned,
            "routing": self.routing,
            "duplicates": self.duplicates,
        }


def category_of(conn: sa.Connection, code_or_name: str):
    """The category row (id, code, name, deadline_hours, working_time) by code or name; InputError otherwise."""
    row = conn.execute(
        sa.text("""
        SELECT id, code, name, name_en, deadline_hours, COALESCE(working_time, false) AS working_time
        FROM category WHERE code = :c OR name = :c OR name_en = :c ORDER BY (code = :c) DESC LIMIT 1"""),
        {"c": code_or_name},
    ).first()
    if row is None:
        known = [r[0] for r in conn.execute(sa.text("SELECT code FROM category ORDER BY code LIMIT 30"))]
        raise InputError(
            N_("unknown category %(value)s; categories: %(known)s", value=repr(code_or_name), known=", ".join(known))
            if known
            else N_("unknown category %(value)s: no category is set up yet", value=repr(code_or_name))
        )
    return row


def category_rows(conn: sa.Connection) -> list[dict]:
    """:func:`categories` as plain rows (forms and filters; no DataFrame per page)."""
    sql_text = "SELECT code, name, name_en, deadline_hours, working_time FROM category ORDER BY code"
    return [dict(r) for r in conn.execute(sa.text(sql_text)).mappings()]


def categories(conn: sa.Connection) -> pd.DataFrame:
    """Every category (code, name, name_en, deadline_hours, working_time) for forms and filters."""
    return pd.read_sql_query(
        sa.text("SELECT code, name, name_en, deadline_hours, working_time FROM category ORDER BY code"), conn
    )


def _existing(conn: sa.Connection, client_id: str | None):
    if not client_id:
        return None
    return conn.execute(sa.text("SELECT id, status, due_at FROM report WHERE client_id = :k"), {"k": client_id}).first()


def _route(deployment, lon: float, lat: float, crs: str, category: str) -> dict:
    """Route one point (:func:`gisgrid.routing.store.explain_point`); a point outside coverage, or a
    deployment with nothing to route to, is an unassigned case — a bad point is an InputError."""
    from gisgrid.routing.store import explain_point

    try:
        result = explain_point(deployment, lon=lon, lat=lat, crs=crs, category=category)
    except InputError:  # nothing to route to yet: the case is kept, unassigned
        slon, slat = check_point(lon, lat, crs)
        return {"lon": slon, "lat": slat, "rule": "unassigned", "target_type": None, "target_id": None,
                "reason": "nothing to route to", "ruleset_version": None}  # fmt: skip
    if "error" in result:
        raise PointError(result["error"], result["detail"])
    return result


def create_case(
    conn: sa.Connection,
    actor: Actor,
    deployment,
    settings: Settings,
    data: CaseInput,
    *,
    fallback_jurisdiction_id: int | None = None,
    now: dt.datetime | None = None,
    public_token: str | None = None,
) -> NewCase:
    """Take in one case: route it, give it its deadline, keep the routing explanation, offer duplicates.

    Parameters
    ----------
    actor : Actor
        Who takes it in (from the session, never the request body).
    deployment : gisgrid.routing.store.Deployment
        The routing snapshot (the web app's, or :func:`load_deployment`).
    data : CaseInput
        Checked input (:func:`gisgrid.cases.intake.parse_case_input`).
    fallback_jurisdiction_id : int, optional
        Where an unassigned case outside every jurisdiction belongs (the
        clerk's own area), so that a dispatcher there sees it.
    public_token : str, optional
        The secret with which a resident follows a report from the public page.

    Returns
    -------
    NewCase
        ``created`` False when ``data.client_id`` was seen before: the
        existing case answers, nothing is stored twice.

    Raises
    ------
    InputError
        Unknown category; a point that is not one (swapped, out of range).
    """
    seen = _existing(conn, data.client_id)
    if seen is not None:
        return NewCase(seen.id, False, seen.status, seen.due_at, _routing_of(conn, seen.id))
    cat = category_of(conn, data.category)
    routing = route_frontage(conn, _route(deployment, data.lon, data.lat, data.crs, cat.code), category=cat.code)
    now = now or trail.now(conn)
    tz = _timezone_of(deployment, routing, settings)
    reported_at = timeutil.localize(data.reported_at, tz) if data.reported_at else now
    # a resident's report (the public page) counts against nobody until a dispatcher accepts it: its clock
    # starts then (take_step, accept)
    due = None if data.source == "public" else deadline(
        reported_at,
        cat.deadline_hours,
        working_time=bool(cat.working_time),
        calendar=working_time(conn, settings),
        tz=tz,
    )  # fmt: skip
    row = conn.execute(
        sa.text("""
        INSERT INTO report (geom, category_id, reported_at, due_at, source, address, description, status,
                            client_id, reporter_user_id, assigned_type, assigned_id, assigned_segment_id,
                            assignee_person_id, assignee_department_id, assigned_at, jurisdiction_id, updated_at,
                            frontage_unit_id, public_token)
        SELECT g.pt, :cat, :at, :due, :source, :address, :description, 'reported', :client, :reporter,
               p.ttype, p.tid, :seg, (SELECT id FROM person WHERE id = p.pid),
               (SELECT id FROM department WHERE id = p.did),
               CASE WHEN p.ttype IS NULL AND p.pid IS NULL AND p.did IS NULL THEN NULL ELSE CAST(:now AS timestamptz) END,
               COALESCE(case_jurisdiction(p.ttype, p.tid, g.pt), CAST(:fallback AS integer)), :now,
               (SELECT id FROM frontage_unit WHERE id = :unit), :token
        FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt) g,
             (SELECT CAST(:ttype AS text) AS ttype, CAST(:tid AS integer) AS tid, CAST(:pid AS integer) AS pid,
                     CAST(:did AS integer) AS did) p
        ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id, status, due_at"""),
        {
            "lon": routing["lon"],
            "lat": routing["lat"],
            "cat": cat.id,
            "at": reported_at,
            "due": due,
            "source": data.source,
            "address": data.address,
            "description": data.description,
            "client": data.client_id,
            "reporter": actor.user_id,
            "ttype": routing.get("target_type"),
            "tid": routing.get("target_id"),
            "seg": routing.get("segment_id"),
            "pid": routing.get("owner_person_id"),
            "did": routing.get("owner_department_id"),
            "fallback": fallback_jurisdiction_id,
            "now": now,
            "unit": routing.get("frontage_unit_id"),
            "token": public_token,
        },
    ).first()
    if row is None:  # the same client id arrived meanwhile on another connection
        seen = _existing(conn, data.client_id)
        return NewCase(seen.id, False, seen.status, seen.due_at, _routing_of(conn, seen.id))
    case_id = row.id
    _insert_history(conn, [case_id], [routing])
    trail.record_event(
        conn,
        case_id,
        actor,
        "report",
        None,
        "reported",
        1,
        detail={"source": data.source, "rule": routing.get("rule"), "owner": routing.get("owner")},
    )
    record_action(
        conn,
        actor,
        "case.create",
        target_type="case",
        target_id=case_id,
        after={"status": "reported", "category": cat.code, "owner": routing.get("owner"), "source": data.source},
    )
    duplicates = find_duplicates(
        conn, settings, case_id=case_id, category_id=cat.id, lon=routing["lon"], lat=routing["lat"], at=reported_at
    )
    return NewCase(case_id, True, row.status, row.due_at, _public_routing(routing), duplicates)


def _timezone_of(deployment, routing: dict, settings: Settings) -> str:
    if routing.get("target_type") is not None and deployment is not None:
        return str(deployment.timezones_of([routing["target_type"]], [routing["target_id"]])[0])
    return getattr(deployment, "timezone", None) or settings.timezone


def _public_routing(routing: dict) -> dict:
    keys = ("rule", "target_type", "target_id", "target_name", "segment_id", "distance_m", "owner", "chain", "reason",
            "ruleset_version", "lon", "lat", "frontage_unit_id", "supervisor")  # fmt: skip
    return {k: routing.get(k) for k in keys}


# the columns of report_assignment, as the routing store writes them (one list, not two)
_HISTORY = HISTORY_COLUMNS


def _insert_history(conn: sa.Connection, ids: Sequence[int], routes: Sequence[dict]) -> None:
    """The routing explanation of new cases, as routing history (``report_assignment``)."""
    rows = [
        {
            "report_id": i,
            "ruleset_version": r.get("ruleset_version") or "-",
            "rule": r.get("rule") or "unassigned",
            "target_type": r.get("target_type"),
            "target_id": r.get("target_id"),
            "segment_id": r.get("segment_id"),
            "distance_m": r.get("distance_m"),
            "owner_person_id": r.get("owner_person_id"),
            "owner_department_id": r.get("owner_department_id"),
            "owner_name": r.get("owner"),
            "chain": r.get("chain"),
            "reason": r.get("reason"),
        }
        for i, r in zip(ids, routes)
    ]
    if rows:
        conn.execute(
            sa.text(
                f"INSERT INTO report_assignment ({', '.join(_HISTORY)}) VALUES ({', '.join(':' + c for c in _HISTORY)})"
            ),
            rows,
        )


def _routing_of(conn: sa.Connection, case_id: int) -> dict:
    row = conn.execute(
        sa.text("""
        SELECT c.rule, c.target_type, c.target_id, c.segment_id, c.distance_m, c.owner_name AS owner, c.chain,
               c.reason, c.ruleset_version, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat
        FROM report r LEFT JOIN report_current c ON c.report_id = r.id WHERE r.id = :id"""),
        {"id": case_id},
    ).first()
    return dict(row._mapping) if row else {}


# --- photos -----------------------------------------------------------------------------------
def add_photos(
    conn: sa.Connection,
    actor: Actor,
    case_id: int,
    photos: Sequence[StoredPhoto],
    *,
    kind: str,
    event_id: int | None = None,
) -> list[int]:
    """Record photos already written under the photo folder (:func:`gisgrid.cases.photos.store_photo`)."""
    if kind not in PHOTO_KINDS:
        raise InputError(
            N_("photo kind must be one of %(kinds)s, not %(value)s", kinds=", ".join(PHOTO_KINDS), value=repr(kind))
        )
    ids = []
    for p in photos:
        ids.append(
            conn.execute(
                sa.text("""
                INSERT INTO case_photo (report_id, event_id, kind, path, thumb_path, content_type, bytes, width, height,
                                        sha256, uploaded_by_user_id)
                VALUES (:r, :e, :k, :p, :t, :ct, :b, :w, :h, :s, :u) RETURNING id"""),
                {
                    "r": case_id,
                    "e": event_id,
                    "k": kind,
                    "p": p.path,
                    "t": p.thumb_path,
                    "ct": p.content_type,
                    "b": p.bytes,
                    "w": p.width,
                    "h": p.height,
                    "s": p.sha256,
                    "u": actor.user_id,
                },
            ).scalar()
        )
    return ids


def case_photos(conn: sa.Connection, scope: Scope | None, case_id: int) -> list[dict]:
    """The photos of a case and of the reports merged into it, oldest first; NotFound outside ``scope``
    (None: already checked by :func:`get_case`, as :func:`case_events`)."""
    if scope is not None:
        _visible_or_404(conn, scope, case_id)
    rows = conn.execute(
        sa.text("""
        SELECT p.id, p.report_id, p.event_id, p.kind, p.content_type, p.width, p.height, p.bytes, p.uploaded_at
        FROM case_photo p
        WHERE p.report_id = :id OR p.report_id IN (SELECT m.id FROM report m WHERE m.merged_into_id = :id)
        ORDER BY p.id"""),
        {"id": case_id},
    )
    return [dict(r._mapping) for r in rows]


def photo_file(conn: sa.Connection, scope: Scope, photo_id: int) -> dict:
    """A photo's stored paths and type, when its case is visible to ``scope`` (else NotFound)."""
    row = conn.execute(
        sa.text(f"""
        SELECT p.path, p.thumb_path, p.content_type FROM case_photo p JOIN report c ON c.id = p.report_id
        LEFT JOIN report m ON m.id = c.merged_into_id
        WHERE p.id = :id AND ({scope.case_sql("c")} OR (m.id IS NOT NULL AND {scope.case_sql("m")}))"""),
        {"id": photo_id, **scope.params()},
    ).first()
    if row is None:
        raise NotFound(f"no photo {photo_id}")
    return dict(row._mapping)


# --- reading cases --------------------------------------------------------------------------
CASE_COLUMNS = """
SELECT c.id, c.status, c.version, c.reported_at, c.due_at, c.closed_at, c.updated_at, c.source, c.address,
       c.description, c.client_id, c.category_id, cat.code AS category, cat.name AS category_name,
       cat.name_en AS category_name_en, cat.deadline_hours, cat.working_time,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
       c.jurisdiction_id, j.name AS jurisdiction_name, j.code AS jurisdiction_code,
       c.assigned_type, c.assigned_id, c.assigned_segment_id, c.assigned_at,
       c.assignee_person_id, ap.name AS assignee_name, c.assignee_department_id, ad.name AS assignee_department,
       COALESCE(ap.name, ad.name) AS owner_name,
       c.escalation_level, c.escalated_person_id, ep.name AS escalated_name, c.escalated_at,
       c.rework_count, c.recurrence_of_id, c.merged_into_id, c.suspended_at, c.resume_status,
       c.reporter_user_id, ru.username AS reporter_username, rp.name AS reporter_name
"""
#: The lookups of a case row (category, jurisdiction, people, department, reporter) on ``{source} c``.
CASE_JOINS = """
LEFT JOIN category cat ON cat.id = c.category_id
LEFT JOIN jurisdiction j ON j.id = c.jurisdiction_id
LEFT JOIN person ap ON ap.id = c.assignee_person_id
LEFT JOIN department ad ON ad.id = c.assignee_department_id
LEFT JOIN person ep ON ep.id = c.escalated_person_id
LEFT JOIN user_account ru ON ru.id = c.reporter_user_id
LEFT JOIN person rp ON rp.id = ru.person_id
"""


def _visible_or_404(conn: sa.Connection, scope: Scope, case_id: int) -> None:
    found = conn.execute(
        sa.text(f"SELECT 1 FROM report c WHERE c.id = :id AND {scope.case_sql('c')}"),
        {"id": case_id, **scope.params()},
    ).first()
    if found is None:
        raise NotFound(f"no case {case_id}")


def get_case(conn: sa.Connection, scope: Scope, case_id: int, *, now: dt.datetime | None = None) -> dict:
    """One case with its category, place, assignee, escalation, links and routing explanation.

    NotFound when it does not exist or ``scope`` may not see it (a 404 either way).
    """
    try:
        case_id = int(case_id)
    except (TypeError, ValueError):
        raise NotFound(f"no case {case_id!r}") from None
    row = conn.execute(
        sa.text(
            CASE_COLUMNS
            + ", timezone_of_jurisdiction(c.jurisdiction_id) AS timezone FROM report c"
            + CASE_JOINS
            + f" WHERE c.id = :id AND {scope.case_sql('c')}"
        ),
        {"id": case_id, **scope.params()},
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id}")
    case = dict(row._mapping)
    now = now or trail.now(conn)
    case["colour"] = wf.deadline_colour(case["status"], case["reported_at"], case["due_at"], now)
    case["overdue"] = wf.is_overdue(case["status"], case["closed_at"], case["due_at"], now)
    case["is_open"] = wf.is_open(case["status"])
    case["routing"] = _routing_of(conn, case_id)
    case["merged"] = [
        dict(r._mapping)
        for r in conn.execute(
            sa.text(
                "SELECT id, reported_at, address, description, source FROM report WHERE merged_into_id = :id "
                "ORDER BY id"
            ),  # fmt: skip
            {"id": case_id},
        )
    ]
    case["recurrences"] = [
        r[0]
        for r in conn.execute(
            sa.text("SELECT id FROM report WHERE recurrence_of_id = :id ORDER BY id"), {"id": case_id}
        )
    ]
    if case["merged_into_id"]:  # each reporter's status follows the case their report joined
        case["case_status"] = conn.execute(
            sa.text("SELECT status FROM report WHERE id = :m"), {"m": case["merged_into_id"]}
        ).scalar()
    else:
        case["case_status"] = case["status"]
    return case


def case_events(conn: sa.Connection, scope: Scope | None, case_id: int) -> list[dict]:
    """The case's timeline, oldest first (at, actor, action, from → to, note, reason, detail).

    ``scope`` None: the caller has just read the case through :func:`get_case` in this transaction
    (the case page), so the visibility predicate is not evaluated a second time.
    """
    if scope is not None:
        _visible_or_404(conn, scope, case_id)
    rows = conn.execute(
        sa.text("""
        SELECT e.id, e.at, e.actor_user_id, e.actor_name, e.action, e.from_status, e.to_status, e.version, e.note,
               e.reason, e.detail
        FROM case_event e WHERE e.report_id = :id ORDER BY e.id"""),
        {"id": case_id},
    )
    return [dict(r._mapping) for r in rows]


def is_owner(case: dict, user: User) -> bool:
    """Is ``user`` the one the case waits on: the assignee person, a member of the assignee department,
    or the chief it was escalated to?"""
    departments = {g.department_id for g in user.grants if g.role == "department" and g.department_id is not None}
    return (
        (case.get("assignee_person_id") is not None and case["assignee_person_id"] == user.person_id)
        or (case.get("escalated_person_id") is not None and case["escalated_person_id"] == user.person_id)
        or (case.get("assignee_department_id") is not None and case["assignee_department_id"] in departments)
    )


def actions_for(case: dict, user: User) -> list[str]:
    """The steps ``user`` may take on ``case`` now (what the case page offers)."""
    roles = wf.case_roles(user.roles, is_owner=is_owner(case, user))
    return [a for a in wf.allowed_actions(case["status"], roles) if a != "escalate"]


# --- the steps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StepInput:
    """What a person sends with a step: the version they saw, and the step's own fields.

    ``owner`` (dispatch): ``"person:N"`` or ``"department:N"`` to override
    the route (needs a reason); ``hours`` (extend): the extension, counted as
    the category counts its deadline; ``into`` (merge): the case this one
    joins.
    """

    version: int
    note: str | None = None
    reason: str | None = None
    owner: str | None = None
    hours: float | None = None
    into: int | None = None


def _owner_key(key: str | None) -> tuple[int | None, int | None]:
    if not key:
        return None, None
    kind, _, num = str(key).partition(":")
    try:
        value = int(num)
    except ValueError:
        value = None
    if kind not in ("person", "department") or value is None:
        raise InputError(N_("owner must be person:ID or department:ID, not %(value)s", value=repr(key)))
    return (value, None) if kind == "person" else (None, value)


def take_step(
    conn: sa.Connection,
    actor: Actor,
    user: User,
    scope: Scope,
    settings: Settings,
    case_id: int,
    action: str,
    step: StepInput,
    *,
    photos: Sequence[StoredPhoto] = (),
    deployment=None,
) -> dict:
    """Take one workflow step on a case, as ``user``; returns the case after it (with ``event_id``).

    The case row is locked, its version compared with ``step.version`` (the
    one the user saw): a different one is a :class:`~gisgrid.errors.Conflict`
    (409) and nothing is written — the user reloads and their input is still
    on their form.  The step must be in :data:`gisgrid.cases.workflow.TRANSITIONS`
    for the case's state and the user's roles (else
    :class:`~gisgrid.cases.workflow.TransitionRefused`, 409, or
    :class:`~gisgrid.cases.workflow.RoleRefused`, 403, naming both).  Every
    step writes a ``case_event``, an ``audit_log`` row and, where someone must
    now act, an inbox row.

    Raises
    ------
    NotFound
        No such case, or not visible to ``scope`` (404).
    """
    t = wf.transition(action)
    if wf.SYSTEM in t.roles:
        raise Forbidden(N_("the step %(step)s is taken by gisgrid itself, not by a person", step=wf.step_text(action)))
    row = conn.execute(
        sa.text(f"SELECT c.* FROM report c WHERE c.id = :id AND {scope.case_sql('c')} FOR UPDATE OF c"),
        {"id": int(case_id), **scope.params()},
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id}")
    case = dict(row._mapping)
    if int(step.version) != case["version"]:
        exc = Conflict(
            N_(
                "case %(id)s changed meanwhile: it is now %(state)s (version %(version)s, you saw version "
                "%(seen)s); reload it and take the step again — nothing of yours was lost",
                id=case_id,
                state=wf.state_text(case["status"]),
                version=case["version"],
                seen=step.version,
            )
        )
        exc.status, exc.version = case["status"], case["version"]
        raise exc
    roles = wf.case_roles(user.roles, is_owner=is_owner(case, user))
    wf.check_transition(case["status"], action, roles)
    note = (step.note or "").strip() or None
    reason = (step.reason or "").strip() or None
    if t.needs_reason and not reason:
        raise InputError(N_("the step %(step)s needs a reason", step=wf.step_text(action)))
    if t.needs_note and not note:
        raise InputError(N_("the step %(step)s needs a note saying what was done", step=wf.step_text(action)))
    if t.needs_photo and not any(True for _ in photos):
        raise InputError(N_("the step %(step)s needs an 'after' photo", step=wf.step_text(action)))
    now = trail.now(conn)
    new_status = wf.next_status(case["status"], action, resume_status=case["resume_status"])
    sets: dict[str, object] = {}
    detail: dict = {}
    notify: list[tuple] = []
    if action == "dispatch":
        pid, did = _owner_key(step.owner)
        routed = (case["assignee_person_id"], case["assignee_department_id"])
        if pid is None and did is None:
            pid, did = routed
            if pid is None and did is None:
                raise InputError(N_("this case has no routed owner: choose a person or department, with a reason"))
        elif (pid, did) != routed and not reason:
            raise InputError(N_("dispatching to another owner than the routed one needs a reason"))
        _check_owner_exists(conn, pid, did)
        sets.update(
            assignee_person_id=pid,
            assignee_department_id=did,
            assigned_at=now,
            escalation_level=0,
            escalated_person_id=None,
            escalated_at=None,
        )
        detail = {"owner": f"person:{pid}" if pid else f"department:{did}", "override": (pid, did) != routed}
        if (pid, did) != routed:
            detail["routed"] = (
                f"person:{routed[0]}" if routed[0] else (f"department:{routed[1]}" if routed[1] else None)
            )
        notify.append(("assigned", pid, did, None))
    elif action == "accept" and case["source"] == "public" and case["due_at"] is None:
        # a resident's report counts from the dispatcher's confirmation (立案) on: its deadline starts now
        cat = conn.execute(
            sa.text("SELECT deadline_hours, COALESCE(working_time, false) AS wt FROM category WHERE id = :c"),
            {"c": case["category_id"]},
        ).first()
        if cat is not None:
            sets["due_at"] = deadline(now, cat.deadline_hours, working_time=bool(cat.wt),
                                      calendar=working_time(conn, settings), tz=settings.timezone)  # fmt: skip
    elif action == "verify_pass":
        handler = conn.execute(
            sa.text(
                "SELECT actor_person_id FROM case_event WHERE report_id = :id AND action = 'handle' "
                "ORDER BY id DESC LIMIT 1"
            ),  # fmt: skip
            {"id": case_id},
        ).scalar()
        if handler is not None and handler == user.person_id:
            raise Forbidden(
                N_("the person who handled a case cannot verify it: another patrol member or inspector checks")
            )
        sets["closed_at"] = now
    elif action == "verify_fail":
        sets["rework_count"] = case["rework_count"] + 1
        detail = {"rework": case["rework_count"] + 1}
        notify.append(("assigned", case["assignee_person_id"], case["assignee_department_id"], "rework"))
    elif action == "close":
        sets["closed_at"] = now
    elif action == "return":
        detail = {"owner": case["assignee_person_id"] or case["assignee_department_id"]}
    elif action == "request_extension":
        if step.hours is not None:
            detail["hours"] = float(step.hours)
    elif action == "extend":
        hours = _hours(step.hours)
        cat = conn.execute(
            sa.text("SELECT COALESCE(working_time, false) FROM category WHERE id = :c"), {"c": case["category_id"]}
        ).scalar()
        base = case["due_at"] if case["due_at"] is not None and case["due_at"] > now else now
        new_due = deadline(
            base, hours, working_time=bool(cat), calendar=working_time(conn, settings), tz=settings.timezone
        )
        sets["due_at"] = new_due
        detail = {"hours": hours, "from": _iso(case["due_at"]), "to": _iso(new_due)}
    elif action == "suspend":
        sets.update(suspended_at=now, resume_status=case["status"])
    elif action == "resume":
        sets.update(suspended_at=None, resume_status=None)
        if case["due_at"] is not None and case["suspended_at"] is not None:
            # the clock stood still while the case was suspended
            sets["due_at"] = case["due_at"] + (now - case["suspended_at"])
            detail = {"from": _iso(case["due_at"]), "to": _iso(sets["due_at"])}
    elif action == "merge":
        into = _merge_target(conn, scope, case_id, step.into)
        sets["merged_into_id"] = into["id"]
        detail = {"into": into["id"]}
    elif action == "reopen":
        detail = {"new_case": None}
    version = case["version"] + 1
    assignments = ", ".join(f"{k} = :s_{k}" for k in sets)
    updated = conn.execute(
        sa.text(f"""
        UPDATE report SET status = :status, version = :version, updated_at = :now{", " + assignments if sets else ""}
        WHERE id = :id AND version = :old RETURNING id"""),
        {
            "status": new_status,
            "version": version,
            "now": now,
            "id": case_id,
            "old": case["version"],
            **{f"s_{k}": v for k, v in sets.items()},
        },  # fmt: skip
    ).first()
    if updated is None:  # cannot happen under the row lock; kept as the rule's last line
        raise Conflict(N_("case %(id)s changed meanwhile; reload it", id=case_id))
    if action == "reopen":
        new = _reopen(conn, actor, settings, deployment, case, reason, now)
        detail = {"new_case": new.id}
    event_id = trail.record_event(conn, case_id, actor, action, case["status"], new_status, version, note=note, reason=reason,
                      detail=detail or None)  # fmt: skip
    if photos:
        kind = "after" if action in ("handle", "verify_pass", "verify_fail") else "before"
        add_photos(conn, actor, case_id, photos, kind=kind, event_id=event_id)
    if action == "merge":
        trail.record_event(
            conn, detail["into"], actor, "merge_in", None, None, None, reason=reason, detail={"merged": case_id}
        )
    if action == "return":
        trail.notify_role(conn, case_id, "dispatcher", "returned", version=version, detail={"reason": reason})
    elif action == "request_extension":
        trail.notify_role(conn, case_id, "manager", "extension", version=version,
                     detail={"reason": reason, "hours": detail.get("hours")})  # fmt: skip
    for kind, pid, did, why in notify:
        trail.notify(conn, case_id, kind, person_id=pid, department_id=did,
                detail={"action": action, "why": why, "version": version})  # fmt: skip
    record_action(
        conn,
        actor,
        f"case.{action}",
        target_type="case",
        target_id=case_id,
        before={"status": case["status"], "version": case["version"]},
        after={"status": new_status, "version": version, **{k: _plain(v) for k, v in detail.items()}},
    )
    out = get_case(conn, Scope.everything(), case_id, now=now)
    out["event_id"] = event_id
    return out


def _plain(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _hours(value) -> float:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise InputError(N_("an extension needs the hours to add (a number)")) from None
    if not 0 < hours <= 24 * 365:
        raise InputError(
            N_("an extension of %(hours)s hours is not plausible (more than 0, at most a year)", hours=f"{hours:g}")
        )
    return hours


def _check_owner_exists(conn: sa.Connection, pid: int | None, did: int | None) -> None:
    if pid is not None and conn.execute(sa.text("SELECT 1 FROM person WHERE id = :i"), {"i": pid}).first() is None:
        raise InputError(N_("no person %(id)s", id=pid))
    if did is not None and conn.execute(sa.text("SELECT 1 FROM department WHERE id = :i"), {"i": did}).first() is None:
        raise InputError(N_("no department %(id)s", id=did))


def _merge_target(conn: sa.Connection, scope: Scope, case_id: int, into) -> dict:
    try:
        into = int(into)
    except (TypeError, ValueError):
        raise InputError(N_("merge needs the number of the case this one joins")) from None
    if into == int(case_id):
        raise InputError(N_("a case cannot be merged into itself"))
    row = conn.execute(
        sa.text(f"""
        SELECT c.id, c.status, c.merged_into_id FROM report c WHERE c.id = :id AND {scope.case_sql("c")}
        FOR UPDATE OF c"""),
        {"id": into, **scope.params()},
    ).first()
    if row is None:
        raise NotFound(f"no case {into}")
    if not wf.is_open(row.status):
        raise InputError(
            N_("case %(id)s is %(state)s: merge into an open case", id=into, state=wf.state_text(row.status))
        )
    return dict(row._mapping)


def _reopen(conn, actor: Actor, settings: Settings, deployment, case: dict, reason: str | None, now) -> NewCase:
    """A closed case's problem is back (复发): a new case at the same place, linked to the earlier one."""
    lonlat = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM report WHERE id = :i"), {"i": case["id"]}).first()
    code = conn.execute(sa.text("SELECT code FROM category WHERE id = :c"), {"c": case["category_id"]}).scalar()
    if deployment is None:
        from gisgrid.routing.store import load_deployment

        deployment = load_deployment(conn, settings)
    data = CaseInput(
        lon=lonlat[0],
        lat=lonlat[1],
        crs="EPSG:4326",
        category=code,
        description=f"{reason}" if reason else case["description"],
        address=case["address"],
        source="reopen",
    )
    made = create_case(conn, actor, deployment, settings, data, fallback_jurisdiction_id=case["jurisdiction_id"],
                       now=now)  # fmt: skip
    conn.execute(sa.text("UPDATE report SET recurrence_of_id = :o WHERE id = :n"), {"o": case["id"], "n": made.id})
    return made
