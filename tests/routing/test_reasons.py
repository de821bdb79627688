"""Routing reasons in the page's language: the engine and the unit step store English reasons, and every one
they can write is read back by the one list of reason patterns (gisgrid.routing.rules.REASONS)."""

from __future__ import annotations

import datetime as dt

from babel.support import Translations

from gisgrid.config import TRANSLATIONS_DIR
from gisgrid.routing.frontage import route_to_unit
from gisgrid.routing.rules import REASONS
from gisgrid.routing.store import load_deployment

ZH = Translations.load(str(TRANSLATIONS_DIR), ["zh_CN"], "messages").gettext


def _read_whole(text: str) -> bool:
    # a gettext that says every pattern as one mark: a reason read whole is marks and separators only
    return not REASONS.say(text, lambda t: "\x00").replace("; ", "").strip("\x00")


def test_every_reason_the_engine_can_write_is_read(engine, town, settings):
    with engine.connect() as conn:
        deployment = load_deployment(conn, settings)
    indexes = [i for _, i in getattr(deployment.index, "parts", [])] or [deployment.index]
    reasons = {r for index in indexes for r in index.reasons}
    assert any("routes to department" in r for r in reasons) and any("address street" in r for r in reasons)
    assert [r for r in reasons if not _read_whole(r)] == []


def test_the_unit_steps_reasons_are_said_in_chinese():
    route = {"rule": "segment_area", "segment_id": 7, "owner": "段长甲", "chain": "段长 段长甲", "reason": None}
    unit = {"id": 1, "name": "好又多超市", "contact_name": "王", "person_id": 3, "segment_id": 7,
            "signed_on": dt.date(2025, 1, 1), "expires_on": dt.date(2025, 12, 31)}  # fmt: skip
    expired = route_to_unit(route, [unit], frontage_duty=True, day=dt.date(2026, 6, 1))["reason"]
    valid = route_to_unit(route, [unit], frontage_duty=True, day=dt.date(2025, 6, 1))["reason"]
    for reason in (expired, valid):
        assert _read_whole(reason), reason
    assert (
        REASONS.say(expired, ZH)
        == "位于门前三包单位 好又多超市 的责任区内，但其责任书已于 2025-12-31 到期：仍由段长负责"
    )
    assert REASONS.say(valid, ZH) == "位于门前三包单位 好又多超市 的责任区内，责任书有效期至 2025-12-31"
    assert REASONS.say(valid, lambda t: t) == valid  # English pages: as stored
