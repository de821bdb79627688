"""Property tests of the address parser: any text of up to 10,000 characters, read in bounded time, never raises."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gisgrid.geocode.parse import KINDS, PARSE_WINDOW, parse_address, parse_house_number, street_key

#: Pieces addresses are made of, and pieces that have broken parsers: connectors, relations, parts of roads,
#: brackets, full-width digits, traditional characters, digits without end, control characters and lone surrogates.
PIECES = [
    "人民路", "大埔公路", "沙田", "深圳市", "龙岗区", "街道", "社区", "村", "号", "与", "和", "/", "&", "交叉口", "路口",
    "东段", "对面", "门口", "旁边", "的", "（", "）", "(", ")", "【", "】", "－", "-", "段", "甲", "８８", "88", "1", "0",
    "9" * 40, "紅門路", "Tai Po Road", "Mannerheimintie", "5", "B", " ", ",", ";", "and", "corner of", "x", "Rd.",
    "k.", "\t", "\n", "\r", "\x00", "\u3000", "=", "𪨶", "ﷺ", "\ud800", "'", '"', "<script>",
]  # fmt: skip

texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(PIECES), max_size=400).map("".join),
    st.tuples(st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join), st.integers(1, 3_000)).map(
        lambda t: (t[0] * t[1])[:10_000]
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
@example("ﷺ" * 2808)  # NFKC makes each of these 18 characters: 14 s before the normalised text was cut too
def test_any_text_is_parsed_in_bounded_time_without_raising(text):
    started = time.perf_counter()
    parsed = parse_address(text)
    assert time.perf_counter() - started < 2.0, len(text)
    assert parsed.kind in KINDS
    assert parsed.raw == text[:PARSE_WINDOW]
    if parsed.number is not None:
        assert parsed.number >= 0 and parsed.kind == "house"
    parse_house_number(text)
    street_key(text[:PARSE_WINDOW])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["人民路", "Main Street", "Kaivokatu"]), st.integers(0, 10**6))
def test_a_street_and_a_number_are_read_back(street, number):
    written = f"{street}{number}号" if street == "人民路" else f"{street} {number}"
    parsed = parse_address(written)
    assert parsed.kind == "house" and parsed.number == number and street_key(parsed.street) == street_key(street)
