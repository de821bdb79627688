"""Owners on a date: the 段长 → 二级街长 → 一级街长 → 总街长 chain of each segment.

The rules (owner on a day, the chain: most specific level wins) are those of
:mod:`gisgrid.ownership.history`, read here through their SQL form
(:func:`gisgrid.db.sql.owner_chain_on`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import record_action
from gisgrid.crs import STORAGE_SRID
from gisgrid.db import layers, sql
from gisgrid.errors import InputError, NotFound
from gisgrid.io.read import RowProblem
from gisgrid.ownership.appointments import APPOINTABLE_ROLES, AppointmentRow, read_appointments
from gisgrid.ownership.history import CHAIN_ROLES, chain_text
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)


def _chain_sql(restricted: bool) -> str:
    return f"""
    SELECT c.segment_id, c.role, c.owner_name, c.owner_phone, c.owner_key, c.target_type, c.target_id, c.valid_from
    FROM {sql.owner_chain_on(":day", ":ids" if restricted else None)} c"""


def segment_owner_chains(
    conn: sa.Connection, day: dt.date | None = None, *, segment_ids: list[int] | None = None
) -> pd.DataFrame:
    """One row per segment: the owner of each chain role on ``day`` (default today).

    Returns
    -------
    DataFrame indexed by ``segment_id`` with columns ``段长``, ``二级街长``, ``一级街长``,
    ``总街长`` (owner names), ``owner_name``/``owner_phone`` (the 段长),
    ``owner_key`` (a stable id of the 段长: ``person:N`` or ``department:N``) and
    ``chain`` (a readable "段长 X → 二级街长 Y → …" string).  Segments without a
    段长 have ``owner_name`` NaN.
    """
    day = day or dt.date.today()
    flt = "AND g.id = ANY(:ids)" if segment_ids is not None else ""
    params = {"day": day}
    if segment_ids is not None:
        params["ids"] = [int(i) for i in segment_ids]
    rows = pd.read_sql_query(sa.text(_chain_sql(segment_ids is not None)), conn, params=params)
    seg_ids = pd.read_sql_query(
        sa.text(f"SELECT g.id AS segment_id FROM segment g WHERE true {flt}"), conn, params=params
    )
    out = seg_ids.set_index("segment_id")
    for role in CHAIN_ROLES:
        sub = rows[rows.role == role].set_index("segment_id")
        out[role] = sub["owner_name"]
        if role == "段长":
            out["owner_name"] = sub["owner_name"]
            out["owner_phone"] = sub["owner_phone"]
            out["owner_key"] = sub["owner_key"]
    out["chain"] = [chain_text(dict(zip(CHAIN_ROLES, names))) or None for names in out[list(CHAIN_ROLES)].to_numpy()]
    return out


def with_owner_chains(conn: sa.Connection, segments: pd.DataFrame, day: dt.date | None = None) -> pd.DataFrame:
    """``segments`` (a frame with an ``id`` column, e.g. the ``segments`` layer) with each one's owner chain on
    ``day`` (default today): columns ``段长``, ``二级街长``, ``一级街长``, ``总街长``, ``owner_phone`` (the
    段长's) and ``chain``, so that whoever reads an export needs no second file.  The input is not changed."""
    chains = segment_owner_chains(conn, day, segment_ids=[int(i) for i in segments["id"]])
    columns = [*CHAIN_ROLES, "owner_phone", "chain"]
    return segments.join(chains[columns], on="id")


# --- owners managed in the browser (issue 18) -------------------------------------------------
_UNIT_TABLES = {"segment": "segment", "street": "street", "cell": "grid_cell", "jurisdiction": "jurisdiction"}
_UNIT_LABEL = {
    "segment": "u.name || ' (' || (SELECT s.name FROM street s WHERE s.id = u.street_id) || ')'",
    "street": "u.name",
    "cell": "u.code",
    "jurisdiction": "u.name || ' (' || u.code || ')'",
}


def unit_label(conn: sa.Connection, unit_type: str, unit_id: int) -> str | None:
    """A readable name of the unit (segment with its street, street, cell code, jurisdiction), None if missing."""
    if unit_type not in _UNIT_TABLES:
        raise InputError(f"unit type must be one of {', '.join(_UNIT_TABLES)}, got {unit_type!r}")
    return conn.execute(
        sa.text(f"SELECT {_UNIT_LABEL[unit_type]} FROM {_UNIT_TABLES[unit_type]} u WHERE u.id = :i"), {"i": unit_id}
    ).scalar()


def assignment_history(conn: sa.Connection, unit_type: str, unit_id: int) -> pd.DataFrame:
    """Every appointment ever made on the unit, newest first: the unit's ownership timeline.

    Columns: ``id``, ``role``, ``owner_kind`` (person/department), ``person_id``,
    ``department_id``, ``owner_name``, ``owner_phone``, ``valid_from``, ``valid_to``.
    """
    return pd.read_sql_query(
        sa.text("""
        SELECT a.id, a.role, CASE WHEN a.person_id IS NOT NULL THEN 'person' ELSE 'department' END AS owner_kind,
               a.person_id, a.department_id, COALESCE(p.name, d.name) AS owner_name,
               COALESCE(p.phone, d.phone) AS owner_phone, a.valid_from, a.valid_to
        FROM owner_assignment a LEFT JOIN person p ON p.id = a.person_id
        LEFT JOIN department d ON d.id = a.department_id
        WHERE a.target_type = :t AND a.target_id = :i
        ORDER BY a.valid_from DESC, a.id DESC"""),
        conn,
        params={"t": unit_type, "i": unit_id},
    )


def search_people(conn: sa.Connection, text: str, *, limit: int = 20) -> pd.DataFrame:
    """People and departments whose name, phone or title holds ``text`` (or whose id is it), by id.

    Two people with one name stay two rows: each with its id, phone, title and
    the number of units it owns today, so the user can tell them apart.
    """
    text = (text or "").strip()[:100]
    like = "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    return pd.read_sql_query(
        sa.text("""
        SELECT 'person' AS kind, p.id, p.name, p.phone, p.title,
               (SELECT count(*) FROM owner_assignment a WHERE a.person_id = p.id
                  AND a.valid_from <= CURRENT_DATE AND (a.valid_to IS NULL OR CURRENT_DATE < a.valid_to)) AS units
        FROM person p WHERE p.name ILIKE :like OR p.phone ILIKE :like OR p.title ILIKE :like
              OR CAST(p.id AS text) = :text
        UNION ALL
        SELECT 'department', d.id, d.name, d.phone, d.code,
               (SELECT count(*) FROM owner_assignment a WHERE a.department_id = d.id
                  AND a.valid_from <= CURRENT_DATE AND (a.valid_to IS NULL OR CURRENT_DATE < a.valid_to))
        FROM department d WHERE d.name ILIKE :like OR d.code ILIKE :like
        ORDER BY 3, 2 LIMIT :limit"""),
        conn,
        params={"like": like, "text": text, "limit": int(limit)},
    )


