"""Spreadsheets downloaded from a page speak the page's language (issue 21 point 6): the audit workbook, the case
list, the red and black list, the geocoded rows and the meeting summary have Chinese sheet and column names when
downloaded from a Chinese page and English ones from an English page.  The user's own columns (a geocoded file's
input) stay as they were; cell values are data.
"""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
import sqlalchemy as sa

from tests.web.test_geocode_web import _job, _upload, geo_app  # noqa: F401 - geo_app is a fixture
from tests.web.test_one_language import ALLOWED_LATIN, CJK, LATIN_WORD

TOWN = "990091001"  # Helsinki's demo town


def _book(client, url: str) -> dict[str, list[list]]:
    res = client.get(url)
    assert res.status_code == 200, res.get_data(as_text=True)[:500]
    assert res.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(io.BytesIO(res.data), read_only=True)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}


def _stray(words: list[str], lang: str) -> list[str]:
    """Words of the other language in ``words`` (sheet names, headers)."""
    text = " ".join(str(w) for w in words if w is not None)
    if lang == "zh_CN":
        return [w for w in LATIN_WORD.findall(text) if w not in ALLOWED_LATIN]
    return CJK.findall(text)


def _names(book: dict[str, list[list]]) -> list[str]:
    """Sheet names and each sheet's header row."""
    out = list(book)
    for rows in book.values():
        out += [str(v) for v in (rows[0] if rows else []) if v is not None]
    return out


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_audit_workbook_speaks_the_pages_language(client, lang):
    book = _book(client, f"/audit/export.xlsx?jurisdiction={TOWN}&lang={lang}")
    summary_items = [r[0] for r in book[list(book)[0]][1:]]
    assert summary_items and not _stray(_names(book) + summary_items, lang), _stray(_names(book) + summary_items, lang)
    if lang == "zh_CN":
        assert list(book)[:4] == ["汇总", "空白（没人管）", "重叠（多头管）", "碎片"]
        assert book["汇总"][0] == ["项目", "取值"] and "空白数" in summary_items
        assert "面积（m²）" in book["空白（没人管）"][0] and "经度" in book["空白（没人管）"][0]
        assert "门前三包空白" in book and "门前三包责任书" in book  # the frontage sheets, as the CLI's workbook
    else:
        assert list(book)[:4] == ["Summary", "Gaps", "Overlaps", "Slivers"]
        assert book["Summary"][0] == ["Item", "Value"] and "Gaps (number)" in summary_items
        assert "Area (m²)" in book["Gaps"][0] and "Longitude" in book["Gaps"][0]
        assert "Frontage gaps" in book and "Frontage agreements" in book
    # the codes of the data are not in the headers any more
    assert not {"gaps", "area_m2", "gaps_count", "thinness"} & set(_names(book))


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_case_export_speaks_the_pages_language(client, lang):
    book = _book(client, f"/cases/export.xlsx?view=all&lang={lang}")
    (sheet,) = book
    header, *rows = book[sheet]
    assert rows and not _stray(_names(book), lang), _stray(_names(book), lang)
    states = {r[header.index("状态" if lang == "zh_CN" else "Status")] for r in rows}
    if lang == "zh_CN":
        assert sheet == "案件" and header[:3] == ["案件编号", "状态", "类别代码"] and "经度" in header
        assert not _stray(sorted(states), lang)
        assert not {"reported", "dispatched", "closed"} & states  # states as people read them
    else:
        assert sheet == "Cases" and header[:3] == ["Case number", "Status", "Category code"] and "Longitude" in header
        assert not _stray(sorted(states), lang)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_red_and_black_list_speaks_the_pages_language(client, engine, lang):
    with engine.connect() as conn:
        month = conn.execute(sa.text("SELECT to_char(CURRENT_DATE - 31, 'YYYY-MM')")).scalar()
    book = _book(client, f"/frontage/redblack?month={month}&jurisdiction={TOWN}&format=xlsx&lang={lang}")
    assert not _stray(_names(book), lang), _stray(_names(book), lang)
    black, red = ["黑榜", "红榜"] if lang == "zh_CN" else ["Black list", "Red list"]
    assert list(book) == [black, red]
    header = book[black][0]
    assert header == (
        ["单位名称", "道路", "路段", "案件", "督查发现的问题", "超期", "返工", "责任书", "原因"]
        if lang == "zh_CN"
        else ["Unit name", "Street", "Segment", "Cases", "Inspection findings", "Overdue", "Rework", "Agreement", "Why"]
    )
    # the agreement states and the reasons are said in the page's language too
    said = [str(r[i]) for rows in book.values() for r in rows[1:] for i in (7, 8) if r[i]]
    assert said and not _stray(said, lang), _stray(said, lang)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_geocoded_rows_name_gisgrids_columns_in_the_pages_language(geo_app, lang):  # noqa: F811
    client = geo_app.test_client()
    job = _job(_upload(client))
    book = _book(client, f"/geocode/{job}.xlsx?lang={lang}")
    (rows,) = book.values()
    header = rows[0]
    assert header[:3] == ["编号", "地址", "category"]  # the clerk's own columns as they were
    added = header[3:]
    assert len(added) == 13 and not _stray(added, lang), _stray(added, lang)
    if lang == "zh_CN":
        assert added[:3] == ["经度", "纬度", "匹配质量"] and "责任人" in added
    else:
        assert added[:3] == ["Longitude", "Latitude", "Match quality"] and "Owner" in added
    # the CSV, for machines, keeps the names (a downloaded result uploaded again finds its columns)
    csv = client.get(f"/geocode/{job}.csv?lang={lang}").get_data(as_text=True)
    assert re.match(r"\ufeff?编号,地址,category,lon,lat,quality,", csv)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_meeting_summary_speaks_the_pages_language(client, lang):
    book = _book(client, f"/map/summary.xlsx?jurisdiction={TOWN}&lang={lang}")
    assert not _stray(_names(book), lang), _stray(_names(book), lang)
