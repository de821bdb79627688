"""Open311 GeoReport v2 over the stored categories and cases: the one module of :mod:`gisgrid.interop` that
reads and writes them for Open311.

Every read of cases is limited by the caller's sight (:meth:`Scope.case_sql`,
the one visibility predicate); a new request is a case taken in through the
one intake path (:func:`gisgrid.cases.intake.parse_case_input`, then
:func:`gisgrid.cases.store.create_case`: routing, deadline, events, audit log).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import Actor
from gisgrid.cases import store as cases
from gisgrid.cases.intake import parse_case_input
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.errors import InputError
from gisgrid.interop import open311
from gisgrid.interop.open311 import NewRequest, Open311Error, RequestFilters
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)

#: Prefix of the tokens a POST answers with (the case's ``client_id``), so that a token is never a client's id.
TOKEN_PREFIX = "o311-"


# --- services --------------------------------------------------------------------------------
def _categories(conn: sa.Connection, code: str | None = None) -> list[dict]:
    where = "WHERE c.code = :code" if code is not None else ""
    rows = conn.execute(
        sa.text(f"""
        SELECT c.code, c.name, c.name_en, c.kind, c.service_group, c.keywords, c.attributes
        FROM category c {where} ORDER BY c.code"""),
        {"code": code},
    ).mappings()
    return [dict(r) for r in rows]


def services(conn: sa.Connection, *, lang: str = "zh") -> list[dict]:
    """``GET services``: every category as an Open311 service."""
    return [open311.service(r, lang=lang) for r in _categories(conn)]


def service_definition(conn: sa.Connection, code: str) -> dict:
    """``GET services/{code}``; Open311Error 404 for an unknown code or a service without attributes."""
    rows = _categories(conn, code)
    if not rows:
        raise Open311Error(404, N_("no service with code %(code)s", code=repr(code)))
    if not rows[0]["attributes"]:
        raise Open311Error(404, N_("service %(code)s has no attributes (its metadata is false)", code=repr(code)))
    return open311.service_definition(code, rows[0]["attributes"])


def jurisdiction_codes(conn: sa.Connection) -> list[dict]:
    """The towns (and counties) a client may name in ``jurisdiction_id``."""
    rows = conn.execute(
        sa.text("SELECT code, name, level FROM jurisdiction WHERE level IN ('county', 'town') ORDER BY code")
    ).mappings()
    return [dict(r) for r in rows]


def _check_jurisdiction(conn: sa.Connection, code: str | None) -> None:
    if code is None:
        return
    found = conn.execute(sa.text("SELECT 1 FROM jurisdiction WHERE code = :c"), {"c": code}).first()
    if found is None:
        raise Open311Error(400, N_("unknown jurisdiction_id %(code)s", code=repr(code[:40])))


#: The jurisdiction with code ``:jcode`` and every one below it.
_SUBTREE = (
    "WITH RECURSIVE sub AS (SELECT id FROM jurisdiction WHERE code = :jcode "
    "UNION ALL SELECT j.id FROM jurisdiction j JOIN sub ON j.parent_id = sub.id) SELECT id FROM sub"
)


# --- requests out ----------------------------------------------------------------------------
def _requests_sql(where: str, page: str = "") -> str:
    """The rows of the requests matching ``where`` (on ``report r`` and ``category c``), cut to ``page`` (an
    ``ORDER BY … LIMIT …``) before the per-row details are joined, so that only the page's are looked up."""
    return f"""
SELECT r.id, r.status, r.reported_at, r.updated_at, r.due_at, r.address, r.description, r.media_url,
       ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, c.code AS service_code,
       CASE WHEN :lang = 'en' AND c.name_en IS NOT NULL THEN c.name_en ELSE c.name END AS service_name,
       COALESCE(ap.name, ad.name, cd.name) AS agency_responsible,
       ev.note AS status_notes
FROM (SELECT r.* FROM report r LEFT JOIN category c ON c.id = r.category_id WHERE {where} {page}) r
LEFT JOIN category c ON c.id = r.category_id
LEFT JOIN person ap ON ap.id = r.assignee_person_id
LEFT JOIN department ad ON ad.id = r.assignee_department_id
LEFT JOIN department cd ON cd.id = c.department_id
LEFT JOIN LATERAL (
    SELECT COALESCE(e.note, e.reason) AS note FROM case_event e
    WHERE e.report_id = r.id AND (e.note IS NOT NULL OR e.reason IS NOT NULL)
    ORDER BY e.id DESC LIMIT 1) ev ON true"""


