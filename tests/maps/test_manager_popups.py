"""The manager map's popups speak the page's language (issue 21): statuses, lateness in days or hours,
times in the deployment's time zone, the choropleth's tooltip."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pandas as pd

from gisgrid.maps._base import translator
from gisgrid.maps.manager import _report_popup


def _row(**kw):
    base = dict(
        id=7,
        category="0101",
        category_name="占道经营",
        status="reported",
        reported_at=pd.Timestamp("2026-01-01 00:30", tz="UTC"),
        address="学院路1号",
        description="",
        owner_name="张三",
        hours_late=5222.4,
    )
    return SimpleNamespace(**{**base, **kw})


def _popup(lang, tz="Asia/Shanghai", **kw):
    _ = translator(lang)
    _.timezone = tz
    return _report_popup(_row(**kw), _)


def test_report_popups_in_chinese_have_no_english_and_local_times():
    zh = _popup("zh_CN")
    assert "reported" not in zh and "Hours" not in zh
    assert "超期" in zh and "218 天" in zh and "5222" not in zh
    assert "2026-01-01 08:30" in zh  # UTC 00:30 is 08:30 in Shanghai
    assert "5 小时" in _popup("zh_CN", hours_late=5.2)
    assert not re.search(r"[A-Za-z]{3,}", re.sub(r"<[^>]+>", "", zh))


def test_report_popups_in_english_and_helsinki_time():
    en = _popup("en", tz="Europe/Helsinki", status="dispatched")
    assert "dispatched" in en and "218 days" in en and "2026-01-01 02:30" in en