def appoint_owner(
    conn: sa.Connection,
    actor,
    *,
    unit_type: str,
    unit_id: int,
    role: str,
    valid_from: dt.date,
    person_id: int | None = None,
    department_id: int | None = None,
) -> dict:
    """Appoint a person or a department to a unit in a role from ``valid_from``.

    Whoever held that role on the unit then hands over: their appointment ends
    on ``valid_from`` (history kept).  ``actor`` (a
    :class:`gisgrid.accounts.users.Actor`) is written to the audit log with the
    appointment ids before and after.  Returns ``{"assignment_id", "ended"}``.
    """
    if role not in APPOINTABLE_ROLES.get(unit_type, ()):
        allowed = ", ".join(APPOINTABLE_ROLES.get(unit_type, ())) or "none"
        raise InputError(f"a {unit_type} takes the role(s) {allowed}, not {role!r}")
    if (person_id is None) == (department_id is None):
        raise InputError("appoint exactly one person or one department")
    if unit_label(conn, unit_type, unit_id) is None:
        raise NotFound(f"no {unit_type} {unit_id}")
    owner_table, owner_id = ("person", person_id) if person_id is not None else ("department", department_id)
    if conn.execute(sa.text(f"SELECT 1 FROM {owner_table} WHERE id = :i"), {"i": owner_id}).first() is None:
        raise NotFound(f"no {owner_table} {owner_id}")
    where = "a.target_type = :t AND a.target_id = :i AND a.role = :r"
    params = {"t": unit_type, "i": unit_id, "r": role}
    before = [
        r[0]
        for r in conn.execute(
            sa.text(f"""SELECT a.id FROM owner_assignment a WHERE {where}
                        AND (a.valid_to IS NULL OR a.valid_to > :d)"""),
            {**params, "d": valid_from},
        )
    ]
    ended, deleted = sql.end_assignments(conn, where, params, valid_from)
    new_id = conn.execute(
        sa.text("""
        INSERT INTO owner_assignment (person_id, department_id, target_type, target_id, role, valid_from)
        VALUES (:p, :dep, :t, :i, :r, :d) RETURNING id"""),
        {"p": person_id, "dep": department_id, "t": unit_type, "i": unit_id, "r": role, "d": valid_from},
    ).scalar()
    record_action(
        conn,
        actor,
        "owner.appoint",
        target_type=unit_type,
        target_id=unit_id,
        before={"assignment_ids": before},
        after={
            "assignment_id": new_id,
            "role": role,
            "person_id": person_id,
            "department_id": department_id,
            "valid_from": valid_from.isoformat(),
        },
    )
    LOGGER.info(
        "%s appointed %s:%s as %s of %s %s from %s",
        actor.name,
        owner_table,
        owner_id,
        role,
        unit_type,
        unit_id,
        valid_from,
    )
    return {"assignment_id": int(new_id), "ended": ended + deleted}


