"""What a user may see: ONE predicate, written once as SQL and once in memory (a test cross-checks them).

The rule, for a user and a day ``d``:

* an *area* grant (``admin``, ``manager``, ``planner``, ``dispatcher``,
  ``clerk``, ``inspector``) in a jurisdiction shows that jurisdiction and
  everything below it: its child jurisdictions, their streets (a street
  belongs to the jurisdiction in ``street.jurisdiction_id``), the streets'
  segments and the cells; an area grant with no jurisdiction shows everything;
* ownership on ``d`` (``owner_assignment``, ``valid_from <= d < valid_to``) of
  the user's person, or of a department the user holds the ``department``
  role for, shows the owned unit and everything below it in the chain: a
  jurisdiction as above (a 总街长 of the county sees all of it), a street with
  its segments (a 一级街长 sees the segments of their streets), a segment, a
  cell;
* a street is also shown to the 段长 of one of its segments (its name and
  line, not its other segments);
* a *report* (a case: the same row, migration 0011) is shown by
  :func:`case_visible_sql`: when it belongs to a jurisdiction the user sees
  whole (``report.jurisdiction_id``, set even when nobody owns the place:
  what reached nobody in a manager's area is theirs to see), when it is
  routed to a segment, cell or jurisdiction the user sees (a 段长 sees the
  reports of their segment, not the street's others), or when it is
  assigned to the user's person or department or escalated to them;
* an *inspection round* (督查 / 暗访, migration 0014_inspections) is shown by
  :func:`round_visible_sql`: to its inspectors, to the managers (and admins)
  whose grant covers the round's jurisdiction, and — when it is announced, or
  once an unannounced round has ended — to everyone who sees its
  jurisdiction or one of the units it covers or scored.  An unannounced round stays
  hidden from the inspected until it ends;
* a disabled account sees nothing.

Nothing else grants sight: when the owners change on a date, what each person
sees changes with them.  Stores add :func:`visible_sql` to every query that
reads units for a user; :func:`visible_units` is the same rule over plain
values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from gisgrid.accounts.roles import AREA_ROLES, ROUND_MANAGER_ROLES

#: Unit kinds the predicate answers for, and the columns it reads from the row's alias.
KINDS = {
    "jurisdiction": ("id",),
    "street": ("id", "jurisdiction_id"),
    "segment": ("id", "street_id"),
    "cell": ("id", "jurisdiction_id"),
    "report": (
        "jurisdiction_id",
        "assigned_type",
        "assigned_id",
        "assignee_person_id",
        "assignee_department_id",
        "escalated_person_id",
    ),
}

_AREA_ROLES_SQL = ", ".join(f"'{r}'" for r in sorted(AREA_ROLES))
#: The user, when the account is active (a disabled account matches nothing below).
_ACTIVE_USER = "(SELECT su.id FROM user_account su WHERE su.id = :scope_user AND su.active)"
_EVERYTHING = (
    f"EXISTS (SELECT 1 FROM role_grant sg WHERE sg.user_id = {_ACTIVE_USER} "
    f"AND sg.jurisdiction_id IS NULL AND sg.role IN ({_AREA_ROLES_SQL}))"
)


def _owned(target_type: str) -> str:
    """Ids of the ``target_type`` units the user owns on ``:scope_day``, in person or through a department.

    "Owner on a day" is the SQL function ``owner_on(day)`` of migration 0008
    (:func:`gisgrid.db.sql.owner_on`; its Python twin is
    :mod:`gisgrid.ownership.history`): this module stays pure, so it names the
    function rather than importing the helper.
    """
    return (
        "SELECT sa.target_id FROM owner_on(CAST(:scope_day AS date)) sa "
        f"WHERE sa.target_type = '{target_type}' "
        f"AND (sa.person_id = (SELECT su.person_id FROM user_account su WHERE su.id = {_ACTIVE_USER}) "
        "OR sa.department_id IN (SELECT sd.department_id FROM role_grant sd "
        f"WHERE sd.user_id = {_ACTIVE_USER} AND sd.role = 'department'))"
    )


#: Jurisdictions shown: the roots (area grants, jurisdictions owned on the day) and everything below them.
_TREE = (
    "WITH RECURSIVE scope_tree(id) AS ("
    f"SELECT sg.jurisdiction_id FROM role_grant sg WHERE sg.user_id = {_ACTIVE_USER} "
    f"AND sg.jurisdiction_id IS NOT NULL AND sg.role IN ({_AREA_ROLES_SQL}) "
    f"UNION SELECT t.target_id FROM ({_owned('jurisdiction')}) t(target_id) "
    "UNION SELECT sj.id FROM jurisdiction sj JOIN scope_tree st ON sj.parent_id = st.id"
    ") SELECT id FROM scope_tree"
)


def _body(kind: str, a: str) -> str:
    if kind == "jurisdiction":
        return f"{a}.id IN ({_TREE})"
    if kind == "street":
        return (
            f"{a}.jurisdiction_id IN ({_TREE}) OR {a}.id IN ({_owned('street')}) "
            f"OR {a}.id IN (SELECT sx.street_id FROM segment sx WHERE sx.id IN ({_owned('segment')}))"
        )
    if kind == "segment":
        return (
            f"{a}.id IN ({_owned('segment')}) OR {a}.street_id IN ({_owned('street')}) "
            f"OR {a}.street_id IN (SELECT sx.id FROM street sx WHERE sx.jurisdiction_id IN ({_TREE}))"
        )
    if kind == "cell":
        return f"{a}.id IN ({_owned('cell')}) OR {a}.jurisdiction_id IN ({_TREE})"
    return _case_body(a)


def visible_sql(kind: str, alias: str) -> str:
    """A boolean SQL expression: may the user ``:scope_user`` see the ``kind`` row ``alias`` on ``:scope_day``?

    Parameters
    ----------
    kind : {'jurisdiction', 'street', 'segment', 'cell', 'report'}
    alias : str
        The row's table alias in the caller's query; the expression reads the
        columns named in :data:`KINDS` from it.

    The caller binds ``scope_user`` (a ``user_account.id``) and ``scope_day``
    (a date), e.g. with :meth:`Scope.params`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not alias.isidentifier():
        raise ValueError(f"alias must be an SQL identifier, got {alias!r}")
    return f"({_EVERYTHING} OR {_body(kind, alias)})"


