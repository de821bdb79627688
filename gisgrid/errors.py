"""One tree of exceptions.  Each carries the HTTP status the web layer answers with."""

from __future__ import annotations


class GisgridError(Exception):
    """Base class: a message a user can act on."""

    http_status_code = 500
    default_msg = "internal error"

    def __init__(self, msg: str | None = None):
        super().__init__(msg or self.default_msg)


class ConfigError(GisgridError):
    http_status_code = 500
    default_msg = "configuration error"


class DatabaseError(GisgridError):
    http_status_code = 503
    default_msg = "database unavailable"


class NotFound(GisgridError, LookupError):
    http_status_code = 404
    default_msg = "not found"


class InputError(GisgridError, ValueError):
    """Bad input.  ``row`` is the 1-based data row number (header excluded) when known."""

    http_status_code = 400
    default_msg = "invalid input"

    def __init__(self, reason: str | None = None, *, row: int | None = None, column: str | None = None):
        self.row = row
        self.column = column
        self.reason = reason or self.default_msg
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {self.reason}" if where else self.reason)


class CRSError(InputError):
    default_msg = "unknown or unsupported CRS"


class FileFormatError(InputError):
    default_msg = "unreadable file"


class Conflict(GisgridError):
    """The thing changed since the caller read it (optimistic concurrency): reload and try again."""

    http_status_code = 409
    default_msg = "changed by someone else meanwhile"


class Forbidden(GisgridError):
    """Signed in, but not allowed to do this."""

    http_status_code = 403
    default_msg = "not allowed"