def appointment_unit(conn: sa.Connection, assignment_id: int) -> tuple[str, int]:
    """(unit type, unit id) of an appointment; :class:`NotFound` when there is none."""
    row = conn.execute(
        sa.text("SELECT target_type, target_id FROM owner_assignment WHERE id = :i"), {"i": assignment_id}
    ).first()
    if row is None:
        raise NotFound(f"no appointment {assignment_id}")
    return row.target_type, int(row.target_id)


def end_appointment(conn: sa.Connection, actor, assignment_id: int, day: dt.date) -> dict:
    """End an appointment on ``day`` (it held until the day before; one that had not begun is removed).

    Returns the appointment's unit: ``{"unit_type", "unit_id"}``.
    """
    row = conn.execute(
        sa.text("SELECT target_type, target_id, valid_from, valid_to FROM owner_assignment WHERE id = :i FOR UPDATE"),
        {"i": assignment_id},
    ).first()
    if row is None:
        raise NotFound(f"no appointment {assignment_id}")
    if row.valid_to is not None and row.valid_to <= day:
        raise InputError(f"appointment {assignment_id} ended already on {row.valid_to.isoformat()}")
    sql.end_assignments(conn, "a.id = :aid", {"aid": assignment_id}, day)
    record_action(
        conn,
        actor,
        "owner.end",
        target_type=row.target_type,
        target_id=row.target_id,
        before={"assignment_id": assignment_id, "valid_to": None if row.valid_to is None else row.valid_to.isoformat()},
        after={"assignment_id": assignment_id, "valid_to": day.isoformat()},
    )
    return {"unit_type": row.target_type, "unit_id": int(row.target_id)}


