"""Intake: what a new case must carry, checked at the boundary (pure: no database, no Flask).

Every channel — the web form, the phone page, ``POST /api/cases``, a
spreadsheet (``gisgrid cases import``) and the geocoding page's rows — turns
its input into :class:`CaseInput` here, so that one set of checks says what
is wrong, all at once.  The store (:func:`gisgrid.cases.store.create_case`)
then routes the point, sets the deadline and keeps the routing explanation.

A point is required, with its CRS stated (EPSG:4326 by default; GCJ-02 and
BD-09 as :func:`gisgrid.crs.parse_crs` reads them).  An address alone is
geocoded by the caller first (the web form and the geocoding page do it);
the address is kept as written.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gisgrid.errors import InputError
from gisgrid.text import N_

#: Where a case came from (``report.source``); ``inspection`` (督查) and ``unannounced`` (暗访) are the findings
#: of inspection rounds (:mod:`gisgrid.supervision.inspections`).
#: ``public`` is a resident's report from the public page (:mod:`gisgrid.web.public`).
CHANNELS = ("web", "phone", "api", "import", "geocode", "reopen", "inspection", "unannounced", "public")
#: The sources of inspection rounds' findings: 督查 (announced) and 暗访 (unannounced).
INSPECTION_CHANNELS = ("inspection", "unannounced")
#: An idempotency key: what a device or client system makes up (a UUID fits).
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$")
MAX_DESCRIPTION = 2000
MAX_ADDRESS = 300
MAX_CATEGORY = 40
#: A report time this far in the future is a wrong clock, not a report.
FUTURE_SLACK = dt.timedelta(minutes=10)

#: Column names a spreadsheet of cases may use (English or Chinese), per field.
COLUMNS = {
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "category": ("category", "category_code", "类别", "问题类别", "类别代码"),
    "description": ("description", "desc", "描述", "问题描述"),
    "address": ("address", "地址", "地点"),
    "reported_at": ("reported_at", "time", "date", "上报时间", "时间"),
    "client_id": ("client_id", "id", "编号", "案件编号"),
}


@dataclass(frozen=True)
class CaseInput:
    """One case as it arrives, checked."""

    lon: float
    lat: float
    crs: str
    category: str
    description: str | None = None
    address: str | None = None
    client_id: str | None = None
    reported_at: dt.datetime | None = None
    source: str = "web"


def _text(value: Any, limit: int, label: str, problems: list[str]) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if "\x00" in text:
        problems.append(N_("%(label)s contains a NUL character", label=label))
        return None
    if len(text) > limit:
        problems.append(N_("%(label)s has %(n)s characters; at most %(limit)s", label=label, n=len(text), limit=limit))
        return None
    return text or None


def _number(value: Any, label: str, problems: list[str]) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        problems.append(N_("%(label)s must be a number, not %(value)s", label=label, value=repr(value)))
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        problems.append(N_("%(label)s must be a number, not %(value)s", label=label, value=repr(str(value)[:40])))
        return None
    if not math.isfinite(out):
        problems.append(N_("%(label)s must be a finite number", label=label))
        return None
    return out


def parse_time(value: Any, label: str, problems: list[str], *, now: dt.datetime) -> dt.datetime | None:
    """An ISO date-time (aware, or naive = local time where the case is, placed by the store)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        problems.append(
            N_(
                "%(label)s must be a date and time like 2026-05-01T09:30, not %(value)s",
                label=label,
                value=repr(str(value)[:40]),
            )
        )
        return None
    if pd.isna(ts):
        return None
    out = ts.to_pydatetime()
    if out.tzinfo is not None and out > now + FUTURE_SLACK:
        problems.append(N_("%(label)s %(when)s is in the future", label=label, when=out.isoformat()))
        return None
    return out


