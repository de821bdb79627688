"""Login, logout, password change, CSRF, security headers and request limits, through Flask's test client."""

from __future__ import annotations

import io
import re

import pytest

from gisgrid.config import DEFAULT_SECRET_KEY
from gisgrid.demo import DEMO_PASSWORD
from gisgrid.errors import ConfigError
from gisgrid.web import create_app


def _token(client, path="/auth/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def _login(client, username, password, **kw):
    data = {"username": username, "password": password, "csrf_token": _token(client)}
    return client.post("/auth/login" + kw.get("query", ""), data=data)


@pytest.fixture()
def anon(app, users):
    return app.test_client(user=None)


def test_pages_need_login_json_needs_401(anon):
    resp = anon.get("/?town=x")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/auth/login?next=")
    assert anon.get("/api/plan/units?town=x").status_code == 401
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/static/gisgrid.css").status_code == 200
    assert anon.get("/auth/login").status_code == 200


def test_login_logout_round_trip(anon, users):
    resp = _login(anon, "DuanZhang", DEMO_PASSWORD, query="?next=/%3Flang%3Den")
    assert resp.status_code == 302 and resp.headers["Location"] == "/?lang=en"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = anon.get("/")
    assert page.status_code == 200 and users["duanzhang"]["name"] in page.get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    assert anon.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert anon.get("/").status_code == 302


def test_secure_cookie_under_tls(app, users):
    client = app.test_client(user=None)
    token = _token(client)
    resp = client.post(
        "/auth/login",
        data={"username": "admin", "password": DEMO_PASSWORD, "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/auth/login"},
    )
    assert resp.status_code == 302 and "Secure" in resp.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in resp.headers


def test_wrong_password_and_unknown_user_get_one_answer(anon, users):
    bad = _login(anon, "admin", "not the password")
    unknown = _login(anon, "nobody-at-all", "not the password")
    assert bad.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in bad.get_data(as_text=True) and "用户名或密码错误" in unknown.get_data(as_text=True)


@pytest.mark.parametrize(
    "username, password",
    [
        ("x" * 100_000, "p"),
        ("admin' OR '1'='1", "' OR 1=1 --"),
        ("<script>alert(1)</script>", "<b>x</b>"),
        ("admin\x00", "x"),
        ("", ""),
    ],
)
def test_hostile_login_input_is_refused_cleanly(anon, users, username, password):
    resp = _login(anon, username, password)
    assert resp.status_code in (400, 401)
    html = resp.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "Traceback" not in html
    assert anon.get("/").status_code == 302  # still not signed in


def test_write_without_csrf_token_is_refused(app, users):
    client = app.test_client()  # signed in as the test admin
    client.environ_base.pop("HTTP_X_CSRFTOKEN")
    resp = client.post("/api/plan/check", json={"layer": "cell", "action": "create"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "CSRFError"
    form = client.post("/auth/password", data={"current": "x", "new": "y", "repeat": "y"})
    assert form.status_code == 400 and "刷新页面" in form.get_data(as_text=True)
    anon = app.test_client(user=None)
    assert anon.post("/auth/login", data={"username": "admin", "password": DEMO_PASSWORD}).status_code == 400


def test_security_headers_and_nonced_scripts(client):
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    html = resp.get_data(as_text=True)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline), "an inline script without the nonce"
    assert not re.search(r"\son(change|click|load)=", html), "inline event handlers are blocked by the CSP"
    # a fresh nonce on every request
    assert re.search(r"'nonce-([^']+)'", client.get("/").headers["Content-Security-Policy"]).group(1) != nonce


def test_too_large_upload_gets_a_413_page_in_the_page_language(db_url, settings):
    small = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings, "MAX_CONTENT_LENGTH": 1000}
    )
    client = small.test_client()
    resp = client.post("/geocode/", data={"file": (io.BytesIO(b"x" * 5000), "a.csv"), "column": "a"})
    assert resp.status_code == 413 and "请求过大" in resp.get_data(as_text=True)
    en = client.post("/geocode/?lang=en", data={"file": (io.BytesIO(b"x" * 5000), "a.csv")})
    assert en.status_code == 413 and "too large" in en.get_data(as_text=True)


