"""Login, logout and the user's own password change (``/auth``), with Flask-Login sessions.

A session holds ``"<user id>:<session version>"``: a password change or a
disable bumps the version in the database, which ends every other session of
the user at its next request.  A session also ends
``GISGRID_SESSION_LIFETIME_MINUTES`` after sign-in, whatever it does.
Logins are rate-limited per client address (Flask-Limiter,
``GISGRID_LOGIN_RATE_LIMIT``), and an account is locked for
``GISGRID_LOGIN_LOCK_MINUTES`` after ``GISGRID_LOGIN_MAX_FAILURES`` failures
in a row (:func:`gisgrid.accounts.store.authenticate`).

Machine clients send an API key instead: ``Authorization: Bearer gg_…``
(:mod:`gisgrid.accounts.keys`).  A request carrying one is the key's user's,
whatever session cookie it also carries; it gets no session cookie; it is
counted against ``GISGRID_API_RATE_LIMIT`` per key (429 beyond); a wrong,
revoked or disabled key is anonymous (401).  CSRF is not asked of a
key-authenticated JSON request only (:func:`gisgrid.web.security.init_csrf`):
a browser never sends such a header across sites by itself.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from gisgrid.accounts.keys import bearer_token
from gisgrid.accounts.store import (
    authenticate,
    authenticate_api_key,
    change_own_password,
    count_users,
    session_user,
)
from gisgrid.accounts.users import MAX_PASSWORD_LENGTH, User
from gisgrid.errors import InputError
from gisgrid.web.db import DATABASE_DOWN, get_conn, get_engine
from gisgrid.web.i18n import reason
from gisgrid.web.security import wants_json

LOGGER = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/auth")

#: Longest user name the form passes on (longer is refused like a wrong password, unseen by the database).
MAX_USERNAME_FIELD = 64


class SessionUser(UserMixin):
    """A signed-in :class:`~gisgrid.accounts.users.User` as Flask-Login wants it."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_version}"

    @property
    def is_active(self) -> bool:
        return self.user.active

    def __getattr__(self, name):
        return getattr(self.user, name)


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[InputRequired(), Length(max=MAX_USERNAME_FIELD)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    new = PasswordField(_l("New password"), validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    repeat = PasswordField(_l("New password again"), validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])


def client_address() -> str:
    return request.remote_addr or "unknown"


def current_actor():
    """The signed-in user as the author of a write (audit log, plan versions)."""
    return current_user.user.actor(client_address())


def _safe_next(target: str | None) -> str:
    """A redirect target on this site only (no scheme, no host, no ``//``), else the home page."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith(("//", "/\\")):
            return target
    return url_for("pages.home")


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def sign_in(user: User) -> None:
    """Start a fresh session for ``user`` (nothing of the anonymous session is kept)."""
    session.clear()
    session.permanent = True
    session["_login_at"] = int(time.time())
    login_user(SessionUser(user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    no_users = False
    if request.method == "POST":
        if form.validate_on_submit():
            settings = _settings()
            with get_engine().begin() as conn:
                result = authenticate(
                    conn,
                    form.username.data,
                    form.password.data,
                    max_failures=settings.login_max_failures,
                    lock_minutes=settings.login_lock_minutes,
                    address=client_address(),
                )
            if isinstance(result, User):
                sign_in(result)
                LOGGER.info("login %s from %s", result.username, client_address())
                if result.must_change_password:
                    return redirect(url_for("auth.password", next=request.args.get("next")))
                return redirect(_safe_next(request.args.get("next")))
            LOGGER.info("login refused (%s) from %s", result.reason, client_address())
        form.password.data = ""
        form.form_errors.append(_("Wrong user name or password."))
        status = 401
    else:
        no_users = count_users(get_conn()) == 0
    return render_template("login.html", form=form, no_users=no_users), status


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def password():
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        if form.new.data != form.repeat.data:
            form.form_errors.append(_("The two new passwords differ."))
            status = 400
        else:
            try:
                with get_engine().begin() as conn:
                    user = change_own_password(
                        conn,
                        current_actor(),
                        current_user.id,
                        form.current.data,
                        form.new.data,
                        min_password_length=_settings().password_min_length,
                    )
            except InputError as exc:
                form.form_errors.append(_("The password was not changed: %(why)s", why=reason(exc)))
                status = 400
            else:
                sign_in(user)  # this session goes on with the new version; every other one ends
                flash(_("Your password was changed."))
                return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template(
        "password.html", form=form, min_length=_settings().password_min_length, must=current_user.must_change_password
    ), status


def api_key_id() -> int | None:
    """The id of the API key this request was authenticated by (None: a session, or nobody)."""
    return g.get("gisgrid_api_key")


def _bearer() -> str | None:
    return bearer_token(request.headers.get("Authorization"))


def _load_user_from_key(req):
    """Flask-Login's request loader: the user of a valid ``Authorization: Bearer`` API key."""
    token = _bearer()
    if token is None or g.get("gisgrid_database_down"):
        return None
    with get_engine().begin() as conn:  # marks the key used
        found = authenticate_api_key(conn, token)
    if found is None:
        LOGGER.info("API key refused from %s", client_address())
        return None
    user, key_id = found
    g.gisgrid_api_key = key_id
    return SessionUser(user)


def _load_user(session_id: str):
    if _bearer() is not None:  # the key alone decides (Flask-Login then asks _load_user_from_key)
        return None
    try:
        user_id, version = (int(p) for p in session_id.split(":"))
    except (ValueError, AttributeError):
        return None
    login_at = session.get("_login_at", 0)
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if time.time() - login_at > lifetime:
        return None
    if g.get("gisgrid_database_down"):  # the error page of that failure: render it for nobody
        return None
    try:
        user = session_user(get_conn(), user_id, version)
    except DATABASE_DOWN:
        g.gisgrid_database_down = True
        raise  # answered as a 503 by gisgrid.web.db
    return SessionUser(user) if user else None


def _unauthorized():
    if wants_json():
        return jsonify(error="Unauthorized", detail="sign in first (/auth/login)"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _too_many(exc):
    text = _("Too many login attempts from your address. Wait a minute and try again.")
    if wants_json():
        return jsonify(error="TooManyRequests", detail=text), 429
    return render_template("error.html", error=text, title=_("Too many attempts")), 429


def _api_rate_limit(limiter: Limiter, rate: str):
    """A before-request hook: a key-authenticated request over ``rate`` (per key) answers 429."""
    from limits import parse_many

    items = parse_many(rate)

    def check():
        if _bearer() is None or not current_user.is_authenticated or api_key_id() is None:
            return None
        if all([limiter.limiter.hit(item, "gisgrid-api-key", str(api_key_id())) for item in items]):
            return None
        LOGGER.info("API key %s over its rate %s", api_key_id(), rate)
        detail = _("Too many requests with this API key: at most %(rate)s.", rate=rate)
        return jsonify(error="TooManyRequests", detail=detail), 429

    return check


def init_app(app: Flask) -> None:
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.user_loader(_load_user)
    manager.request_loader(_load_user_from_key)
    manager.unauthorized_handler(_unauthorized)
    manager.init_app(app)
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.register_blueprint(bp)
    settings = app.config["GISGRID_SETTINGS"]
    rate = app.config.get("LOGIN_RATE_LIMIT") or settings.login_rate_limit
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri="memory://",
        default_limits=[],
        headers_enabled=True,
        enabled=app.config.get("RATELIMIT_ENABLED", True),
    )
    app.extensions["gisgrid.limiter"] = limiter
    # the limit wraps this app's login view only: each app counts for itself
    app.view_functions["auth.login"] = limiter.limit(rate, methods=["POST"])(app.view_functions["auth.login"])
    app.register_error_handler(429, _too_many)
    if app.config.get("RATELIMIT_ENABLED", True):
        app.before_request(_api_rate_limit(limiter, app.config.get("API_RATE_LIMIT") or settings.api_rate_limit))
