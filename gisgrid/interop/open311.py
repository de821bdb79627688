"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2): the shapes of its answers and the checks of
its parameters.  Pure: no database, no Flask.

Open311 calls a category a *service* (``service_code`` = the category code)
and a case a *service request*.  Its answers are lists of flat objects, in
JSON or in XML (``<services><service>…``); its errors are a list of
``{code, description}`` with the HTTP status in ``code``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gisgrid.text import N_

#: Formats the endpoints answer in.
FORMATS = ("json", "xml")
#: Open311 statuses; a case is ``closed`` once closed, rejected (不予立案) or merged into another.
STATUSES = ("open", "closed")
CLOSED_STATES = ("closed", "rejected", "merged")
#: The default window of ``GET requests``: the last 90 days, and at most this many results.
DEFAULT_DAYS = 90
MAX_RESULTS = 1000
#: Attribute data types of a service definition.
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
#: ``attribute[code]`` in a form.
_ATTRIBUTE_KEY = re.compile(r"^attribute\[(?P<code>[^\]]{1,64})\](\[\])?$")
MAX_MEDIA_URL = 2000


class Open311Error(ValueError):
    """An error as the specification words it: ``[{code, description}]`` with ``code`` the HTTP status."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description

    def as_list(self) -> list[dict]:
        return [{"code": self.status, "description": self.description}]


# --- answers -------------------------------------------------------------------------------
def iso(value: dt.datetime | None, tz: dt.tzinfo | None = None) -> str | None:
    """ISO 8601 with the offset (a naive value is taken as UTC), in ``tz`` when given."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    if tz is not None:
        value = value.astimezone(tz)
    return value.isoformat(timespec="seconds")


def status_of(case_status: str) -> str:
    """``open`` or ``closed`` from the case state (as :func:`gisgrid.db.sql.report_is_open`)."""
    return "closed" if case_status in CLOSED_STATES else "open"


def service(row: Mapping[str, Any], *, lang: str = "zh") -> dict:
    """A service (category) as ``GET services`` lists it."""
    name = row.get("name_en") if lang == "en" and row.get("name_en") else row.get("name")
    kind_names = {"event": ("事件", "event"), "facility": ("部件", "facility")}
    group = row.get("service_group") or kind_names.get(row.get("kind"), (row.get("kind"),) * 2)[lang == "en"]
    keywords = row.get("keywords") or ", ".join(v for v in (row.get("name"), row.get("name_en")) if v)
    return {
        "service_code": str(row["code"]),
        "service_name": name,
        "description": row.get("name") if lang == "en" else row.get("name_en"),
        "metadata": bool(row.get("attributes")),
        "type": "realtime",
        "keywords": keywords,
        "group": group,
    }


def service_definition(code: str, attributes: list[dict]) -> dict:
    """``GET services/{code}``: the attributes, each with ``variable``, ``code``, ``datatype``, ``required``,
    ``datatype_description``, ``order``, ``description`` and ``values`` (list types)."""
    out = []
    for i, a in enumerate(sorted(attributes, key=lambda a: a.get("order") or 0), start=1):
        item = {
            "variable": bool(a.get("variable", True)),
            "code": str(a["code"]),
            "datatype": a.get("datatype", "string"),
            "required": bool(a.get("required", False)),
            "datatype_description": a.get("datatype_description"),
            "order": int(a.get("order") or i),
            "description": a.get("description") or str(a["code"]),
        }
        if item["datatype"] in ("singlevaluelist", "multivaluelist"):
            item["values"] = [{"key": str(v["key"]), "name": str(v["name"])} for v in a.get("values", [])]
        out.append(item)
    return {"service_code": str(code), "attributes": out}


# --- XML -----------------------------------------------------------------------------------
def _xml_value(parent: ET.Element, tag: str, value: Any) -> None:
    child = ET.SubElement(parent, tag)
    if isinstance(value, list):
        inner = tag[:-1] if tag.endswith("s") else "item"
        for v in value:
            if isinstance(v, Mapping):
                _xml_dict(ET.SubElement(child, inner), v)
            else:
                ET.SubElement(child, inner).text = _xml_text(v)
    elif isinstance(value, Mapping):
        _xml_dict(child, value)
    else:
        child.text = _xml_text(value)


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_dict(element: ET.Element, row: Mapping[str, Any]) -> None:
    for key, value in row.items():
        _xml_value(element, key, value)


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """The XML form of an answer: ``<root><item>…</item>…</root>`` (``item`` None: one object as ``root``)."""
    top = ET.Element(root)
    if item is None:
        _xml_dict(top, data)
    else:
        for row in data:
            _xml_dict(ET.SubElement(top, item), row)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8", xml_declaration=False)


