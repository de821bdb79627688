"""OGC API – Features, Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0) and Part 2 (CRS): the collections gisgrid
serves and the checks of an items query.  Pure: no database, no Flask.

The query parameters are exactly those the standard names (``limit``,
``offset`` for the ``next`` links, ``bbox``, ``bbox-crs``, ``crs``,
``datetime``, ``f``) plus each collection's simple properties; anything else
is a 400, as the standard requires.  Coordinates: CRS84 is longitude,
latitude; a CRS named by EPSG URI is in that CRS's own axis order (EPSG:4326
and EPSG:4490 latitude first; :func:`gisgrid.crs.northing_first`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from gisgrid.crs import northing_first
from gisgrid.text import N_

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
_EPSG_RE = re.compile(r"^(?:http://www\.opengis\.net/def/crs/EPSG/0/|EPSG:)(?P<code>\d{4,6})$")
#: The geographic CRSs every deployment offers besides CRS84: WGS84 and CGCS2000 (practically equal at
#: street scale: stored as is).
GEOGRAPHIC = (4326, 4490)
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
)

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
#: Parameters of every items query (besides the collection's properties).
ITEMS_PARAMETERS = frozenset({"f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "lang"})
ITEM_PARAMETERS = frozenset({"f", "crs", "datetime", "lang"})
OTHER_PARAMETERS = frozenset({"f", "lang"})


class FeaturesError(ValueError):
    """A request the API refuses: ``status`` 400 (bad parameter) or 404 (no such collection or feature)."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


@dataclass(frozen=True)
class Collection:
    """One collection: its id, titles, the scope kind limiting it, its simple properties (name → type) and
    whether ``datetime`` applies (``temporal``)."""

    id: str
    title_zh: str
    title_en: str
    description_en: str
    properties: dict[str, str]
    geometry: str
    temporal: bool = False
    permission: str = "view_own"

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title_zh


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            "jurisdictions",
            "辖区",
            "Jurisdictions",
            "Counties, towns and communities with their division codes",
            {"code": "string", "name": "string", "level": "string", "parent_code": "string"},
            "MultiPolygon",
        ),
        Collection(
            "streets",
            "街道",
            "Streets",
            "Street centerlines with their jurisdiction",
            {"name": "string", "road_class": "string", "jurisdiction": "string"},
            "MultiLineString",
        ),
        Collection(
            "segments",
            "路段",
            "Street segments",
            "Segment centerlines with their owner chain (段长 → 二级街长 → 一级街长 → 总街长) on the day of "
            "`datetime` (default today)",
            {
                "street_id": "integer",
                "street": "string",
                "name": "string",
                "from_name": "string",
                "to_name": "string",
                "road_class": "string",
                "length_m": "number",
                "jurisdiction": "string",
            },
            "LineString",
            temporal=True,
        ),
        Collection(
            "cells",
            "单元网格",
            "Grid cells",
            "Unit grid cells with their owners (网格员, 网格长) on the day of `datetime` (default today)",
            {"code": "string", "jurisdiction": "string"},
            "MultiPolygon",
            temporal=True,
        ),
        Collection(
            "appointments",
            "责任人任命",
            "Owner appointments",
            "Who owns which unit in which role, from when to when (a point on the unit); `datetime` selects "
            "the appointments valid then",
            {"role": "string", "target_type": "string", "target_id": "integer", "owner": "string"},
            "Point",
            temporal=True,
        ),
        Collection(
            "cases",
            "案件",
            "Cases",
            "Reported problems (cases) the caller may see; `datetime` selects by the time reported",
            {"category": "string", "status": "string", "open311_status": "string", "jurisdiction": "string"},
            "Point",
            temporal=True,
            permission="view_cases",
        ),
        Collection(
            "audit-problems",
            "覆盖审计问题",
            "Coverage audit problems",
            "Gaps, overlaps, slivers and units without an owner in the towns the caller sees whole",
            {"problem": "string", "jurisdiction": "string"},
            "Geometry",
            permission="view_area",
        ),
    )
}