def parse_case_input(raw: Mapping[str, Any], *, source: str = "web", now: dt.datetime | None = None) -> CaseInput:
    """Check one case's fields; :class:`InputError` listing every problem at once.

    Parameters
    ----------
    raw : mapping
        ``lon``, ``lat`` (numbers or text), ``crs`` (default EPSG:4326),
        ``category`` (code or name), ``description``, ``address``,
        ``client_id`` (idempotency key, 8–64 of ``A-Z a-z 0-9 . _ : -``),
        ``reported_at`` (ISO; default now).
    source : str
        The channel, one of :data:`CHANNELS`.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    if not isinstance(raw, Mapping):
        raise InputError(N_("send an object with lon, lat, crs, category, description"))
    if source not in CHANNELS:
        raise InputError(
            N_("source must be one of %(choices)s, not %(value)s", choices=", ".join(CHANNELS), value=repr(source))
        )
    problems: list[str] = []
    lon = _number(raw.get("lon"), "lon", problems)
    lat = _number(raw.get("lat"), "lat", problems)
    if (lon is None or lat is None) and not any(p.startswith(("lon", "lat")) for p in problems):
        problems.append(
            N_("a location is needed: lon and lat (click the map, use the phone's GPS, or find an address)")
        )
    crs = _text(raw.get("crs"), 40, "crs", problems) or "EPSG:4326"
    category = _text(raw.get("category"), MAX_CATEGORY, "category", problems)
    if category is None and not any(p.startswith("category") for p in problems):
        problems.append(N_("a category is needed"))
    description = _text(raw.get("description"), MAX_DESCRIPTION, "description", problems)
    address = _text(raw.get("address"), MAX_ADDRESS, "address", problems)
    client_id = _text(raw.get("client_id"), 64, "client_id", problems)
    if client_id is not None and not CLIENT_ID.fullmatch(client_id):
        problems.append(N_("client_id must be 8 to 64 letters, digits or . _ : - (a UUID fits)"))
    reported_at = parse_time(raw.get("reported_at"), "reported_at", problems, now=now)
    if problems:
        raise InputError(N_.join("; ", problems))
    return CaseInput(
        lon=lon,
        lat=lat,
        crs=crs,
        category=category,
        description=description,
        address=address,
        client_id=client_id,
        reported_at=reported_at,
        source=source,
    )


def find_columns(columns) -> dict[str, str | None]:
    """The column of a table holding each field of :data:`COLUMNS` (None when absent)."""
    lowered = {str(c).strip().lower(): c for c in reversed(list(columns))}
    return {field: next((lowered[n] for n in names if n in lowered), None) for field, names in COLUMNS.items()}


def rows_to_inputs(
    frame: pd.DataFrame, *, crs: str, source: str = "import", now: dt.datetime | None = None
) -> tuple[list[CaseInput | None], list[str | None]]:
    """Each row of a table as a :class:`CaseInput`, or the reason it cannot be one (rows in = rows out).

    Columns are found by :func:`find_columns`; lon/lat and category are required.
    """
    cols = find_columns(frame.columns)
    missing = [f for f in ("lon", "lat", "category") if cols[f] is None]
    if missing:
        raise InputError(
            N_(
                "the table needs a column for %(fields)s (%(names)s); its columns are: %(columns)s",
                fields=", ".join(missing),
                names="; ".join(" / ".join(COLUMNS[f]) for f in missing),
                columns=", ".join(map(str, frame.columns)),
            )
        )
    now = now or dt.datetime.now(dt.timezone.utc)
    inputs: list[CaseInput | None] = []
    errors: list[str | None] = []
    records = {
        f: (frame[c].to_numpy(dtype=object) if c is not None else np.full(len(frame), None)) for f, c in cols.items()
    }
    for i in range(len(frame)):  # per row: each row's problems are its own message
        raw = {f: _cell(records[f][i]) for f in cols}
        raw["crs"] = crs
        try:
            inputs.append(parse_case_input(raw, source=source, now=now))
            errors.append(None)
        except InputError as exc:
            inputs.append(None)
            errors.append(exc.text)  # a gisgrid.text.Text: said in the page's language where shown
    return inputs, errors


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NaT:
        return None
    return value