def errors_xml(error: Open311Error) -> bytes:
    return to_xml("errors", "error", error.as_list())


# --- GET requests --------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestFilters:
    """The filters of ``GET requests``, checked."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    statuses: tuple[str, ...] = ()
    page: int = 1
    page_size: int = MAX_RESULTS
    jurisdiction_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_datetime(value: str, label: str) -> dt.datetime:
    """A W3C date-time (``2010-01-01T00:00:00Z``, a date alone is its midnight UTC); Open311Error 400 otherwise."""
    text = value.strip()
    try:
        out = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise Open311Error(
            400,
            N_(
                "%(label)s must be a date and time like 2026-01-01T00:00:00Z, not %(value)s",
                label=label,
                value=repr(text[:40]),
            ),
        ) from None
    return out if out.tzinfo else out.replace(tzinfo=dt.timezone.utc)


def _positive(value: str | None, label: str, default: int, maximum: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        out = int(value)
    except ValueError:
        raise Open311Error(
            400, N_("%(label)s must be a whole number, not %(value)s", label=label, value=repr(value[:20]))
        ) from None
    if out < 1 or out > maximum:
        raise Open311Error(400, N_("%(label)s must be between 1 and %(maximum)s", label=label, maximum=maximum))
    return out


def parse_request_filters(args: Mapping[str, str], *, now: dt.datetime) -> RequestFilters:
    """Check the query of ``GET requests``.

    ``service_request_id`` (comma-separated) overrides every other filter, as
    the specification says.  Without dates the window is the last
    :data:`DEFAULT_DAYS` days; ``page_size`` is at most :data:`MAX_RESULTS`.
    """
    ids = []
    for text in _list(args.get("service_request_id")):
        if not (text.isascii() and text.isdigit()) or len(text) > 12:  # "¹".isdigit(), yet int() refuses it
            raise Open311Error(400, N_("service_request_id must be request ids, not %(value)s", value=repr(text[:20])))
        ids.append(int(text))
    page = _positive(args.get("page"), "page", 1, 1_000_000)
    page_size = _positive(args.get("page_size"), "page_size", MAX_RESULTS, MAX_RESULTS)
    jurisdiction = (args.get("jurisdiction_id") or "").strip() or None
    if ids:
        return RequestFilters(
            ids=tuple(ids[:MAX_RESULTS]), page=page, page_size=page_size, jurisdiction_id=jurisdiction
        )
    statuses = _list(args.get("status"))
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise Open311Error(400, N_("status must be open or closed, not %(value)s", value=repr(bad[0][:20])))
    start = parse_datetime(args["start_date"], "start_date") if args.get("start_date") else None
    end = parse_datetime(args["end_date"], "end_date") if args.get("end_date") else None
    if start is None and end is None:
        start = now - dt.timedelta(days=DEFAULT_DAYS)
    elif start is None:
        start = end - dt.timedelta(days=DEFAULT_DAYS) if end > dt.datetime(1, 4, 1, tzinfo=dt.timezone.utc) else end
    if start is not None and end is not None and end < start:
        raise Open311Error(400, N_("end_date is before start_date"))
    return RequestFilters(
        service_codes=tuple(_list(args.get("service_code"))),
        start=start,
        end=end,
        statuses=tuple(statuses),
        page=page,
        page_size=page_size,
        jurisdiction_id=jurisdiction,
    )


# --- POST requests -------------------------------------------------------------------------
@dataclass(frozen=True)
class NewRequest:
    """A ``POST requests`` form, checked (the case fields go through :mod:`gisgrid.cases.intake` after)."""

    service_code: str
    lat: float | None
    lon: float | None
    address: str | None
    description: str | None
    media_url: str | None
    attributes: dict[str, Any]
    jurisdiction_id: str | None = None


def _float(value: str | None, label: str, low: float, high: float) -> float | None:
    if value is None or not str(value).strip():
        return None
    try:
        out = float(value)
    except ValueError:
        raise Open311Error(
            400, N_("%(label)s must be a number, not %(value)s", label=label, value=repr(str(value)[:20]))
        ) from None
    if not math.isfinite(out) or not low <= out <= high:
        raise Open311Error(
            400, N_("%(label)s must be between %(low)s and %(high)s", label=label, low=f"{low:g}", high=f"{high:g}")
        )
    return out


def attributes_of(form: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """``attribute[code]`` fields (a multivaluelist repeats the field or writes ``attribute[code][]``)."""
    out: dict[str, list[str]] = {}
    for key, values in form.items():
        match = _ATTRIBUTE_KEY.fullmatch(key)
        if match:
            out.setdefault(match["code"], []).extend(values)
    return out


def parse_new_request(form: Mapping[str, list[str]]) -> NewRequest:
    """Check a ``POST requests`` form (every field as a list of values, as forms repeat fields).

    A location is ``lat`` and ``long`` (WGS84) or ``address_string``; the
    service is ``service_code``.  ``address_id`` is not supported (400).
    """

    def one(name: str) -> str | None:
        values = form.get(name) or []
        return values[0] if values else None

    code = (one("service_code") or "").strip()
    if not code:
        raise Open311Error(400, N_("service_code is required"))
    lat = _float(one("lat"), "lat", -90, 90)
    lon = _float(one("long"), "long", -180, 180)
    address = (one("address_string") or "").strip() or None
    if (lat is None) != (lon is None):
        raise Open311Error(400, N_("lat and long go together"))
    if lat is None and address is None:
        if one("address_id"):
            raise Open311Error(400, N_("address_id is not supported here: send lat and long, or address_string"))
        raise Open311Error(400, N_("a location is required: lat and long, or address_string"))
    media = (one("media_url") or "").strip() or None
    if media is not None and (len(media) > MAX_MEDIA_URL or not re.match(r"^https?://\S+$", media)):
        raise Open311Error(400, N_("media_url must be an http or https URL"))
    return NewRequest(
        service_code=code,
        lat=lat,
        lon=lon,
        address=address,
        description=(one("description") or "").strip() or None,
        media_url=media,
        attributes=attributes_of(form),
        jurisdiction_id=(one("jurisdiction_id") or "").strip() or None,
    )


def check_attributes(definitions: list[dict], given: dict[str, list[str]]) -> dict[str, Any]:
    """The attribute values to keep, by code: required ones present, list values among the keys, numbers
    numbers, unknown codes refused.  Open311Error 400 naming every problem."""
    by_code = {str(a["code"]): a for a in definitions}
    problems = [N_("unknown attribute %(code)s", code=repr(code)) for code in given if code not in by_code]
    out: dict[str, Any] = {}
    for code, a in by_code.items():
        values = [v for v in given.get(code, []) if str(v).strip()]
        if not values:
            if a.get("required") and a.get("variable", True):
                problems.append(N_("attribute[%(code)s] is required", code=code))
            continue
        kind = a.get("datatype", "string")
        keys = {str(v["key"]) for v in a.get("values", [])}
        if kind in ("singlevaluelist", "multivaluelist"):
            wrong = [v for v in values if v not in keys]
            if wrong:
                problems.append(
                    N_(
                        "attribute[%(code)s] must be one of %(keys)s, not %(value)s",
                        code=code,
                        keys=", ".join(sorted(keys)),
                        value=repr(wrong[0][:40]),
                    )
                )
                continue
            out[code] = values if kind == "multivaluelist" else values[0]
        elif kind == "number":
            try:
                out[code] = float(values[0])
            except ValueError:
                problems.append(N_("attribute[%(code)s] must be a number", code=code))
        elif kind == "datetime":
            try:
                out[code] = parse_datetime(values[0], f"attribute[{code}]").isoformat()
            except Open311Error as exc:
                problems.append(exc.description)
        else:
            out[code] = values[0][:2000]
    if problems:
        raise Open311Error(400, N_.join("; ", problems))
    return out


__all__ = [
    "FORMATS",
    "NewRequest",
    "Open311Error",
    "RequestFilters",
    "check_attributes",
    "errors_xml",
    "iso",
    "parse_new_request",
    "parse_request_filters",
    "service",
    "service_definition",
    "status_of",
    "to_xml",
]
