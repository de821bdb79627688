"""Appointments of owners: which roles each kind of unit takes, and a sheet of appointments read row by row.

A manager appoints owners one by one on a unit's page, or many at once from
a sheet (批量任命).  One row per appointment; columns, English or Chinese
(header case and spaces do not matter):

==============  =======================================  ==========================================
column          also                                      value
==============  =======================================  ==========================================
``unit_type``   类型, 单元类型                            segment (路段), street (街道, 道路),
                                                          cell (网格), jurisdiction (辖区)
``unit``        单元, 编号, 单元编号                      segment: its id; street: its id or name;
                                                          cell: its code; jurisdiction: its code
``role``        角色, 职务                                a role the unit takes (:data:`APPOINTABLE_ROLES`)
``person_id``   人员编号                                  the person's id (two people of one name
                                                          stay two: the id says which)
``person``      姓名                                      a name, when only one person bears it
``department``  部门                                      a department's code or name
``valid_from``  起始日期, 开始日期                        2026-07-01, 2026/7/1, 2026年7月1日;
                                                          empty: today
==============  =======================================  ==========================================

Each row names exactly one of ``person_id``, ``person`` or ``department``.
Every problem of a row is reported with its number (1 = the first row under
the header) and the good rows go through: rows read = appointed + reported.

Pure: no database.  :func:`gisgrid.ownership.store.bulk_appoint` finds the
units and owners a sheet names (within what the manager sees) and appoints.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd

from gisgrid.errors import InputError
from gisgrid.io.read import RowProblem
from gisgrid.text import N_

#: Roles an appointment may give, per unit type (what the demo and the importer use).
APPOINTABLE_ROLES: dict[str, tuple[str, ...]] = {
    "segment": ("段长",),
    "street": ("一级街长", "二级街长"),
    "cell": ("网格员", "网格长"),
    "jurisdiction": ("总街长", "一级街长", "网格员"),
}
#: Unit type as written in a sheet → unit type.
UNIT_TYPE_NAMES = {
    "segment": "segment",
    "路段": "segment",
    "street": "street",
    "街道": "street",
    "道路": "street",
    "cell": "cell",
    "grid cell": "cell",
    "网格": "cell",
    "jurisdiction": "jurisdiction",
    "辖区": "jurisdiction",
}
#: Column → the headers it may have (compared in lower case, spaces trimmed).
SHEET_COLUMNS: dict[str, tuple[str, ...]] = {
    "unit_type": ("unit_type", "unit type", "type", "类型", "单元类型"),
    "unit": ("unit", "unit_id", "code", "单元", "编号", "单元编号"),
    "role": ("role", "角色", "职务"),
    "person_id": ("person_id", "person id", "人员编号", "人员id"),
    "person": ("person", "name", "姓名"),
    "department": ("department", "部门"),
    "valid_from": ("valid_from", "valid from", "from", "起始日期", "开始日期"),
}
#: Longest text taken from a cell (a name, a code): longer is a row problem, not a database error.
MAX_CELL = 100
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]00:00(?::00)?)?$")


@dataclass(frozen=True)
class AppointmentRow:
    """One row of a sheet, checked on its own: the unit and the owner as written, not yet found."""

    row: int
    unit_type: str
    unit: str
    role: str
    valid_from: dt.date
    person_id: int | None = None
    person: str | None = None
    department: str | None = None

    @property
    def unit_key(self) -> tuple[str, str, str]:
        return (self.unit_type, self.unit, self.role)


def sheet_columns(columns) -> dict[str, str | None]:
    """The sheet's column for each field of :data:`SHEET_COLUMNS` (None when absent).

    Raises
    ------
    InputError
        No unit type, unit or role column, or none naming the owner; the
        message lists the headers expected.
    """
    lowered = {str(c).strip().lower(): c for c in columns}
    found = {f: next((lowered[n] for n in names if n in lowered), None) for f, names in SHEET_COLUMNS.items()}
    missing = [f for f in ("unit_type", "unit", "role") if found[f] is None]
    if found["person_id"] is None and found["person"] is None and found["department"] is None:
        missing.append("person_id / person / department")
    if missing:
        expected = "; ".join(f"{f}: {', '.join(names)}" for f, names in SHEET_COLUMNS.items())
        raise InputError(
            N_(
                "the sheet has no column for %(missing)s. Headers understood: %(expected)s",
                missing=", ".join(missing),
                expected=expected,
            )
        )
    return found


def parse_date(text: str | None, *, today: dt.date) -> dt.date:
    """A sheet's date: ``2026-07-01``, ``2026/7/1``, ``2026.7.1`` or ``2026年7月1日``; empty: ``today``."""
    if text is None or not str(text).strip():
        return today
    match = _DATE.match(str(text).strip())
    if not match:
        raise ValueError(N_("valid_from %(value)s is not a date like 2026-07-01", value=repr(str(text)[:40])))
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise ValueError(N_("valid_from %(value)s is not a date of the calendar", value=repr(str(text)[:40]))) from None


