"""One parsed address + a gazetteer → a point with a quality code and a confidence.

Location preference: the address point; else the house number interpolated
along the street centerline between known numbers on the same side (odd/even);
else the intersection point; else the street (or road-part) midpoint; else the
jurisdiction named in the address.  Every result carries a ``quality`` code,
a ``confidence`` in 0..1, the matched name and a note (the reason when it
failed).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass

import numpy as np
import shapely

from gisgrid.config import MAX_ADDRESS_CHARS
from gisgrid.geocode.divisions import code_prefix, codes_overlap, split_divisions
from gisgrid.geocode.gazetteer import BOTH_SIDES, Gazetteer, StreetMatch, _middle_number, bare_area
from gisgrid.geocode.parse import (
    ParsedAddress,
    has_cjk,
    landmark_reading,
    name_change,
    parse_address,
    street_key,
)
from gisgrid.geocode.towns import towns_named

LOGGER = logging.getLogger(__name__)

QUALITIES = ("address_point", "interpolated", "intersection", "street", "jurisdiction", "failed")
#: Confidence of each way of locating, before the name-match score is applied.
BASE_CONFIDENCE = {
    "address_point": 1.0,
    "address_point_other_suffix": 0.9,
    "range": 0.85,
    "interpolated": 0.8,
    "extrapolated": 0.6,
    "clamped": 0.45,
    "intersection": 0.9,
    "near_intersection": 0.6,
    "road_part": 0.55,
    "street": 0.5,
    "landmark": 0.75,
    "jurisdiction": 0.2,
}
#: A place written relative to a landmark or house ('…对面') is this much less certain.
RELATION_FACTOR = 0.9
#: Endings of a county or larger (区/县/市 …) and of any administrative area (…镇/乡/街道/社区/村 too).
_COUNTY_ENDINGS = ("特别行政区", "自治区", "自治州", "自治县", "省", "市", "州", "盟", "地区", "县", "旗", "区")
_LOCAL_ENDINGS = ("镇", "乡", "街道", "社区", "小区", "园区", "村")
_AREA_ENDINGS = (*_COUNTY_ENDINGS, *_LOCAL_ENDINGS)
#: A street found only outside the area the address names is this much less certain.
OUTSIDE_SCOPE_FACTOR = 0.5
#: A street name used in several places, with no area written to choose, is this much less certain.
AMBIGUOUS_FACTOR = 0.7
#: A town written with a Latin address is the gazetteer's own when its centre lies this close to one of
#: its streets, metres (a district of a large city may lie 20 km from the city's centre point).
TOWN_MARGIN_M = 30_000.0
#: Streets whose nearest points are further apart than this do not meet, metres.
MAX_NEAR_INTERSECTION_M = 100.0
#: Ways of finding a street name that may find another street (checked with :func:`name_change`).
LOOSE_MATCHES = ("base", "fuzzy")


@dataclass(frozen=True)
class GeocodeResult:
    """Where an address is.

    ``lon``/``lat`` are EPSG:4326 (NaN when failed); ``quality`` is one of
    :data:`QUALITIES`; ``note`` explains a degraded or failed result.
    """

    lon: float
    lat: float
    quality: str
    confidence: float
    matched_name: str | None
    note: str = ""
    outside: bool = False  # failed because the address names an area the gazetteer does not cover

    @property
    def ok(self) -> bool:
        return self.quality != "failed"


def _failed(reason: str, *, outside: bool = False) -> GeocodeResult:
    return GeocodeResult(math.nan, math.nan, "failed", 0.0, None, reason, outside)


def geocode(
    address: str | ParsedAddress | None, gazetteer: Gazetteer, *, max_chars: int = MAX_ADDRESS_CHARS
) -> GeocodeResult:
    """Locate one address.

    Parameters
    ----------
    address : str or ParsedAddress
        Written address, or one already parsed with :func:`parse_address`.
    gazetteer : Gazetteer
    max_chars : int
        A written address longer than this fails unread (the work per address
        is bounded; :data:`gisgrid.config.MAX_ADDRESS_CHARS` by default).

    Returns
    -------
    GeocodeResult
        Never raises for bad text: empty, too long or unmatched addresses give
        quality ``'failed'`` with the reason in ``note``.
    """
    if isinstance(address, str) and len(address) > max_chars:
        return _failed(too_long(len(address), max_chars))
    if (
        isinstance(address, str)
        and (bracket := _BRACKETS_RE.search(address))
        and bracket.group(1).strip()
        and gazetteer.landmark_exact(landmark_reading(address).landmark) is None
    ):  # 香港中文大学（深圳）
        return _bracketed(address, bracket, gazetteer)
    parsed = address if isinstance(address, ParsedAddress) else parse_address(address)
    if parsed.kind == "empty":
        return _failed("empty address")
    parsed = _reading(parsed, gazetteer)
    scope = _scope(parsed, gazetteer)
    if scope.outside:
        return _outside(parsed, scope, gazetteer)
    result = _locate(parsed, gazetteer, scope)
    if result.quality == "failed":
        # '广东省深圳市龙岗区', '龙城街道': only divisions written, or a street that is not known
        named = parsed.admin + ((parsed.street,) if parsed.street and parsed.street.endswith(_AREA_ENDINGS) else ())
        if len(named) > len(parsed.admin):  # '深圳市龙华区': the last "street" is an area, perhaps not covered
            areas = _scope(dataclasses.replace(parsed, admin=named, street=None), gazetteer)
            if areas.outside:
                return _failed(areas.outside, outside=True)
        area = gazetteer.find_jurisdiction(named) if named else None
        if area is not None:
            lon, lat = gazetteer.lonlat(area.point)
            return GeocodeResult(
                lon,
                lat,
                "jurisdiction",
                BASE_CONFIDENCE["jurisdiction"],
                area.name,
                f"{result.note}; placed in {area.name}",
            )
        return result
    result = _noted(_noted(result, scope.caveat), _latin_place(parsed, gazetteer))
    if parsed.relation:
        result = GeocodeResult(
            result.lon,
            result.lat,
            result.quality,
            round(result.confidence * RELATION_FACTOR, 3),
            result.matched_name,
            _join(result.note, f"written as {parsed.relation} of the place"),
        )
    return result


def too_long(length: int, max_chars: int) -> str:
    """Why an address of ``length`` characters is not read."""
    return f"the address has {length:,} characters; addresses of at most {max_chars:,} are read: shorten it"


#: A part in brackets: 新城市广场（沙田正街18号）, 人民路5号(北门).
_BRACKETS_RE = re.compile(r"[(（\[【]([^()（）\[\]【】]*)[)）\]】]")


def _bracketed(address: str, bracket: re.Match, gaz: Gazetteer) -> GeocodeResult:
    """The text outside the brackets and the part inside them are two ways of saying where: the one
    located best (by confidence) wins, unless either names an area the gazetteer does not cover."""
    outside = geocode((address[: bracket.start()] + address[bracket.end() :]).strip(), gaz)
    inside = geocode(bracket.group(1), gaz)
    if outside.outside or inside.outside:
        return outside if outside.outside else inside
    if inside.confidence > outside.confidence:
        return dataclasses.replace(inside, note=_join(f"from the part in brackets {bracket.group(1)!r}", inside.note))
    return outside


def _reading(parsed: ParsedAddress, gaz: Gazetteer) -> ParsedAddress:
    """The reading of the text that the gazetteer supports.

    The whole text is one landmark when it is a known landmark's name, exactly
    (龙岗区人民医院, 花园城第1期门口).  Areas read off by their endings are put back
    when the whole text names a known place exactly (新城市广场门口 is not 新城市 +
    广场; 东村小学 is not 东村 + 小学).  A place written before a known street name without an area ending
    is split off as an area (沙田源禾路 → 沙田 + 源禾路, 深圳龙岗如意路 → 深圳 + 龙岗
    + 如意路), so that it is checked like any written area.
    """
    if gaz.landmarks and parsed.kind != "landmark":
        landmark = landmark_reading(parsed.raw)
        if gaz.landmark_exact(landmark.landmark) is not None:
            return landmark
    if parsed.national < len(parsed.admin):
        whole = parse_address(parsed.raw, by_endings=False)
        if _names_exactly(whole, gaz):
            return whole
    street = parsed.street
    if not street or _names_exactly(parsed, gaz) or _joined(gaz, parsed.admin, street) is not None:
        return parsed
    split = None if gaz.find_street(street, fuzzy=False) is not None else gaz.street_after_place(street)
    if split is None:
        return parsed
    head, tail = split
    divisions, rest = split_divisions(head, before_street=True)
    names = (*(divisions.names if divisions else ()), *_known_end(rest, gaz))
    codes, national = parsed.division_codes, parsed.national
    if divisions is not None and national == len(parsed.admin):
        narrower = tuple(c for c in divisions.codes if not codes or any(codes_overlap(c, d) for d in codes))
        if narrower:
            codes, national = narrower, national + len(divisions.names)
    return dataclasses.replace(parsed, street=tail, admin=parsed.admin + names, division_codes=codes, national=national)


def _outside(parsed: ParsedAddress, scope: Scope, gaz: Gazetteer) -> GeocodeResult:
    """An address in an area the gazetteer does not cover fails, unless that area was read only by
    its ending and the text read whole is a place with a relation (城市花园门口, 菜市场旁): then that
    reading is tried, with a caveat."""
    by_ending = "".join(parsed.admin[parsed.national :])
    if not by_ending:
        return _failed(scope.outside, outside=True)
    whole = parse_address(parsed.raw, by_endings=False)
    whole_scope = _scope(whole, gaz)
    if whole.kind != "landmark" or whole_scope.outside:
        return _failed(scope.outside, outside=True)
    result = _locate(whole, gaz, whole_scope)
    if not result.ok:
        return _failed(f"{result.note}; read as an address in {by_ending}: {scope.outside}", outside=True)
    return _noted(
        result,
        Caveat(
            f"could also be read as an address in {by_ending}, which the gazetteer does not cover", OUTSIDE_SCOPE_FACTOR
        ),
    )


def _known_end(text: str, gaz: Gazetteer) -> tuple[str, ...]:
    """Place text as area tokens, a known jurisdiction at its end split off: 新界沙田 → 新界 + 沙田."""
    if not text or gaz.find_jurisdiction((text,)) is not None:
        return (text,) if text else ()
    for i in range(1, len(text) - 1):
        if gaz.find_jurisdiction((text[i:],)) is not None:
            return text[:i], text[i:]
    return (text,)


def _names_exactly(parsed: ParsedAddress, gaz: Gazetteer) -> bool:
    """Whether the street or landmark of a reading is a known name, exactly."""
    name = parsed.landmark if parsed.kind == "landmark" else parsed.street
    if not name:
        return False
    if gaz.landmark_exact(name) is not None:
        return True
    match = gaz.find_street(name, fuzzy=False)
    return match is not None and match.how == "exact"


def _joined(gaz: Gazetteer, admin: tuple[str, ...], name: str) -> StreetMatch | None:
    """The street whose exact name starts with the last stripped prefixes: 沙田乡 + 事会路."""
    for i in range(len(admin) - 1, -1, -1):
        joined = gaz.find_street("".join(admin[i:]) + name, fuzzy=False)
        if joined is not None and joined.how == "exact":
            return joined
    return None


#: A place name written with a Latin address: letters, spaces, hyphens and apostrophes (after a postcode).
_LATIN_PLACE_RE = re.compile(r"^(?:\d{4,6}\s+)?(?P<place>[^\W\d_][^\d,;/]*)$")


def _latin_place(parsed: ParsedAddress, gaz: Gazetteer) -> Caveat:
    """A town written with a Latin address that lies outside the gazetteer's area (``Aleksanterinkatu 11,
    Tampere`` in Helsinki) sends the row to review.  Only names GeoNames knows as towns count, so
    buildings, districts and courtyards (``Kaivopiha, …``, ``…, sisäpiha``) do not."""
    if has_cjk(parsed.raw):
        return Caveat()
    for text in (parsed.landmark, parsed.extra.rpartition(",")[2]):
        m = _LATIN_PLACE_RE.match((text or "").strip())
        if m is None or gaz.find_jurisdiction((m.group("place"),)) is not None:
            continue
        towns = towns_named(m.group("place"))
        if towns and gaz.near([t[0] for t in towns], [t[1] for t in towns], TOWN_MARGIN_M).any():
            continue  # its own town, by any of its names (Helsingfors)
        home = gaz.home_countries(TOWN_MARGIN_M)
        # another town of the same country by its own name: common words (Metro, Central) name towns abroad
        elsewhere = [label for _, _, label, own in towns if own and label.rsplit(", ", 1)[-1] in home]
        if elsewhere:
            return Caveat(
                f"{m.group('place').strip()!r} is a town outside the gazetteer's area ({'; '.join(elsewhere[:3])})",
                OUTSIDE_SCOPE_FACTOR,
            )
    return Caveat()


@dataclass(frozen=True)
class Caveat:
    """Why a match is less certain than its name score: a note and a confidence factor."""

    note: str = ""
    factor: float = 1.0
    ambiguous: bool = False  # several streets of the name qualify; a house number may still tell them apart


@dataclass(frozen=True)
class Scope:
    """Where the administrative prefixes of an address put it.

    ``outside`` is the reason it lies outside the gazetteer's jurisdictions;
    ``prefixes`` are the division-code prefixes its streets must lie in (empty:
    anywhere); ``label`` names that area for notes; ``caveat`` says which
    written part (a town, a community) the deployment does not know.
    """

    outside: str | None = None
    prefixes: tuple[str, ...] = ()
    label: str = ""
    caveat: Caveat = Caveat()
    written: tuple[str, ...] = ()  # the areas as written (沙田 of 沙田大埔公路), to pick a road's section


def _scope(parsed: ParsedAddress, gaz: Gazetteer) -> Scope:
    """Check the administrative prefixes against the gazetteer's jurisdictions, by name and by code.

    The most specific written division the deployment knows (by name, or a
    national division by its code) sets the area searched.  A county or
    larger written below it that the deployment does not know (深圳市龙华区
    in a 龙岗区 deployment) puts the address outside; an unknown town or
    community below it only lowers the confidence.
    """
    admin = parsed.admin
    if not admin or not gaz.jurisdictions:
        return Scope(written=admin)  # a written place still picks a road's section named after it
    if parsed.street:  # a stripped prefix may belong to the street name itself (沙田乡 + 事会路)
        joined = gaz.find_street(admin[-1] + parsed.street, fuzzy=False)
        if joined is not None and joined.how == "exact":
            admin = admin[:-1]
            if not admin:
                return Scope()
    coded = [a.code for a in gaz.jurisdictions.values() if a.code]
    by_code = tuple(sorted({code_prefix(d) for d in parsed.division_codes for c in coded if codes_overlap(d, c)}))
    known, named = -1, None
    for i in range(len(admin) - 1, -1, -1):
        named = gaz.find_jurisdiction((admin[i],))
        if named is not None:
            known = i
            break
    if by_code and min(parsed.national, len(admin)) - 1 > known:
        known, prefixes, label = min(parsed.national, len(admin)) - 1, by_code, "".join(admin[: parsed.national])
    elif named is not None:
        prefixes, label = ((code_prefix(named.code),) if named.code else by_code), named.name
    elif not parsed.division_codes and not any(t.endswith(_AREA_ENDINGS) for t in admin):
        # a place written before the street (大埔源禾路): perhaps a neighbourhood, perhaps another town
        return Scope(
            caveat=Caveat(f"{''.join(admin)} is not a known area; searched everywhere", OUTSIDE_SCOPE_FACTOR),
            written=admin,
        )
    else:
        known_names = ", ".join(sorted(a.name for a in gaz.jurisdictions.values()))
        codes = f" ({', '.join(parsed.division_codes)})" if parsed.division_codes else ""
        return Scope(outside=f"address is in {''.join(admin)}{codes}, outside the gazetteer's area ({known_names})")
    unknown = admin[known + 1 :]
    large = [t for t in unknown if t.endswith(_COUNTY_ENDINGS) and not t.endswith(_LOCAL_ENDINGS)]
    if large:
        known_names = ", ".join(sorted(a.name for a in gaz.jurisdictions.values()))
        return Scope(outside=f"{large[0]} ({''.join(admin)}) is not an area of the gazetteer ({known_names})")
    caveat = (
        Caveat(f"{''.join(unknown)} is not among the jurisdictions; searched all of {label}", OUTSIDE_SCOPE_FACTOR)
        if unknown
        else Caveat()
    )
    return Scope(prefixes=prefixes, label=label, caveat=caveat, written=admin)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _find(
    gaz: Gazetteer, parsed: ParsedAddress, name: str | None, scope: Scope = Scope()
) -> tuple[StreetMatch | None, Caveat]:
    """The streets a written name stands for, inside the address's area when it names one, and a caveat."""
    # the last stripped prefix may be part of the name: '沙田乡' + '事会路'
    match = (_joined(gaz, parsed.admin, name) if name else None) or gaz.find_street(name)
    if match is None:
        return None, Caveat()
    if match.how in LOOSE_MATCHES and match.found and (change := name_change(name, match.found)):
        # another street, not a typo: never placed on it as if it were the written one (a clerk decides)
        return None, Caveat(f"{name!r} is not a known street; the nearest name differs: {change}")
    return _restrict(gaz, match, scope)


