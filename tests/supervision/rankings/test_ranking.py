"""Rankings of the hand-built county (tests/supervision/conftest.py), every figure worked out by hand.

Quarter 2025-Q4, Asia/Shanghai, working hours 08:30–12:00 and 13:30–18:00 on China's official calendar
(1–8 October 2025 are holidays).  Default rules: filed-cases score × 10 % + closure × 30 % + on time × 30 %
+ (1 − rework) × 30 %; filed-cases bands ≥ 20 → 100, ≥ 10 → 90, ≥ 5 → 80, ≥ 1 → 60.

甲 (person 1): cases 1–4 filed (case 10 was rejected: not filed).  All four are due by the quarter's end;
  2 closed → closure 2/4 = 0.5; on time: only case 1 (case 2 closed 15:00, due 13:00); case 3 is suspended,
  so on time = 1 / (4 − 1) = 1/3; rework: 1 failed check, 2 closed → 1 / (1 + 2) = 1/3.
  Handling: case 1 reported 1 Oct 09:00 (a holiday) closed 9 Oct 10:30 → 2.0 working hours (08:30–10:30);
  case 2: 09:00–12:00 + 13:30–15:00 = 4.5 h → mean 3.25 h.  0.5 km of street → 8 cases / km.
  composite = 0.1 × 60 + 0.3 × 50 + 0.3 × 33.33 + 0.3 × 66.67 = 6 + 15 + 10 + 20 = 51.00 → D.
乙 (person 2): cases 5, 6 (case 11 is in September): closure 1, on time 1/2, rework 0;
  composite = 6 + 30 + 15 + 30 = 81.00 → B.  Case 6 is case 1's problem back 11 days after it closed:
  recurrence 1/2.  Handling 1 h and 4 h → 2.5 h.
丙 (person 3): cases 7, 8 (8 suspended): closure 1/2, on time 1 / (2 − 1) = 1, rework 0;
  composite = 6 + 15 + 30 + 30 = 81.00 → B: a tie with 乙, broken by the higher on-time rate: 丙 first.
市政所 (department 1): case 9 closed on time: composite 6 + 30 + 30 + 30 = 96.00 → A.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.supervision import ranking_store as store
from gisgrid.supervision.ranking import Rules, grade


def _rank(rank_engine, settings, quarter, kind="owner", **kw):
    with rank_engine.connect() as conn:
        return store.compute_ranking(conn, settings, quarter, kind, **kw)


def test_owner_ranking_matches_the_hand_computed_figures(rank_engine, settings, quarter):
    r = _rank(rank_engine, settings, quarter).rows
    assert list(r.index) == ["department:1", "person:3", "person:2", "person:1"]
    assert list(r["unit_name"]) == ["市政所", "丙", "乙", "甲"]
    a = r.loc["person:1"]
    assert a["cases_filed"] == 4
    assert a["closure_rate"] == pytest.approx(0.5)
    assert a["on_time_rate"] == pytest.approx(1 / 3)  # the suspended case is out of the denominator
    assert a["rework_rate"] == pytest.approx(1 / 3)
    assert a["recurrence_rate"] == 0
    assert a["mean_handling_hours"] == pytest.approx(3.25)  # the holiday week does not count
    assert a["cases_per_km"] == pytest.approx(8.0)
    assert a["composite"] == pytest.approx(51.0)
    assert a["grade"] == "D"
    b, c, d = r.loc["person:2"], r.loc["person:3"], r.loc["department:1"]
    assert (b["closure_rate"], b["on_time_rate"], b["recurrence_rate"]) == (1.0, 0.5, 0.5)
    assert b["mean_handling_hours"] == pytest.approx(2.5)
    assert (c["closure_rate"], c["on_time_rate"]) == (0.5, 1.0)
    assert b["composite"] == c["composite"] == pytest.approx(81.0)  # the tie ...
    assert c["rank"] == 2 and b["rank"] == 3  # ... goes to the higher on-time rate
    assert d["composite"] == pytest.approx(96.0) and d["grade"] == "A"
    assert math.isnan(d["cases_per_km"])  # a department answers for no street
    assert list(r["commended"]) == [True, True, True, False]
    assert list(r["named"]) == [False, False, False, True]


def test_top_and_bottom_n_and_other_grade_tables(rank_engine, settings, quarter):
    rules = Rules(top_n=1, bottom_n=2, grades="good-middle-poor")
    r = _rank(rank_engine, settings, quarter, rules=rules).rows
    assert list(r["commended"]) == [True, False, False, False]
    assert list(r["named"]) == [False, False, True, True]
    assert list(r["grade"]) == ["good", "middle", "middle", "poor"]
    assert list(grade([90, 89.99, 75, 60, 40, 39.99])) == ["A", "B", "B", "C", "D", "E"]


def test_weights_and_bands_are_settings(rank_engine, settings, quarter):
    rules = Rules(weights={"filed": 0.0, "closure": 0.5, "on_time": 0.5, "rework": 0.0, "inspection": 0.0})
    r = _rank(rank_engine, settings, quarter, rules=rules).rows
    assert r.loc["person:1", "composite"] == pytest.approx(round(50 * 0.5 + 100 / 3 * 0.5, 2))
    assert list(r.index[:2]) == ["department:1", "person:3"]  # 丙 100×.5+50×.5 = 75 = 乙's: tie again
    with pytest.raises(Exception, match="add up to 1"):
        Rules(weights={"filed": 0.5, "closure": 0.6})


def test_street_community_and_town_rankings(rank_engine, settings, quarter):
    streets = _rank(rank_engine, settings, quarter, "street").rows
    # street 1: cases 1–6, 1 km; street 2: cases 7–9, 1 km
    assert streets.loc[1, "cases_filed"] == 6 and streets.loc[1, "cases_per_km"] == pytest.approx(6.0)
    assert streets.loc[2, "cases_filed"] == 3
    assert streets.loc[2, "closure_rate"] == pytest.approx(2 / 3)
    assert streets.loc[2, "on_time_rate"] == pytest.approx(2 / 2)
    town = _rank(rank_engine, settings, quarter, "town").rows
    community = _rank(rank_engine, settings, quarter, "community").rows
    assert list(town.index) == [2] and list(community.index) == [3]
    assert town.loc[2, "cases_filed"] == 9 and community.loc[3, "cases_filed"] == 9


def test_inspection_rounds_combine_with_their_weights(rank_engine, settings, quarter):
    """Two rounds weighted 40 / 60 (a pluggable source, as inspection rounds give them)."""

    def rounds(conn, period, kind):
        return pd.DataFrame(
            {"unit_id": ["person:1", "person:1", "person:2"], "round_id": [1, 2, 2], "score": [90.0, 80.0, 70.0]}
        )

    rules = Rules(
        weights={"filed": 0.1, "closure": 0.2, "on_time": 0.2, "rework": 0.2, "inspection": 0.3},
        inspection_weights={1: 0.4, 2: 0.6},
    )
    r = _rank(rank_engine, settings, quarter, rules=rules, inspections=rounds).rows
    assert r.loc["person:1", "inspection_score"] == pytest.approx(0.4 * 90 + 0.6 * 80)  # 84
    assert r.loc["person:2", "inspection_score"] == pytest.approx(70.0)  # scored in round 2 only
    assert math.isnan(r.loc["person:3", "inspection_score"])
    a = 0.1 * 60 + 0.2 * 50 + 0.2 * 100 / 3 + 0.2 * 200 / 3 + 0.3 * 84
    assert r.loc["person:1", "composite"] == pytest.approx(round(a, 2))


def test_cases_behind_each_figure(rank_engine, settings, quarter):
    ranking = _rank(rank_engine, settings, quarter)
    with rank_engine.connect() as conn:
        behind = store.cases_behind(conn, settings, ranking, "person:1")
    assert behind["filed"] == [1, 2, 3, 4]
    assert behind["closed"] == [1, 2]
    assert behind["on_time"] == [1]
    assert behind["not_on_time"] == [2, 4]
    assert behind["suspended"] == [3]
    assert behind["reworked"] == [2]


def test_a_published_ranking_never_changes_and_a_rerun_says_how_it_differs(rank_db, settings, quarter):
    url, engine = rank_db
    ranking = _rank(engine, settings, quarter)
    with engine.begin() as conn:
        sid = store.publish(conn, Actor(name="测试管理员", user_id=None), ranking, title="2025年第四季度排名")
    with engine.connect() as conn:
        snap = store.get_snapshot(conn, None, sid)
        _, diff = store.rerun(conn, settings, snap)
    assert snap["rules_version"] == Rules().version
    assert snap["case_ids"] == list(range(1, 10))
    assert snap["inputs"]["unit_counts"]["person:1"] == {
        "filed": 4, "due": 4, "closed": 2, "on_time": 1, "suspended": 1, "rework": 1, "handled": 2,
        "recurrences": 0, "hours_sum": 6.5, "hours_n": 2,
    }  # fmt: skip
    assert diff["changed"] == 0
    try:
        with engine.begin() as conn:  # case 4 is closed on time after all
            conn.execute(sa.text("UPDATE report SET status = 'closed', closed_at = due_at WHERE id = 4"))
        with engine.connect() as conn:
            snap = store.get_snapshot(conn, None, sid)
            _, diff = store.rerun(conn, settings, snap)
        assert snap["rows"].loc["person:1", "composite"] == pytest.approx(51.0)  # as published
        # now closure 3/4, on time 2/3, rework 1/4: 6 + 22.5 + 20 + 22.5 = 71.0
        assert diff["changed"] == 1 and diff["max_composite_change"] == pytest.approx(20.0)
        assert diff["units"][0]["after"]["composite"] == pytest.approx(71.0)
        with pytest.raises(sa.exc.DBAPIError, match="never changes"), engine.begin() as conn:
            conn.execute(sa.text("UPDATE ranking_snapshot SET figures = '[]' WHERE id = :i"), {"i": sid})
        with pytest.raises(sa.exc.DBAPIError, match="never changes"), engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM ranking_snapshot WHERE id = :i"), {"i": sid})
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE report SET status = 'dispatched', closed_at = NULL WHERE id = 4"))


def test_trend_gives_each_unit_twelve_months(rank_engine, settings, quarter):
    with rank_engine.connect() as conn:
        t = store.trends(conn, settings, quarter, "owner")
    assert t["months"][-3:] == ["2025-10", "2025-11", "2025-12"] and len(t["months"]) == 12
    a = t["units"]["person:1"]
    assert a[:8] == [None] * 8  # no cases before October (September's case is 乙's)
    # November: cases 2 and 3 — closure 1/2, on time 0/(2 − 1), rework 1/2 → 6 + 15 + 0 + 15
    assert a[10] == pytest.approx(36.0)


@pytest.mark.parametrize("kind", ["owner", "town"])
def test_twelve_months_in_one_pass_equal_each_month_counted_alone(rank_engine, settings, quarter, kind):
    """The trend counts its months in one pass (each case in the month it was filed, with that month's end as
    its cut-off, hours from one layout over the span): the same counts as each month on its own."""
    from gisgrid.cases.calendar import working_time

    months = quarter.previous_months(12)
    with rank_engine.connect() as conn:
        tree = store.jurisdiction_tree(conn)
        cal = working_time(conn, settings)
        together = store.periods_unit_counts(conn, months, kind, tree=tree, calendar=cal)
        alone = [store.unit_counts(conn, m, kind, tree=tree, calendar=cal) for m in months]
    assert sum(len(c) for c in alone) > 3  # the fixture has cases in several months
    for month, a, b in zip(months, together, alone):
        pd.testing.assert_frame_equal(a.astype(float), b.astype(float), atol=1e-9, obj=month.label)


@pytest.mark.parametrize("kind", ["owner", "street", "community", "town"])
def test_sql_counts_agree_with_the_in_memory_form(rank_engine, settings, quarter, kind):
    """One counting rule, two forms: PostgreSQL's (rankings) and pandas' over the per-case facts (the cases
    behind a figure), with working hours through the SQL layout and through working_hours_between."""
    from gisgrid.cases.calendar import working_time
    from gisgrid.supervision.indicators import unit_counts

    with rank_engine.connect() as conn:
        tree = store.jurisdiction_tree(conn)
        cal = working_time(conn, settings)
        counted = store.unit_counts(conn, quarter, kind, tree=tree, calendar=cal)
        for uid in counted.index:
            facts = store.case_facts(conn, quarter, kind, uid, tree=tree, calendar=cal)
            mine = unit_counts(facts, kind, quarter).loc[uid]
            pd.testing.assert_series_equal(
                counted.loc[uid].astype(float), mine.astype(float), check_names=False, atol=1e-9
            )


def test_working_hours_agree_across_a_clock_change(rank_engine, settings):
    """Helsinki's clocks go back on 26 October 2025: days are not all 86,400 s, the SQL takes its other path."""
    from gisgrid.cases.calendar import working_time
    from gisgrid.supervision.indicators import parse_period, unit_counts

    period = parse_period("2025-Q4", "Europe/Helsinki")
    with rank_engine.connect() as conn:
        tree = store.jurisdiction_tree(conn)
        cal = working_time(conn, settings)
        counted = store.unit_counts(conn, period, "town", tree=tree, calendar=cal)
        facts = store.case_facts(conn, period, "town", 2, tree=tree, calendar=cal)
    mine = unit_counts(facts, "town", period).loc[2]
    assert counted.loc[2, "hours_n"] == mine["hours_n"] > 0
    assert counted.loc[2, "hours_sum"] == pytest.approx(mine["hours_sum"])


