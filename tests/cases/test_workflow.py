"""Deadlines on China's official calendar, and the open / overdue rules (pure)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

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