def _restrict(gaz: Gazetteer, match: StreetMatch, scope: Scope) -> tuple[StreetMatch, Caveat]:
    """Keep the streets inside the scope; say so when the name is ambiguous or only found elsewhere."""
    streets = [gaz.streets[s] for s in match.sids]
    if scope.prefixes and any(s.codes for s in streets):
        inside = tuple(s.sid for s in streets if any(codes_overlap(c, p) for c in s.codes for p in scope.prefixes))
        if not inside:
            return match, Caveat(
                f"no {match.name} inside {scope.label}; took the one in {gaz.area_names(streets[0].codes)}",
                OUTSIDE_SCOPE_FACTOR,
            )
        match = dataclasses.replace(match, sids=inside)
        streets = [gaz.streets[s] for s in inside]
    places = [s for s in streets if s.geometry is not None and s.name == streets[0].name]
    if len(places) > 1:
        where = (
            "; ".join(gaz.area_names(s.codes) for s in places)
            if any(s.codes for s in places)
            else "in different places"
        )
        return match, Caveat(
            f"{len(places)} streets named {match.name} ({where}); took the first: write the "
            f"town or community before the street to choose",
            AMBIGUOUS_FACTOR,
            ambiguous=True,
        )
    names = sorted({s.name for s in streets})
    if len(names) > 1:  # a road drawn in named sections (大埔公路－沙田段, 大埔公路－大圍段), or a shared alias
        # the section named after a written area: 沙田大埔公路 is 大埔公路－沙田段
        areas = [a for a in (bare_area(street_key(w)) for w in scope.written) if len(a) >= 2]
        named = [s for s in streets if any(a in street_key(s.name) for a in areas)]
        if len({s.name for s in named}) == 1:
            return StreetMatch(tuple(s.sid for s in named), named[0].name, match.score, match.how), Caveat()
        return match, Caveat(
            f"the name stands for {len(names)} streets ({', '.join(names)}); took {match.name}",
            AMBIGUOUS_FACTOR,
            ambiguous=True,
        )
    return match, Caveat()


