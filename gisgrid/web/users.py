"""User management for admins (``/admin/users``): the same store functions as ``gisgrid users``.

``GET  /admin/users/``                          every account, with its person, roles and state
``GET|POST /admin/users/new``                   an account for a person who exists already
``GET  /admin/users/<id>``                      one account: roles, password, API keys
``POST /admin/users/<id>/active``               disable or enable
``POST /admin/users/<id>/password``             reset the password (typed, or made and shown once)
``POST /admin/users/<id>/grant``                grant a role in a jurisdiction (or department), or everywhere
``POST /admin/users/<id>/revoke``               revoke a grant
``POST /admin/users/<id>/api-keys``             make an API key (shown once)
``POST /admin/users/<id>/api-keys/<k>/revoke``  revoke a key

Every write goes through :mod:`gisgrid.accounts.store`, which writes the
audit log with the signed-in admin as the author.  An admin cannot disable
their own account or revoke their own admin role (nobody could undo it from
here).  A made password or key is shown in the answer to the POST that made
it, never put in the session cookie (signed, but readable).
"""

from __future__ import annotations

import logging

import pandas as pd
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from gisgrid import timeutil
from gisgrid.accounts.keys import API_ROLE
from gisgrid.accounts.roles import ROLE_NAMES, check_role
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import (
    create_api_key,
    create_user,
    get_user,
    grant_role,
    list_api_keys,
    list_jurisdictions,
    list_users,
    revoke_api_key,
    revoke_role,
    set_active,
    set_password,
)
from gisgrid.accounts.users import generate_password
from gisgrid.errors import InputError, NotFound
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine
from gisgrid.web.i18n import reason

LOGGER = logging.getLogger(__name__)

bp = Blueprint("users", __name__, url_prefix="/admin/users")


def role_labels() -> dict[str, str]:
    """Each account role's name in the page's language (the codes stay in the forms' values)."""
    return {
        "admin": _("System administrator"),
        "manager": _("Manager (street-chief office)"),
        "planner": _("Planner"),
        "dispatcher": _("Dispatcher"),
        "clerk": _("Clerk"),
        "chief": _("Street or segment chief"),
        "grid_worker": _("Grid worker"),
        "inspector": _("Inspector"),
        "department": _("Department"),
        "api_client": _("API client"),
    }


def _settings():
    from flask import current_app

    return current_app.config["GISGRID_SETTINGS"]


def _when(value) -> str:
    return timeutil.local_text(value, current_app.config["GISGRID_SETTINGS"].timezone)


def _places(conn) -> list[dict]:
    """Codes a grant may name: every jurisdiction (admins see everything), then the departments."""
    from gisgrid.db.layers import fetch_layer

    out = [{"code": j["code"], "name": j["name"]} for j in list_jurisdictions(conn, Scope.everything())]
    departments = fetch_layer(conn, "departments")
    return out + [{"code": d.code, "name": d.name} for d in departments.itertuples()]


def _user(user_id: int):
    user = get_user(get_conn(), user_id)
    if user is None:
        raise NotFound(_("No such user."))
    return user


def _page(user_id: int, *, status: int = 200, error: str | None = None, secret: dict | None = None):
    conn = get_conn()
    user = _user(user_id)
    locked = conn_locked(conn, user_id)
    keys = [
        {
            "id": int(k.id),
            "prefix": k.prefix,
            "name": k.name,
            "created": _when(k.created_at),
            "last_used": _when(k.last_used_at),
            "revoked": _when(k.revoked_at),
        }
        for k in list_api_keys(conn, user_id).itertuples()
    ]
    return render_template(
        "user.html",
        user=user,
        locked=locked,
        keys=keys,
        may_have_keys=API_ROLE in user.roles,
        roles=ROLE_NAMES,
        role_labels=role_labels(),
        places=_places(conn),
        error=error,
        secret=secret,
    ), status


def conn_locked(conn, user_id: int) -> str | None:
    """When the account's lock ends, if it is locked now."""
    frame = list_users(conn)
    row = frame[frame["id"] == user_id]
    if row.empty:
        return None
    until = row.iloc[0]["locked_until"]
    if until is None or pd.isna(until) or until <= pd.Timestamp.now(tz=until.tz):
        return None
    return _when(until)


@bp.get("/")
def index():
    q = (request.args.get("q") or "").strip().lower()
    frame = list_users(get_conn())
    now = pd.Timestamp.now(tz="UTC")
    rows = []
    for u in frame.itertuples():
        if q and q not in f"{u.username} {u.name} {u.roles} {u.person_id}".lower():
            continue
        locked = u.locked_until is not None and not pd.isna(u.locked_until) and u.locked_until > now
        rows.append(
            {
                "id": int(u.id),
                "username": u.username,
                "name": u.name,
                "person_id": int(u.person_id),
                "roles": u.roles,
                "active": bool(u.active),
                "locked": locked,
                "last_login": _when(u.last_login_at),
            }
        )
    return render_template("users.html", users=rows, q=request.args.get("q", ""))


