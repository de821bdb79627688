"""Administrative divisions written before an address (广东省深圳市龙岗区…) → names and division codes.

Province, prefecture and county levels are recognised with the division-code
table of `cpca <https://github.com/DQinYuan/chinese_province_city_area_mapper>`_
(GB/T 2260 codes, abbreviations such as 深圳 for 深圳市, the county kept
ambiguous when its name exists in several places: 朝阳区 is 110105 in Beijing
and 220104 in Changchun).  Towns (镇/乡/街道), villages and communities have no
national table; :mod:`gisgrid.geocode.parse` reads those by their endings and
matches them against the deployment's own jurisdictions.

Only a prefix counts: a division name is accepted when it starts the text or
directly follows the one before, and never when the text after it starts a
road name (北京路 is a street, 南京西路 too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: Text after a division that shows the "division" was the start of a street name.
_ROAD_AFTER_RE = re.compile(r"^[东西南北中]?(?:大道|大街|大马路|马路|路|街|道|巷|里|弄|胡同|环)")
#: Endings of a division's full name.
_FULL_ENDINGS = ("省", "市", "区", "县", "州", "旗", "盟", "自治区", "特别行政区")
#: Text that starts with a division (of any level) after a short form: 深圳 + 龙岗区, 香港 + 沙田区.
_DIVISION_AFTER_RE = re.compile(
    r"^(?:(?![路街巷道与和号])[\u3400-\u9fff\U00020000-\U0003134f]){1,8}?(?:特别行政区|自治区|自治州|自治县|区|县|市|旗|盟|州|镇|乡|街道)"
)
#: Regions of Hong Kong (code 810000) that the national table lacks.
_HK_REGIONS = ("新界", "香港岛", "港岛")
_HK_CODE = "810000"
#: Endings cpca drops from abbreviations, absorbed when written after a match (深圳 + 市).
_SUFFIX_RE = re.compile(r"^(?:特别行政区|自治区|自治州|省|市|区|县)")


@dataclass(frozen=True)
class Divisions:
    """The administrative divisions written at the start of an address.

    Attributes
    ----------
    names : tuple of str
        The divisions as written, largest first (``('广东省', '深圳市', '龙岗区')``).
    codes : tuple of str
        Six-digit division codes the most specific written name can stand for,
        given the names before it; several when it is ambiguous.
    """

    names: tuple[str, ...]
    codes: tuple[str, ...]


def code_prefix(code: str) -> str:
    """The significant prefix of a division code: 440300 → 4403, 810000 → 81, 440307001000 → 440307001.

    The first six digits are province (2), prefecture (2) and county (2); town
    and village codes follow in groups of three.
    """
    code = str(code).strip()
    if len(code) >= 6 and code.isdigit():
        head, tail = code[:6], code[6:]
        while tail.endswith("000"):
            tail = tail[:-3]
        if tail:
            return head + tail
        if head.endswith("0000"):
            return head[:2]
        if head.endswith("00"):
            return head[:4]
        return head
    return code


def codes_overlap(a: str, b: str) -> bool:
    """Whether two division codes share ground: one contains the other (44 and 440307001 do)."""
    pa, pb = code_prefix(a), code_prefix(b)
    return pa.startswith(pb) or pb.startswith(pa)


@lru_cache(maxsize=1)
def _matcher():
    import warnings

    with warnings.catch_warnings():  # cpca loads its table through pkg_resources
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        import cpca  # noqa: PLC0415 - a dictionary load, only for Chinese addresses

    return cpca.matcher


def split_divisions(text: str, *, before_street: bool = False) -> tuple[Divisions | None, str]:
    """Split the leading province/city/county names off a (cleaned, simplified) address.

    Parameters
    ----------
    text : str
        Address text, simplified characters, no spaces between Chinese words.
    before_street : bool
        The text is only what was written before a known street name (深圳龙岗
        of 深圳龙岗如意路): a division may end it, and short forms count.

    Returns
    -------
    (Divisions or None, str)
        The divisions found and the rest of the text; ``(None, text)`` when the
        text does not start with a division.  A division that would leave
        nothing behind, or be followed by a road ending (北京路, 南京西路), is
        not taken: it belongs to the name.  A short form without its ending
        (深圳, 中山) is taken only when another division follows it, so
        中山公园 and 北京大学深圳医院 stay whole.

    Examples
    --------
    >>> d, rest = split_divisions("广东省深圳市龙岗区龙翔大道2001号")
    >>> d.names, d.codes, rest
    (('广东省', '深圳市', '龙岗区'), ('440307',), '龙翔大道2001号')
    >>> split_divisions("北京路88号")[0] is None
    True
    >>> split_divisions("中山公园门口")[0] is None
    True
    """
    starts: list[int] = []
    names: list[str] = []
    chain: list[list] = []  # candidate AddrInfo lists, one per written level
    short: list[bool] = []  # written without its ending (深圳 for 深圳市)
    pos = 0
    for match in _matcher().iter(text):
        if match.start_index != pos:
            break
        candidates = list(match.attr_infos)
        if chain:  # a level below must lie inside the one above (吉林省 + 朝阳区 keeps 220104 only)
            candidates = [a for a in candidates if any(a.belong_to(p) for p in chain[-1])]
            if not candidates:
                break
        end = match.end_index + 1
        is_short = not match.origin_value.endswith(_FULL_ENDINGS)
        suffix = _SUFFIX_RE.match(text[end:])
        if suffix and is_short:
            end += len(suffix.group(0))
            is_short = False
        if _ROAD_AFTER_RE.match(text[end:]) or (end >= len(text) and not before_street):
            break
        starts.append(pos)
        names.append(text[pos:end])
        chain.append(candidates)
        short.append(is_short)
        pos = end
    # a short form counts only when another division follows: 中山公园, 北京大学, 深圳北站 are places
    while chain and short[-1] and not before_street and not _DIVISION_AFTER_RE.match(text[pos:]):
        pos = starts.pop()
        names.pop()
        chain.pop()
        short.pop()
    codes = tuple(sorted({a.adcode[:6] for a in chain[-1]})) if chain else ()
    # Hong Kong's regions, which the table lacks: 香港新界沙田…, 新界银城街…
    region = next((r for r in _HK_REGIONS if text.startswith(r, pos)), None)
    rest = text[pos + len(region) :] if region else ""
    if (
        region
        and all(c.startswith("81") for c in codes)
        and (before_street or len(rest) >= 2)
        and not _ROAD_AFTER_RE.match(rest)
    ):
        names.append(region)
        codes, pos = codes or (_HK_CODE,), pos + len(region)
    if not names:
        return None, text
    return Divisions(tuple(names), codes), text[pos:]


__all__ = ["Divisions", "code_prefix", "codes_overlap", "split_divisions"]