def town_listed_sql(alias: str) -> str:
    """May the user pick town ``alias`` (a jurisdiction row) in a town list: does it hold anything they see
    (a segment, a cell, a community)?"""
    a = alias
    return (
        f"({visible_sql('jurisdiction', a)} "
        f"OR EXISTS (SELECT 1 FROM segment lg JOIN street ls ON ls.id = lg.street_id "
        f"WHERE ls.jurisdiction_id = {a}.id AND {visible_sql('segment', 'lg')}) "
        f"OR EXISTS (SELECT 1 FROM grid_cell lc JOIN jurisdiction lj ON lj.id = lc.jurisdiction_id "
        f"WHERE (lj.id = {a}.id OR lj.parent_id = {a}.id) AND {visible_sql('cell', 'lc')}) "
        f"OR EXISTS (SELECT 1 FROM jurisdiction lk WHERE lk.parent_id = {a}.id AND {visible_sql('jurisdiction', 'lk')}))"
    )


@dataclass(frozen=True)
class Scope:
    """Whose sight limits a query, on which day.  ``user_id`` None: no limit (the CLI, system jobs)."""

    user_id: int | None
    day: dt.date

    @classmethod
    def everything(cls, day: dt.date | None = None) -> Scope:
        return cls(None, day or dt.date.today())

    @property
    def unlimited(self) -> bool:
        return self.user_id is None

    def sql(self, kind: str, alias: str) -> str:
        """:func:`visible_sql` for this scope (``true`` when unlimited)."""
        return "true" if self.unlimited else visible_sql(kind, alias)

    def towns_sql(self, alias: str) -> str:
        return "true" if self.unlimited else town_listed_sql(alias)

    def case_sql(self, alias: str) -> str:
        """:func:`case_visible_sql` for this scope (``true`` when unlimited)."""
        return "true" if self.unlimited else case_visible_sql(alias)

    def round_sql(self, alias: str) -> str:
        """:func:`round_visible_sql` for this scope (``true`` when unlimited)."""
        return "true" if self.unlimited else round_visible_sql(alias)

    def params(self) -> dict:
        return {} if self.unlimited else {"scope_user": self.user_id, "scope_day": self.day}


