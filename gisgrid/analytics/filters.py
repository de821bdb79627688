"""What the manager selected, as one parameterised SQL condition on ``report r``.

:class:`ReportFilters` holds the selection; :func:`report_filter` makes it a
``WHERE`` (values bound, never formatted in); :func:`validate_filters` refuses
a value that does not exist with one :class:`~gisgrid.errors.InputError`
naming it and listing the valid values.  Database functions only; no Flask.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.scope import Scope
from gisgrid.config import load_settings
from gisgrid.db import sql
from gisgrid.db.schema import REPORT_STATUSES
from gisgrid.errors import InputError

#: Pseudo-status: every report not closed.
OPEN = "open"
STATUSES = (OPEN, *REPORT_STATUSES)

#: An owner by id, as the pages' owner search gives it: ``person:12``, ``department:3``.
OWNER_KEY = re.compile(r"(?P<kind>person|department):(?P<id>[0-9]{1,9})")


@dataclass(frozen=True)
class ReportFilters:
    """What the manager selected.  Empty values mean "no restriction".

    ``date_to`` is inclusive (the whole day); days are local days in the
    jurisdiction's time zone (else ``timezone``, else the ``timezone``
    setting).  ``statuses`` holds values of :data:`STATUSES` (``"open"`` =
    not closed, :func:`gisgrid.cases.workflow.is_open`).  ``jurisdiction`` is a
    division code; reports inside its polygon match.  ``owner`` is the owner
    name of the report's current assignment (view ``report_current``).
    ``scope`` is whose sight limits every query: only the reports that user
    sees (routed to units they see, :mod:`gisgrid.accounts.scope`), only the
    units and jurisdictions they see; None (the CLI, system jobs): no limit.
    """

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)
    statuses: tuple[str, ...] = field(default_factory=tuple)
    jurisdiction: str | None = None
    owner: str | None = None  # "person:ID" / "department:ID" (or, older, an owner's name)
    timezone: str | None = None
    scope: Scope | None = None

    @property
    def limited(self) -> bool:
        """True when a user's sight limits the selection."""
        return self.scope is not None and not self.scope.unlimited

    def sight(self, kind: str, alias: str) -> str:
        """The visibility predicate of ``scope`` on row ``alias`` of ``kind`` (``true`` without a limit)."""
        return self.scope.sql(kind, alias) if self.limited else "true"

    def sight_params(self) -> dict:
        return self.scope.params() if self.limited else {}


def filter_timezone(conn: sa.Connection, filters: ReportFilters) -> str:
    """The time zone of the filter's local days: the jurisdiction's, else the filter's, else the setting."""
    return sql.timezone_of_jurisdiction(conn, filters.jurisdiction, filters.timezone or load_settings().timezone)


def valid_values(conn: sa.Connection, query: str) -> list[str]:
    return [r[0] for r in conn.execute(sa.text(query))]


def refused(what: str, bad: list[str], valid: list[str]) -> InputError:
    shown = ", ".join(valid[:30]) + (f", … ({len(valid)} in all)" if len(valid) > 30 else "")
    return InputError(f"unknown {what} {', '.join(map(repr, bad))}; valid: {shown or '(none)'}")


def validate_filters(conn: sa.Connection, filters: ReportFilters) -> None:
    """Raise one :class:`InputError` listing every filter value that does not exist."""
    problems = []
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        problems.append(f"date from {filters.date_from} is after date to {filters.date_to}")
    if filters.categories:
        valid = valid_values(conn, "SELECT code FROM category ORDER BY code")
        bad = [c for c in filters.categories if c not in valid]
        if bad:
            problems.append(str(refused("category", bad, valid)))
    if filters.statuses:
        bad = [s for s in filters.statuses if s not in STATUSES]
        if bad:
            problems.append(str(refused("status", bad, list(STATUSES))))
    if filters.jurisdiction:
        valid = valid_values(conn, "SELECT code FROM jurisdiction ORDER BY code")
        if filters.jurisdiction not in valid:
            problems.append(str(refused("jurisdiction", [filters.jurisdiction], valid)))
    if filters.owner and not OWNER_KEY.fullmatch(filters.owner):
        valid = valid_values(conn, "SELECT name FROM person UNION SELECT name FROM department ORDER BY 1")
        if filters.owner not in valid:
            problems.append(str(refused("owner", [filters.owner], valid)))
    if problems:
        raise InputError("; ".join(problems))


