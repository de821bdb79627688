"""Cases against the database: intake, the workflow's steps, lists, escalation, the inbox, the calendar.

Every function takes a connection and works in the caller's transaction.
What a user may see is :func:`gisgrid.accounts.scope.case_visible_sql`
(``Scope.case_sql``), added to every query that reads cases for a user: a
case outside it answers :class:`~gisgrid.errors.NotFound` (404), exactly like
one that does not exist.  The rules themselves are pure
(:mod:`gisgrid.cases.workflow`: transitions, deadlines, escalation;
:mod:`gisgrid.cases.intake`: what a new case carries); this module applies
them and keeps the trail — a ``case_event`` per step, the ``audit_log`` row
of every write, the ``notification`` rows of the inbox.

Every place that stores reports computes ``due_at`` with
:func:`gisgrid.cases.workflow.deadlines` (vectorised); :func:`fill_due_at`
does it for reports already stored (the migration that added the column,
benchmarks and tests that load reports with ``COPY``).  The local time zone
of a report is its jurisdiction's (``timezone_at_point``), else the
``timezone`` setting.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor, User
from gisgrid.cases import workflow as wf
from gisgrid.cases.intake import CaseInput
from gisgrid.cases.photos import KINDS as PHOTO_KINDS
from gisgrid.cases.photos import StoredPhoto
from gisgrid.cases.workflow import WorkingTime, deadline, deadlines
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.errors import Conflict, Forbidden, InputError, NotFound
from gisgrid.io.points import PointError, check_point
from gisgrid.routing.store import HISTORY_COLUMNS, route_frontage

LOGGER = logging.getLogger(__name__)

#: Who takes the system's steps (escalation, deadline warnings).
SYSTEM_ACTOR = Actor.system("gisgrid (escalation)")


def _any_jurisdiction_timezone(conn: sa.Connection) -> bool:
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM jurisdiction WHERE timezone IS NOT NULL)")).scalar())


def _now(conn: sa.Connection) -> dt.datetime:
    return conn.execute(sa.text("SELECT now()")).scalar()


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


# --- the calendar ----------------------------------------------------------------------------
def working_time(conn: sa.Connection, settings: Settings) -> WorkingTime:
    """The deployment's working time with the days an admin entered (``work_calendar_day``)."""
    days = dict(conn.execute(sa.text("SELECT day, workday FROM work_calendar_day")).all())
    years = [r[0] for r in conn.execute(sa.text("SELECT year FROM work_calendar_year"))]
    return WorkingTime.from_settings(settings, days=days, entered_years=years)


def uncovered_years(conn: sa.Connection, settings: Settings, *, today: dt.date | None = None) -> list[int]:
    """This year and next, where neither an admin's entry nor the calendar package knows the working days
    (they fall back to Monday–Friday): the admin and manager pages warn about them."""
    today = today or timeutil.local_today(settings.timezone)
    wt = working_time(conn, settings)
    return [y for y in (today.year, today.year + 1) if not wt.covers(y)]


def enter_calendar_year(
    conn: sa.Connection, actor: Actor, year: int, days: Iterable[tuple[dt.date, bool, str | None]]
) -> int:
    """Enter a year's official holidays (False) and make-up working days (True); they replace what was
    entered for that year before and override the calendar package.  Returns how many days were entered.

    A day of the year not listed is a working day Monday–Friday.
    """
    rows = [(d, bool(w), n) for d, w, n in days]
    if not 1900 < int(year) < 2200:
        raise InputError(f"year {year} is not plausible")
    bad = [d.isoformat() for d, _w, _n in rows if d.year != int(year)]
    if bad:
        raise InputError(f"days outside {year}: {', '.join(bad[:5])}")
    before = conn.execute(
        sa.text("SELECT count(*) FROM work_calendar_day WHERE extract(year FROM day) = :y"), {"y": year}
    ).scalar()
    conn.execute(sa.text("DELETE FROM work_calendar_day WHERE extract(year FROM day) = :y"), {"y": year})
    if rows:
        conn.execute(
            sa.text("INSERT INTO work_calendar_day (day, workday, note) VALUES (:d, :w, :n)"),
            [{"d": d, "w": w, "n": n} for d, w, n in rows],
        )
    conn.execute(
        sa.text("""
        INSERT INTO work_calendar_year (year, entered_by) VALUES (:y, :by)
        ON CONFLICT (year) DO UPDATE SET entered_by = EXCLUDED.entered_by, entered_at = now()"""),
        {"y": year, "by": actor.name},
    )
    record_action(
        conn,
        actor,
        "calendar.enter",
        target_type="calendar",
        target_id=year,
        before={"days": before},
        after={"holidays": sum(1 for r in rows if not r[1]), "workdays": sum(1 for r in rows if r[1])},
    )
    return len(rows)


