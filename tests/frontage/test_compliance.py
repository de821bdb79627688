"""The red and black list (红黑榜): configurable rules over units' cases and inspection findings; published lists
are kept as published."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.errors import InputError
from gisgrid.frontage.compliance import load_rules, red_black
from gisgrid.frontage.store import publish_ranking, red_black_list

FACTS = pd.DataFrame(
    {
        "unit_id": [1, 2, 3, 4, 5],
        "name": ["甲", "乙", "丙", "丁", "戊"],
        "cases": [0, 3, 1, 0, 0],
        "findings": [0, 0, 0, 2, 0],
        "overdue": [0, 0, 0, 0, 0],
        "rework": [0, 0, 0, 0, 0],
        "agreement": ["valid", "valid", "valid", "valid", "expired"],
    }
)


def test_default_rules():
    out = red_black(FACTS, load_rules(None)).set_index("unit_id")
    assert out.loc[1, "list"] == "red"
    assert out.loc[2, "list"] == "black" and "3 cases" in out.loc[2, "why"]
    assert out.loc[3, "list"] == ""  # one case: neither
    assert out.loc[4, "list"] == "black" and "inspection findings" in out.loc[4, "why"]
    assert out.loc[5, "list"] == "black" and "agreement expired" in out.loc[5, "why"]


def test_rules_are_settings_and_checked():
    lenient = load_rules(
        '{"version": "local", "black": {"min_cases": 5, "no_agreement": false}, "red": {"max_cases": 1}}'
    )
    out = red_black(FACTS, lenient).set_index("unit_id")
    assert out.loc[2, "list"] == "" and out.loc[3, "list"] == "red" and out.loc[5, "list"] == ""
    with pytest.raises(InputError, match="black.min_casez is not a rule"):
        load_rules('{"black": {"min_casez": 1}}')
    with pytest.raises(InputError, match="must be like"):
        load_rules('{"black": {"min_cases": "many"}}')


@pytest.fixture()
def conn(engine, town, users):
    with engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()


def test_last_months_list_from_the_demo_cases_and_published_as_it_was(conn, settings):
    from gisgrid.demo import demo_frontage_cases

    assert demo_frontage_cases(conn, settings) > 0
    month = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    table, rules = red_black_list(conn, settings, month)
    black = table[table["list"] == "black"]
    assert len(black) and (table[table["list"] == "red"]["cases"] == 0).all()
    assert (table["findings"] > 0).any()  # the 督查 cases count as findings, not as cases
    rid = publish_ranking(conn, Actor.system("test"), month, table, rules)
    conn.execute(sa.text("UPDATE report SET status = 'rejected' WHERE external_id LIKE 'DEMO-FRONTAGE-%'"))
    after, _rules = red_black_list(conn, settings, month)
    assert (after["cases"] == 0).all()  # the live list follows the cases ...
    kept = conn.execute(sa.text("SELECT rows FROM frontage_ranking WHERE id = :i"), {"i": rid}).scalar()
    assert len(kept) == int((table["list"] != "").sum())  # ... the published one stays as published
