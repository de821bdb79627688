"""统一社会信用代码 checks (python-stdnum) and a unit's fields, checked at the boundary."""

from __future__ import annotations

import datetime as dt

import pytest

from gisgrid.errors import InputError
from gisgrid.frontage.units import BadUSCC, check_uscc, find_columns, make_uscc, parse_unit
from gisgrid.routing.frontage import agreement_state

GOOD = "91110000600037341L"


def test_a_good_code_passes_compacted():
    assert check_uscc(GOOD) == GOOD
    assert check_uscc("9111 0000 6000 3734 1l") == GOOD


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("91110000600037341X", "check digit is wrong (expected L)"),
        ("9111000060003734", "16 characters, not 18"),
        ("91110000600037341I", "not valid"),  # I is not in the code's alphabet
        ("", "0 characters"),
    ],
)
def test_bad_codes_are_refused_saying_why(code, why):
    with pytest.raises(BadUSCC, match="unified social credit code") as info:
        check_uscc(code)
    assert why in str(info.value)


def test_made_codes_are_valid():
    assert check_uscc(make_uscc("92440307MA5DXXXX0")).startswith("92440307")


def test_a_row_lists_every_problem_at_once():
    with pytest.raises(InputError) as info:
        parse_unit({"name": "", "uscc": "123", "contact_phone": "abc", "signed_on": "2026-05-01"})
    text = str(info.value)
    for part in ("a name", "18", "telephone", "both its signed date", "a place is needed"):
        assert part in text


def test_registry_export_columns_are_found():
    cols = find_columns(["序号", "企业名称", "统一社会信用代码", "住所", "经营场所", "联系人", "联系电话"])
    assert cols["name"] == "企业名称" and cols["uscc"] == "统一社会信用代码"
    assert cols["address"] == "经营场所"  # where the shop trades, before the registered seat
    assert cols["contact_phone"] == "联系电话"


def test_a_residential_building_needs_no_code():
    unit = parse_unit({"name": "幸福里3栋", "kind": "住宅", "address": "学院路1号"})
    assert unit.kind == "residential" and unit.uscc is None


def test_agreement_states():
    day = dt.date(2026, 6, 1)
    assert agreement_state(None, None, day) == "none"
    assert agreement_state(dt.date(2025, 1, 1), dt.date(2026, 6, 1), day) == "expired"  # expiry is exclusive
    assert agreement_state(dt.date(2025, 1, 1), dt.date(2026, 6, 20), day) == "expiring"
    assert agreement_state(dt.date(2025, 1, 1), dt.date(2027, 6, 20), day) == "valid"
    assert agreement_state(dt.date(2026, 7, 1), dt.date(2027, 6, 20), day) == "future"