def calendar_entries(conn: sa.Connection) -> pd.DataFrame:
    """The entered years with their days (year, entered_by, entered_at, holidays, workdays)."""
    return pd.read_sql_query(
        sa.text("""
        SELECT y.year, y.entered_by, y.entered_at,
               count(d.day) FILTER (WHERE NOT d.workday) AS holidays, count(d.day) FILTER (WHERE d.workday) AS workdays
        FROM work_calendar_year y LEFT JOIN work_calendar_day d ON extract(year FROM d.day) = y.year
        GROUP BY y.year ORDER BY y.year"""),
        conn,
    )


# --- stored deadlines ------------------------------------------------------------------------
def fill_due_at(
    conn: sa.Connection, settings: Settings, *, where: str = "r.due_at IS NULL", params=None, calendar=None
) -> int:
    """Set ``due_at`` of the stored reports matching ``where`` (on ``report r``); returns how many were updated.

    ``calendar`` is the working time to count in (default :func:`working_time`, with the days an admin
    entered; migration 0008 passes the settings' own, its schema having no entered days yet).

    One read, :func:`~gisgrid.cases.workflow.deadlines` over all of them, one
    ``UPDATE … FROM unnest(…)``.
    """
    tz_sql = "timezone_at_point(r.geom)" if _any_jurisdiction_timezone(conn) else "NULL"
    frame = pd.read_sql_query(
        sa.text(f"""
        SELECT r.id, r.reported_at, c.deadline_hours, COALESCE(c.working_time, false) AS working_time,
               {tz_sql} AS tz
        FROM report r JOIN category c ON c.id = r.category_id
        WHERE c.deadline_hours IS NOT NULL AND r.reported_at IS NOT NULL AND ({where})"""),
        conn,
        params=params or {},
    )
    if frame.empty:
        return 0
    due = deadlines(
        pd.to_datetime(frame["reported_at"], utc=True),
        frame["deadline_hours"],
        frame["working_time"],
        calendar=calendar if calendar is not None else working_time(conn, settings),
        tz=frame["tz"].fillna(settings.timezone).astype(str).to_numpy(),
    )
    ok = due.notna().to_numpy()
    ids = frame["id"].to_numpy(dtype=np.int64)[ok]
    when = due[ok].dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").tolist()
    conn.execute(
        sa.text("""
        UPDATE report r SET due_at = u.due_at
        FROM unnest(CAST(:ids AS integer[]), CAST(:due AS timestamptz[])) AS u(id, due_at) WHERE r.id = u.id"""),
        {"ids": ids.tolist(), "due": when},
    )
    LOGGER.info("deadline set on %d stored reports", len(ids))
    return int(len(ids))


