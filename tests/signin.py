"""Signing test clients and browsers in, so that tests written before login keep meaning what they meant.

* :class:`SignedInClient` is every app's test client (set in ``conftest.py``):
  ``app.test_client()`` is signed in as a test admin of that app's database,
  and sends the CSRF token with every request, as the pages do.
  ``app.test_client(user=None)`` is anonymous; ``user="duanzhang"`` signs in
  as that (existing) account; ``role="planner"`` as a test account with only
  that role.
* :func:`session_cookie` gives the value of a signed-in session cookie, for
  the browser tests' live server.
"""

from __future__ import annotations

import hashlib
import os
import time

import sqlalchemy as sa
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

TEST_PASSWORD = "test-password-1"


def account_for(app, *, user: str | None = None, role: str | None = "admin"):
    """The account ``user`` of the app's database, or a ``test-<role>`` account with that role (made once)."""

    engine = app.extensions["gisgrid.engine"]
    name = user or f"test-{role}"
    try:
        return _account(engine, name, user, role)
    except sa.exc.IntegrityError:  # made at the same moment by another thread's client
        return _account(engine, name, user, role)


def _account(engine, name: str, user: str | None, role: str | None):
    from gisgrid.accounts.store import create_user, find_user
    from gisgrid.accounts.users import Actor
    from gisgrid.errors import NotFound

    with engine.begin() as conn:
        try:
            return find_user(conn, name)
        except NotFound:
            if user:
                raise
        place = None
        if role in ("department",):
            place = conn.execute(sa.text("SELECT code FROM department ORDER BY id LIMIT 1")).scalar()
        return create_user(
            conn,
            Actor.system("tests"),
            username=name,
            password=TEST_PASSWORD,
            min_password_length=10,
            name=f"测试{role}",
            grants=[(role, place)],
        )


def session_data(app, account) -> dict:
    raw_csrf = hashlib.sha1(os.urandom(64)).hexdigest()
    return {
        "_user_id": f"{account.id}:{account.session_version}",
        "_fresh": True,
        "_permanent": True,
        "_login_at": int(time.time()),
        "csrf_token": raw_csrf,
    }


def csrf_header(app, raw: str) -> str:
    secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
    return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


def session_cookie(app, *, user: str | None = None, role: str | None = "admin") -> str:
    """A session cookie value signed in as ``user`` (or a test account of ``role``)."""
    account = account_for(app, user=user, role=role)
    return app.session_interface.get_signing_serializer(app).dumps(session_data(app, account))


class SignedInClient(FlaskClient):
    """A test client signed in as the app's test admin unless told otherwise (``user=None``: anonymous)."""

    def __init__(self, *args, user: str | None = "", role: str | None = "admin", **kwargs):
        super().__init__(*args, **kwargs)
        if user is None:
            return
        try:
            self.sign_in(user=user or None, role=role)
        except sa.exc.OperationalError:  # no database (a health-check test): stay anonymous
            pass

    def sign_in(self, *, user: str | None = None, role: str | None = "admin"):
        account = account_for(self.application, user=user, role=role)
        data = session_data(self.application, account)
        with self.session_transaction() as sess:
            sess.clear()
            sess.update(data)
            sess.permanent = True
        self.environ_base["HTTP_X_CSRFTOKEN"] = csrf_header(self.application, data["csrf_token"])
        self.account = account
        return self

    def sign_out(self):
        with self.session_transaction() as sess:
            sess.clear()
        self.environ_base.pop("HTTP_X_CSRFTOKEN", None)
        return self