def segments_with_owners(
    conn: sa.Connection,
    day: dt.date | None = None,
    *,
    jurisdiction_code: str | None = None,
    in_area_of: str | None = None,
    scope=None,
):
    """Segment areas with their owner chain on ``day`` (default today), as the ownership map draws them.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    day : date, optional
        Owners valid on this day; default today.
    jurisdiction_code : str, optional
        Only the segments of streets filed under this jurisdiction.
    in_area_of : str, optional
        Only the segments whose centerline intersects this jurisdiction's boundary.
    scope : gisgrid.accounts.scope.Scope, optional
        Only the segments its user may see.

    Returns
    -------
    GeoDataFrame
        EPSG:4326, the area polygon as geometry: the ``segments`` layer
        (:mod:`gisgrid.db.layers`) with ``street_name``, ``segment_name``,
        ``owner_id`` (the 段长's stable key), ``owner_name``, ``owner_phone``,
        ``chain``, ``owner_place`` (the street's jurisdiction) and ``centerline`` (a second geometry column), as
        :func:`gisgrid.maps.ownership.ownership_map` takes them.
    """
    segs = layers.fetch_layer(conn, "segments", jurisdiction_code=jurisdiction_code, in_area_of=in_area_of, scope=scope)
    chains = segment_owner_chains(conn, day, segment_ids=segs["id"].tolist())
    segs = segs.join(chains, on="id").rename(
        columns={"street": "street_name", "name": "segment_name", "owner_key": "owner_id"}
    )
    segs["centerline"] = gpd.GeoSeries.from_wkt(segs.pop("centerline_wkt"), crs=STORAGE_SRID)
    # where the segment lies: beside a name two owners share on the map's legend
    places = dict(
        conn.execute(
            sa.text(
                "SELECT s.id, j.name FROM street s JOIN jurisdiction j ON j.id = s.jurisdiction_id "
                "WHERE s.id = ANY(:ids)"
            ),
            {"ids": sorted({int(v) for v in segs["street_id"]})},
        ).all()
    )
    segs["owner_place"] = segs["street_id"].map(places)
    return segs


# --- many appointments from a sheet (批量任命) ----------------------------------------------------
@dataclass(frozen=True)
class ReadyAppointment:
    """A row of a sheet whose unit and owner were found: what :func:`appoint_owner` will be asked."""

    row: int
    unit_type: str
    unit_id: int
    unit_label: str
    role: str
    valid_from: dt.date
    person_id: int | None
    department_id: int | None
    owner_label: str


@dataclass
class BulkResult:
    """A sheet checked (and, once confirmed, appointed): rows read = ready (or appointed) + problems."""

    source: str
    total: int
    ready: list[ReadyAppointment] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    appointed: list[ReadyAppointment] = field(default_factory=list)


def _found(conn: sa.Connection, sql_text: str, params: dict) -> dict:
    return {r[0]: tuple(r[1:]) for r in conn.execute(sa.text(sql_text), params)}


