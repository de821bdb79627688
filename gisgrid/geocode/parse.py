"""Written addresses → structured :class:`ParsedAddress`, and street-name keys for matching.

Chinese forms (门牌地址 road + number, 交叉口 crossings, 路段 parts of a road,
地标 landmarks with a relation) and Latin forms ("Mannerheimintie 5",
"5 Main Street", "A / B", "corner of A and B") are recognised.  Traditional
characters are converted to simplified ones with OpenCC (紅門路 → 红门路).

Administrative prefixes are stripped and kept as tokens in
``ParsedAddress.admin``: province, prefecture and county names with the
national division-code table (:mod:`gisgrid.geocode.divisions`, via cpca), so
``ParsedAddress.division_codes`` holds the codes they stand for; towns,
subdistricts, villages and communities (镇/乡/街道/村/社区), which have no
national table, by their endings.  The matcher checks both against the
deployment's own jurisdictions (codes and names) and restricts the search to
the streets inside them.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from gisgrid.geocode.divisions import split_divisions

LOGGER = logging.getLogger(__name__)

KINDS = ("house", "intersection", "road_part", "landmark", "street", "empty")
#: The parser reads at most this many characters of a text (its parse window): the work per address is
#: bounded whatever is written.  The geocoder refuses longer addresses before parsing
#: (:data:`gisgrid.config.MAX_ADDRESS_CHARS`, lower); this bound holds for every other caller.
PARSE_WINDOW = 1_000
#: Characters kept of a text once normalised (:func:`clean_text`).
CLEAN_WINDOW = 2 * PARSE_WINDOW

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"  # with Ext. B+ (輋 → 𪨶)
_CJK_RE = re.compile(f"[{_CJK}]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")

#: Parts of a road and their canonical names.
PARTS = {
    "东段": "east",
    "西段": "west",
    "南段": "south",
    "北段": "north",
    "中段": "middle",
    "东延段": "east",
    "西延段": "west",
    "南延段": "south",
    "北延段": "north",
    "路口": "junction",
}
#: Relations of a place to a landmark and their canonical names.
RELATIONS = {
    "斜对面": "opposite",
    "对面": "opposite",
    "对过": "opposite",
    "旁边": "beside",
    "旁": "beside",
    "边上": "beside",
    "附近": "near",
    "周边": "near",
    "门口": "gate",
    "门前": "gate",
    "大门": "gate",
    "后面": "behind",
    "背后": "behind",
    "东侧": "beside",
    "西侧": "beside",
    "南侧": "beside",
    "北侧": "beside",
    "内": "inside",
    "里面": "inside",
    "东南角": "near",
    "东北角": "near",
    "西南角": "near",
    "西北角": "near",
}

#: Chinese road-type endings, longest first.
CJK_ROAD_SUFFIXES = (
    "高速公路",
    "快速路",
    "大道",
    "大街",
    "公路",
    "马路",
    "胡同",
    "高速",
    "路",
    "街",
    "道",
    "巷",
    "里",
    "弄",
    "坊",
    "径",
    "桥",
)
#: Latin road-type words and abbreviations → canonical word (after case folding).
LATIN_ROAD_WORDS = {
    "road": "road",
    "rd": "road",
    "street": "street",
    "st": "street",
    "str": "street",
    "avenue": "avenue",
    "ave": "avenue",
    "av": "avenue",
    "boulevard": "boulevard",
    "blvd": "boulevard",
    "drive": "drive",
    "dr": "drive",
    "lane": "lane",
    "ln": "lane",
    "place": "place",
    "pl": "place",
    "square": "square",
    "sq": "square",
    "court": "court",
    "ct": "court",
    "terrace": "terrace",
    "highway": "highway",
    "hwy": "highway",
}
#: Finnish/Swedish road-type endings of one-word names, for the base key.
LATIN_ROAD_ENDINGS = (
    "katu",
    "tie",
    "kuja",
    "polku",
    "tori",
    "aukio",
    "puistikko",
    "esplanadi",
    "ranta",
    "gatan",
    "vägen",
    "gränd",
    "torget",
)

_ADMIN_SUFFIX = r"(?:特别行政区|自治区|自治州|自治县|省|市|州|盟|地区|县|旗|区|镇|乡|街道办事处|街道|社区|村|新界|九龙)"
# a prefix never spans a road name or a connector: '源禾路与沙田乡…' has no prefix
_ADMIN_RE = re.compile(rf"^(?P<tok>(?:(?![路街巷与和及跟号段口/])[{_CJK}]){{1,10}}?{_ADMIN_SUFFIX})")
_ROAD_START_RE = re.compile(r"^(?:大道|大街|路|街|道|巷|里|弄)")

_NUM_CJK_RE = re.compile(
    rf"^(?P<street>.*?[{_CJK}A-Za-z)）])\s*(?P<pre>[甲乙丙丁])?(?P<num>\d+)(?:\s*[-~～至]\s*(?P<end>\d+)(?P<endsuf>[A-Za-z])?)?"
    rf"\s*(?P<suf>[A-Za-z])?\s*[号號](?P<rest>.*)$"
)
_NUM_CJK_NOHAO_RE = re.compile(
    rf"^(?P<street>.*?[{_CJK}])\s*(?P<pre>[甲乙丙丁])?(?P<num>\d+)(?P<suf>[A-Za-z])?(?P<rest>(?:[^\d].*)?)$"
)
_CROSS_CJK_RE = re.compile(r"^(?P<a>.+?)\s*(?:与|和|同|跟|及|/|&|、|\+|×|x)\s*(?P<b>.+)$")
#: Endings of an area that may be named after a road (学院路街道, 学清路社区); a street may begin with
#: one of the one-character ones (市府路, 县前街), not with the first three.
_AREA_WORDS = ("街道", "社区", "小区", "镇", "乡", "村", "区", "县", "市")
#: Words that end a crossing (北京路与红门路交叉口), longest first.
_JUNCTION_WORDS = ("十字路口", "交叉路口", "交叉口", "交汇处", "交界处", "交界", "交口", "路口", "口")
#: Text that can be a street name: letters (any script), digits, spaces and name punctuation; not '<img src='.
_NAME_RE = re.compile(r"^[\w\s.·'’()（）\-－]+$")
_PART_RE = re.compile(r"^(?P<street>.+?)\s*(?P<part>[东西南北]延段|[东西南北中]段)$")

_HOUSE_NUMBER_RE = re.compile(
    r"^\s*(?P<pre>[甲乙丙丁])?(?P<num>\d+)\s*(?:(?P<suf>[A-Za-z])(?![A-Za-z]))?"
    r"(?:\s*[-–~]\s*(?P<end>\d+)\s*(?:(?P<endsuf>[A-Za-z])(?![A-Za-z]))?)?\s*[号號]?(?P<rest>.*)$"
)
_LATIN_STREET_NUM_RE = re.compile(
    r"^(?P<street>[^\d]*?[^\d\s,])[\s,]+(?P<number>\d+\s*(?:[A-Za-z](?![A-Za-z]))?(?:\s*[-–]\s*\d+\s*(?:[A-Za-z](?![A-Za-z]))?)?)"
    r"(?P<rest>(?:[\s,;/].*)?)$"
)
_LATIN_NUM_STREET_RE = re.compile(
    r"^(?P<number>\d+\s*(?:[A-Za-z](?![A-Za-z]))?(?:\s*[-–]\s*\d+\s*(?:[A-Za-z](?![A-Za-z]))?)?)[\s,]+"
    r"(?P<street>[^\d,]*[^\d\s,])(?P<rest>(?:\s*,.*)?)$"
)
_LATIN_CORNER_RE = re.compile(
    r"^(?:(?:at\s+)?(?:the\s+)?(?:corner|junction|intersection|crossing)\s+of|cnr\.?(?:\s+of)?)\s+(?P<a>.+?)"
    r"\s+(?:and|&|/|with|x)\s+(?P<b>.+)$",
    re.IGNORECASE,
)
_LATIN_CROSS_RE = re.compile(
    r"^(?P<a>[^/&]*[^\W\d][^/&]*?)\s*(?:/|&|\s+and\s+|\s+ja\s+|\s+och\s+|\s+at\s+|\s+x\s+)\s*(?P<b>[^/&]*[^\W\d][^/&]*)$",
    re.IGNORECASE,
)
_PUNCT_RE = re.compile(r"[\W_]+", re.UNICODE)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class ParsedAddress:
    """An address split into its parts.

    Attributes
    ----------
    raw : str
        The text as given (its first :data:`PARSE_WINDOW` characters).
    kind : {'house', 'intersection', 'road_part', 'landmark', 'street', 'empty'}
    street : str or None
        Street name as written (half-width, simplified characters).
    number : int or None
        House number; for a range such as ``14-20`` the first number.
    suffix : str
        Letter after the number, case-folded (``16b`` → ``'b'``), or a Chinese
        prefix such as 甲 in 甲2号.
    number_end : int or None
        Last number of a range (``14-20`` → 20).
    street2 : str or None
        The second street of an intersection.
    part : str or None
        Canonical part of a road: 'east', 'west', 'south', 'north', 'middle' or
        'junction' (…路口).
    landmark, relation : str or None
        A landmark and the place's relation to it ('beside', 'gate',
        'opposite', 'near', 'behind', 'inside').
    admin : tuple of str
        Administrative prefixes that were stripped (广东省, 深圳市, 龙岗区, 龙城街道 …).
    division_codes : tuple of str
        Six-digit division codes of the most specific province/city/county in
        ``admin`` (several when its name is ambiguous, as 朝阳区); empty when none.
    national : int
        How many leading tokens of ``admin`` are national divisions with codes;
        the tokens after them were read by their endings only.
    extra : str
        Text after the address that was not used (floor, courtyard …).
    """

    raw: str
    kind: str
    street: str | None = None
    number: int | None = None
    suffix: str = ""
    number_end: int | None = None
    street2: str | None = None
    part: str | None = None
    landmark: str | None = None
    relation: str | None = None
    admin: tuple[str, ...] = field(default_factory=tuple)
    extra: str = ""
    division_codes: tuple[str, ...] = field(default_factory=tuple)
    national: int = 0

    @property
    def number_key(self) -> str | None:
        """The house number as an address-point key: ``'16b'``, ``'14-20'``, ``'7'``."""
        return number_key(self.number, self.suffix, self.number_end)


def number_key(number: int | None, suffix: str = "", end: int | None = None) -> str | None:
    if number is None:
        return None
    return f"{number}{suffix}" + (f"-{end}" if end is not None else "")


# --- text normalisation ------------------------------------------------------------
@lru_cache(maxsize=1)
def _opencc():
    import opencc  # noqa: PLC0415 - loaded on first Chinese text

    return opencc.OpenCC("t2s")


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (紅門路 → 红门路); text without CJK is returned as is."""
    if not has_cjk(text):
        return text
    return _opencc().convert(text)


