"""A sheet of appointments read row by row: every bad row is named with its reasons, the good ones are kept."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from gisgrid.errors import InputError
from gisgrid.ownership.appointments import parse_date, read_appointments

TODAY = dt.date(2026, 7, 1)


def _sheet(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows).fillna("").astype(str)
    frame.index = pd.Index(range(1, len(rows) + 1), name="row")  # as the one table reader numbers rows
    return frame


def test_good_rows_are_kept_and_every_bad_row_is_reported_with_all_its_reasons():
    frame = _sheet(
        [
            {"类型": "路段", "单元": "12", "角色": "段长", "人员编号": "7", "起始日期": "2026/7/3"},
            {"类型": "街道", "单元": "学院路", "角色": "一级街长", "姓名": "王伟", "起始日期": ""},
            {"类型": "网格", "单元": "C01", "角色": "段长", "人员编号": "x", "起始日期": "2026-13-01"},
            {"类型": "河流", "单元": "", "角色": "段长", "人员编号": "", "起始日期": ""},
            {"类型": "路段", "单元": "12", "角色": "段长", "部门": "enforcement", "起始日期": ""},
            {"类型": "辖区", "单元": "110108001", "角色": "总街长", "人员编号": "7", "姓名": "王伟"},
        ]
    )
    rows, problems = read_appointments(frame, today=TODAY)
    assert [(r.row, r.unit_type, r.unit, r.role, r.valid_from) for r in rows] == [
        (1, "segment", "12", "段长", dt.date(2026, 7, 3)),
        (2, "street", "学院路", "一级街长", TODAY),
    ]
    assert rows[0].person_id == 7 and rows[1].person == "王伟"
    reasons = {p.row: p.reason for p in problems}
    assert len(rows) + len(problems) == len(frame)
    assert "a cell takes the role(s) 网格员, 网格长, not '段长'" in reasons[3]
    assert "person_id 'x' is not a number" in reasons[3] and "not a date of the calendar" in reasons[3]
    assert "unit type '河流'" in reasons[4] and "the unit is empty" in reasons[4] and "exactly one owner" in reasons[4]
    assert reasons[5] == "the same unit and role as row 1"
    assert "not person_id and person" in reasons[6]


def test_a_sheet_without_the_needed_columns_is_refused_naming_them():
    with pytest.raises(InputError, match=r"no column for unit_type, role.*Headers understood"):
        read_appointments(_sheet([{"unit": "1", "person_id": "2"}]), today=TODAY)


@pytest.mark.parametrize(
    "text, day",
    [("2026-07-01", dt.date(2026, 7, 1)), ("2026/7/1", dt.date(2026, 7, 1)), ("2026年7月1日", dt.date(2026, 7, 1))],
)
def test_dates_as_offices_write_them(text, day):
    assert parse_date(text, today=TODAY) == day


def test_long_cells_are_a_row_problem_not_a_database_error():
    rows, problems = read_appointments(
        _sheet([{"unit_type": "segment", "unit": "1" * 500, "role": "段长", "person_id": "1"}]), today=TODAY
    )
    assert not rows and "unit has more than 100 characters" in problems[0].reason