def _person_id(text: str) -> int:
    """The person an account is for: ``person:12`` as the people search offers it, or ``12``."""
    text = (text or "").strip()
    kind, _sep, raw = text.rpartition(":")
    if kind in ("", "person") and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    raise InputError(_("Choose the person from the list as you type (every account belongs to a person)."))


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = {k: (request.form.get(k) or "").strip() for k in ("username", "person", "role", "place")}
    conn = get_conn()
    context = {"form": form, "roles": ROLE_NAMES, "role_labels": role_labels(), "places": _places(conn)}
    if request.method == "GET":
        return render_template("user_new.html", error=None, **context)
    typed = request.form.get("password") or ""
    password = typed or generate_password()
    try:
        grants = [(check_role(form["role"]), form["place"] or None)] if form["role"] else []
        with get_engine().begin() as tx:
            user = create_user(
                tx,
                current_actor(),
                username=form["username"],
                password=password,
                min_password_length=_settings().password_min_length,
                person_id=_person_id(form["person"]),
                grants=grants,
                must_change_password=not typed,
            )
    except (InputError, NotFound, ValueError) as exc:
        return render_template("user_new.html", error=reason(exc), **context), 404 if isinstance(exc, NotFound) else 400
    secret = None if typed else {"what": _("Password of %(user)s", user=user.username), "value": password}
    return _page(user.id, status=201, secret=secret)


@bp.get("/<int:user_id>")
def show(user_id: int):
    return _page(user_id)


def _write(user_id: int, action, *, done: str):
    """Run ``action(tx, actor)`` in a transaction; the user's page, with ``done`` or the refusal."""
    _user(user_id)
    try:
        with get_engine().begin() as tx:
            action(tx, current_actor())
    except (InputError, NotFound, ValueError) as exc:  # a bad role or place: said on the page
        return _page(user_id, status=400, error=reason(exc))
    flash(done)
    return redirect(url_for("users.show", user_id=user_id), code=303)


@bp.post("/<int:user_id>/active", endpoint="set_active")
def set_active_view(user_id: int):
    active = request.form.get("active") == "1"
    if not active and user_id == current_user.id:
        return _page(user_id, status=400, error=_("You cannot disable your own account."))
    return _write(
        user_id,
        lambda tx, actor: set_active(tx, actor, user_id, active),
        done=_("Account enabled.") if active else _("Account disabled; its sessions have ended."),
    )


@bp.post("/<int:user_id>/password")
def reset_password(user_id: int):
    typed = request.form.get("password") or ""
    password = typed or generate_password()
    _user(user_id)
    try:
        with get_engine().begin() as tx:
            set_password(
                tx,
                current_actor(),
                user_id,
                password,
                min_password_length=_settings().password_min_length,
                must_change=True,
            )
    except InputError as exc:
        return _page(user_id, status=400, error=reason(exc))
    if typed:
        flash(_("Password reset: the user changes it at the next login."))
        return redirect(url_for("users.show", user_id=user_id), code=303)
    return _page(user_id, secret={"what": _("New password"), "value": password})


def _grant_form() -> tuple[str, str | None]:
    role = (request.form.get("role") or "").strip()
    return check_role(role), (request.form.get("place") or "").strip() or None


@bp.post("/<int:user_id>/grant")
def grant(user_id: int):
    try:
        role, place = _grant_form()
    except ValueError as exc:
        return _page(user_id, status=400, error=reason(exc))
    return _write(
        user_id,
        lambda tx, actor: grant_role(tx, actor, user_id, role, place),
        done=_("Granted %(role)s.", role=f"{role}@{place}" if place else role),
    )


@bp.post("/<int:user_id>/revoke")
def revoke(user_id: int):
    try:
        role, place = _grant_form()
    except ValueError as exc:
        return _page(user_id, status=400, error=reason(exc))
    if user_id == current_user.id and role == "admin":
        return _page(user_id, status=400, error=_("You cannot revoke your own admin role."))

    def run(tx, actor):
        if not revoke_role(tx, actor, user_id, role, place):
            raise InputError(_("The account holds no such role."))

    return _write(user_id, run, done=_("Revoked %(role)s.", role=f"{role}@{place}" if place else role))


@bp.post("/<int:user_id>/api-keys")
def create_key(user_id: int):
    _user(user_id)
    try:
        with get_engine().begin() as tx:
            text, _key_id = create_api_key(tx, current_actor(), user_id, request.form.get("name", ""))
    except InputError as exc:
        return _page(user_id, status=400, error=reason(exc))
    return _page(user_id, status=201, secret={"what": _("API key"), "value": text})


@bp.post("/<int:user_id>/api-keys/<int:key_id>/revoke")
def revoke_key(user_id: int, key_id: int):
    _user(user_id)
    return _write(
        user_id,
        lambda tx, actor: revoke_api_key(tx, actor, key_id, user_id=user_id),
        done=_("Key revoked."),
    )
