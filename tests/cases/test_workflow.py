"""Deadlines on China's official calendar, and the open / overdue rules (pure)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

from gisgrid.cases import workflow as wf
from gisgrid.cases.workflow import WorkingTime, deadline, deadlines, is_open, is_overdue, open_mask, overdue_mask
from gisgrid.config import load_settings
from gisgrid.errors import ConfigError

CST = dt.timezone(dt.timedelta(hours=8))
SHANGHAI = "Asia/Shanghai"


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CST)


def test_two_working_days_across_national_day_wait_for_the_holiday_to_end():
    """Reported Tue 30 Sep 2025 10:00 with 16 working hours (2 working days): 6.5 h that day,
    1 Oct – 8 Oct are holidays, Thu 9 Oct 8 h, Fri 10 Oct the last 1.5 h → 10:00."""
    due = deadline(local(2025, 9, 30, 10, 0), 16, working_time=True, tz=SHANGHAI)
    assert due == local(2025, 10, 10, 10, 0)
    # Monday to Friday alone would have said Thursday 2 October
    weekdays = WorkingTime(calendar="weekdays")
    assert deadline(local(2025, 9, 30, 10, 0), 16, working_time=True, calendar=weekdays, tz=SHANGHAI) == local(
        2025, 10, 2, 10, 0
    )


def test_make_up_working_days_count():
    """Sunday 28 Sep and Saturday 11 Oct 2025 were make-up working days (调休)."""
    assert deadline(local(2025, 9, 26, 17, 0), 8, working_time=True, tz=SHANGHAI) == local(2025, 9, 28, 17, 0)
    assert deadline(local(2025, 10, 10, 17, 0), 8, working_time=True, tz=SHANGHAI) == local(2025, 10, 11, 17, 0)


def test_calendar_hours_ignore_the_calendar():
    assert deadline(local(2025, 9, 30, 22, 0), 4, working_time=False, tz=SHANGHAI) == local(2025, 10, 1, 2, 0)


def test_outside_working_hours_the_clock_starts_at_the_next_period():
    assert deadline(local(2025, 9, 29, 7, 0), 4, working_time=True, tz=SHANGHAI) == local(2025, 9, 29, 14, 0)
    assert deadline(local(2025, 9, 29, 12, 30), 1, working_time=True, tz=SHANGHAI) == local(2025, 9, 29, 14, 30)
    # a naive time is local time
    assert deadline(dt.datetime(2025, 9, 29, 7, 0), 4, working_time=True, tz=SHANGHAI) == local(2025, 9, 29, 14, 0)


def test_vectorised_and_single_agree_and_no_hours_is_no_deadline():
    starts = [local(2025, 9, 30, 10, 0), local(2025, 9, 26, 17, 0), None, local(2025, 12, 31, 17, 0)]
    out = deadlines(starts, [16, 8, 4, float("nan")], [True, True, False, True], tz=SHANGHAI)
    assert out.iloc[0] == pd.Timestamp(local(2025, 10, 10, 10, 0))
    assert out.iloc[1] == pd.Timestamp(local(2025, 9, 28, 17, 0))
    assert pd.isna(out.iloc[2]) and pd.isna(out.iloc[3])


def test_a_year_the_calendar_does_not_cover_falls_back_to_weekdays_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="gisgrid.cases.workflow"):
        # Friday 31 Dec 2100 17:00 + 8 working hours: Monday 3 Jan 2101 (Saturday and Sunday skipped)
        due = deadline(local(2100, 12, 31, 17, 0), 8, working_time=True, tz=SHANGHAI)
    assert due == local(2101, 1, 3, 17, 0)
    assert "does not cover 2101" in caplog.text or "does not cover 2100" in caplog.text


def test_working_hours_are_a_setting():
    settings = load_settings(
        env={"GISGRID_WORKING_HOURS": "09:00-12:00,13:30-17:30", "GISGRID_WORK_CALENDAR": "weekdays"}
    )
    wt = WorkingTime.from_settings(settings)
    assert wt.hours_per_day == 7.0 and wt.calendar == "weekdays"
    assert deadline(local(2026, 3, 2, 9, 0), 7, working_time=True, calendar=wt, tz=SHANGHAI) == local(
        2026, 3, 2, 17, 30
    )
    with pytest.raises(ConfigError):
        WorkingTime.from_settings(load_settings(env={"GISGRID_WORKING_HOURS": "9-late"}))
    with pytest.raises(ConfigError):
        WorkingTime(calendar="lunar")


def test_open_and_overdue():
    now = local(2026, 3, 2, 12, 0)
    assert is_open("handled", None) and not is_open("closed", None)
    assert not is_open("closed", None)  # an imported closed report without closed_at is closed
    assert is_overdue("reported", None, local(2026, 3, 2, 11, 0), now)
    assert not is_overdue("closed", local(2026, 3, 2, 11, 30), local(2026, 3, 2, 11, 0), now)
    assert not is_overdue("reported", None, None, now)
    statuses = ["reported", "closed", "handled", "accepted"]
    due = [local(2026, 3, 2, 11, 0), local(2026, 3, 1, 0, 0), None, local(2026, 3, 3, 0, 0)]
    assert open_mask(statuses).tolist() == [True, False, True, True]
    assert overdue_mask(statuses, due, now).tolist() == [True, False, False, False]


# --- the case workflow (pure) ------------------------------------------------------------------
def test_rejected_merged_and_suspended_cases_are_not_overdue():
    now = local(2026, 3, 2, 12, 0)
    late = local(2026, 3, 2, 11, 0)
    for status in ("rejected", "merged", "closed", "suspended"):
        assert not is_overdue(status, None, late, now), status
    assert not is_open("rejected") and not is_open("merged") and is_open("suspended") and is_open("returned")
    statuses = ["rejected", "merged", "suspended", "returned"]
    assert open_mask(statuses).tolist() == [False, False, True, True]
    assert overdue_mask(statuses, [late] * 4, now).tolist() == [False, False, False, True]


@pytest.mark.parametrize(
    ("status", "action", "roles", "outcome"),
    [
        ("reported", "accept", {"dispatcher"}, "accepted"),
        ("reported", "accept", {"clerk"}, 403),
        ("reported", "accept", {"chief", "owner"}, 403),
        ("reported", "reject", {"dispatcher"}, "rejected"),
        ("accepted", "dispatch", {"dispatcher"}, "dispatched"),
        ("returned", "dispatch", {"dispatcher"}, "dispatched"),
        ("reported", "dispatch", {"dispatcher"}, 409),
        ("dispatched", "handle", {"chief", "owner"}, "handled"),
        ("dispatched", "handle", {"chief"}, 403),  # a chief who is not the owner
        ("dispatched", "handle", {"dispatcher"}, 403),
        ("handled", "handle", {"owner"}, 409),
        ("dispatched", "return", {"owner"}, "returned"),
        ("handled", "verify_pass", {"inspector"}, "closed"),
        ("handled", "verify_pass", {"grid_worker"}, "closed"),
        ("handled", "verify_pass", {"owner"}, 403),
        ("handled", "verify_fail", {"inspector"}, "dispatched"),
        ("dispatched", "suspend", {"manager"}, "suspended"),
        ("dispatched", "suspend", {"owner"}, 403),
        ("dispatched", "extend", {"manager"}, "dispatched"),
        ("closed", "reopen", {"clerk"}, "closed"),
        ("closed", "accept", {"admin"}, 409),
        ("reported", "merge", {"dispatcher"}, "merged"),
        ("dispatched", "merge", {"dispatcher"}, 409),
        ("dispatched", "escalate", {"admin"}, 403),  # only gisgrid itself escalates
        ("reported", "accept", {"admin"}, "accepted"),
    ],
)
def test_the_transition_table_allows_and_refuses_per_state_and_role(status, action, roles, outcome):
    from gisgrid.cases.workflow import RoleRefused, TransitionRefused, check_transition, next_status

    if isinstance(outcome, str):
        check_transition(status, action, roles)
        assert next_status(status, action) == outcome
        return
    with pytest.raises(TransitionRefused) as info:
        check_transition(status, action, roles)
    assert info.value.http_status_code == outcome
    assert isinstance(info.value, RoleRefused) == (outcome == 403)
    text = str(info.value)
    # the message names the state and the step as people read them; the error carries the keys for programs
    assert str(wf.state_text(status)) in text and str(wf.step_text(action)) in text
    assert (info.value.status, info.value.action) == (status, action)
    if outcome == 403:
        assert all(r in text for r in roles)  # … and the roles refused


def test_resume_goes_back_to_the_state_it_was_suspended_from_and_pages_offer_only_allowed_steps():
    from gisgrid.cases.workflow import allowed_actions, case_roles, next_status

    assert next_status("suspended", "resume", resume_status="returned") == "returned"
    assert next_status("suspended", "resume", resume_status=None) == "dispatched"
    assert allowed_actions("reported", {"dispatcher"}) == ["accept", "reject", "merge"]
    assert allowed_actions("dispatched", case_roles({"chief"}, is_owner=True)) == [
        "return",
        "handle",
        "request_extension",
    ]
    assert allowed_actions("dispatched", case_roles({"chief"}, is_owner=False)) == []
    assert "escalate" not in allowed_actions("dispatched", {"admin"})
    assert case_roles({"system", "clerk"}, is_owner=False) == {"clerk"}  # nobody claims the system's role


def test_an_unknown_step_names_the_known_ones():
    from gisgrid.cases.workflow import check_transition

    with pytest.raises(ValueError, match="unknown step 'fly'.*accept"):
        check_transition("reported", "fly", {"admin"})


def test_escalation_levels_follow_multiples_of_the_time_given():
    from gisgrid.cases.workflow import escalation_levels, parse_multiples

    start = local(2026, 3, 2, 8, 0)
    due = local(2026, 3, 2, 12, 0)  # 4 h given
    starts, dues = [start] * 5, [due] * 5
    nows = [local(2026, 3, 2, h, m) for h, m in ((11, 0), (12, 0), (15, 59), (16, 0), (23, 0))]
    levels = [int(escalation_levels(starts[:1], dues[:1], n, (1, 2, 3))[0]) for n in nows]
    assert levels == [0, 1, 1, 2, 3]  # at 1×: 二级街长; 2× (16:00): 一级街长; 3× (20:00): 总街长
    assert escalation_levels([start, None], [None, due], nows[-1], (1.5,)).tolist() == [0, 0]
    assert parse_multiples("1, 1.5 ,2") == (1.0, 1.5, 2.0)
    with pytest.raises(ConfigError):
        parse_multiples("2,1")
    with pytest.raises(ConfigError):
        parse_multiples("1,2,3,4")


def test_deadline_colour_green_yellow_red():
    from gisgrid.cases.workflow import deadline_colour

    start, due = local(2026, 3, 2, 8, 0), local(2026, 3, 2, 12, 0)
    assert deadline_colour("dispatched", start, due, local(2026, 3, 2, 9, 0)) == "green"
    assert deadline_colour("dispatched", start, due, local(2026, 3, 2, 11, 30)) == "yellow"  # < 25 % left
    assert deadline_colour("dispatched", start, due, local(2026, 3, 2, 12, 1)) == "red"
    assert deadline_colour("closed", start, due, local(2026, 3, 2, 12, 1)) is None
    assert deadline_colour("suspended", start, due, local(2026, 3, 2, 12, 1)) is None
    assert deadline_colour("reported", start, None, local(2026, 3, 2, 12, 1)) is None


def test_a_2027_deadline_falls_back_to_weekdays_until_the_year_is_entered(caplog):
    """chinesecalendar 1.11 stops at 2026: on 1 January 2027 gisgrid must keep counting."""
    from gisgrid.cases import workflow

    workflow._warn_uncovered.cache_clear()  # warned once per process: this test wants to see it
    workflow._is_workday.cache_clear()
    with caplog.at_level(logging.WARNING, logger="gisgrid.cases.workflow"):
        # Thursday 31 Dec 2026 17:00 + 16 working hours, Monday–Friday for 2027: 1 Jan (Fri) counts …
        due = deadline(local(2026, 12, 31, 17, 0), 16, working_time=True, tz=SHANGHAI)
    assert due == local(2027, 1, 4, 17, 0)
    assert "2027" in caplog.text
    assert not WorkingTime().covers(2027) and WorkingTime().covers(2026)
    # … until an admin enters 2027: New Year's Day is a holiday, Saturday 2 Jan a make-up working day
    entered = WorkingTime(days={dt.date(2027, 1, 1): False, dt.date(2027, 1, 2): True}, entered_years=frozenset({2027}))
    assert entered.covers(2027)
    assert deadline(local(2026, 12, 31, 17, 0), 16, working_time=True, calendar=entered, tz=SHANGHAI) == local(
        2027, 1, 4, 17, 0
    )
    assert deadline(local(2026, 12, 31, 17, 0), 8, working_time=True, calendar=entered, tz=SHANGHAI) == local(
        2027, 1, 2, 17, 0
    )
    # an entered day beats the package: make National Day 2025's Wednesday a working day
    moved = WorkingTime(days={dt.date(2025, 10, 1): True})
    assert deadline(local(2025, 9, 30, 17, 0), 8, working_time=True, calendar=moved, tz=SHANGHAI) == local(
        2025, 10, 1, 17, 0
    )


def test_a_calendar_file_reads_dates_and_workdays_in_chinese_or_english():
    from gisgrid.cases.workflow import parse_calendar_rows

    frame = pd.DataFrame({"日期": ["2027-01-01", "2027-02-06"], "上班": ["休", "班"], "说明": ["元旦", None]})
    assert parse_calendar_rows(frame) == [(dt.date(2027, 1, 1), False, "元旦"), (dt.date(2027, 2, 6), True, None)]
    with pytest.raises(ValueError, match="row 2: .*not a date.*row 3: workday 'maybe'"):
        parse_calendar_rows(pd.DataFrame({"date": ["2027-01-01", "soon", "2027-01-03"], "workday": [0, 1, "maybe"]}))