def clean_text(text: str) -> str:
    """Full-width → half-width (NFKC: ８８ → 88), traditional → simplified, spaces collapsed.

    A lone surrogate (``"\\ud800"`` in a JSON string: no character at all) becomes U+FFFD.  At most
    :data:`CLEAN_WINDOW` characters are kept after NFKC, which can make one character eighteen (ﷺ):
    the parser's work stays bounded by its window.
    """
    text = _SURROGATE_RE.sub("\ufffd", text)
    text = unicodedata.normalize("NFKC", text)[:CLEAN_WINDOW]
    text = to_simplified(text)
    text = text.replace("\u3000", " ")
    return re.sub(r"\s+", " ", text).strip()


def _fold_latin(text: str) -> str:
    """Case-folded, diacritics removed (ä → a), for Latin words only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=100_000)
def street_key(name: str) -> str:
    """The matching key of a street name.

    Case-folded, half-width, simplified, diacritics and spaces/punctuation
    removed, Latin road-type abbreviations expanded (``Rd`` → ``road``,
    ``Mannerheimint.`` → ``mannerheimintie``).  ``'Yuen Wo Rd.'`` and
    ``'yuen wo road'`` share a key; so do ``紅門路`` and ``红门路``.
    """
    text = clean_text(name)
    if not text:
        return ""
    words = re.split(r"[\s,]+", text)
    out = []
    for word in words:
        if not word:
            continue
        if has_cjk(word):
            out.append(_PUNCT_RE.sub("", word.casefold()))
            continue
        folded = _fold_latin(word)
        # Finnish abbreviations: Aleksanterink. → aleksanterinkatu, Mannerheimint. → mannerheimintie
        if folded.endswith("k.") and len(folded) > 4:
            folded = folded[:-2] + "katu"
        elif folded.endswith("t.") and len(folded) > 4:
            folded = folded[:-2] + "tie"
        bare = _PUNCT_RE.sub("", folded)
        out.append(LATIN_ROAD_WORDS.get(bare, bare))
    return "".join(out)


def base_key(key: str) -> str:
    """A street key without its road-type ending (人民路 → 人民, kaivokatu → kaivo)."""
    return split_road_type(key)[0]


#: Latin road-type endings as they appear in keys (case-folded, diacritics removed), longest first.
_LATIN_KEY_ENDINGS = tuple(
    sorted({*LATIN_ROAD_WORDS.values(), *(_fold_latin(e) for e in LATIN_ROAD_ENDINGS)}, key=len, reverse=True)
)


def split_road_type(key: str) -> tuple[str, str]:
    """A street key split into its stem and its road-type ending: 人民路 → (人民, 路),
    alvaraallonkuja → (alvaraallon, kuja), kaivo → (kaivo, '')."""
    for suffix in CJK_ROAD_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix) + 1:
            return key[: -len(suffix)], suffix
    for suffix in _LATIN_KEY_ENDINGS:
        if key.endswith(suffix) and len(key) > len(suffix) + 2:
            return key[: -len(suffix)], suffix
    return key, ""


#: Characters that tell streets of one name apart in Chinese: directions and numerals (人民东路, 第二街).
_CJK_DISTINCTIVE = frozenset("东西南北中上下前后内外新老旧一二三四五六七八九十0123456789")
#: Two words of a Latin name count as one written differently (a typo) from this fuzz.ratio on.
SAME_WORD_RATIO = 75.0


def _latin_words(name: str) -> list[str]:
    """The words of a Latin street name as keys, the road-type ending split off the last one:
    'Alvar Aallon kuja' → ['alvar', 'aallon', 'kuja'], 'Kalevankatu' → ['kalevan', 'katu']."""
    words = [street_key(w) for w in re.split(r"[\s,\-–]+", clean_text(name)) if w]
    words = [w for w in words if w]
    if words:
        stem, kind = split_road_type(words[-1])
        words[-1:] = [stem, kind] if kind and stem else [words[-1]]
    return words


def name_change(written: str, matched: str) -> str | None:
    """Why a street name found by a loose match (fuzzy, or without its road type) is another street, or None.

    A match that changes the road type (kuja/katu, 路/街/巷/道, Road/Street/Lane)
    or a distinctive word of the name (Itäinen/Läntinen, 北/南, a numeral) names
    a different street, not the same one written with a typo.

    Parameters
    ----------
    written : str
        The street name as written in the address.
    matched : str
        The known name (or alias) the loose match found.

    Returns
    -------
    str or None
        The reason, for a clerk: ``"street type kuja written, katu in Alvar Aallon katu"``.
    """
    w_key, m_key = street_key(written), street_key(matched)
    (w_stem, w_type), (m_stem, m_type) = split_road_type(w_key), split_road_type(m_key)
    if w_type and m_type and w_type != m_type:
        return f"street type {w_type} written, {m_type} in {matched}"
    if has_cjk(w_key) or has_cjk(m_key):
        w_marks = sorted(c for c in w_stem if c in _CJK_DISTINCTIVE)
        m_marks = sorted(c for c in m_stem if c in _CJK_DISTINCTIVE)
        if w_marks != m_marks:
            return f"{''.join(w_marks) or 'no direction or number'} written, {''.join(m_marks) or 'none'} in {matched}"
        return None
    from rapidfuzz import fuzz  # noqa: PLC0415 - only for loose matches

    road_types = set(_LATIN_KEY_ENDINGS)
    w_words, m_words = _latin_words(written), _latin_words(matched)
    for mine, theirs, how in ((w_words, m_words, "written"), (m_words, w_words, f"in {matched}")):
        # road types were compared above; a typo in one ('Raod') still has its counterpart
        lost = [
            w
            for w in mine
            if w not in road_types and len(w) >= 3 and not any(fuzz.ratio(w, t) >= SAME_WORD_RATIO for t in theirs)
        ]
        if lost:
            return f"the word {lost[0]!r} {how} has no counterpart in {matched if how == 'written' else written}"
    return None


_SECTION_RE = re.compile(r"^(?P<road>.{2,}?)\s*(?:[－–—]|\s-\s)\s*\S.*$")


def road_of_section(name: str) -> str | None:
    """The road a section is named after: ``'大埔公路－沙田段'`` → ``'大埔公路'``,
    ``'Tai Po Road – Sha Tin'`` → ``'Tai Po Road'``; None for a plain name."""
    m = _SECTION_RE.match(name.strip())
    return m.group("road").strip() if m else None


def split_bilingual(name: str) -> list[str]:
    """``'多石街 To Shek Street'`` → ``['多石街', 'To Shek Street']``; a one-script name → ``[name]``."""
    text = name.strip()
    if not (has_cjk(text) and _LATIN_RE.search(text)):
        return [text] if text else []
    m = re.match(rf"^([{_CJK}\d\W]*[{_CJK}][{_CJK}\d()（）\-－]*)\s+([A-Za-z].*)$", text)
    if m:
        return [m.group(1).strip(), m.group(2).strip()]
    m = re.match(rf"^([A-Za-z][^{_CJK}]*?)\s+([{_CJK}].*)$", text)
    if m:
        return [m.group(2).strip(), m.group(1).strip()]
    return [text]


def parse_house_number(text: str | None) -> tuple[int | None, str, int | None, str]:
    """House-number text → (number, suffix, end, rest).

    ``'16b'`` → (16, 'b', None, ''), ``'14-20'`` → (14, '', 20, ''),
    ``'7 B, sisäpiha'`` → (7, 'b', None, ', sisäpiha'), ``'甲2号'`` → (2, '甲', None, '').
    Text with no leading number gives ``(None, '', None, text)``.
    """
    if text is None:
        return None, "", None, ""
    cleaned = clean_text(str(text)[:PARSE_WINDOW])
    m = _HOUSE_NUMBER_RE.match(cleaned)
    if not m:
        # 'Keskuskatu 5': a street name written into the number field
        m2 = re.match(r"^\D*?(\d+.*)$", cleaned)
        if m2 and m2.group(1) != cleaned:
            return parse_house_number(m2.group(1))
        return None, "", None, cleaned
    suffix = (m.group("pre") or m.group("suf") or "").casefold()
    end = int(m.group("end")) if m.group("end") else None
    return int(m.group("num")), suffix, end, m.group("rest").strip()


# --- parsing --------------------------------------------------------------------------
def parse_address(text, *, by_endings: bool = True) -> ParsedAddress:
    """Parse one written address.

    Parameters
    ----------
    text : str or None
        The address as written; None/NaN/blank gives kind ``'empty'``.  Only its
        first :data:`PARSE_WINDOW` characters are read (``raw`` holds them).
    by_endings : bool
        Read towns and villages off the start by their endings (镇/街道/村 …).
        False keeps them in the name: the reading for 新城市广场门口 or
        东村小学, whose 市/村 is part of a place name.

    Examples
    --------
    >>> parse_address("人民路８８号").number
    88
    >>> parse_address("北京路与红门路交叉口").kind
    'intersection'
    >>> parse_address("5 Main Street").street
    'Main Street'
    """
    raw = _window(text)
    cleaned = clean_text(raw)
    if not cleaned or not re.search(r"\w", cleaned):
        return ParsedAddress(raw=raw, kind="empty")
    if has_cjk(cleaned):
        return _parse_cjk(raw, cleaned, by_endings)
    return _parse_latin(raw, cleaned)


def _window(text) -> str:
    """The text the parser reads: None/NaN as empty, at most :data:`PARSE_WINDOW` characters."""
    if text is None or (isinstance(text, float) and text != text):
        return ""
    return str(text)[:PARSE_WINDOW]


def landmark_reading(text) -> ParsedAddress:
    """The whole text as one landmark (and its relation): 龙岗区人民医院门口, 花园城第1期, with no
    prefix, number or crossing read off; for checking against known landmark names."""
    raw = _window(text)
    cleaned = clean_text(raw)
    name = cleaned.replace(" ", "") if has_cjk(cleaned) else cleaned
    for word in sorted(RELATIONS, key=len, reverse=True):
        if name.endswith(word) and len(name) > len(word):
            return ParsedAddress(
                raw=raw, kind="landmark", landmark=name[: -len(word)].rstrip("的"), relation=RELATIONS[word]
            )
    return ParsedAddress(raw=raw, kind="landmark", landmark=name)


def _strip_admin(text: str, by_endings: bool = True) -> tuple[tuple[str, ...], tuple[str, ...], int, str]:
    """(admin tokens, division codes, number of national tokens, rest): national divisions first,
    then towns and villages (and districts the national table lacks) by their endings."""
    rest = text.replace(" ", "") if has_cjk(text) and not _LATIN_RE.search(text) else text
    divisions, rest = split_divisions(rest)
    tokens: list[str] = list(divisions.names) if divisions else []
    codes = divisions.codes if divisions else ()
    national = len(tokens)
    while by_endings:
        m = _ADMIN_RE.match(rest)
        if not m:
            break
        tok = m.group("tok")
        remainder = rest[len(tok) :].lstrip(" ,，")
        # the token must leave an address behind: not '新市街' → '新市' + '街', not 'X小区' + '门口'
        if (
            len(remainder) < 2
            or _ROAD_START_RE.match(remainder)
            or tok.endswith("小区")
            or any(remainder.startswith(r) for r in RELATIONS)
            or re.match(r"^\d", remainder)
            or remainder.startswith(("与", "和", "/", "段", "号"))
        ):
            break
        tokens.append(tok)
        rest = remainder
    return tuple(tokens), codes, national, rest


def _street_part(street: str) -> tuple[str, str | None]:
    """'横港北路西段' → ('横港北路', 'west'); '人民路口' → ('人民路', 'junction')."""
    m = _PART_RE.match(street)
    if m:
        return m.group("street"), PARTS[m.group("part")]
    for cut in (2, 1):  # '人民路路口', '人民路口'
        if street.endswith("路口"[-cut:]) and len(street) > cut + 1 and street[:-cut].endswith(CJK_ROAD_SUFFIXES):
            return street[:-cut], "junction"
    return street, None


def _parse_cjk(raw: str, cleaned: str, by_endings: bool = True) -> ParsedAddress:
    admin, codes, national, text = _strip_admin(cleaned, by_endings)
    parsed = _parse_cjk_rest(raw, text, admin)
    if not codes:
        return parsed
    return dataclasses.replace(parsed, division_codes=codes, national=national)


def _parse_cjk_rest(raw: str, text: str, admin: tuple[str, ...]) -> ParsedAddress:
    relation = None
    for word in sorted(RELATIONS, key=len, reverse=True):
        if text.endswith(word) and len(text) > len(word):
            relation = RELATIONS[word]
            text = text[: -len(word)].rstrip(" 的")
            break
    m = _NUM_CJK_RE.match(text) or _NUM_CJK_NOHAO_RE.match(text)
    if m and m.group("street").strip():
        street = m.group("street").strip()
        suffix = (m.group("pre") or m.groupdict().get("suf") or "").casefold()
        end = m.groupdict().get("end")
        return ParsedAddress(
            raw=raw,
            kind="house",
            street=street,
            number=int(m.group("num")),
            suffix=suffix,
            number_end=int(end) if end else None,
            admin=admin,
            relation=relation,
            landmark=None,
            extra=(m.group("rest") or "").strip(),
        )
    if _LATIN_RE.search(text):  # bilingual street written Latin-style: '多石街 To Shek Street 23'
        m = _LATIN_STREET_NUM_RE.match(text) or _LATIN_NUM_STREET_RE.match(text)
        if m:
            house = _latin_house(raw, m.group("street"), m.group("number"), m.group("rest"))
            return ParsedAddress(**{**house.__dict__, "admin": admin, "relation": relation})
    crossing = _crossing(text)
    if crossing is not None:
        return ParsedAddress(
            raw=raw, kind="intersection", street=crossing[0], street2=crossing[1], admin=admin, relation=relation
        )
    street, part = _street_part(text)
    if part is not None and _looks_like_street(street):
        return ParsedAddress(raw=raw, kind="road_part", street=street, part=part, admin=admin, relation=relation)
    if relation is not None and not _looks_like_street(text):
        return ParsedAddress(raw=raw, kind="landmark", landmark=text, relation=relation, admin=admin)
    if relation is not None:
        return ParsedAddress(raw=raw, kind="street", street=text, relation=relation, admin=admin)
    return ParsedAddress(raw=raw, kind="street", street=text, admin=admin)


def _crossing(text: str) -> tuple[str, str] | None:
    """The two streets of a written crossing, or None.

    With a connector: 北京路与红门路交叉口, 学院路和学清路口, 北京路/红门路.  Without
    one, only before a crossing word, split where both halves end as roads:
    学院路学清路交叉口, 学清路学院路口 (学院路口 alone is a part of one road).
    """
    stem, junction = text.strip(), False
    for word in _JUNCTION_WORDS:
        if stem.endswith(word) and len(stem) > len(word):
            # '学清路口' is 学清路 + 口, not 学清 + 路口
            whole = stem[: -len(word)].endswith(CJK_ROAD_SUFFIXES)
            cut = 1 if word == "路口" and not whole and stem[:-1].endswith(CJK_ROAD_SUFFIXES) else len(word)
            stem, junction = stem[:-cut].rstrip(" 的"), True
            break
    m = _CROSS_CJK_RE.match(stem)
    if m and all(_looks_like_street(p) and _NAME_RE.match(p.strip()) for p in m.group("a", "b")):
        return m.group("a").strip(), m.group("b").strip()
    if junction and has_cjk(stem):
        for i in range(3, len(stem) - 2):
            a, b = stem[:i], stem[i:]
            # not an area named after a road: 学清路社区学清路口, 学院路街道学清路口
            if (
                (a.endswith(CJK_ROAD_SUFFIXES) or _is_section(a))
                and not a.endswith(_AREA_WORDS)
                and len(b) >= 3
                and _looks_like_street(b)
                and not b.startswith((*CJK_ROAD_SUFFIXES, *_AREA_WORDS[:3], "-", "－", "–", "—"))
            ):
                return a, b
    return None


def _looks_like_street(text: str) -> bool:
    """Whether text can be a street name: a Chinese name ends as a road (or is a named section of
    one, 大埔公路－沙田段); any Latin text can."""
    text = text.strip()
    if not text:
        return False
    if has_cjk(text):
        return text.endswith(CJK_ROAD_SUFFIXES) or bool(_LATIN_RE.search(text)) or _is_section(text)
    return True


#: A named section of a road as written (dash half- or full-width after clean_text): 大埔公路－沙田段.
_CJK_SECTION_RE = re.compile(rf"^(?P<road>.{{2,}}?)\s*[-－–—]\s*[{_CJK}]+段$")


def _is_section(text: str) -> bool:
    """Whether Chinese text is a road's named section: 大埔公路－沙田段 (a road, a dash, …段)."""
    m = _CJK_SECTION_RE.match(text.strip())
    return m is not None and m.group("road").endswith(CJK_ROAD_SUFFIXES)


