"""Find what a user types in a map's search box, within what the user sees.

Every query applies the one visibility predicate (:meth:`gisgrid.accounts.scope.Scope.sql`): a chief searching
for a person finds the owners of the units they see, never the people of another town; a case is found
under :meth:`~gisgrid.accounts.scope.Scope.case_sql`.  Results carry their geometry (EPSG:4326, GeoJSON,
simplified to about a metre) and extent, so the map can zoom there and highlight the place.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.db.sql import owner_on

LOGGER = logging.getLogger(__name__)

#: Results of each kind returned at most.
PER_KIND = 6
#: Longest query read, characters.
MAX_QUERY_CHARS = 100
#: Simplification of result geometries, degrees (about a metre).
_SIMPLIFY_DEG = 0.00001
_CASE_NUMBER = re.compile(r"#?\s*(\d{1,9})")

KINDS = ("case", "cell", "street", "segment", "person")


@dataclass
class Found:
    """One search result: what it is, how it reads, where it is (EPSG:4326)."""

    kind: str
    id: int
    label: str
    detail: str = ""
    bbox: tuple[float, float, float, float] | None = None
    count: int | None = None  # a person's units the user sees
    geometry: dict | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "detail": self.detail,
            "bbox": list(self.bbox) if self.bbox else None,
            "count": self.count,
            "geometry": self.geometry,
        }


def _like(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def _geo(geom_sql: str) -> str:
    return (
        f"ST_AsGeoJSON(ST_SimplifyPreserveTopology({geom_sql}, {_SIMPLIFY_DEG}), 6) AS geojson, "
        f"ST_XMin({geom_sql}) AS w, ST_YMin({geom_sql}) AS s, ST_XMax({geom_sql}) AS e, ST_YMax({geom_sql}) AS n"
    )


def _found(kind: str, row, label: str, detail: str = "", count: int | None = None) -> Found:
    bbox = (row.w, row.s, row.e, row.n) if row.w is not None else None
    geometry = json.loads(row.geojson) if row.geojson else None
    return Found(kind, int(row.id), label, detail, bbox, count, geometry)


def search_units(conn: sa.Connection, text: str, scope: Scope, *, kinds=KINDS) -> list[Found]:
    """Streets, segments, cells, people and cases matching ``text``, that ``scope``'s user sees.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    text : str
        What was typed: part of a street or segment name (人民路, 东段), a cell code or its start, a
        person's name, a case number (``123`` or ``#123``) or a case's external id.  Cut at
        :data:`MAX_QUERY_CHARS`.
    scope : Scope
        Whose sight limits the results, on which day (people: owners on that day).
    kinds : iterable of str
        Which of :data:`KINDS` to look for.

    Returns
    -------
    list of Found
        Exact matches before partial ones, at most :data:`PER_KIND` of each kind, cases first (a number is
        most likely a case), then cells, streets, segments, people.
    """
    text = " ".join(str(text or "").split())[:MAX_QUERY_CHARS]
    if not text:
        return []
    params = {"q": text, "like": _like(text), "prefix": _like(text)[1:], "limit": PER_KIND, **scope.params()}
    params.setdefault("scope_day", scope.day)
    found: list[Found] = []
    kinds = set(kinds)
    number = _CASE_NUMBER.fullmatch(text)
    if "case" in kinds:
        rows = conn.execute(
            sa.text(
                f"""
                SELECT r.id, r.external_id, r.address, c.name AS category, {_geo("r.geom")}
                FROM report r LEFT JOIN category c ON c.id = r.category_id
                WHERE (r.id = :number OR r.external_id = :q) AND r.geom IS NOT NULL AND {scope.case_sql("r")}
                ORDER BY r.id LIMIT :limit"""
            ),
            {**params, "number": int(number.group(1)) if number else -1},
        ).all()
        found += [
            _found(
                "case",
                r,
                f"#{r.id}" + (f" ({r.external_id})" if r.external_id else ""),
                " · ".join(v for v in (r.category, r.address) if v),
            )
            for r in rows
        ]
    if "cell" in kinds:
        rows = conn.execute(
            sa.text(
                f"""
                SELECT x.id, x.code, j.name AS place, {_geo("x.geom")}
                FROM grid_cell x LEFT JOIN jurisdiction j ON j.id = x.jurisdiction_id
                WHERE x.code ILIKE :prefix AND {scope.sql("cell", "x")}
                ORDER BY x.code = :q DESC, x.code LIMIT :limit"""
            ),
            params,
        ).all()
        found += [_found("cell", r, r.code, r.place or "") for r in rows]
    if "street" in kinds:
        rows = conn.execute(
            sa.text(
                f"""
                SELECT x.id, x.name, j.name AS place, {_geo("x.geom")}
                FROM street x LEFT JOIN jurisdiction j ON j.id = x.jurisdiction_id
                WHERE (x.name ILIKE :like OR EXISTS (SELECT 1 FROM unnest(x.aliases) a WHERE a ILIKE :like))
                  AND {scope.sql("street", "x")}
                ORDER BY x.name = :q DESC, length(x.name), x.name, x.id LIMIT :limit"""
            ),
            params,
        ).all()
        found += [_found("street", r, r.name, r.place or "") for r in rows]
    if "segment" in kinds:
        rows = conn.execute(
            sa.text(
                f"""
                SELECT x.id, x.name, s.name AS street, {_geo("coalesce(x.area, ST_Multi(x.geom))")}
                FROM segment x JOIN street s ON s.id = x.street_id
                WHERE (x.name ILIKE :like OR (s.name || x.name) ILIKE :like) AND {scope.sql("segment", "x")}
                ORDER BY x.name = :q DESC, length(x.name), x.street_id, x.seq LIMIT :limit"""
            ),
            params,
        ).all()
        found += [
            _found("segment", r, r.name if r.street in r.name else f"{r.street} · {r.name}", r.street) for r in rows
        ]
    if "person" in kinds:
        found += _people(conn, params, scope)
    return found


def _people(conn: sa.Connection, params: dict, scope: Scope) -> list[Found]:
    """Owners on the scope's day whose name matches, with the units of theirs the user sees (drawn together)."""
    rows = conn.execute(
        sa.text(
            f"""
            WITH owned AS (
                SELECT a.person_id, a.target_type, a.target_id FROM {owner_on(":scope_day")} a
                JOIN person p ON p.id = a.person_id
                WHERE p.name ILIKE :like
            ), units AS (
                SELECT o.person_id, x.area AS geom, s.jurisdiction_id
                FROM owned o JOIN segment x ON o.target_type = 'segment' AND x.id = o.target_id
                JOIN street s ON s.id = x.street_id
                WHERE x.area IS NOT NULL AND {scope.sql("segment", "x")}
                UNION ALL
                SELECT o.person_id, x.geom, x.jurisdiction_id
                FROM owned o JOIN grid_cell x ON o.target_type = 'cell' AND x.id = o.target_id
                WHERE {scope.sql("cell", "x")}
                UNION ALL
                SELECT o.person_id, ST_Multi(ST_Buffer(x.geom::geography, 5)::geometry), x.jurisdiction_id
                FROM owned o JOIN street x ON o.target_type = 'street' AND x.id = o.target_id
                WHERE {scope.sql("street", "x")}
            ), per_person AS (
                SELECT u.person_id, ST_Collect(u.geom) AS geom, count(*) AS n,
                       (array_agg(DISTINCT j.name))[1:2] AS places
                FROM units u LEFT JOIN jurisdiction j ON j.id = u.jurisdiction_id
                GROUP BY u.person_id
            )
            SELECT p.id, p.name, pp.n, pp.places, {_geo("pp.geom")}
            FROM per_person pp JOIN person p ON p.id = pp.person_id
            ORDER BY p.name = :q DESC, p.name, p.id LIMIT :limit"""
        ),
        params,
    ).all()
    return [
        _found("person", r, f"{r.name} · {r.id}", " · ".join(v for v in (r.places or []) if v), int(r.n)) for r in rows
    ]
