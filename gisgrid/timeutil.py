"""The local day: one rule for turning an instant into the calendar day people mean.

A report made at 20:30 UTC belongs to the next day in Shanghai (04:30, UTC+8)
and to the same day in Helsinki (22:30 in winter, 23:30 in summer).  Which owner held
a place "on that day", which deadline day a case falls on and which reports a
date filter matches all depend on it, so every such question goes through
:func:`local_day` (one value), :func:`local_days` (whole arrays) or
:func:`day_start` (the instant a local day begins, for index-friendly SQL
bounds).  The time zone is the deployment's ``timezone`` setting
(``GISGRID_TIMEZONE``, default in :mod:`gisgrid.config`) unless the jurisdiction
says otherwise (``jurisdiction.timezone``, inherited down the tree; SQL
function ``timezone_of_jurisdiction``).

Pure: no database, no Flask.  Naive values are taken as already local (the
written local time of a spreadsheet), never as UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from gisgrid.errors import ConfigError


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``"Asia/Hong_Kong"``, ``"Europe/Helsinki"``).

    Raises
    ------
    ConfigError
        An unknown or empty name (the message names it).
    """
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Helsinki'") from None


def local_day(ts: dt.datetime | pd.Timestamp | dt.date, tz: str) -> dt.date:
    """The calendar day of the instant ``ts`` in time zone ``tz``.

    Parameters
    ----------
    ts : datetime, Timestamp or date
        An aware instant (any offset), or a naive local time (taken as local
        already), or a date (returned as is).
    tz : str
        IANA name of the local time zone.

    Examples
    --------
    >>> local_day(dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.timezone.utc), "Asia/Hong_Kong")
    datetime.date(2026, 3, 2)
    >>> local_day(dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.timezone.utc), "Europe/Helsinki")
    datetime.date(2026, 3, 1)
    """
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    if not isinstance(ts, dt.datetime):
        return ts
    if ts.tzinfo is None:
        return ts.date()
    return ts.astimezone(zone(tz)).date()


def local_now(tz: str) -> dt.datetime:
    """The current time in ``tz`` (aware)."""
    return dt.datetime.now(zone(tz))


def local_today(tz: str) -> dt.date:
    """Today's date in ``tz`` (not the server's clock zone)."""
    return local_now(tz).date()


def local_days(instants: Any, tz: str) -> np.ndarray:
    """:func:`local_day` of a whole array, vectorised: numpy ``datetime64[D]`` (NaT where missing).

    ``instants`` are aware timestamps (a tz-aware Series/array), epoch
    seconds as numbers (UTC), or naive timestamps (taken as local).
    """
    s = instants if isinstance(instants, pd.Series) else pd.Series(instants, copy=False)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        s = pd.to_datetime(s, unit="s", utc=True)
    elif not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, errors="coerce", utc=False, format="mixed")
    if getattr(s.dtype, "tz", None) is not None:
        s = s.dt.tz_convert(tz).dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


def day_start(day: dt.date, tz: str) -> dt.datetime:
    """The aware instant at which local ``day`` begins in ``tz`` (00:00 local time).

    For SQL bounds on ``timestamptz`` columns: ``reported_at >= day_start(d)``
    keeps the index usable where ``reported_at::date`` would not, and does not
    depend on the database session's ``TimeZone``.
    """
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone(tz))


def localize(ts: dt.datetime | pd.Timestamp, tz: str) -> dt.datetime:
    """An aware datetime: a naive ``ts`` is read as local time in ``tz``; an aware one is kept."""
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=zone(tz))


def local_text(value: Any, tz: str, *, seconds: bool = False) -> str:
    """An instant as the text people read: local time in ``tz``, ``YYYY-MM-DD HH:MM`` (``:SS`` with
    ``seconds``), the one format of every page, list, inbox and export; ``""`` for a missing value.

    ``value`` is an aware datetime or Timestamp (any offset, e.g. UTC from the database), a naive one
    (taken as UTC: timestamps the database or a log stored without a zone), an ISO 8601 string, or
    None/NaT/NaN.  Text that is not a time is returned as is.

    Examples
    --------
    >>> local_text(dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.timezone.utc), "Asia/Hong_Kong")
    '2026-03-02 04:30'
    >>> local_text(None, "Asia/Hong_Kong")
    ''
    """
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    if value is None or value is pd.NaT:  # NaT is a datetime too, without a time
        return ""
    if isinstance(value, str):
        if not value.strip():
            return ""
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return value
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return ""
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(zone(tz)).strftime(fmt)
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def local_texts(values: Any, tz: str, *, seconds: bool = False) -> pd.Series:
    """:func:`local_text` of a whole column (exports): ``""`` where missing."""
    s = pd.to_datetime(pd.Series(values, copy=False), utc=True, errors="coerce")
    out = s.dt.tz_convert(zone(tz)).dt.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return out.fillna("")