def test_the_inspection_rounds_of_the_quarter_weighted_40_60(rank_db, settings, quarter):
    """Real rounds (inspection_round, inspection_score): the first of the quarter weighs 40 %, the second 60 %."""
    url, engine = rank_db
    with engine.begin() as conn:
        for rid, kind, start, end in ((901, "announced", "2025-10-01", "2025-10-31"),
                                      (902, "unannounced", "2025-11-01", "2025-11-30")):  # fmt: skip
            conn.execute(
                sa.text("""
                INSERT INTO inspection_round (id, kind, name, period_start, period_end, scope_kind, scope_ids,
                                              created_by, ended_at, jurisdiction_id)
                VALUES (:id, :kind, :name, :s, :e, 'town', '{2}', 'test', CAST(:e AS date) + 1, 2)"""),
                {"id": rid, "kind": kind, "name": f"round {rid}", "s": start, "e": end},
            )
        conn.execute(
            sa.text("""
            INSERT INTO inspection_score (round_id, unit_kind, unit_id, unit_name, score, deductions,
                                          found_deductions, overdue_deductions, repeat_deductions, findings,
                                          overdue, repeats)
            VALUES (901, 'person', 1, '甲', 90, 10, 10, 0, 0, 50, 0, 0), (902, 'person', 1, '甲', 80, 20, 20, 0, 0, 100, 0, 0),
                   (902, 'department', 1, '市政所', 70, 30, 30, 0, 0, 150, 0, 0),
                   (901, 'town', 2, '测试街道', 95, 5, 5, 0, 0, 25, 0, 0)""")
        )  # fmt: skip
    try:
        rules = Rules(
            weights={"filed": 0.1, "closure": 0.2, "on_time": 0.2, "rework": 0.2, "inspection": 0.3},
            inspection_order_weights=(0.4, 0.6),
        )
        r = _rank(engine, settings, quarter, rules=rules).rows
        assert r.loc["person:1", "inspection_score"] == pytest.approx(0.4 * 90 + 0.6 * 80)
        assert r.loc["department:1", "inspection_score"] == pytest.approx(70.0)
        assert math.isnan(r.loc["person:2", "inspection_score"])
        a = 0.1 * 60 + 0.2 * 50 + 0.2 * 100 / 3 + 0.2 * 200 / 3 + 0.3 * 84
        assert r.loc["person:1", "composite"] == pytest.approx(round(a, 2))
        towns = _rank(engine, settings, quarter, "town", rules=rules).rows
        assert towns.loc[2, "inspection_score"] == pytest.approx(95.0)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM inspection_score WHERE round_id IN (901, 902)"))
            conn.execute(sa.text("DELETE FROM inspection_round WHERE id IN (901, 902)"))
