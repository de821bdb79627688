"""One tree of exceptions.  Each carries the HTTP status the web layer answers with."""

from __future__ import annotations


class GisgridError(Exception):
    """Base class: a message a user can act on."""

    http_status_code = 500
    default_msg = "internal error"

    def __init__(self, msg: str | None = None):
        self.text = msg or self.default_msg
        super().__init__(self.text)

    def translated(self, gettext) -> str:
        """The message in the language of ``gettext`` (a :class:`gisgrid.text.Text` is translated, plain
        text is shown as written)."""
        from gisgrid.text import translate  # noqa: PLC0415

        return translate(getattr(self, "text", None) or (self.args[0] if self.args else self.default_msg), gettext)


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
        self.text = self.reason

    def translated(self, gettext) -> str:
        from gisgrid.text import translate  # noqa: PLC0415

        where = []
        if self.row is not None:
            where.append(gettext("row %(n)s") % {"n": self.row})
        if self.column:
            where.append(gettext("column %(name)s") % {"name": repr(self.column)})
        reason = translate(self.reason, gettext)
        return f"{', '.join(where)}: {reason}" if where else reason


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