# --- CRS -----------------------------------------------------------------------------------------
def crs_uri(epsg: int | None) -> str:
    """The URI of ``epsg`` (None: CRS84)."""
    return CRS84 if epsg is None else _EPSG_URI.format(int(epsg))


def supported_crs(metric_epsgs) -> list[str]:
    """CRS84, EPSG:4326, EPSG:4490 and the deployment's metric CRSs, as URIs."""
    codes = list(GEOGRAPHIC) + sorted({int(e) for e in metric_epsgs if e} - set(GEOGRAPHIC))
    return [CRS84] + [crs_uri(c) for c in codes]


def parse_crs(value: str | None, supported: list[str], label: str = "crs") -> int | None:
    """The EPSG code a ``crs``/``bbox-crs`` value names (None: CRS84); FeaturesError 400 for any other."""
    if value is None or value.strip() in ("", CRS84, "CRS84", "OGC:CRS84"):
        return None
    text = value.strip().strip("[]")
    match = _EPSG_RE.fullmatch(text)
    if match is None or crs_uri(int(match["code"])) not in supported:
        raise FeaturesError(
            400,
            "InvalidParameterValue",
            N_("%(label)s must be one of %(values)s", label=label, values=", ".join(supported)),
        )
    return int(match["code"])


def axes_swapped(epsg: int | None) -> bool:
    """Coordinates in ``epsg`` are written northing (latitude) first."""
    return epsg is not None and northing_first(epsg)


# --- items queries -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemsQuery:
    """An items request, checked.  ``bbox`` is in ``bbox_crs`` as sent (its axis order), four numbers."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: int | None = None
    crs: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def day(self) -> dt.date | None:
        """The day owners are read on: the instant's, or an interval's last day."""
        moment = self.end or self.start
        return moment.date() if moment is not None else None

    def bbox_lonlat_order(self) -> tuple[float, float, float, float] | None:
        """``bbox`` as (minx, miny, maxx, maxy) in the CRS's x/y (easting, northing) order."""
        if self.bbox is None:
            return None
        a, b, c, d = self.bbox
        return (b, a, d, c) if axes_swapped(self.bbox_crs) else (a, b, c, d)


def _refuse(name: str, text: str) -> FeaturesError:
    return FeaturesError(400, "InvalidParameterValue", N_("%(name)s: %(text)s", name=name, text=text))


def check_parameters(args: Mapping[str, str], allowed) -> None:
    """FeaturesError 400 naming the first parameter the request may not carry."""
    unknown = sorted(k for k in args if k not in allowed)
    if unknown:
        raise FeaturesError(
            400,
            "InvalidParameterValue",
            N_(
                "unknown query parameter %(name)s; allowed: %(allowed)s",
                name=repr(unknown[0]),
                allowed=", ".join(sorted(allowed)),
            ),
        )


