"""API keys over HTTP: ``Authorization: Bearer``, scoped like any user, no CSRF for key-authenticated JSON only,
no session cookie, a rate per key."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gisgrid.accounts import store
from gisgrid.accounts.users import Actor

ACTOR = Actor.system("tests")


def _key(engine, username: str, grants) -> str:
    with engine.begin() as conn:
        try:
            user = store.find_user(conn, username)
        except Exception:  # noqa: BLE001 - made once per session database
            user = store.create_user(
                conn,
                ACTOR,
                username=username,
                password="client-password-1",
                min_password_length=10,
                name=f"接口{username}",
                grants=grants,
            )
        text, _id = store.create_api_key(conn, ACTOR, user.id, "tests")
    return text


@pytest.fixture(scope="module")
def keys(app, users):
    engine = app.extensions["gisgrid.engine"]
    return {
        "plain": _key(engine, "api-plain", [("api_client", None)]),
        # an API client that also manages one county: it sees that county, as a manager would
        "county": _key(engine, "api-county", [("api_client", None), ("manager", "110108")]),
    }


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


POINT = {"lon": 116.32, "lat": 39.99}


def test_a_key_authenticated_json_request_needs_no_csrf_token_and_gets_no_cookie(app, keys):
    anon = app.test_client(user=None)
    res = anon.post("/api/assign", json=POINT, headers=_bearer(keys["plain"]))
    assert res.status_code in (200, 400) and (res.get_json() or {}).get("error") != "CSRFError", res.get_json()
    assert "Set-Cookie" not in res.headers  # a machine client keeps no session
    # the same key on a form post still needs the token
    form = anon.post("/api/assign", data={"lon": "1"}, headers=_bearer(keys["plain"]))
    assert form.status_code == 400 and form.get_json()["error"] == "CSRFError"


def test_a_session_json_write_without_the_token_is_still_refused(app, users):
    manager = app.test_client(user="manager")
    manager.environ_base.pop("HTTP_X_CSRFTOKEN")
    res = manager.post("/api/assign", json=POINT)
    assert res.status_code == 400 and res.get_json()["error"] == "CSRFError"


def test_a_key_sees_what_its_user_sees(app, keys):
    anon = app.test_client(user=None)
    county = anon.get("/export/segments.geojson", headers=_bearer(keys["county"]))
    everything = app.test_client(user="admin").get("/export/segments.geojson")
    assert county.status_code == 200
    assert 0 < len(county.get_json()["features"]) < len(everything.get_json()["features"])
    assert anon.get("/export/segments.geojson", headers=_bearer(keys["plain"])).status_code == 403


def test_a_key_decides_even_beside_a_session_cookie(app, keys):
    admin = app.test_client(user="admin")  # an admin's browser session ...
    res = admin.get("/export/segments.geojson", headers=_bearer(keys["plain"]))  # ... with a plain client's key
    assert res.status_code == 403


def test_a_bad_key_is_a_401_in_json_never_a_login_page(app, keys):
    anon = app.test_client(user=None)
    bad = keys["plain"][:-3] + "abc"
    for path in ("/api/assign", "/map", "/export/segments.geojson"):
        res = anon.open(path, method="POST" if path == "/api/assign" else "GET", json=POINT, headers=_bearer(bad))
        assert res.status_code == 401 and res.get_json()["error"] == "Unauthorized", path


def test_requests_beyond_a_keys_rate_are_429(db_url, users, settings):
    from gisgrid.web import create_app

    limited = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings, "API_RATE_LIMIT": "3 per minute"}
    )
    key = _key(limited.extensions["gisgrid.engine"], "api-plain", [("api_client", None)])
    other = _key(limited.extensions["gisgrid.engine"], "api-plain", [("api_client", None)])
    client = limited.test_client(user=None)
    codes = [client.post("/api/assign", json=POINT, headers=_bearer(key)).status_code for _ in range(4)]
    assert codes[:3] != [429] * 3 and codes[3] == 429
    assert client.post("/api/assign", json=POINT, headers=_bearer(other)).status_code != 429  # per key
    with limited.extensions["gisgrid.engine"].connect() as conn:
        used = conn.execute(
            sa.text("SELECT count(*) FROM api_key WHERE last_used_at IS NOT NULL AND name = 'tests'")
        ).scalar()
    assert used >= 2
