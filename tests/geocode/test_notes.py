"""The geocoder's notes in the page's language: every note the matcher writes is read back against the one list
of note patterns (gisgrid.geocode.notes.NOTES) and said through the catalog; values stay as written."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from babel.support import Translations

from gisgrid.config import DATA_DIR, TRANSLATIONS_DIR
from gisgrid.geocode.gazetteer import Gazetteer, addresses_frame
from gisgrid.geocode.match import geocode
from gisgrid.geocode.notes import say_note
from tests.geocode.test_geocode import town  # noqa: F401 - the small 人民路 town, a fixture

ZH = Translations.load(str(TRANSLATIONS_DIR), ["zh_CN"], "messages").gettext

#: Written addresses that reach the matcher's less common notes (besides the sample towns' address lists).
ODD = [
    "人民路999号", "人民路6号", "人民路7号", "北京路与横港北路交叉口", "人民路西段", "人民医院门口", "人民大道5号",
    "上海市黄浦区人民路10号", "龙岗区人民路10号", "不存在路8号", "人民路与无名路交叉口", "", "某某地标门口",
    "人民路（北京路口）", "北京路路口",
]  # fmt: skip
LATIN = [
    "corner of Kaivokatu and Keskuskatu", "Snellmankatu 5", "Itäinen Teatterikuja 1", "Bulevardi 999",
    "Mannerheimintie 20, Tampere", "Nowhere street 3", "Kaivokatu and Nonexistent road",
]  # fmt: skip


@pytest.fixture(scope="module")
def helsinki() -> Gazetteer:
    streets = gpd.read_file(DATA_DIR / "helsinki_streets.geojson")
    addresses = pd.read_csv(DATA_DIR / "helsinki_addresses_dev.csv", dtype=str)
    return Gazetteer.build(streets, addresses_frame(addresses))


def _notes(town, helsinki) -> set[str]:  # noqa: F811
    written = pd.read_csv(DATA_DIR / "helsinki_addresses_dev.csv", dtype=str)
    latin = [f"{s} {n}" for s, n in zip(written["street"], written["housenumber"].fillna(""))]
    notes = {geocode(a, helsinki).note for a in latin + LATIN}
    notes |= {geocode(a, town).note for a in ODD}
    return {n for n in notes if n}


def test_every_note_the_matcher_writes_is_said_in_chinese(town, helsinki):  # noqa: F811
    notes = _notes(town, helsinki)
    assert len(notes) >= 15  # the addresses reach many kinds of note
    # a gettext that says every pattern as one mark: a note read whole comes back as marks and separators only
    unread = [n for n in notes if say_note(n, lambda t: "\x00").replace("; ", "").strip("\x00")]
    assert not unread, unread[:10]


def test_a_note_is_said_in_chinese_with_its_values_as_written():
    note = "no house numbers known on Kaivokatu; street midpoint"
    assert say_note(note, ZH) == "Kaivokatu 没有已知门牌号；取街道中点".replace("；", "; ")
    nested = "street 'Nowhere' not found; read as an address in Tampere: address is in Tampere, outside the gazetteer's area (Helsinki)"
    said = say_note(nested, ZH)
    assert "未找到街道 'Nowhere'" in said and "地址位于Tampere，在地名库范围（Helsinki）之外" in said
    assert say_note("something the matcher never wrote", ZH) == "something the matcher never wrote"
    assert say_note(None, ZH) == "" and say_note(float("nan"), ZH) == ""
    # English pages: the note as the matcher wrote it
    assert say_note(note, lambda t: t) == note