def _units_named(conn: sa.Connection, rows: list[AppointmentRow], scope: Scope) -> dict[tuple[str, str], list]:
    """(unit type, unit as written) → the (id, label) of every unit the user sees that it names."""
    refs: dict[str, set[str]] = {}
    for a in rows:
        refs.setdefault(a.unit_type, set()).add(a.unit)
    out: dict[tuple[str, str], list] = {}
    p = scope.params()

    def add(unit_type: str, query: str, params: dict) -> None:
        for ref, uid, label in conn.execute(sa.text(query), {**p, **params}):
            out.setdefault((unit_type, ref), []).append((int(uid), label))

    ids = lambda t: [int(r) for r in refs.get(t, ()) if r.isdigit() and len(r) <= 9]  # noqa: E731
    if "segment" in refs:
        add(
            "segment",
            f"""SELECT CAST(u.id AS text), u.id, {_UNIT_LABEL["segment"]} FROM segment u
                WHERE u.id = ANY(:ids) AND {scope.sql("segment", "u")}""",
            {"ids": ids("segment")},
        )
    if "street" in refs:
        add(
            "street",
            f"""SELECT CASE WHEN CAST(u.id AS text) = ANY(:refs) THEN CAST(u.id AS text) ELSE u.name END,
                       u.id, {_UNIT_LABEL["street"]} || ' (' || coalesce(j.name, '') || ')'
                FROM street u LEFT JOIN jurisdiction j ON j.id = u.jurisdiction_id
                WHERE (u.id = ANY(:ids) OR u.name = ANY(:refs)) AND {scope.sql("street", "u")}""",
            {"ids": ids("street"), "refs": sorted(refs["street"])},
        )
    if "cell" in refs:
        add(
            "cell",
            f"""SELECT u.code, u.id, {_UNIT_LABEL["cell"]} FROM grid_cell u
                WHERE u.code = ANY(:refs) AND {scope.sql("cell", "u")}""",
            {"refs": sorted(refs["cell"])},
        )
    if "jurisdiction" in refs:
        add(
            "jurisdiction",
            f"""SELECT u.code, u.id, {_UNIT_LABEL["jurisdiction"]} FROM jurisdiction u
                WHERE u.code = ANY(:refs) AND {scope.sql("jurisdiction", "u")}""",
            {"refs": sorted(refs["jurisdiction"])},
        )
    return out


def _owners_named(conn: sa.Connection, rows: list[AppointmentRow]) -> dict[tuple[str, object], list]:
    """('person_id', id) / ('person', name) / ('department', code or name) → [(id, label)] of who it names."""
    out: dict[tuple[str, object], list] = {}
    person_ids = sorted({a.person_id for a in rows if a.person_id is not None})
    names = sorted({a.person for a in rows if a.person})
    departments = sorted({a.department for a in rows if a.department})
    label = "p.name || ' · person ' || p.id || coalesce(' · ' || p.phone, '')"
    for pid, text in conn.execute(
        sa.text(f"SELECT p.id, {label} FROM person p WHERE p.id = ANY(:ids)"), {"ids": person_ids}
    ):
        out[("person_id", pid)] = [(pid, text)]
    for name, pid, text in conn.execute(
        sa.text(f"SELECT p.name, p.id, {label} FROM person p WHERE p.name = ANY(:names) ORDER BY p.id"),
        {"names": names},
    ):
        out.setdefault(("person", name), []).append((pid, text))
    for ref, did, text in conn.execute(
        sa.text("""
        SELECT CASE WHEN d.code = ANY(:refs) THEN d.code ELSE d.name END, d.id,
               d.name || ' · department ' || d.code
        FROM department d WHERE d.code = ANY(:refs) OR d.name = ANY(:refs) ORDER BY d.id"""),
        {"refs": departments},
    ):
        out.setdefault(("department", ref), []).append((did, text))
    return out


