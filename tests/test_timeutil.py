"""The local day: one rule, one time-zone setting."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gisgrid.config import load_settings
from gisgrid.errors import ConfigError
from gisgrid.timeutil import day_start, local_day, local_days, localize


def test_the_same_instant_is_the_next_day_in_shanghai_and_the_same_day_in_helsinki():
    # 20:30 UTC: 04:30 next morning in Shanghai (UTC+8), 22:30 (winter) or 23:30 (summer) in Helsinki
    for at in (
        dt.datetime(2026, 1, 15, 20, 30, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 7, 15, 20, 30, tzinfo=dt.timezone.utc),
    ):
        assert local_day(at, "Asia/Shanghai") == at.date() + dt.timedelta(days=1)
        assert local_day(at, "Europe/Helsinki") == at.date()
    # 23:30 UTC is already the next day in both
    late = dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.timezone.utc)
    assert local_day(late, "Asia/Shanghai") == local_day(late, "Europe/Helsinki") == dt.date(2026, 1, 16)


def test_vectorised_form_agrees():
    at = pd.Series(pd.to_datetime(["2026-01-15 20:30Z", "2026-01-15 15:00Z", None], utc=True))
    assert local_days(at, "Asia/Shanghai").tolist() == [dt.date(2026, 1, 16), dt.date(2026, 1, 15), None]
    days = local_days(at, "Europe/Helsinki")
    assert days[0] == np.datetime64("2026-01-15") and np.isnat(days[2])
    epoch = (at.iloc[:2] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    assert (local_days(epoch, "Asia/Shanghai") == local_days(at.iloc[:2], "Asia/Shanghai")).all()


def test_day_bounds_and_naive_times():
    assert day_start(dt.date(2026, 3, 2), "Asia/Shanghai") == dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.timezone.utc)
    assert localize(dt.datetime(2026, 3, 2, 8, 0), "Europe/Helsinki").utcoffset() == dt.timedelta(hours=2)
    assert local_day(dt.datetime(2026, 3, 2, 23, 0), "Asia/Shanghai") == dt.date(2026, 3, 2)  # naive: already local


def test_the_setting_and_a_bad_zone():
    assert load_settings(env={}).timezone == "Asia/Shanghai"
    assert load_settings(env={"GISGRID_TIMEZONE": "Europe/Helsinki"}).timezone == "Europe/Helsinki"
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        local_day(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "Mars/Olympus")


def test_local_text_is_local_time_and_blank_for_missing_values():
    import datetime as dt

    import numpy as np
    import pandas as pd

    from gisgrid.timeutil import local_text, local_texts

    utc = dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.timezone.utc)
    assert local_text(utc, "Asia/Shanghai") == "2026-03-02 04:30"
    assert local_text(pd.Timestamp(utc), "Europe/Helsinki", seconds=True) == "2026-03-01 22:30:00"
    assert local_text("2026-03-01T20:30:00+00:00", "Asia/Shanghai") == "2026-03-02 04:30"
    assert local_text(utc.replace(tzinfo=None), "Asia/Shanghai") == "2026-03-02 04:30"  # naive: stored UTC
    for missing in (None, pd.NaT, np.nan, float("nan"), ""):  # pd.NaT is a datetime subclass: no 500
        assert local_text(missing, "Asia/Shanghai") == ""
    assert list(local_texts([utc, None], "Asia/Shanghai")) == ["2026-03-02 04:30", ""]
