"""Pages go out compressed, and a user who sees everything is not slowed by a visibility predicate."""

from __future__ import annotations

import gzip

import flask_login

from gisgrid.web.access import current_scope
from tests.signin import account_for


def test_pages_are_gzipped_when_the_browser_accepts_it(app):
    client = app.test_client()
    plain = client.get("/map")
    packed = client.get("/map", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(packed.data)
    assert len(body) > 5 * len(packed.data)  # a map page is mostly repetitive GeoJSON
    assert body.decode().count('id="gg-count"') == 1
    # a GeoJSON export compresses too
    layer = client.get("/export/segments.geojson", headers={"Accept-Encoding": "gzip"})
    assert layer.status_code == 200
    assert layer.headers.get("Content-Encoding") == "gzip"


def test_admin_scope_is_unlimited_and_a_town_manager_is_not(app, users):
    """Issue 15: an admin's queries carried ``(everything OR …)`` per report; now they carry nothing."""
    admin = account_for(app, role="admin")
    with app.test_request_context("/map"):
        flask_login.login_user(_loaded(app, admin.id))
        assert current_scope().unlimited
        assert current_scope().sql("report", "r") == "true"
    manager = _loaded(app, username="manager")  # the demo's manager of the county
    with app.test_request_context("/map"):
        flask_login.login_user(manager)
        assert not current_scope().unlimited
        assert "role_grant" in current_scope().sql("report", "r")


def _loaded(app, user_id: int | None = None, *, username: str | None = None):
    from gisgrid.accounts.store import find_user, get_user
    from gisgrid.web.auth import SessionUser

    with app.extensions["gisgrid.engine"].connect() as conn:
        return SessionUser(find_user(conn, username) if username else get_user(conn, user_id))