# --- the same rule in memory ---------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    person_id: int | None
    department_id: int | None
    target_type: str
    target_id: int
    valid_from: dt.date
    valid_to: dt.date | None = None

    def valid_on(self, day: dt.date) -> bool:
        """The owner-on-a-day rule (as ``owner_on`` in SQL and :mod:`gisgrid.ownership.history`)."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True)
class World:
    """The facts the rule reads, as plain values."""

    jurisdiction_parent: dict[int, int | None]
    street_jurisdiction: dict[int, int | None]
    segment_street: dict[int, int]
    cell_jurisdiction: dict[int, int | None]
    assignments: tuple[Assignment, ...] = field(default_factory=tuple)
    reports: dict[int, CaseFacts] = field(default_factory=dict)


@dataclass(frozen=True)
class Subject:
    """A user as the rule sees them: their person, whether active, and their grants (role, jurisdiction, department)."""

    person_id: int | None
    active: bool = True
    grants: tuple[tuple[str, int | None, int | None], ...] = ()
    user_id: int | None = None


def visible_units(world: World, subject: Subject, day: dt.date) -> dict[str, set[int]]:
    """Ids per kind (``jurisdiction``, ``street``, ``segment``, ``cell``, ``report``) that ``subject`` sees on ``day``."""
    all_ids = {
        "jurisdiction": set(world.jurisdiction_parent),
        "street": set(world.street_jurisdiction),
        "segment": set(world.segment_street),
        "cell": set(world.cell_jurisdiction),
        "report": set(world.reports),
    }
    if not subject.active:
        return {k: set() for k in all_ids}
    if any(role in AREA_ROLES and jid is None for role, jid, _d in subject.grants):
        return all_ids
    departments = {d for role, _j, d in subject.grants if role == "department" and d is not None}
    owned: dict[str, set[int]] = {k: set() for k in ("jurisdiction", "street", "segment", "cell")}
    for a in world.assignments:
        mine = (a.person_id is not None and a.person_id == subject.person_id) or (
            a.department_id is not None and a.department_id in departments
        )
        if mine and a.valid_on(day) and a.target_type in owned:
            owned[a.target_type].add(a.target_id)
    roots = {jid for role, jid, _d in subject.grants if role in AREA_ROLES and jid is not None} | owned["jurisdiction"]
    tree = _subtree(world.jurisdiction_parent, roots)
    streets_in_tree = {s for s, j in world.street_jurisdiction.items() if j in tree}
    segments = {
        g
        for g, s in world.segment_street.items()
        if g in owned["segment"] or s in owned["street"] or s in streets_in_tree
    }
    streets = (
        streets_in_tree
        | owned["street"]
        | {world.segment_street[g] for g in owned["segment"] if g in world.segment_street}
    )
    streets &= all_ids["street"]
    cells = {c for c, j in world.cell_jurisdiction.items() if c in owned["cell"] or j in tree}
    units = {"jurisdiction": tree, "segment": segments, "cell": cells}
    reports = {r for r, facts in world.reports.items() if _case_seen(units, subject, departments, facts)}
    return {
        "jurisdiction": tree & all_ids["jurisdiction"],
        "street": streets,
        "segment": segments,
        "cell": cells,
        "report": reports,
    }


def _subtree(parent: dict[int, int | None], roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, par in parent.items():
        if par is not None:
            children.setdefault(par, []).append(child)
    out: set[int] = set()
    todo = [r for r in roots]
    while todo:
        j = todo.pop()
        if j in out:
            continue
        out.add(j)
        todo.extend(children.get(j, ()))
    return out


# --- cases ---------------------------------------------------------------------------
#: The columns :func:`case_visible_sql` reads from a case row (``report``, migration 0011).
CASE_COLUMNS = KINDS["report"]
_MY_PERSON = f"(SELECT su.person_id FROM user_account su WHERE su.id = {_ACTIVE_USER})"
_MY_DEPARTMENTS = (
    f"(SELECT sd.department_id FROM role_grant sd WHERE sd.user_id = {_ACTIVE_USER} AND sd.role = 'department')"
)


def case_visible_sql(alias: str) -> str:
    """A boolean SQL expression: may the user ``:scope_user`` see the case (``report`` row) ``alias``
    on ``:scope_day``?  The same rule as the units', extended to cases:

    * everything an unlimited area grant sees;
    * a case whose jurisdiction (``jurisdiction_id``, where it belongs even
      when nobody owns the place) is in the user's jurisdiction tree;
    * a case routed to a unit (segment, cell, jurisdiction) the user sees by
      :func:`visible_sql` — a 一级街长 sees the cases of their streets' segments;
    * a case assigned to the user's person or department, or escalated to
      the user's person (the chief above then sees it).
    """
    return visible_sql("report", alias)


def _case_body(a: str) -> str:
    """The case rule on report ``a``, without the "sees everything" term."""
    return (
        f"{a}.jurisdiction_id IN ({_TREE}) "
        f"OR ({a}.assigned_type = 'segment' AND EXISTS (SELECT 1 FROM segment cvs WHERE cvs.id = {a}.assigned_id "
        f"AND {visible_sql('segment', 'cvs')})) "
        f"OR ({a}.assigned_type = 'cell' AND EXISTS (SELECT 1 FROM grid_cell cvc WHERE cvc.id = {a}.assigned_id "
        f"AND {visible_sql('cell', 'cvc')})) "
        f"OR ({a}.assigned_type = 'jurisdiction' AND {a}.assigned_id IN ({_TREE})) "
        f"OR {a}.assignee_person_id = {_MY_PERSON} OR {a}.escalated_person_id = {_MY_PERSON} "
        f"OR {a}.assignee_department_id IN {_MY_DEPARTMENTS}"
    )


@dataclass(frozen=True)
class CaseFacts:
    """The columns of a case the rule reads (:data:`CASE_COLUMNS`)."""

    jurisdiction_id: int | None = None
    assigned_type: str | None = None
    assigned_id: int | None = None
    assignee_person_id: int | None = None
    assignee_department_id: int | None = None
    escalated_person_id: int | None = None


def case_visible(world: World, subject: Subject, day: dt.date, case: CaseFacts) -> bool:
    """:func:`case_visible_sql` over plain values."""
    if not subject.active:
        return False
    if any(role in AREA_ROLES and jid is None for role, jid, _d in subject.grants):
        return True
    units = visible_units(world, subject, day)
    departments = {d for role, _j, d in subject.grants if role == "department" and d is not None}
    return _case_seen(units, subject, departments, case)


def _case_seen(units: dict[str, set[int]], subject: Subject, departments: set[int], case: CaseFacts) -> bool:
    kind = {"segment": "segment", "cell": "cell", "jurisdiction": "jurisdiction"}.get(case.assigned_type or "")
    return (
        (case.jurisdiction_id is not None and case.jurisdiction_id in units["jurisdiction"])
        or (kind is not None and case.assigned_id in units[kind])
        or (subject.person_id is not None and subject.person_id in (case.assignee_person_id, case.escalated_person_id))
        or (case.assignee_department_id is not None and case.assignee_department_id in departments)
    )


# --- inspection rounds ---------------------------------------------------------------------
#: The columns :func:`round_visible_sql` reads from an ``inspection_round`` row.
ROUND_COLUMNS = ("id", "kind", "ended_at", "jurisdiction_id")
_MANAGER_ROLES_SQL = ", ".join(f"'{r}'" for r in sorted(ROUND_MANAGER_ROLES))
_MANAGER_TREE = (
    "WITH RECURSIVE manager_tree(id) AS ("
    f"SELECT sg.jurisdiction_id FROM role_grant sg WHERE sg.user_id = {_ACTIVE_USER} "
    f"AND sg.jurisdiction_id IS NOT NULL AND sg.role IN ({_MANAGER_ROLES_SQL}) "
    "UNION SELECT sj.id FROM jurisdiction sj JOIN manager_tree mt ON sj.parent_id = mt.id"
    ") SELECT id FROM manager_tree"
)
_MANAGER_EVERYWHERE = (
    f"EXISTS (SELECT 1 FROM role_grant sg WHERE sg.user_id = {_ACTIVE_USER} "
    f"AND sg.jurisdiction_id IS NULL AND sg.role IN ({_MANAGER_ROLES_SQL}))"
)


def round_visible_sql(alias: str) -> str:
    """A boolean SQL expression: may the user ``:scope_user`` see the inspection round ``alias`` on ``:scope_day``?

    * an inspector of the round (``inspection_inspector``) sees it;
    * a manager or admin sees the rounds of the jurisdictions their grant
      covers (a grant with no jurisdiction: every round);
    * an *announced* round (督查), and an *unannounced* one (暗访) once it
      has ended (``ended_at`` set), is seen by everyone who sees the round's
      jurisdiction, one of the units it covers (``inspection_target``) or a
      segment or cell one of its findings counts against: until then an
      unannounced round is hidden from the inspected.

    The findings of a round are cases, routed like any other: their owners see
    them through :func:`case_visible_sql` (the problem must be fixed), not the round.
    """
    if not alias.isidentifier():
        raise ValueError(f"alias must be an SQL identifier, got {alias!r}")
    a = alias
    return (
        f"(EXISTS (SELECT 1 FROM inspection_inspector si WHERE si.round_id = {a}.id AND si.user_id = {_ACTIVE_USER}) "
        f"OR {_MANAGER_EVERYWHERE} OR {a}.jurisdiction_id IN ({_MANAGER_TREE}) "
        f"OR (({a}.kind = 'announced' OR {a}.ended_at IS NOT NULL) AND ("
        f"EXISTS (SELECT 1 FROM jurisdiction rvj WHERE rvj.id = {a}.jurisdiction_id AND {visible_sql('jurisdiction', 'rvj')}) "
        f"OR EXISTS (SELECT 1 FROM inspection_target rvt JOIN segment rvs ON rvs.id = rvt.unit_id "
        f"WHERE rvt.round_id = {a}.id AND rvt.unit_kind = 'segment' AND {visible_sql('segment', 'rvs')}) "
        f"OR EXISTS (SELECT 1 FROM inspection_target rvt JOIN grid_cell rvc ON rvc.id = rvt.unit_id "
        f"WHERE rvt.round_id = {a}.id AND rvt.unit_kind = 'cell' AND {visible_sql('cell', 'rvc')}) "
        f"OR EXISTS (SELECT 1 FROM inspection_finding rvf JOIN segment rvs ON rvs.id = rvf.segment_id "
        f"WHERE rvf.round_id = {a}.id AND {visible_sql('segment', 'rvs')}) "
        f"OR EXISTS (SELECT 1 FROM inspection_finding rvf JOIN grid_cell rvc ON rvc.id = rvf.cell_id "
        f"WHERE rvf.round_id = {a}.id AND {visible_sql('cell', 'rvc')}))))"
    )


@dataclass(frozen=True)
class RoundFacts:
    """What :func:`round_visible` reads of a round: kind, ended, jurisdiction, inspectors (user ids), and the
    segments and cells it covers or its findings count against."""

    kind: str
    ended: bool
    jurisdiction_id: int | None
    inspectors: frozenset[int] = frozenset()
    segments: frozenset[int] = frozenset()
    cells: frozenset[int] = frozenset()


def round_visible(world: World, subject: Subject, day: dt.date, facts: RoundFacts) -> bool:
    """:func:`round_visible_sql` over plain values (``subject.user_id`` names the inspector)."""
    if not subject.active:
        return False
    if subject.user_id is not None and subject.user_id in facts.inspectors:
        return True
    managed = [jid for role, jid, _d in subject.grants if role in ROUND_MANAGER_ROLES]
    if any(jid is None for jid in managed):
        return True
    if facts.jurisdiction_id is not None and facts.jurisdiction_id in _subtree(world.jurisdiction_parent, managed):
        return True
    if facts.kind == "announced" or facts.ended:
        units = visible_units(world, subject, day)
        return (
            (facts.jurisdiction_id is not None and facts.jurisdiction_id in units["jurisdiction"])
            or bool(facts.segments & units["segment"])
            or bool(facts.cells & units["cell"])
        )
    return False