def _result(gaz: Gazetteer, xy, quality: str, base: str, match: StreetMatch, note: str = "") -> GeocodeResult:
    lon, lat = gaz.lonlat(xy)
    confidence = BASE_CONFIDENCE[base] * match.score / 100.0
    if match.how != "exact":
        note = _join(f"street name matched {match.how} ({match.score:.0f}/100)", note)
    return GeocodeResult(lon, lat, quality, round(confidence, 3), match.name, note)


def _noted(result: GeocodeResult, caveat: Caveat) -> GeocodeResult:
    if not caveat.note:
        return result
    return dataclasses.replace(
        result, note=_join(caveat.note, result.note), confidence=round(result.confidence * caveat.factor, 3)
    )


def _locate(parsed: ParsedAddress, gaz: Gazetteer, scope: Scope) -> GeocodeResult:
    if parsed.kind == "landmark":
        # the last stripped prefixes may be part of the name: '深圳市' + '民中心'
        joined = (
            gaz.find_landmark("".join(parsed.admin[i:]) + parsed.landmark) for i in range(len(parsed.admin) - 1, -1, -1)
        )
        found = next((f for f in joined if f is not None and f[2] == 100.0), None) or gaz.find_landmark(parsed.landmark)
        if found is not None:
            return _at_landmark(gaz, found)
        match = gaz.find_street(parsed.landmark)  # '人民路小学门口': a street named inside the landmark
        if match is None:
            return _failed(f"landmark {parsed.landmark!r} not found")
        return _result(
            gaz,
            gaz.street_point(match.sids[0]),
            "street",
            "street",
            match,
            f"landmark {parsed.landmark!r} not found; street midpoint",
        )
    if parsed.kind == "intersection":
        return _intersection(parsed, gaz, scope)
    match, why = _find(gaz, parsed, parsed.street, scope)
    if parsed.kind == "street" and (match is None or match.how != "exact"):
        found = gaz.find_landmark(parsed.street)  # a landmark written alone: 沙田政府合署
        if found is not None and found[2] >= 90.0:
            return _at_landmark(gaz, found)
    if match is None:
        return _failed(why.note or f"street {parsed.street!r} not found")
    if parsed.kind == "house":
        result, unique = _house(parsed, gaz, match)
        return result if unique and why.ambiguous else _noted(result, why)
    if parsed.kind == "road_part" and parsed.part != "junction":
        return _noted(
            _result(
                gaz,
                gaz.street_point(match.sids[0], parsed.part),
                "street",
                "road_part",
                match,
                f"{parsed.part} part of the street",
            ),
            why,
        )
    note = "junction on the street, crossing street not named" if parsed.part == "junction" else "street midpoint"
    return _noted(_result(gaz, gaz.street_point(match.sids[0]), "street", "street", match, note), why)