def _datetime(text: str, name: str) -> dt.datetime | None:
    text = text.strip()
    if text in ("..", ""):
        return None
    try:
        if len(text) == 10:
            value = dt.datetime.fromisoformat(text)
        else:
            value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise _refuse(name, N_("%(value)s is not an RFC 3339 date-time or date", value=repr(text[:40]))) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def parse_datetime(value: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``datetime``: an instant (start = end) or an interval ``a/b`` with ``..`` for an open end."""
    if "/" in value:
        left, _sep, right = value.partition("/")
        start, end = _datetime(left, "datetime"), _datetime(right, "datetime")
        if start is None and end is None:
            raise _refuse("datetime", N_("an interval needs one end"))
        if start is not None and end is not None and end < start:
            raise _refuse("datetime", N_("the interval ends before it starts"))
        if len(right.strip()) == 10 and end is not None:  # a date as end: through that whole day
            end = _day_end(end)
        return start, end
    instant = _datetime(value, "datetime")
    if instant is None:
        raise _refuse("datetime", N_("give a date-time, a date or an interval"))
    if len(value.strip()) == 10:
        return instant, _day_end(instant)
    return instant, instant


def _day_end(day_start: dt.datetime) -> dt.datetime:
    """The last microsecond of the day that starts at ``day_start``."""
    return day_start.replace(hour=23, minute=59, second=59, microsecond=999_999)


def _bbox(value: str) -> tuple[float, float, float, float]:
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise _refuse("bbox", N_("four numbers: minx,miny,maxx,maxy (six with heights)"))
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise _refuse("bbox", N_("four numbers: minx,miny,maxx,maxy")) from None
    if not all(math.isfinite(n) for n in nums):
        raise _refuse("bbox", N_("the numbers must be finite"))
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    a, b, c, d = nums
    return a, b, c, d


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        out = int(value)
    except ValueError:
        raise _refuse(name, N_("a whole number, not %(value)s", value=repr(value[:20]))) from None
    if out < low:
        raise _refuse(name, N_("at least %(low)s", low=low))
    return min(out, high)


def parse_items_query(args: Mapping[str, str], collection: Collection, supported: list[str]) -> ItemsQuery:
    """Check the query of ``/collections/{id}/items``.

    ``limit`` defaults to :data:`DEFAULT_LIMIT`; a larger one than
    :data:`MAX_LIMIT` is served as :data:`MAX_LIMIT` (as the standard allows).
    """
    check_parameters(args, ITEMS_PARAMETERS | set(collection.properties))
    limit = _int(args["limit"], "limit", 1, MAX_LIMIT) if args.get("limit") else DEFAULT_LIMIT
    offset = _int(args["offset"], "offset", 0, 10**9) if args.get("offset") else 0
    bbox = _bbox(args["bbox"]) if args.get("bbox") else None
    bbox_crs = parse_crs(args.get("bbox-crs"), supported, "bbox-crs")
    if "bbox-crs" in args and bbox is None:
        raise _refuse("bbox-crs", N_("goes with bbox"))
    if bbox is not None:
        ordered = bbox if not axes_swapped(bbox_crs) else (bbox[1], bbox[0], bbox[3], bbox[2])
        lon0, lat0, lon1, lat1 = ordered
        if bbox_crs is None or bbox_crs in GEOGRAPHIC:
            if not (-180 <= lon0 <= 180 and -180 <= lon1 <= 180 and -90 <= lat0 <= 90 and -90 <= lat1 <= 90):
                raise _refuse("bbox", N_("longitudes lie in -180..180 and latitudes in -90..90"))
        elif not all(abs(v) <= 1e8 for v in ordered):
            raise _refuse("bbox", N_("the corners lie outside the CRS's area"))
        if lat0 > lat1:
            raise _refuse("bbox", N_("the lower corner is above the upper one"))
    crs = parse_crs(args.get("crs"), supported)
    start = end = None
    if args.get("datetime"):
        start, end = parse_datetime(args["datetime"])
    props = {}
    for name in collection.properties:
        if name in args:
            value = args[name]
            if collection.properties[name] == "integer" and not re.fullmatch(r"-?\d{1,12}", value.strip()):
                raise _refuse(name, N_("a whole number"))
            if collection.properties[name] == "number":
                try:
                    float(value)
                except ValueError:
                    raise _refuse(name, N_("a number")) from None
            props[name] = value
    return ItemsQuery(limit, offset, bbox, bbox_crs, crs, start, end, props)


def page_links(base: str, args: Mapping[str, str], query: ItemsQuery, returned: int, matched: int | None) -> dict:
    """``next`` and ``prev`` query strings (None when there is no such page)."""
    from urllib.parse import urlencode

    def with_offset(offset: int) -> str:
        params = {k: v for k, v in args.items() if k != "offset"}
        params["offset"] = str(offset)
        params.setdefault("limit", str(query.limit))
        return f"{base}?{urlencode(params)}"

    more = returned == query.limit and (matched is None or query.offset + returned < matched)
    return {
        "next": with_offset(query.offset + query.limit) if more else None,
        "prev": with_offset(max(0, query.offset - query.limit)) if query.offset > 0 else None,
    }


__all__ = [
    "COLLECTIONS",
    "CONFORMANCE",
    "CRS84",
    "Collection",
    "FeaturesError",
    "ItemsQuery",
    "axes_swapped",
    "check_parameters",
    "crs_uri",
    "page_links",
    "parse_crs",
    "parse_items_query",
    "supported_crs",
]
