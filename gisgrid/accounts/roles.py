"""Roles and what each may do.  One table, :data:`PERMISSIONS`; every check goes through :func:`may`.

A role is *granted* to a user (``role_grant``) in a jurisdiction subtree, or
everywhere.  What a chief (总街长 … 段长) or a grid worker (网格员) sees is
*not* granted: it follows the owners on the day (``owner_assignment``), so a
change of owner changes what the person sees without anyone editing a
permission.  The ``chief`` and ``grid_worker`` grants only say that the
account is meant for that work (the demo, the user list).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class AccountRole(str, enum.Enum):
    admin = "admin"  # everything: users and roles
    manager = "manager"  # 整治办 / 城管办: read the jurisdiction subtree, appoint and end owners
    planner = "planner"  # edit grids and segment areas
    dispatcher = "dispatcher"  # 派遣员: dispatch and re-route reports
    clerk = "clerk"  # 受理员: create and geocode reports
    chief = "chief"  # 总街长 … 段长: what they own on the day, and everything below it
    grid_worker = "grid_worker"  # 网格员: their own cells
    inspector = "inspector"  # 督查员: inspections (a later issue)
    department = "department"  # 部门: what is routed to the department
    api_client = "api_client"  # machine access (the open-API issue)


ROLE_NAMES = tuple(r.value for r in AccountRole)

#: Chinese names, for the CLI and the pages.
ROLE_LABELS_ZH = {
    "admin": "系统管理员",
    "manager": "管理员（整治办/城管办）",
    "planner": "规划员",
    "dispatcher": "派遣员",
    "clerk": "受理员",
    "chief": "街长/段长",
    "grid_worker": "网格员",
    "inspector": "督查员",
    "department": "部门",
    "api_client": "接口客户端",
}


class Permission(str, enum.Enum):
    """What a request may do.  Reading a place is always limited by the user's scope as well."""

    view_own = "view_own"  # the ownership map and unit pages, within scope
    view_area = "view_area"  # the manager map, the coverage audit, layer exports, within scope
    edit_plan = "edit_plan"  # the /plan editor
    geocode = "geocode"  # batch geocoding and placing rows
    route = "route"  # route a point (/api/assign)
    manage_owners = "manage_owners"  # appoint and end owners
    manage_users = "manage_users"  # user accounts and role grants
    read_audit_log = "read_audit_log"  # search the audit log
    report_case = "report_case"  # take in a case (intake form, phone page, POST /api/cases, import)
    view_cases = "view_cases"  # case lists, case pages and the inbox, within scope
    act_on_cases = "act_on_cases"  # take workflow steps; which ones is gisgrid.cases.workflow.TRANSITIONS
    manage_calendar = "manage_calendar"  # enter a year's official holidays and make-up working days
    plan_inspections = "plan_inspections"  # plan, end and score inspection rounds; edit the checklist's deductions
    inspect = "inspect"  # record findings and "patrolled here" check-ins (in rounds the user inspects)
    publish_rankings = "publish_rankings"  # publish a ranking (a snapshot that never changes) and its bulletin


P = Permission
#: The one table of who may do what.
_CASES = {P.report_case, P.view_cases, P.act_on_cases}
PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "manager": frozenset(
        {P.view_own, P.view_area, P.manage_owners, P.route, *_CASES, P.plan_inspections, P.publish_rankings}
    ),
    "planner": frozenset({P.view_own, P.view_area, P.edit_plan, P.route}),
    "dispatcher": frozenset({P.view_own, P.geocode, P.route, *_CASES}),
    "clerk": frozenset({P.view_own, P.geocode, P.route, *_CASES}),
    "chief": frozenset({P.view_own, *_CASES}),
    "grid_worker": frozenset({P.view_own, *_CASES, P.inspect}),
    "inspector": frozenset({P.view_own, *_CASES, P.inspect}),
    "department": frozenset({P.view_own, P.view_cases, P.act_on_cases}),
    "api_client": frozenset({P.route, P.report_case}),
}

#: Roles a round's inspectors are chosen among (督查员, and patrol members: 网格员).
INSPECTOR_ROLES = ("inspector", "grid_worker")
#: Roles that see every inspection round of their jurisdiction subtree, unannounced ones too.
ROUND_MANAGER_ROLES = ("admin", "manager")

#: Roles whose grant in a jurisdiction lets the user see that jurisdiction's subtree.
AREA_ROLES = frozenset({"admin", "manager", "planner", "dispatcher", "clerk", "inspector"})


def check_role(role: str) -> str:
    """``role`` if it is a known role name, else :class:`ValueError` naming the known ones."""
    if role not in PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLE_NAMES)}")
    return role


def permissions_of(roles: Iterable[str]) -> frozenset[Permission]:
    """Everything the roles allow together.

    An account with no grant at all still views what its person owns on the
    day, and works the cases assigned to it: becoming a 段长 needs no
    permission edited.
    """
    roles = list(roles)
    if not roles:  # an owner without a grant sees and works the cases assigned to them
        return frozenset({P.view_own, P.view_cases, P.act_on_cases})
    out: set[Permission] = set()
    for role in roles:
        out |= PERMISSIONS.get(role, frozenset())
    return frozenset(out)


def may(roles: Iterable[str], permission: Permission | str) -> bool:
    """True when one of ``roles`` allows ``permission``."""
    return Permission(permission) in permissions_of(roles)