def _at_landmark(gaz: Gazetteer, found: tuple[str, np.ndarray, float]) -> GeocodeResult:
    name, xy, score = found
    lon, lat = gaz.lonlat(xy)
    return GeocodeResult(lon, lat, "street", round(BASE_CONFIDENCE["landmark"] * score / 100, 3), name, "landmark")


def _house(parsed: ParsedAddress, gaz: Gazetteer, match: StreetMatch) -> tuple[GeocodeResult, bool]:
    """Locate a house number on the matched streets; also say whether the number picked out one of
    several same-named streets (its door plate, or its place among their known numbers)."""
    n = parsed.number
    key = parsed.number_key
    for sid in match.sids:
        street = gaz.streets[sid]
        if key in street.points:
            return _result(gaz, street.points[key], "address_point", "address_point", match), True
    for sid in match.sids:
        street = gaz.streets[sid]
        if n in street.by_number:
            return _result(
                gaz,
                street.by_number[n],
                "address_point",
                "address_point_other_suffix",
                match,
                f"no {key} on record; used another address with number {n}",
            ), True
        for lo, hi, xy in sorted(street.ranges, key=lambda r: r[1] - r[0]):
            if lo <= n <= hi and (n - lo) % 2 == 0 and not _singles_around(street, n, lo, hi):
                return _result(gaz, xy, "address_point", "range", match, f"number {n} inside range {lo}-{hi}"), True
    numbered = [s for s in match.sids if gaz.streets[s].has_numbers]
    if n == 0:  # no door has number 0: a typo or a placeholder
        return _result(
            gaz,
            gaz.street_point(match.sids[0]),
            "street",
            "street",
            match,
            "there is no house number 0; street midpoint",
        ), False
    if not numbered:
        return _result(
            gaz,
            gaz.street_point(match.sids[0]),
            "street",
            "street",
            match,
            f"no house numbers known on {match.name}; street midpoint",
        ), False
    # a range written ('11-23号') is one building or estate: its middle number places it best
    middle = n if parsed.number_end is None else _middle_number(min(n, parsed.number_end), max(n, parsed.number_end))
    # of several same-named streets, the one whose known numbers span the number
    spanning = [s for s in numbered if _number_span(gaz.streets[s])[0] <= middle <= _number_span(gaz.streets[s])[1]]
    sid = spanning[0] if spanning else numbered[0]
    xy, base, note = _interpolate(gaz.streets[sid], middle)
    # a number placed at a street's end or at its one known number is only known to be on the street
    quality = "street" if base == "clamped" else "interpolated"
    return _result(gaz, xy, quality, base, match, note), len(spanning) == 1