def _ts(column: str) -> str:
    """ISO 8601 text of a timestamptz column with its offset, in the session's time zone (see :func:`_run`)."""
    return f"""to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')"""


#: Each request as Open311 words it, built by PostgreSQL (one JSON text for the page, no Python per row).
_REQUEST_JSON = f"""
json_build_object(
    'service_request_id', CAST(q.id AS text),
    'status', CASE WHEN {sql.report_is_open("q")} THEN 'open' ELSE 'closed' END,
    'status_notes', q.status_notes, 'service_name', q.service_name, 'service_code', COALESCE(q.service_code, ''),
    'description', q.description, 'agency_responsible', q.agency_responsible, 'service_notice', NULL,
    'requested_datetime', {_ts("q.reported_at")}, 'updated_datetime', {_ts("q.updated_at")},
    'expected_datetime', {_ts("q.due_at")}, 'address', q.address, 'address_id', NULL, 'zipcode', NULL,
    'lat', round(CAST(q.lat AS numeric), 7), 'long', round(CAST(q.lon AS numeric), 7), 'media_url', q.media_url)"""


def _run(conn: sa.Connection, rows_sql: str, params: dict, settings: Settings) -> list[dict]:
    """The requests of ``rows_sql`` (:func:`_requests_sql`) as Open311 dicts, newest first, their
    times in the deployment's time zone (set for this statement only, then restored)."""
    text = (
        f"SELECT COALESCE(json_agg({_REQUEST_JSON} ORDER BY q.reported_at DESC, q.id DESC), '[]') FROM ({rows_sql}) q"
    )
    prev = conn.execute(sa.text("SELECT current_setting('timezone')")).scalar()
    conn.execute(sa.text("SELECT set_config('timezone', :tz, true)"), {"tz": settings.timezone})
    try:
        with sql.no_jit(conn):
            found = conn.execute(sa.text(text), params).scalar()
    finally:
        conn.execute(sa.text("SELECT set_config('timezone', :tz, true)"), {"tz": prev})
    return json.loads(found) if isinstance(found, str) else found


def list_requests(
    conn: sa.Connection, scope: Scope, filters: RequestFilters, settings: Settings, *, lang: str = "zh"
) -> list[dict]:
    """``GET requests``: the cases the caller sees that match ``filters``, newest first, one page."""
    _check_jurisdiction(conn, filters.jurisdiction_id)
    where = [scope.case_sql("r")]
    params: dict = {**scope.params(), "lang": lang, "limit": filters.page_size, "offset": filters.offset}
    if filters.ids:
        where.append("r.id = ANY(:ids)")
        params["ids"] = list(filters.ids)
    else:
        if filters.service_codes:
            where.append("c.code = ANY(:codes)")
            params["codes"] = list(filters.service_codes)
        if filters.start is not None:
            where.append("r.reported_at >= :start")
            params["start"] = filters.start
        if filters.end is not None:
            where.append("r.reported_at <= :end")
            params["end"] = filters.end
        if set(filters.statuses) == {"open"}:
            where.append(sql.report_is_open("r"))
        elif set(filters.statuses) == {"closed"}:
            where.append(f"NOT {sql.report_is_open('r')}")
    if filters.jurisdiction_id is not None:
        where.append(f"r.jurisdiction_id IN ({_SUBTREE})")
        params["jcode"] = filters.jurisdiction_id
    text = _requests_sql(
        " AND ".join(f"({w})" for w in where), "ORDER BY r.reported_at DESC, r.id DESC LIMIT :limit OFFSET :offset"
    )
    return _run(conn, text, params, settings)


def get_request(conn: sa.Connection, scope: Scope, request_id: int, settings: Settings, *, lang: str = "zh") -> dict:
    """``GET requests/{id}``; Open311Error 404 when there is none the caller sees."""
    text = _requests_sql(f"r.id = :id AND {scope.case_sql('r')}")
    found = _run(conn, text, {**scope.params(), "id": request_id, "lang": lang}, settings)
    if not found:
        raise Open311Error(404, N_("no service request %(id)s", id=request_id))
    return found[0]


