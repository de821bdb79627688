"""What a frontage unit (门前三包单位) carries, checked at the boundary (pure: no database, no Flask).

The unified social credit code (统一社会信用代码, GB 32100-2015) is checked
with python-stdnum (:mod:`stdnum.cn.uscc`): 18 characters, the registration
authority and the check digit.  Spreadsheets come as the market-regulation
registry exports them (企业名称, 统一社会信用代码, 住所, 经营场所, 联系人,
联系电话 …): :data:`COLUMNS` lists the names each field may have.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError

from gisgrid.errors import InputError
from gisgrid.routing.frontage import agreement_state  # noqa: F401 - the one rule, re-exported
from gisgrid.text import N_

#: Unit kinds, with the words of a registry export or a form that mean each.
KINDS = {
    "shop": ("shop", "商户", "商铺", "门店", "个体工商户", "企业", "公司", "有限责任公司"),
    "institution": ("institution", "单位", "机关", "事业单位", "学校", "医院"),
    "residential": ("residential", "住宅", "小区", "居民楼", "住宅楼"),
}
#: The three duties (三包) an agreement holds by default.
DUTIES = ("包卫生 (clean)", "包秩序 (order)", "包绿化 (greenery)")
DUTY_CODES = ("clean", "order", "green")

#: Column names per field, as registry exports and clerks' sheets write them (compared without case or spaces).
COLUMNS = {
    "name": ("企业名称", "名称", "单位名称", "商户名称", "字号名称", "name"),
    "uscc": ("统一社会信用代码", "信用代码", "社会信用代码", "uscc"),
    "kind": ("类型", "单位类型", "市场主体类型", "主体类型", "kind", "type"),
    "address": ("经营场所", "住所", "地址", "经营地址", "address"),
    "contact_name": ("联系人", "负责人", "法定代表人", "经营者", "contact", "contact_name"),
    "contact_phone": ("联系电话", "电话", "手机", "phone", "contact_phone"),
    "lon": ("lon", "经度", "longitude"),
    "lat": ("lat", "纬度", "latitude"),
    "signed_on": ("签订日期", "签订时间", "责任书签订日期", "signed_on"),
    "expires_on": ("到期日期", "有效期至", "责任书到期日期", "expires_on"),
}
_PHONE = re.compile(r"^[0-9+() -]{5,40}$")


class BadUSCC(InputError):
    """A unified social credit code that is not one (wrong length, characters or check digit)."""


def check_uscc(value: Any) -> str:
    """The code, compact and upper-case, when valid; :class:`BadUSCC` saying why otherwise.

    >>> check_uscc("91110000600037341L")
    '91110000600037341L'
    """
    text = "" if value is None else str(value)
    try:
        return _uscc.validate(text)
    except ValidationError as exc:
        compact = _uscc.compact(text) if text else ""
        if len(compact) != 18:
            why = N_("it has %(n)s characters, not 18", n=len(compact))
        elif "checksum" in type(exc).__name__.lower() or "checksum" in str(exc).lower():
            why = N_("its check digit is wrong (expected %(digit)s)", digit=_uscc.calc_check_digit(compact[:17]))
        else:
            why = str(exc).rstrip(".").lower()
        raise BadUSCC(
            N_("the unified social credit code %(code)s is not valid: %(why)s", code=repr(text), why=why)
        ) from None


def make_uscc(body17: str) -> str:
    """A valid code from its first 17 characters (the check digit added): for demo data and tests."""
    return body17 + _uscc.calc_check_digit(body17)


def parse_kind(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        return "shop"
    for kind, words in KINDS.items():
        if text.lower() == kind or any(w in text for w in words[1:]):
            return kind
    raise InputError(N_("unit type %(value)s is not one of shop, institution, residential", value=repr(text)))


@dataclass(frozen=True)
class UnitInput:
    """One frontage unit as it arrives, checked.  ``lon``/``lat`` in EPSG:4326, or None (to be geocoded)."""

    name: str
    kind: str = "shop"
    uscc: str | None = None
    address: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    lon: float | None = None
    lat: float | None = None
    signed_on: dt.date | None = None
    expires_on: dt.date | None = None
    duties: tuple[str, ...] = field(default=DUTY_CODES)


def _text(raw: Mapping, key: str, limit: int, problems: list[str]) -> str | None:
    value = raw.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if len(text) > limit:
        problems.append(N_("%(field)s has %(n)s characters; at most %(limit)s", field=key, n=len(text), limit=limit))
        return None
    return text or None


def _date(raw: Mapping, key: str, problems: list[str]) -> dt.date | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        problems.append(N_("%(field)s %(value)s is not a date (YYYY-MM-DD)", field=key, value=repr(str(value)[:30])))
        return None
    return None if pd.isna(ts) else ts.date()


def parse_unit(raw: Mapping[str, Any]) -> UnitInput:
    """Check one unit's fields; :class:`~gisgrid.errors.InputError` naming every problem at once."""
    problems: list[str] = []
    name = _text(raw, "name", 200, problems)
    if not name:
        problems.append(N_("a name is needed"))
    try:
        kind = parse_kind(raw.get("kind"))
    except InputError as exc:
        problems.append(exc.text)
        kind = "shop"
    code = _text(raw, "uscc", 40, problems)
    if code:
        try:
            code = check_uscc(code)
        except BadUSCC as exc:
            problems.append(exc.text)
    elif kind != "residential":
        problems.append(N_("a shop or institution needs its unified social credit code"))
    phone = _text(raw, "contact_phone", 40, problems)
    if phone and not _PHONE.fullmatch(phone):
        problems.append(N_("phone %(value)s is not a telephone number", value=repr(phone)))
    lon = lat = None
    if raw.get("lon") not in (None, "") and raw.get("lat") not in (None, ""):
        try:
            lon, lat = float(raw["lon"]), float(raw["lat"])
        except (TypeError, ValueError):
            problems.append(N_("lon/lat must be numbers"))
    address = _text(raw, "address", 300, problems)
    if lon is None and not address:
        problems.append(N_("a place is needed: an address or lon/lat"))
    signed = _date(raw, "signed_on", problems)
    expires = _date(raw, "expires_on", problems)
    if signed and expires and expires <= signed:
        problems.append(
            N_(
                "the agreement expires (%(expires)s) before it was signed (%(signed)s)",
                expires=str(expires),
                signed=str(signed),
            )
        )
    if (signed is None) != (expires is None):
        problems.append(N_("an agreement needs both its signed date and its expiry"))
    if problems:
        raise InputError(N_.join("; ", problems))
    return UnitInput(
        name=name,
        kind=kind,
        uscc=code,
        address=address,
        contact_name=_text(raw, "contact_name", 100, problems),
        contact_phone=phone,
        lon=lon,
        lat=lat,
        signed_on=signed,
        expires_on=expires,
    )


def find_columns(columns) -> dict[str, str | None]:
    """The column holding each field of :data:`COLUMNS` (None when absent); 经营场所 before 住所."""
    lowered = {str(c).strip().lower().replace(" ", ""): c for c in reversed(list(columns))}
    return {f: next((lowered[n.lower()] for n in names if n.lower() in lowered), None) for f, names in COLUMNS.items()}