def report_filter(conn: sa.Connection, filters: ReportFilters, *, alias: str = "r") -> tuple[str, dict]:
    """A parameterised SQL condition on ``report <alias>`` for ``filters``.

    Returns
    -------
    (str, dict)
        The condition (``"true"`` for no filter) and its bind parameters
        (names prefixed ``f_``).  Values are never formatted into the SQL.

    Raises
    ------
    InputError
        Unknown category code, status, jurisdiction code or owner name (the
        message names it and lists the valid values), or date from > date to.
    """
    validate_filters(conn, filters)
    r = alias
    parts, params = [], {}
    if filters.date_from or filters.date_to:
        # local days as instants: the bounds do not depend on the session's TimeZone, and the index stays usable
        tz = filter_timezone(conn, filters)
        if filters.date_from:
            parts.append(f"{r}.reported_at >= CAST(:f_from AS timestamptz)")
            params["f_from"] = timeutil.day_start(filters.date_from, tz)
        if filters.date_to:
            parts.append(f"{r}.reported_at < CAST(:f_to AS timestamptz)")
            params["f_to"] = timeutil.day_start(filters.date_to + dt.timedelta(days=1), tz)
    if filters.categories:
        parts.append(f"{r}.category_id IN (SELECT id FROM category WHERE code = ANY(:f_cats))")
        params["f_cats"] = list(filters.categories)
    if filters.statuses:
        named = [s for s in filters.statuses if s != OPEN]
        alts = []
        if named:
            alts.append(f"{r}.status = ANY(:f_statuses)")
            params["f_statuses"] = named
        if OPEN in filters.statuses:
            alts.append(sql.report_is_open(r))
        parts.append("(" + " OR ".join(alts) + ")")
    if filters.jurisdiction:
        # the report's place (the most specific jurisdiction holding its point, kept by the trigger
        # report_bin, migration 0014_map_bins) in the jurisdiction's subtree: an index lookup, where a
        # point-in-polygon test per report cost seconds at 1,000,000 reports
        parts.append(f"{r}.place_id = ANY(:f_places)")
        params["f_places"] = subtree_ids(conn, filters.jurisdiction)
    key = OWNER_KEY.fullmatch(filters.owner or "")
    if key:  # one person or department by id: two people of one name stay two
        column = "owner_person_id" if key["kind"] == "person" else "owner_department_id"
        parts.append(
            f"EXISTS (SELECT 1 FROM report_current rc WHERE rc.report_id = {r}.id AND rc.{column} = :f_owner_id)"
        )
        params["f_owner_id"] = int(key["id"])
    elif filters.owner:
        parts.append(
            f"EXISTS (SELECT 1 FROM report_current rc WHERE rc.report_id = {r}.id AND rc.owner_name = :f_owner)"
        )
        params["f_owner"] = filters.owner
    if filters.limited:  # the one predicate: reports routed to units the user sees (or reaching nobody in their area)
        parts.append(filters.sight("report", r))
        params.update(filters.sight_params())
    return (" AND ".join(parts) or "true"), params


def subtree_ids(conn: sa.Connection, code: str) -> list[int]:
    """Ids of jurisdiction ``code`` and everything below it."""
    return list(
        conn.execute(
            sa.text(
                "WITH RECURSIVE t(id) AS (SELECT id FROM jurisdiction WHERE code = :c "
                "UNION SELECT j.id FROM jurisdiction j JOIN t ON j.parent_id = t.id) SELECT id FROM t"
            ),
            {"c": code},
        ).scalars()
    )