def request_for_token(conn: sa.Connection, scope: Scope, token: str) -> list[dict]:
    """``GET tokens/{token}``: ``[{service_request_id, token}]``; Open311Error 404 for a token not seen.

    A token is only ever answered to the client that could see its case.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 64:
        raise Open311Error(404, N_("no token %(token)s", token=repr(token[:64])))
    row = conn.execute(
        sa.text(f"SELECT r.id FROM report r WHERE r.client_id = :t AND {scope.case_sql('r')}"),
        {**scope.params(), "t": token},
    ).first()
    if row is None:
        raise Open311Error(404, N_("no token %(token)s", token=repr(token[:64])))
    return [{"service_request_id": str(row.id), "token": token}]


# --- requests in -----------------------------------------------------------------------------
def create_request(
    conn: sa.Connection,
    actor: Actor,
    deployment,
    settings: Settings,
    new: NewRequest,
    *,
    geocoder=None,
    fallback_jurisdiction_id: int | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """``POST requests``: one case through the one intake path, routed, with its deadline.

    Parameters
    ----------
    geocoder : object with ``geocode(address) -> GeocodeResult``, optional
        Places an ``address_string`` sent without ``lat``/``long`` (the app's
        gazetteers, :class:`gisgrid.geocode.store.Gazetteers`).

    Returns
    -------
    dict
        ``{service_request_id, token, service_notice, account_id}``.

    Raises
    ------
    Open311Error
        400: an unknown service, bad attributes, an address not found, a
        point the intake refuses.
    """
    _check_jurisdiction(conn, new.jurisdiction_id)
    rows = _categories(conn, new.service_code)
    if not rows:
        raise Open311Error(400, N_("unknown service_code %(code)s", code=repr(new.service_code[:40])))
    attributes = open311.check_attributes(rows[0]["attributes"] or [], new.attributes)
    lon, lat = new.lon, new.lat
    if lat is None:
        if geocoder is None:
            raise Open311Error(400, N_("address_string cannot be placed here: send lat and long"))
        found = geocoder.geocode(new.address)
        if not found.ok:
            raise Open311Error(
                400, N_("address_string was not found (%(note)s): send lat and long", note=found.note or N_("no match"))
            )
        lon, lat = float(found.lon), float(found.lat)
    token = TOKEN_PREFIX + uuid.uuid4().hex
    try:
        data = parse_case_input(
            {
                "lon": lon,
                "lat": lat,
                "crs": "EPSG:4326",
                "category": new.service_code,
                "description": new.description,
                "address": new.address,
                "client_id": token,
            },
            source="api",
            now=now,
        )
        made = cases.create_case(
            conn, actor, deployment, settings, data, fallback_jurisdiction_id=fallback_jurisdiction_id, now=now
        )
    except InputError as exc:
        raise Open311Error(400, getattr(exc, "text", None) or str(exc)) from exc
    if new.jurisdiction_id is not None and made.created:
        inside = conn.execute(
            sa.text(f"SELECT 1 FROM report r WHERE r.id = :id AND r.jurisdiction_id IN ({_SUBTREE})"),
            {"id": made.id, "jcode": new.jurisdiction_id},
        ).first()
        if inside is None:  # raised inside the caller's transaction: the case is not kept
            raise Open311Error(400, N_("the location lies outside jurisdiction_id %(id)s", id=new.jurisdiction_id))
    if new.media_url or attributes:
        conn.execute(
            sa.text("UPDATE report SET media_url = :m, attributes = CAST(:a AS jsonb) WHERE id = :id"),
            {
                "m": new.media_url,
                "a": json.dumps(attributes, ensure_ascii=False) if attributes else None,
                "id": made.id,
            },
        )
    notice = None
    if made.unassigned:
        notice = "outside every owner's area: the dispatch centre assigns it"
    elif made.due_at is not None:
        notice = f"expected by {open311.iso(made.due_at, ZoneInfo(settings.timezone))}"
    return {"service_request_id": str(made.id), "token": token, "service_notice": notice, "account_id": None}


__all__ = [
    "create_request",
    "get_request",
    "jurisdiction_codes",
    "list_requests",
    "request_for_token",
    "service_definition",
    "services",
]