def test_default_secret_key_is_refused_outside_demo_and_tests(db_url, settings, tmp_path):
    from dataclasses import replace

    prod = replace(settings, secret_key=DEFAULT_SECRET_KEY, demo=False)
    with pytest.raises(ConfigError, match="GISGRID_SECRET_KEY"):
        create_app({"DATABASE_URL": db_url, "GISGRID_SETTINGS": prod})
    demo = replace(prod, demo=True, var_dir=str(tmp_path))
    key = create_app({"DATABASE_URL": db_url, "GISGRID_SETTINGS": demo}).secret_key
    assert key != DEFAULT_SECRET_KEY and len(key) == 64
    assert create_app({"DATABASE_URL": db_url, "GISGRID_SETTINGS": demo}).secret_key == key  # kept across restarts
    own = replace(prod, secret_key="s" * 40)
    assert create_app({"DATABASE_URL": db_url, "GISGRID_SETTINGS": own}).secret_key == "s" * 40


def test_login_rate_limit_per_address(db_url, settings, users):
    app = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings, "LOGIN_RATE_LIMIT": "3 per minute"}
    )
    client = app.test_client(user=None)
    codes = [_login(client, "nobody", "wrong").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert "登录尝试过多" in _login(client, "nobody", "wrong").get_data(as_text=True)
    other = app.test_client(user=None)
    other.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert _login(other, "nobody", "wrong").status_code == 401  # another address is not held back


def test_password_change_ends_other_sessions(app, users):
    from tests.signin import TEST_PASSWORD, account_for

    account = account_for(app, role="clerk")
    mine, other = app.test_client(user=None), app.test_client(user=None)
    assert _login(mine, account.username, TEST_PASSWORD).status_code == 302
    assert _login(other, account.username, TEST_PASSWORD).status_code == 302
    token = _token(mine, "/auth/password")
    new = "a brand new password"
    data = {"current": TEST_PASSWORD, "new": new, "repeat": new, "csrf_token": token}
    resp = mine.post("/auth/password", data=data)
    assert resp.status_code == 302
    assert mine.get("/").status_code == 200, "the session that changed the password goes on"
    assert other.get("/").status_code == 302, "every other session ends"
    # put it back for other tests
    token = _token(mine, "/auth/password")
    mine.post(
        "/auth/password",
        data={"current": new, "new": TEST_PASSWORD + "x", "repeat": TEST_PASSWORD + "x", "csrf_token": token},
    )
    from gisgrid.accounts.store import set_password
    from gisgrid.accounts.users import Actor

    with app.extensions["gisgrid.engine"].begin() as conn:
        set_password(conn, Actor.system("tests"), account.id, TEST_PASSWORD, min_password_length=10)


def test_must_change_password_first(app, users):
    from gisgrid.accounts.store import create_user
    from gisgrid.accounts.users import Actor

    with app.extensions["gisgrid.engine"].begin() as conn:
        create_user(
            conn,
            Actor.system("tests"),
            username="fresh-user",
            password="given by admin",
            min_password_length=10,
            name="新同事",
            must_change_password=True,
        )
    client = app.test_client(user=None)
    resp = _login(client, "fresh-user", "given by admin")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/auth/password")
    assert client.get("/").headers["Location"].startswith("/auth/password")


def test_login_redirect_stays_on_this_site(anon, users):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        resp = _login(anon, "admin", DEMO_PASSWORD, query="?next=" + target)
        assert resp.headers["Location"] == "/"
        anon.post("/auth/logout", data={"csrf_token": _token(anon, "/auth/password")})


def test_lockout_after_ten_failures_through_the_page(app, users):
    from tests.signin import TEST_PASSWORD, account_for

    account = account_for(app, role="inspector")
    client = app.test_client(user=None)
    client.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    for _ in range(10):
        assert _login(client, account.username, "wrong password").status_code == 401
    assert _login(client, account.username, TEST_PASSWORD).status_code == 401, "locked: even the right password"
    from gisgrid.accounts.store import set_active
    from gisgrid.accounts.users import Actor

    with app.extensions["gisgrid.engine"].begin() as conn:
        set_active(conn, Actor.system("tests"), account.id, True)  # lifts the lock
    assert _login(client, account.username, TEST_PASSWORD).status_code == 302