def check_appointments(
    conn: sa.Connection, rows: list[AppointmentRow], scope: Scope
) -> tuple[list[ReadyAppointment], list[RowProblem]]:
    """Find the unit and the owner each row names; the rows ready to appoint, and the others with their reasons.

    A unit the user of ``scope`` does not see is reported as one that does not
    exist.  A name borne by two people, or a street name two streets share,
    is reported with the ids to choose from.
    """
    units = _units_named(conn, rows, scope)
    owners = _owners_named(conn, rows)
    ready, problems = [], []
    first_of: dict[tuple[str, int, str], int] = {}
    for a in rows:
        reasons = []
        found = units.get((a.unit_type, a.unit), [])
        if not found:
            reasons.append(N_("no %(unit_type)s %(unit)s", unit_type=a.unit_type, unit=repr(a.unit)))
        elif len(found) > 1:
            reasons.append(
                N_(
                    "%(n)s units of type %(unit_type)s are named %(unit)s (ids %(ids)s): give the id",
                    n=len(found),
                    unit_type=a.unit_type,
                    unit=repr(a.unit),
                    ids=", ".join(str(i) for i, _l in found),
                )
            )
        if a.person_id is not None:
            key, what = ("person_id", a.person_id), N_("no person with id %(id)s", id=a.person_id)
        elif a.person:
            key, what = ("person", a.person), N_("nobody is named %(name)s", name=repr(a.person))
        else:
            key, what = ("department", a.department), N_("no department %(name)s", name=repr(a.department))
        who = owners.get(key, [])
        if not who:
            reasons.append(what)
        elif len(who) > 1:
            reasons.append(
                N_(
                    "%(n)s people are named %(name)s (person ids %(ids)s): give the person_id",
                    n=len(who),
                    name=repr(a.person),
                    ids=", ".join(str(i) for i, _l in who),
                )
            )
        if reasons:
            problems.append(RowProblem(a.row, N_.join("; ", reasons)))
            continue
        (unit_id, unit_text), (owner_id, owner_text) = found[0], who[0]
        earlier = first_of.setdefault((a.unit_type, unit_id, a.role), a.row)
        if earlier != a.row:  # the same unit written two ways (a street by id and by name)
            problems.append(RowProblem(a.row, N_("the same unit and role as row %(n)s", n=earlier)))
            continue
        department = key[0] == "department"
        ready.append(
            ReadyAppointment(
                a.row,
                a.unit_type,
                unit_id,
                unit_text,
                a.role,
                a.valid_from,
                None if department else owner_id,
                owner_id if department else None,
                owner_text,
            )
        )
    return ready, problems


def bulk_appoint(
    conn: sa.Connection,
    actor,
    rows,
    *,
    source: str,
    scope: Scope,
    today: dt.date | None = None,
    apply: bool = False,
) -> BulkResult:
    """Check a sheet of appointments and, with ``apply``, appoint every good row in ``conn``'s transaction.

    Parameters
    ----------
    rows : gisgrid.io.tables.TableChunk
        The sheet as the one table reader read it (:func:`gisgrid.io.tables.read_table`):
        its rows by number, and those it could not read.
    source : str
        The file's name, for the page and the audit log.
    scope : Scope
        Whose sight limits the units a row may name (the manager's).
    apply : bool
        False: a preview, nothing is written.  True: each ready row is
        appointed by :func:`appoint_owner` (its own audit row, by ``actor``);
        a row refused then is reported like the others, the rest go through.

    Returns
    -------
    BulkResult
        ``total == len(ready) + len(problems)`` (before), ``== len(appointed) + len(problems)`` (after).

    Raises
    ------
    InputError
        A column the sheet needs is missing (nothing is checked then).
    """
    today = today or dt.date.today()
    parsed, problems = read_appointments(rows.frame, today=today)
    ready, unfound = check_appointments(conn, parsed, scope)
    unreadable = [RowProblem(int(n), why) for n, why in rows.malformed.items()]
    result = BulkResult(source, rows.rows, ready, sorted([*unreadable, *problems, *unfound], key=_row))
    if not apply:
        return result
    for a in ready:
        try:
            with conn.begin_nested():
                appoint_owner(
                    conn,
                    actor,
                    unit_type=a.unit_type,
                    unit_id=a.unit_id,
                    role=a.role,
                    valid_from=a.valid_from,
                    person_id=a.person_id,
                    department_id=a.department_id,
                )
        except (InputError, NotFound) as exc:
            result.problems.append(RowProblem(a.row, getattr(exc, "text", None) or str(exc)))
        else:
            result.appointed.append(a)
    result.problems.sort(key=_row)
    record_action(
        conn,
        actor,
        "owner.bulk",
        detail={
            "source": source,
            "rows": result.total,
            "appointed": len(result.appointed),
            "reported": len(result.problems),
            "problem_rows": [p.row for p in result.problems][:1000],
        },
    )
    LOGGER.info(
        "%s appointed %d owners from %s (%d rows, %d reported)",
        actor.name,
        len(result.appointed),
        source,
        result.total,
        len(result.problems),
    )
    return result


def _row(problem: RowProblem) -> int:
    return problem.row
