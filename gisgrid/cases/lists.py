"""Case lists: the views (mine, queue, all), their filters, a page with its count, and exports.

Every query adds the visibility predicate (``Scope.case_sql``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import User
from gisgrid.cases import trail
from gisgrid.cases import workflow as wf
from gisgrid.cases.store import CASE_COLUMNS, CASE_JOINS
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.errors import InputError
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)


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
            raise InputError(
                N_("unknown state %(value)s; states: %(states)s", value=repr(bad[0]), states=", ".join(wf.STATES))
            )
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
                raise InputError(N_("bbox must be west,south,east,north in degrees (EPSG:4326)"))
        return self


def owner_candidates(
    conn: sa.Connection,
    scope: Scope,
    *,
    text: str | None = None,
    person_id: int | None = None,
    exact: bool = False,
    limit: int = 20,
) -> list[dict]:
    """People a case list may be filtered by: those owning, on ``scope.day``, a unit ``scope`` sees.

    Matched by name (``text``: part of it, or the whole name with ``exact``) or by ``person_id``.
    Namesakes stay apart: each row is ``{id, name, title, places, label}``, ``places`` the
    jurisdictions of the units the person owns, and ``label`` e.g. ``"张伟 · #12 · 学院路街道"`` —
    what the list's owner box shows and reads back (:func:`owner_id_from`).
    """
    where, params = [], {"o_day": scope.day, "o_limit": int(limit)}
    if person_id is not None:
        where.append("p.id = :o_id")
        params["o_id"] = int(person_id)
    if text is not None:
        text = text.strip()[:100]
        if exact:
            where.append("p.name = :o_text")
            params["o_text"] = text
        else:
            where.append("p.name ILIKE :o_like")
            params["o_like"] = "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    seen = "true"
    if not scope.unlimited:
        seen = (
            f"(sg.id IS NOT NULL AND {scope.sql('segment', 'sg')}) "
            f"OR (a.target_type = 'street' AND st.id IS NOT NULL AND {scope.sql('street', 'st')}) "
            f"OR (gc.id IS NOT NULL AND {scope.sql('cell', 'gc')}) "
            f"OR (a.target_type = 'jurisdiction' AND j.id IS NOT NULL AND {scope.sql('jurisdiction', 'j')})"
        )
        params.update(scope.params())
    rows = conn.execute(
        sa.text(f"""
        SELECT p.id, p.name, p.title, string_agg(DISTINCT j.name, '、' ORDER BY j.name) AS places
        FROM person p
        JOIN {sql.owner_on(":o_day")} a ON a.person_id = p.id
        LEFT JOIN segment sg ON a.target_type = 'segment' AND sg.id = a.target_id
        LEFT JOIN street st ON st.id = CASE WHEN a.target_type = 'street' THEN a.target_id ELSE sg.street_id END
        LEFT JOIN grid_cell gc ON a.target_type = 'cell' AND gc.id = a.target_id
        LEFT JOIN jurisdiction j ON j.id = CASE WHEN a.target_type = 'jurisdiction' THEN a.target_id
                                               ELSE COALESCE(st.jurisdiction_id, gc.jurisdiction_id) END
        WHERE {" AND ".join(f"({w})" for w in where) or "true"} AND ({seen})
        GROUP BY p.id, p.name, p.title ORDER BY p.name, p.id LIMIT :o_limit"""),
        params,
    ).mappings()
    out = []
    for r in rows:
        row = dict(r)
        row["label"] = " · ".join(x for x in (row["name"], f"#{row['id']}", row["places"] or row["title"] or "") if x)
        out.append(row)
    return out


#: "#12" in an owner box: the person's number, as the picker's labels write it.
_OWNER_NUMBER = re.compile(r"#(\d{1,9})\b")


def owner_id_from(conn: sa.Connection, scope: Scope, value: str | None) -> tuple[int | None, list[dict]]:
    """The person an owner box names: ``(person id, [])``, or ``(None, people)`` when a bare name fits
    several people, or none exactly but some by part of their name (the page asks which), or
    ``(None, [])`` for an empty box.

    The box holds a picker label (``"张伟 · #12 · 学院路街道"``: the number decides), a bare number, or a
    name typed by hand.  A name nobody in sight owns anything under is an :class:`InputError`.
    """
    value = (value or "").strip()
    if not value:
        return None, []
    if value.isdigit() and len(value) < 10:
        return int(value), []
    found = _OWNER_NUMBER.search(value)
    if found:
        return int(found.group(1)), []
    people = owner_candidates(conn, scope, text=value, exact=True)
    if len(people) == 1:
        return int(people[0]["id"]), []
    if not people:  # part of a name (王): the people whose names hold it, to choose from
        people = owner_candidates(conn, scope, text=value, limit=30)
    if not people:
        raise InputError(N_("nobody named %(name)s owns a place you can see: pick a name from the list", name=value))
    return None, people


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
        where.append("c.category_id IN (SELECT cf.id FROM category cf WHERE cf.code = :f_cat)")
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


@dataclass
class CasePage:
    """A page of a case list: its rows (dicts, with ``colour`` and ``overdue``), how many match (counted up to
    ``count_cap``; ``more`` when there are more than that), or ``total`` None when not counted."""

    rows: list[dict]
    total: int | None
    more: bool = False
    columns: tuple[str, ...] = ()


def case_page(
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
    count_cap: int | None = 1000,
    max_rows: int = 500,
) -> CasePage:
    """A page of cases for ``user`` within ``scope``, and how many match.

    ``view``: ``"mine"`` — the cases waiting on the user (assigned, escalated
    to them, or to their department), by deadline; ``"queue"`` — new,
    accepted-but-not-sent and "not ours" cases, oldest first (the
    dispatcher's); ``"all"`` — everything in scope, by deadline.

    The page's rows are chosen first (filters, visibility, order, limit on
    ``report`` alone) and only those are joined to their lookups: with the
    visibility predicate the planner cannot estimate how many rows match, and
    joining before the limit made it loop over every person for each of
    thousands of rows.  The count stops at ``count_cap`` (None: exact): a
    manager's million cases are "1,000+" at the cost of reading 1,001 index
    entries, not a million rows per page.
    """
    filters = (filters or CaseFilters()).check()
    per_page = max(1, min(int(per_page), int(max_rows)))
    page = max(1, int(page))
    now = now or trail.now(conn)
    where, params = _list_where(view, user, filters, settings)
    where.append(scope.case_sql("c"))
    params.update(scope.params(), f_now=now, limit=per_page, offset=(page - 1) * per_page)
    order = "c.reported_at, c.id" if view == "queue" else "c.due_at NULLS LAST, c.id"
    body = " AND ".join(f"({w})" for w in where)
    chosen = f"(SELECT c.* FROM report c WHERE {body} ORDER BY {order} LIMIT :limit OFFSET :offset)"
    result = conn.execute(sa.text(CASE_COLUMNS + f"FROM {chosen} c" + CASE_JOINS + f" ORDER BY {order}"), params)
    columns = (*result.keys(), "colour", "overdue")
    rows = [dict(r) for r in result.mappings()]
    for r in rows:
        r["colour"] = wf.deadline_colour(r["status"], r["reported_at"], r["due_at"], now)
        r["overdue"] = wf.is_overdue(r["status"], r["closed_at"], r["due_at"], now)
    total, more = None, False
    if count:
        cap = "" if count_cap is None else f" LIMIT {int(count_cap) + 1}"
        total = int(
            conn.execute(sa.text(f"SELECT count(*) FROM (SELECT 1 FROM report c WHERE {body}{cap}) n"), params).scalar()
        )
        if count_cap is not None and total > count_cap:
            total, more = int(count_cap), True
    return CasePage(rows, total, more, columns)


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
    """:func:`case_page` as a DataFrame with the exact count (None with ``count=False``): exports, tests."""
    found = case_page(conn, scope, user, settings, view=view, filters=filters, page=page, per_page=per_page, now=now,
                      count=count, count_cap=None, max_rows=max_rows)  # fmt: skip
    frame = pd.DataFrame(found.rows, columns=list(found.columns))
    if len(frame):
        for col in ("reported_at", "due_at", "closed_at", "updated_at", "assigned_at", "escalated_at", "suspended_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        frame["overdue"] = frame["overdue"].astype(bool)
    return frame, found.total


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
        out[col] = timeutil.local_texts(out[col], settings.timezone)
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs=4326)