def adopt_routing(conn: sa.Connection, *, where: str = "true", params: dict | None = None) -> int:
    """Cases without an assignee take their latest routed owner; every case without a jurisdiction gets one.

    For reports stored in bulk (imports, the demo) and routed afterwards by
    :func:`gisgrid.routing.store.assign_stored_reports`, which writes routing
    history only.  A case that has an assignee keeps it.  Returns how many
    cases changed.
    """
    params = params or {}
    n = conn.execute(
        sa.text(f"""
        UPDATE report r SET assigned_type = c.target_type, assigned_id = c.target_id,
               assigned_segment_id = c.segment_id,
               assignee_person_id = (SELECT p.id FROM person p WHERE p.id = c.owner_person_id),
               assignee_department_id = (SELECT d.id FROM department d WHERE d.id = c.owner_department_id),
               assigned_at = c.assigned_at
        FROM report_current c
        WHERE c.report_id = r.id AND c.target_type IS NOT NULL AND r.assigned_type IS NULL
          AND r.assignee_person_id IS NULL AND r.assignee_department_id IS NULL AND ({where})"""),
        params,
    ).rowcount
    conn.execute(
        sa.text(f"""
        UPDATE report r SET jurisdiction_id = case_jurisdiction(r.assigned_type, r.assigned_id, r.geom)
        WHERE r.jurisdiction_id IS NULL AND ({where})"""),
        params,
    )
    return int(n)


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
        raise InputError(f"unknown category {code_or_name!r}; categories: {', '.join(known) or 'none yet'}")
    return row


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
    now = now or _now(conn)
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
    _event(
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


def create_cases(
    conn: sa.Connection,
    actor: Actor,
    deployment,
    settings: Settings,
    inputs: Sequence[CaseInput | None],
    *,
    fallback_jurisdiction_id: int | None = None,
) -> pd.DataFrame:
    """Take in many cases (a spreadsheet, the geocoding page's rows): rows in = rows out.

    Each row is its own savepoint, so a bad row is reported and the others are
    kept.  A ``None`` input (a row that failed its checks before) stays a
    reported row.  Returns one row per input: ``case_id``, ``created``,
    ``unassigned``, ``owner``, ``due_at``, ``duplicates`` (ids), ``error``.
    """
    out = []
    for data in inputs:  # per row: each case routes, dates and reports its own outcome and duplicates
        if data is None:
            out.append({"case_id": None, "created": False, "error": None})
            continue
        try:
            with conn.begin_nested():
                made = create_case(conn, actor, deployment, settings, data,
                                   fallback_jurisdiction_id=fallback_jurisdiction_id)  # fmt: skip
        except InputError as exc:
            out.append({"case_id": None, "created": False, "error": str(exc)})
            continue
        out.append(
            {
                "case_id": made.id,
                "created": made.created,
                "unassigned": made.unassigned,
                "owner": made.routing.get("owner"),
                "due_at": made.due_at,
                "duplicates": ",".join(str(d["id"]) for d in made.duplicates),
                "error": None,
            }
        )
    return pd.DataFrame(out, columns=["case_id", "created", "unassigned", "owner", "due_at", "duplicates", "error"])


def find_duplicates(
    conn: sa.Connection,
    settings: Settings,
    *,
    category_id: int,
    lon: float,
    lat: float,
    at: dt.datetime,
    case_id: int | None = None,
    scope: Scope | None = None,
) -> list[dict]:
    """Open cases of the same category within ``duplicate_radius_m`` and ``duplicate_days`` of a point
    and time, nearest first (id, status, reported_at, address, description, distance_m)."""
    scope = scope or Scope.everything()
    radius = float(settings.duplicate_radius_m)
    # a box in degrees around the point first (the GiST index), then the exact distance in metres
    dlat = radius / 110_574.0
    dlon = radius / max(111_320.0 * np.cos(np.radians(min(abs(lat), 89.0))), 1.0)
    rows = conn.execute(
        sa.text(f"""
        SELECT r.id, r.status, r.reported_at, r.address, r.description,
               round(CAST(ST_Distance(CAST(r.geom AS geography), CAST(p.pt AS geography)) AS numeric), 1) AS distance_m
        FROM report r, (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt) p
        WHERE r.category_id = :cat AND {sql.report_is_open("r")} AND r.id IS DISTINCT FROM :me
          AND r.geom && ST_MakeEnvelope(:lon - :dlon, :lat - :dlat, :lon + :dlon, :lat + :dlat, 4326)
          AND ST_DWithin(CAST(r.geom AS geography), CAST(p.pt AS geography), :radius)
          AND r.reported_at BETWEEN CAST(:at AS timestamptz) - make_interval(secs => :window)
                                AND CAST(:at AS timestamptz) + make_interval(secs => :window)
          AND {scope.case_sql("r")}
        ORDER BY distance_m, r.id LIMIT 10"""),
        {
            "lon": lon,
            "lat": lat,
            "cat": category_id,
            "me": case_id,
            "dlon": dlon,
            "dlat": dlat,
            "radius": radius,
            "at": at,
            "window": float(settings.duplicate_days) * 86400.0,
            **scope.params(),
        },
    )
    return [
        {**dict(r._mapping), "distance_m": float(r.distance_m), "reported_at": r.reported_at.isoformat()} for r in rows
    ]


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
        raise InputError(f"photo kind must be one of {', '.join(PHOTO_KINDS)}, not {kind!r}")
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


def case_photos(conn: sa.Connection, scope: Scope, case_id: int) -> list[dict]:
    """The photos of a case and of the reports merged into it, oldest first; NotFound outside ``scope``."""
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
_CASE_SQL = """
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
FROM report c
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
        sa.text(_CASE_SQL + f" WHERE c.id = :id AND {scope.case_sql('c')}"), {"id": case_id, **scope.params()}
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id}")
    case = dict(row._mapping)
    now = now or _now(conn)
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


def case_events(conn: sa.Connection, scope: Scope, case_id: int) -> list[dict]:
    """The case's timeline, oldest first (at, actor, action, from → to, note, reason, detail)."""
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


# --- lists --------------------------------------------------------------------------------
VIEWS = ("mine", "queue", "all")


@dataclass(frozen=True)
class CaseFilters:
    """Filters of a case list (all optional): states, category code, owner person id, overdue only,
    reported between two local days, a jurisdiction (division code, with everything below it), a
    lon/lat box, or an area (WKT polygon in EPSG:4326) drawn on the map."""

    status: tuple[str, ...] = ()
    category: str | None = None
    owner_person_id: int | None = None
    overdue: bool = False
    since: dt.date | None = None
    until: dt.date | None = None
    jurisdiction: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    area_wkt: str | None = None

    def check(self) -> CaseFilters:
        bad = [s for s in self.status if s not in wf.STATES]
        if bad:
            raise InputError(f"unknown state {bad[0]!r}; states: {', '.join(wf.STATES)}")
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
                raise InputError("bbox must be west,south,east,north in degrees (EPSG:4326)")
        return self


def default_view(user: User) -> str:
    """A dispatcher's queue, a manager's (or admin's) everything, anyone else's own cases."""
    roles = user.roles
    if "dispatcher" in roles or "clerk" in roles:
        return "queue"
    if roles & {"manager", "admin", "inspector"}:
        return "all"
    return "mine"


def _list_where(view: str, user: User, filters: CaseFilters, settings: Settings) -> tuple[list[str], dict]:
    where, params = [], {}
    if view == "mine":
        departments = [g.department_id for g in user.grants if g.role == "department" and g.department_id]
        where.append(
            f"c.status IN ({', '.join(repr(s) for s in wf.ASSIGNEE_STATES)}) AND (c.assignee_person_id = :me "
            "OR c.escalated_person_id = :me OR c.assignee_department_id = ANY(CAST(:my_depts AS integer[])))"
        )
        params.update(me=user.person_id, my_depts=departments)
    elif view == "queue":
        where.append(f"c.status IN ({', '.join(repr(s) for s in wf.QUEUE_STATES)})")
    elif view != "all":
        raise InputError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
    if filters.status:
        where.append("c.status = ANY(CAST(:f_status AS text[]))")
        params["f_status"] = list(filters.status)
    elif view == "all":
        where.append("c.status <> 'merged'")
    if filters.category:
        where.append("cat.code = :f_cat")
        params["f_cat"] = filters.category
    if filters.owner_person_id is not None:
        where.append("(c.assignee_person_id = :f_owner OR c.escalated_person_id = :f_owner)")
        params["f_owner"] = int(filters.owner_person_id)
    if filters.overdue:
        where.append(sql.report_is_overdue("c", ":f_now"))
    if filters.since:
        where.append("c.reported_at >= :f_since")
        params["f_since"] = timeutil.day_start(filters.since, settings.timezone)
    if filters.until:
        where.append("c.reported_at < :f_until")
        params["f_until"] = timeutil.day_start(filters.until + dt.timedelta(days=1), settings.timezone)
    if filters.jurisdiction:
        where.append("""c.jurisdiction_id IN (WITH RECURSIVE t(id) AS (
            SELECT id FROM jurisdiction WHERE code = :f_jur UNION SELECT x.id FROM jurisdiction x JOIN t ON x.parent_id = t.id)
            SELECT id FROM t)""")
        params["f_jur"] = filters.jurisdiction
    if filters.bbox:
        where.append("c.geom && ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326)")
        params.update(dict(zip(("bx0", "by0", "bx1", "by1"), map(float, filters.bbox))))
    if filters.area_wkt:
        where.append("ST_Intersects(c.geom, ST_GeomFromText(:f_area, 4326))")
        params["f_area"] = filters.area_wkt
    return where, params


def list_cases(
    conn: sa.Connection,
    scope: Scope,
    user: User,
    settings: Settings,
    *,
    view: str = "all",
    filters: CaseFilters | None = None,
    page: int = 1,
    per_page: int = 50,
    now: dt.datetime | None = None,
    count: bool = True,
    max_rows: int = 500,
) -> tuple[pd.DataFrame, int | None]:
    """A page of cases for ``user`` within ``scope``, and how many match (None with ``count=False``).

    ``view``: ``"mine"`` — the cases waiting on the user (assigned, escalated
    to them, or to their department), by deadline; ``"queue"`` — new,
    accepted-but-not-sent and "not ours" cases, oldest first (the
    dispatcher's); ``"all"`` — everything in scope, by deadline.
    """
    filters = (filters or CaseFilters()).check()
    per_page = max(1, min(int(per_page), int(max_rows)))
    page = max(1, int(page))
    now = now or _now(conn)
    where, params = _list_where(view, user, filters, settings)
    where.append(scope.case_sql("c"))
    params.update(scope.params(), f_now=now, limit=per_page, offset=(page - 1) * per_page)
    order = "c.reported_at, c.id" if view == "queue" else "c.due_at NULLS LAST, c.id"
    body = " AND ".join(f"({w})" for w in where)
    frame = pd.read_sql_query(
        sa.text(_CASE_SQL + f" WHERE {body} ORDER BY {order} LIMIT :limit OFFSET :offset"), conn, params=params
    )
    total = None
    if count:
        total = int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM report c LEFT JOIN category cat ON cat.id = c.category_id WHERE {body}"),
                params,
            ).scalar()
        )
    if len(frame):
        frame["colour"] = [
            wf.deadline_colour(s, r, d, now) for s, r, d in zip(frame["status"], frame["reported_at"], frame["due_at"])
        ]
        frame["overdue"] = wf.overdue_mask(frame["status"], frame["due_at"], now)
    else:
        frame["colour"] = pd.Series(dtype=object)
        frame["overdue"] = pd.Series(dtype=bool)
    return frame, total