def _parse_latin(raw: str, cleaned: str) -> ParsedAddress:
    text = cleaned.strip(" ,;")
    m = _LATIN_CORNER_RE.match(text)
    if m:
        return ParsedAddress(
            raw=raw, kind="intersection", street=m.group("a").strip(" ,"), street2=m.group("b").strip(" ,")
        )
    m = _LATIN_STREET_NUM_RE.match(text)
    if m:
        return _latin_house(raw, m.group("street"), m.group("number"), m.group("rest"))
    m = _LATIN_NUM_STREET_RE.match(text)
    if m:
        return _latin_house(raw, m.group("street"), m.group("number"), m.group("rest"))
    m = _LATIN_CROSS_RE.match(text)
    if m and m.group("a").strip() and m.group("b").strip():
        return ParsedAddress(
            raw=raw, kind="intersection", street=m.group("a").strip(" ,"), street2=m.group("b").strip(" ,")
        )
    place, street = _place_and_street(text)
    return ParsedAddress(raw=raw, kind="street", street=street, landmark=place)


def _place_and_street(text: str) -> tuple[str | None, str]:
    """'Asemahalli, Kaivokatu' → ('Asemahalli', 'Kaivokatu'): a place name before the street."""
    if "," in text:
        head, _, tail = text.rpartition(",")
        if tail.strip() and head.strip():
            return head.strip(), tail.strip()
    return None, text.strip()


def _latin_house(raw: str, street: str, number: str, rest: str) -> ParsedAddress:
    n, suffix, end, _ = parse_house_number(number)
    place, street = _place_and_street(street.strip(" ,"))
    return ParsedAddress(
        raw=raw,
        kind="house",
        street=street,
        number=n,
        suffix=suffix,
        number_end=end,
        landmark=place,
        extra=rest.strip(" ,;"),
    )