def read_appointments(frame: pd.DataFrame, *, today: dt.date) -> tuple[list[AppointmentRow], list[RowProblem]]:
    """The rows of a sheet that can be appointments, and every other row with its reasons.

    Parameters
    ----------
    frame : pandas.DataFrame
        Text cells indexed by their 1-based data row numbers, as the one
        table reader gives them (:func:`gisgrid.io.tables.read_table`).
    today : datetime.date
        The start of an appointment whose ``valid_from`` is empty.

    Returns
    -------
    rows, problems
        ``len(rows) + len(problems) == len(frame)``.  A row naming the same
        unit and role as an earlier row is a problem (which of the two was
        meant is not for the program to guess).

    Raises
    ------
    InputError
        When a needed column is missing (:func:`sheet_columns`).
    """
    cols = sheet_columns(frame.columns)
    rows: list[AppointmentRow] = []
    problems: list[RowProblem] = []
    first_of: dict[tuple[str, str, str], int] = {}
    for number, rec in zip(frame.index, frame.to_dict("records")):
        number = int(number)
        reasons: list[str] = []
        cell = {f: _cell(rec, c, f, reasons) for f, c in cols.items()}
        unit_type = UNIT_TYPE_NAMES.get((cell["unit_type"] or "").lower())
        if unit_type is None:
            reasons.append(
                N_(
                    "unit type %(value)s is not one of segment, street, cell, jurisdiction",
                    value=repr(cell["unit_type"] or "(empty)"),
                )
            )
        if not cell["unit"]:
            reasons.append(N_("the unit is empty"))
        role = cell["role"] or ""
        if unit_type is not None and role not in APPOINTABLE_ROLES[unit_type]:
            reasons.append(
                N_(
                    "a %(unit_type)s takes the role(s) %(roles)s, not %(value)s",
                    unit_type=unit_type,
                    roles=", ".join(APPOINTABLE_ROLES[unit_type]),
                    value=repr(role or "(empty)"),
                )
            )
        named = [f for f in ("person_id", "person", "department") if cell[f]]
        if len(named) != 1:
            reasons.append(
                N_(
                    "name exactly one owner: a person_id, a person or a department, not %(named)s",
                    named=" and ".join(named),
                )
                if named
                else N_("name exactly one owner: a person_id, a person or a department")
            )
        person_id = None
        if cell["person_id"]:
            text = cell["person_id"]
            if not text.isdigit() or len(text) > 9:
                reasons.append(N_("person_id %(value)s is not a number", value=repr(text)))
            else:
                person_id = int(text)
        try:
            valid_from = parse_date(cell["valid_from"], today=today)
        except ValueError as exc:
            reasons.append(exc.args[0] if exc.args else str(exc))
            valid_from = today
        if not reasons:
            appointment = AppointmentRow(
                number,
                unit_type,
                cell["unit"],
                role,
                valid_from,
                person_id=person_id,
                person=cell["person"],
                department=cell["department"],
            )
            earlier = first_of.setdefault(appointment.unit_key, number)
            if earlier != number:
                reasons.append(N_("the same unit and role as row %(n)s", n=earlier))
            else:
                rows.append(appointment)
        if reasons:
            problems.append(RowProblem(number, N_.join("; ", reasons)))
    return rows, problems


def _cell(rec: dict, column: str | None, field: str, reasons: list[str]) -> str | None:
    """The stripped text of a cell (None when empty or absent); too long: a reason, and None."""
    if column is None:
        return None
    value = rec.get(column)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = " ".join(str(value).split())
    if len(text) > MAX_CELL:
        reasons.append(N_("%(field)s has more than %(n)s characters", field=field, n=MAX_CELL))
        return None
    return text or None