# --- the steps ----------------------------------------------------------------------------
def _event(
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


def _notify(
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


def _notify_role(conn: sa.Connection, case_id: int, role: str, kind: str, *, version: int, detail: dict) -> int:
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
        raise InputError(f"owner must be person:ID or department:ID, not {key!r}")
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
        raise Forbidden(f"{action} is taken by gisgrid itself, not by a person")
    row = conn.execute(
        sa.text(f"SELECT c.* FROM report c WHERE c.id = :id AND {scope.case_sql('c')} FOR UPDATE OF c"),
        {"id": int(case_id), **scope.params()},
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id}")
    case = dict(row._mapping)
    if int(step.version) != case["version"]:
        exc = Conflict(
            f"case {case_id} changed meanwhile: it is now {case['status']} (version {case['version']}, you saw "
            f"version {step.version}); reload it and take the step again — nothing of yours was lost"
        )
        exc.status, exc.version = case["status"], case["version"]
        raise exc
    roles = wf.case_roles(user.roles, is_owner=is_owner(case, user))
    wf.check_transition(case["status"], action, roles)
    note = (step.note or "").strip() or None
    reason = (step.reason or "").strip() or None
    if t.needs_reason and not reason:
        raise InputError(f"{action} needs a reason")
    if t.needs_note and not note:
        raise InputError(f"{action} needs a note saying what was done")
    if t.needs_photo and not any(True for _ in photos):
        raise InputError(f"{action} needs an 'after' photo")
    now = _now(conn)
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
                raise InputError("this case has no routed owner: choose a person or department, with a reason")
        elif (pid, did) != routed and not reason:
            raise InputError("dispatching to another owner than the routed one needs a reason")
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
            raise Forbidden("the person who handled a case cannot verify it: another patrol member or inspector checks")
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
        raise Conflict(f"case {case_id} changed meanwhile; reload it")
    if action == "reopen":
        new = _reopen(conn, actor, settings, deployment, case, reason, now)
        detail = {"new_case": new.id}
    event_id = _event(conn, case_id, actor, action, case["status"], new_status, version, note=note, reason=reason,
                      detail=detail or None)  # fmt: skip
    if photos:
        kind = "after" if action in ("handle", "verify_pass", "verify_fail") else "before"
        add_photos(conn, actor, case_id, photos, kind=kind, event_id=event_id)
    if action == "merge":
        _event(conn, detail["into"], actor, "merge_in", None, None, None, reason=reason, detail={"merged": case_id})
    if action == "return":
        _notify_role(conn, case_id, "dispatcher", "returned", version=version, detail={"reason": reason})
    elif action == "request_extension":
        _notify_role(conn, case_id, "manager", "extension", version=version,
                     detail={"reason": reason, "hours": detail.get("hours")})  # fmt: skip
    for kind, pid, did, why in notify:
        _notify(conn, case_id, kind, person_id=pid, department_id=did,
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
        raise InputError("an extension needs the hours to add (a number)") from None
    if not 0 < hours <= 24 * 365:
        raise InputError(f"an extension of {hours:g} hours is not plausible (more than 0, at most a year)")
    return hours


def _check_owner_exists(conn: sa.Connection, pid: int | None, did: int | None) -> None:
    if pid is not None and conn.execute(sa.text("SELECT 1 FROM person WHERE id = :i"), {"i": pid}).first() is None:
        raise InputError(f"no person {pid}")
    if did is not None and conn.execute(sa.text("SELECT 1 FROM department WHERE id = :i"), {"i": did}).first() is None:
        raise InputError(f"no department {did}")


def _merge_target(conn: sa.Connection, scope: Scope, case_id: int, into) -> dict:
    try:
        into = int(into)
    except (TypeError, ValueError):
        raise InputError("merge needs the number of the case this one joins") from None
    if into == int(case_id):
        raise InputError("a case cannot be merged into itself")
    row = conn.execute(
        sa.text(f"""
        SELECT c.id, c.status, c.merged_into_id FROM report c WHERE c.id = :id AND {scope.case_sql("c")}
        FOR UPDATE OF c"""),
        {"id": into, **scope.params()},
    ).first()
    if row is None:
        raise NotFound(f"no case {into}")
    if not wf.is_open(row.status):
        raise InputError(f"case {into} is {row.status}: merge into an open case")
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


# --- escalation and deadline warnings -------------------------------------------------------
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
    now = now or _now(conn)
    multiples = wf.parse_multiples(settings.escalation_multiples)
    cases = pd.read_sql_query(
        sa.text("""
        SELECT id, reported_at, due_at, escalation_level, escalated_person_id, assigned_segment_id, jurisdiction_id,
               version, status
        FROM report WHERE status = 'dispatched' AND due_at < :now
        FOR UPDATE SKIP LOCKED"""),
        conn,
        params={"now": now},
    )
    if cases.empty:
        return {"checked": 0, "escalated": 0}
    reached = wf.escalation_levels(cases["reported_at"], cases["due_at"], now, multiples)
    todo = cases[reached > cases["escalation_level"].to_numpy()].copy()
    todo["level"] = reached[reached > cases["escalation_level"].to_numpy()]
    people = _chain_people(conn, todo, timeutil.local_today(settings.timezone))
    escalated = 0
    for rec in todo.itertuples():  # per case: each escalation is its own event and inbox row
        level = int(rec.level)
        person = None
        holder_level = None
        for k in range(level, 0, -1):
            person = people.get((int(rec.id), wf.ESCALATION_ROLES[k]))
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
            "role": wf.ESCALATION_ROLES[level],
            "person_id": person,
        }
        if holder_level is not None and holder_level != level:
            detail["held_by"] = wf.ESCALATION_ROLES[holder_level]
        elif holder_level is None:
            detail["nobody"] = True
        _event(conn, int(rec.id), SYSTEM_ACTOR, "escalate", rec.status, rec.status, version, detail=detail)
        _notify(conn, int(rec.id), "escalated", person_id=person, detail=detail, dedupe=f"escalated:{rec.id}:{level}")
        escalated += 1
    if escalated:
        record_action(
            conn, SYSTEM_ACTOR, "case.escalate", target_type="case", detail={"cases": todo["id"].astype(int).tolist()}
        )
    return {"checked": len(cases), "escalated": escalated}


def warn_deadlines(conn: sa.Connection, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """An inbox row for the assignee of every dispatched case with less than
    :data:`~gisgrid.cases.workflow.WARN_SHARE` of its time left (once per case and deadline)."""
    now = now or _now(conn)
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


# --- a file of cases ------------------------------------------------------------------------
def import_cases(
    conn: sa.Connection,
    actor: Actor,
    deployment,
    settings: Settings,
    path,
    *,
    crs: str | None,
    sheet: str | None = None,
    fallback_jurisdiction_id: int | None = None,
) -> pd.DataFrame:
    """Take in every row of a file (CSV, XLSX, GeoJSON, GeoPackage …) as a case: rows in = rows out.

    The file is read by the one reader (:func:`gisgrid.io.read.read_layer`:
    lon/lat columns in ``crs``, or point geometries); each row becomes a case
    (:func:`create_cases`) or says why not.  Returns one row per data row:
    ``row`` (1-based, header excluded), ``case_id``, ``created``,
    ``unassigned``, ``owner``, ``due_at``, ``duplicates``, ``error``.
    """
    from gisgrid.cases.intake import rows_to_inputs
    from gisgrid.io.read import read_layer

    areas = None
    try:
        areas = deployment.index.areas
    except InputError:  # nothing to route to: every case is unassigned
        pass
    result = read_layer(path, crs=crs, sheet=sheet, expected_geom="point", extent=areas)
    frame = pd.DataFrame(result.frame.drop(columns="geometry"))
    for col in ("lon", "lat"):
        if col in frame.columns:
            frame = frame.rename(columns={col: f"{col}_orig"})
    frame["lon"] = result.frame.geometry.x.to_numpy()
    frame["lat"] = result.frame.geometry.y.to_numpy()
    inputs, errors = rows_to_inputs(frame, crs="EPSG:4326", source="import")
    made = create_cases(conn, actor, deployment, settings, inputs, fallback_jurisdiction_id=fallback_jurisdiction_id)
    made.insert(0, "row", frame["row"].to_numpy())
    made["error"] = [e or m for e, m in zip(errors, made["error"])]
    rejected = pd.DataFrame({"row": [p.row for p in result.rejected], "error": [p.reason for p in result.rejected]})
    out = pd.concat([made, rejected], ignore_index=True) if len(rejected) else made
    out["created"] = out["created"].fillna(False).astype(bool)
    return out.sort_values("row", kind="stable").reset_index(drop=True)


# --- what the pages draw ----------------------------------------------------------------------
def context_streets(conn: sa.Connection, bounds: Sequence[float], *, limit: int = 3000):
    """Segment centerlines (``name``: street · segment) meeting a lon/lat box, for a map's context."""
    import geopandas as gpd
    import shapely

    x0, y0, x1, y1 = (float(v) for v in bounds)
    frame = pd.read_sql_query(
        sa.text("""
        SELECT s.name || CASE WHEN g.name <> s.name THEN ' · ' || g.name ELSE '' END AS name,
               ST_AsBinary(g.geom) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id
        WHERE g.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) LIMIT :limit"""),
        conn,
        params={"x0": x0, "y0": y0, "x1": x1, "y1": y1, "limit": int(limit)},
    )
    geoms = shapely.from_wkb([bytes(g) for g in frame.pop("geom")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326))


def unit_area(conn: sa.Connection, assigned_type: str | None, assigned_id: int | None):
    """The area of the unit a case was routed to (a segment's frontage area, a cell), or None."""
    import shapely

    table = {"segment": "segment", "cell": "grid_cell"}.get(assigned_type or "")
    if table is None or assigned_id is None:
        return None
    column = "area" if table == "segment" else "geom"
    wkb = conn.execute(
        sa.text(f"SELECT ST_AsBinary({column}) FROM {table} WHERE id = :i"), {"i": int(assigned_id)}
    ).scalar()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None


def scope_bounds(conn: sa.Connection, scope: Scope) -> tuple[float, float, float, float] | None:
    """The lon/lat box of the jurisdictions (else segments) ``scope`` sees: where an intake map opens."""
    row = conn.execute(
        sa.text(f"""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
            SELECT COALESCE(
                (SELECT ST_Extent(j.geom) FROM jurisdiction j WHERE j.level <> 'county' AND {scope.sql("jurisdiction", "j")}),
                (SELECT ST_Extent(g.geom) FROM segment g WHERE {scope.sql("segment", "g")})) AS e) b"""),
        scope.params(),
    ).first()
    if row is None or row[0] is None:
        return None
    return tuple(float(v) for v in row)


def home_jurisdiction(user: User) -> int | None:
    """Where an unassigned case taken in by ``user`` belongs when the point is in no jurisdiction: the
    jurisdiction of their first area grant (a clerk's town), else None."""
    from gisgrid.accounts.roles import AREA_ROLES

    return next((g.jurisdiction_id for g in user.grants if g.role in AREA_ROLES and g.jurisdiction_id), None)


def owner_choices(conn: sa.Connection, case: dict, *, day: dt.date | None = None) -> list[dict]:
    """Whom a dispatcher may send a case to: the routed owner first, the chiefs of its segment's chain,
    the owners of its jurisdiction, then every department (``key`` as :class:`StepInput` ``owner`` takes it)."""
    day = day or dt.date.today()
    out: list[dict] = []
    seen: set[str] = set()

    def add(key, label):
        if key and key not in seen:
            seen.add(key)
            out.append({"key": key, "label": label})

    if case.get("assignee_person_id"):
        add(f"person:{case['assignee_person_id']}", f"{case.get('assignee_name') or ''} (routed)")
    if case.get("assignee_department_id"):
        add(f"department:{case['assignee_department_id']}", f"{case.get('assignee_department') or ''} (routed)")
    if case.get("assigned_segment_id"):
        for role, pid, name in conn.execute(
            sa.text(f"""SELECT role, person_id, owner_name FROM {sql.owner_chain_on(":day", ":segs")}
                        WHERE person_id IS NOT NULL ORDER BY level_rank"""),
            {"day": day, "segs": [int(case["assigned_segment_id"])]},
        ):
            add(f"person:{pid}", f"{name} ({role})")
    if case.get("jurisdiction_id"):
        for role, pid, name in conn.execute(
            sa.text(f"""SELECT a.role, a.person_id, a.owner_name FROM {sql.owner_on(":day")} a
                        WHERE a.target_type = 'jurisdiction' AND a.target_id = :j AND a.person_id IS NOT NULL
                        ORDER BY a.role"""),
            {"day": day, "j": int(case["jurisdiction_id"])},
        ):
            add(f"person:{pid}", f"{name} ({role})")
    for did, name in conn.execute(sa.text("SELECT id, name FROM department ORDER BY name")):
        add(f"department:{did}", name)
    return out


#: Columns of a case export, in order (English names; the pages' language is for pages).
EXPORT_COLUMNS = (
    "id", "status", "category", "category_name", "reported_at", "due_at", "closed_at", "overdue", "address",
    "description", "owner_name", "jurisdiction_code", "jurisdiction_name", "escalation_level", "escalated_name",
    "rework_count", "recurrence_of_id", "merged_into_id", "source", "lon", "lat",
)  # fmt: skip


def export_cases(
    conn: sa.Connection,
    scope: Scope,
    user: User,
    settings: Settings,
    *,
    view: str = "all",
    filters: CaseFilters | None = None,
    limit: int = 200_000,
):
    """The cases of a list (its view and filters, an area drawn on the map included) as a GeoDataFrame in
    EPSG:4326, times in the deployment's time zone, for XLSX and GeoJSON (the writer neutralises formulas)."""
    import geopandas as gpd

    frame, _total = list_cases(conn, scope, user, settings, view=view, filters=filters, page=1, per_page=limit,
                               count=False, max_rows=limit)  # fmt: skip
    out = frame.reindex(columns=list(EXPORT_COLUMNS)).copy()
    for col in ("reported_at", "due_at", "closed_at"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.tz_convert(settings.timezone).dt.strftime("%Y-%m-%d %H:%M")
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs=4326)
