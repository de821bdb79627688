"""The security baseline of every page: secret key, session cookie, CSRF, headers, request size.

* The default secret key is refused outside the demo and tests
  (:func:`secret_key`): everyone knows it, so anyone could forge a session.
* The session cookie is ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` when the
  request came over TLS (:class:`SessionInterface`); it expires after
  ``GISGRID_SESSION_LIFETIME_MINUTES``.
* CSRF (Flask-WTF) covers every POST: forms carry ``csrf_token``, the pages'
  ``fetch()`` calls send it in ``X-CSRFToken`` (read from the
  ``<meta name="csrf-token">`` of ``base.html``).
* Headers: a Content-Security-Policy that allows this origin only, scripts
  and style elements by a per-request nonce (Folium writes inline scripts;
  :func:`nonce_tags` stamps them), ``frame-ancestors 'none'``, ``nosniff``, a
  ``Referrer-Policy``; HSTS under TLS.
* Request limits and the error pages in the page's language (413 included)
  are :mod:`gisgrid.web.guards`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup

from gisgrid.config import DEFAULT_SECRET_KEY, Settings
from gisgrid.errors import ConfigError

LOGGER = logging.getLogger(__name__)

csrf = CSRFProtect()

SECRET_KEY_HELP = (
    "gisgrid refuses to start with the default secret key (anyone could forge a login). "
    "Set a random one, e.g.  export GISGRID_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')  "
    "or SECRET_KEY = '...' in the instance file (instance/gisgrid.cfg, or $GISGRID_CONFIG). "
    "The demo (`make demo`, GISGRID_DEMO=1) makes one for itself."
)
#: Requests whose answer is JSON, not a page.
JSON_PREFIXES = ("/api/", "/export/", "/open311/")


def wants_json() -> bool:
    """Answer with JSON, not a page (as :mod:`gisgrid.web.guards` decides)."""
    return request.path.startswith(JSON_PREFIXES) or request.path in ("/healthz", "/readyz") or request.is_json


def secret_key(settings: Settings, *, testing: bool, ephemeral: bool = False) -> str:
    """The secret key to sign sessions with; :class:`ConfigError` for the default one outside demo and tests.

    In the demo the default key is replaced by a random one kept in
    ``<var_dir>/secret_key`` (so sessions survive a restart); with
    ``ephemeral`` by a random one of this process.
    """
    key = settings.secret_key
    if key and key != DEFAULT_SECRET_KEY:
        return key
    if testing:
        return key or DEFAULT_SECRET_KEY
    if ephemeral:
        return secrets.token_hex(32)
    if settings.demo:
        path = Path(settings.var_dir) / "secret_key"
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        new = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new)
        LOGGER.warning("demo: a random secret key was written to %s", path)
        return new
    raise ConfigError(SECRET_KEY_HELP)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with ``Secure`` set whenever the request came over TLS.

    A request authenticated by an API key gets no session cookie: a machine
    client keeps no session, and its key must not turn into one.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def save_session(self, app: Flask, session, response) -> None:
        if g.get("gisgrid_api_key") is not None:
            return None
        return super().save_session(app, session, response)


_TAG = re.compile(r"<(script|style)(?![^>]*\snonce=)(?=[\s>])", re.IGNORECASE)


def nonce_tags(html: str | None) -> Markup:
    """Trusted HTML (a Folium map's parts) with this request's CSP nonce on every ``<script>`` and ``<style>``."""
    if not html:
        return Markup("")
    return Markup(_TAG.sub(lambda m: f'<{m.group(1)} nonce="{g.csp_nonce}"', str(html)))


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            # style="" attributes (Leaflet, Folium popups, templates) carry no script; elements still need the nonce
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def init_app(app: Flask) -> None:
    settings: Settings = app.config["GISGRID_SETTINGS"]
    app.session_interface = SessionInterface()
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", dt.timedelta(minutes=settings.session_lifetime_minutes))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
    app.jinja_env.filters["nonce_tags"] = nonce_tags

    @app.before_request
    def _nonce():
        g.csp_nonce = secrets.token_urlsafe(18)

    @app.context_processor
    def _csp():
        return {"csp_nonce": lambda: g.get("csp_nonce", "")}

    @app.after_request
    def _headers(response):
        nonce = g.get("csp_nonce") or secrets.token_urlsafe(18)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(nonce))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def init_csrf(app: Flask) -> None:
    """CSRF on every POST: after the access check, so that a stranger is sent to log in, not told of tokens.

    The one exception: a JSON request authenticated by an API key
    (:mod:`gisgrid.web.auth`).  A browser attaches cookies to a forged
    cross-site request, never an ``Authorization`` header, and a JSON body
    cannot be sent across sites without a CORS preflight this app never
    answers.  A key-authenticated form post still needs the token.
    """
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked below, where the API key is known
    csrf.init_app(app)

    @app.before_request
    def _csrf_protect():
        if request.method not in app.config.get("WTF_CSRF_METHODS", ("POST", "PUT", "PATCH", "DELETE")):
            return None
        if g.get("gisgrid_api_key") is not None and (request.is_json or g.get("gisgrid_key_in_form")):
            return None
        csrf.protect()
        return None

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        LOGGER.info("CSRF refused %s %s: %s", request.method, request.path, exc.description)
        text = _("The form has expired or did not come from this site. Reload the page and try again.")
        if wants_json():
            return jsonify(error="CSRFError", detail=text), 400
        return render_template("error.html", error=text, title=_("Request refused")), 400
