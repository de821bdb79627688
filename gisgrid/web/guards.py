"""Bounds and answers for hostile or broken requests, for every page and API at once.

- a body larger than ``max_request_bytes`` (JSON bodies: ``max_json_bytes``) is a 413;
- a NUL character in the query string or a form field is a 400 (PostgreSQL text
  cannot hold it, and no user types one);
- JSON nested deeper than ``max_json_depth`` is refused as unreadable JSON
  (the standard decoder would raise ``RecursionError``);
- every HTTP error answers in the page's language: JSON ``{error, detail}``
  under ``/api/`` and ``/export/``, the error page elsewhere;
- anything unexpected is logged with its traceback and answered with a short
  500 page, never the traceback.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from gisgrid.errors import GisgridError

LOGGER = logging.getLogger(__name__)

_OPEN = frozenset("[{")
_CLOSE = frozenset("]}")


def json_depth(text: str | bytes) -> int:
    """Deepest nesting of arrays and objects in a JSON text, counted without parsing it.

    Brackets inside strings are skipped (escapes honoured).  Linear in the text,
    with no recursion, so any body size the request limit allows is safe.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in _CLOSE:
            depth -= 1
    return deepest


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, refusing documents nested deeper than the app's ``max_json_depth``."""

    def loads(self, s, **kwargs):
        limit = self._app.config["GISGRID_SETTINGS"].max_json_depth
        if json_depth(s) > limit:
            raise ValueError(f"JSON nested deeper than {limit} levels")
        try:
            return json.loads(s, **kwargs)
        except RecursionError as exc:  # pragma: no cover - the depth check above comes first
            raise ValueError("JSON nested too deeply") from exc


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/export/")) or request.path in ("/healthz", "/readyz") or request.is_json


def _answer(status: int, error: str, detail: str):
    if _wants_json():
        return jsonify(error=error, detail=detail), status
    return render_template("error.html", error=detail, status=status), status


def _http_detail(exc: HTTPException) -> str:
    """A short message in the page's language for the common HTTP errors."""
    settings_mb = None
    if isinstance(exc, RequestEntityTooLarge):
        from flask import current_app

        settings = current_app.config["GISGRID_SETTINGS"]
        limit = settings.max_json_bytes if request.is_json else settings.max_request_bytes
        settings_mb = max(limit / (1024 * 1024), 0.1)
        return _("The request is too large: at most %(mb).1f MB.", mb=settings_mb)
    messages = {
        400: _("The request could not be read."),
        403: _("Your account may not open this page."),
        404: _("This page does not exist."),
        405: _("This address does not accept that method."),
    }
    return messages.get(exc.code or 500, exc.description or exc.name)


def init_app(app: Flask) -> None:
    """Install the limits, the JSON provider and the error answers on ``app``."""
    settings = app.config["GISGRID_SETTINGS"]
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: unbounded
        app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json = BoundedJSONProvider(app)
    app.json.ensure_ascii = False

    @app.before_request
    def _bounded_request():
        if request.is_json and (request.content_length or 0) > settings.max_json_bytes:
            raise RequestEntityTooLarge()
        if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
            raise BadRequest(_("The request contains a NUL character."))
        if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            if any("\x00" in k or "\x00" in v for k, v in request.form.items(multi=True)):
                raise BadRequest(_("The request contains a NUL character."))
        return None

    @app.errorhandler(GisgridError)
    def _gisgrid_error(exc: GisgridError):
        return _answer(exc.http_status_code, type(exc).__name__, str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        detail = exc.description if isinstance(exc, BadRequest) and "NUL" in (exc.description or "") else None
        return _answer(exc.code, exc.name.lower().replace(" ", "_"), detail or _http_detail(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        from gisgrid.web.db import _bad_value, reset_conn

        reset_conn()  # the error page reads too (the menu, the inbox count): not in an aborted transaction
        if _bad_value(exc):  # a database refusal wrapped by pandas: the request's value, as in gisgrid.web.db
            return _answer(
                400, "bad_value", _("A value in the request cannot be used: it is out of range or of the wrong kind.")
            )
        LOGGER.exception("unexpected error on %s %s", request.method, request.path)
        return _answer(500, "internal_error", _("Something went wrong on the server; it has been logged."))
