"""Logging set-up of the command line and the server: plain lines, or JSON lines (``GISGRID_LOG_JSON``).

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and, for an error,
``exception`` (the traceback as text), so journald or a log shipper can index the fields.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

PLAIN_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, *, json_lines: bool = False) -> None:
    """Send log records of ``level`` and above to stderr, as plain or JSON lines.

    Plain lines leave a root logger already configured alone (as :func:`logging.basicConfig`); JSON lines
    replace its handlers, so that nothing else writes plain text.
    """
    if not json_lines:
        logging.basicConfig(level=level, format=PLAIN_FORMAT)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLinesFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


__all__ = ["JsonLinesFormatter", "configure_logging"]