def _number_span(street) -> tuple[float, float]:
    """Lowest and highest known number of a street (ranges at their middle)."""
    nums = street.sides.get(BOTH_SIDES, np.empty((0, 6)))[:, 0]
    return (float(nums[0]), float(nums[-1])) if len(nums) else (math.inf, -math.inf)


def _singles_around(street, n: int, lo: int, hi: int) -> bool:
    """Whether single numbers on n's side inside the range lo-hi enclose n: then they place it more
    precisely than the centre of the whole range (an estate ``11-23`` and its blocks 19 and 23)."""
    rows = street.series.get(n % 2)
    if rows is None:
        return False
    singles = rows[(rows[:, 5] == 0) & (rows[:, 0] >= lo) & (rows[:, 0] <= hi), 0]
    return bool((singles < n).any() and (singles > n).any())


def _side(street, parity: int) -> np.ndarray:
    """Known numbers on one side, one row per number (see ``Street.sides``)."""
    return street.sides.get(parity, np.empty((0, 6)))


def _interpolate(street, n: int) -> tuple[np.ndarray, str, str]:
    """Position of number ``n`` from the known numbers of the street.

    Between two known numbers on its side (same parity): interpolated along the
    centerline, at the interpolated distance from it.  Beyond the known numbers:
    extrapolated along the centerline at the street's metres-per-number, and
    clamped to the end of the centerline.  With no number known on its side, the
    other side's numbers give the position along the street and the mirrored
    offset gives the side.
    """
    same = _side(street, n % 2)
    other = _side(street, 1 - n % 2)
    if street.axis is None:
        return _interpolate_straight(street, n, same if len(same) else _side(street, BOTH_SIDES))
    side_note = "" if len(same) else "no numbers known on this side"
    basis = same if len(same) >= 2 else _side(street, BOTH_SIDES)
    nums = basis[:, 0]
    if len(np.unique(nums)) < 2:
        end = basis[0] if len(basis) else (same if len(same) else other)[0]
        return (
            end[1:3],
            "clamped",
            _join(side_note, f"only number {int(end[0])} known on {street.name}; number {n} placed there"),
        )
    line = street.axis
    base = "interpolated"
    if nums[0] <= n <= nums[-1]:
        if basis is same:
            hi_i = int(np.searchsorted(nums, n))
            lo, hi = basis[max(hi_i - 1, 0)], basis[hi_i]
            f = 0.0 if hi[0] == lo[0] else (n - lo[0]) / (hi[0] - lo[0])
            gap = float(np.hypot(*(hi[1:3] - lo[1:3])))
            if abs(hi[3] - lo[3]) > 1.5 * gap + 30.0:
                # the neighbours sit on different pieces (dual carriageway, gaps): the straight line between them
                return lo[1:3] + f * (hi[1:3] - lo[1:3]), base, f"between {int(lo[0])} and {int(hi[0])}"
            note = f"between {int(lo[0])} and {int(hi[0])} along the centerline"
        else:
            note = f"between {int(nums[0])} and {int(nums[-1])} (other side) along the centerline"
        m = float(np.interp(n, nums, basis[:, 3]))
    else:
        slope = float(np.polyfit(nums, basis[:, 3], 1)[0])
        end = basis[0] if n < nums[0] else basis[-1]
        m = float(end[3] + slope * (n - end[0]))
        base = "extrapolated"
        note = f"number {n} beyond known range {int(nums[0])}-{int(nums[-1])} on {street.name}; extrapolated"
        if m < 0.0 or m > line.length:
            m = min(max(m, 0.0), line.length)
            base = "clamped"
            note += "; clamped to the end of the street"
    offset = float(np.interp(n, same[:, 0], same[:, 4])) if len(same) else -float(np.median(other[:, 4]))
    on = np.array(shapely.get_coordinates(line.interpolate(m))[0])
    ahead = np.array(shapely.get_coordinates(line.interpolate(min(m + 1.0, line.length)))[0])
    behind = np.array(shapely.get_coordinates(line.interpolate(max(m - 1.0, 0.0)))[0])
    t = ahead - behind
    norm = float(np.hypot(*t))
    point = on if norm == 0 else on + offset * np.array([-t[1], t[0]]) / norm
    return point, base, _join(side_note, note)


def _interpolate_straight(street, n: int, table: np.ndarray) -> tuple[np.ndarray, str, str]:
    """A street known only from address points: straight line between the neighbouring numbers."""
    nums = table[:, 0]
    hi_i = int(np.searchsorted(nums, n))
    if hi_i == 0 or hi_i == len(nums):
        end = table[0] if hi_i == 0 else table[-1]
        return (
            end[1:3],
            "clamped",
            (
                f"number {n} beyond known range {int(nums[0])}-{int(nums[-1])} on "
                f"{street.name}; placed at number {int(end[0])}"
            ),
        )
    lo, hi = table[hi_i - 1], table[hi_i]
    f = (n - lo[0]) / (hi[0] - lo[0])
    return lo[1:3] + f * (hi[1:3] - lo[1:3]), "interpolated", f"between {int(lo[0])} and {int(hi[0])}"


def _intersection(parsed: ParsedAddress, gaz: Gazetteer, scope: Scope) -> GeocodeResult:
    """Where two streets cross; the crossing itself tells same-named streets apart."""
    a, why_a = _find(gaz, parsed, parsed.street, scope)
    b, why_b = _find(gaz, parsed, parsed.street2, scope) if parsed.street2 else (None, "")
    if a is None and b is None:
        return _failed(_join(why_a.note, why_b.note) or f"streets {parsed.street!r} and {parsed.street2!r} not found")
    if a is None or b is None:
        found, missing, why, lost = (a, parsed.street2, why_a, why_b) if b is None else (b, parsed.street, why_b, why_a)
        return _noted(
            _result(
                gaz,
                gaz.street_point(found.sids[0]),
                "street",
                "street",
                found,
                _join(lost.note, f"crossing street {missing!r} not found; street midpoint"),
            ),
            why,
        )
    score = min(a.score, b.score)
    both = StreetMatch(a.sids, f"{a.name} / {b.name}", score, "exact" if score == 100 else "fuzzy")
    points = [p for sa in a.sids for sb in b.sids for p in gaz.intersections.get(frozenset((sa, sb)), [])]
    if points:
        pts = np.array(points)
        centre = pts.mean(axis=0)
        spread = float(np.max(np.hypot(*(pts - centre).T)))
        if spread <= 150.0:
            return _result(gaz, centre, "intersection", "intersection", both)
        return _result(
            gaz,
            pts[0],
            "intersection",
            "near_intersection",
            both,
            f"the streets meet at several places {spread:.0f} m apart; took one",
        )
    ga, gb = gaz.streets[a.sids[0]].geometry, gaz.streets[b.sids[0]].geometry
    if ga is not None and gb is not None:
        gap = shapely.shortest_line(ga, gb)
        if gap.length <= MAX_NEAR_INTERSECTION_M:
            return _result(
                gaz,
                shapely.get_coordinates(gap.interpolate(0.5, normalized=True))[0],
                "intersection",
                "near_intersection",
                both,
                f"the streets do not meet; {gap.length:.0f} m apart",
            )
    return _noted(
        _noted(
            _result(
                gaz,
                gaz.street_point(a.sids[0]),
                "street",
                "street",
                a,
                f"{a.name} and {b.name} do not meet; street midpoint",
            ),
            why_b,
        ),
        why_a,
    )


__all__ = ["QUALITIES", "GeocodeResult", "geocode", "street_key"]
