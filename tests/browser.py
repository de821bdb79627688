"""Browser harness for tests: Debian Chromium through Playwright, offline.

Fixtures (import them into a test module, or list this module in
``pytest_plugins`` of the root ``conftest.py``):

``browser``
    One headless Chromium for the session (``/usr/bin/chromium``, no
    background networking).
``page``
    A fresh page whose every request is recorded in ``page.requests``.
    Requests to any host but 127.0.0.1/localhost are aborted, listed in
    ``page.external_requests`` and fail the test at teardown: pages must work
    on an intranet with no internet.  ``page.bad_responses`` lists
    ``(status, url)`` of answers >= 400 and failed loads, ``page.js_errors``
    uncaught script errors, ``page.dialogs`` any alert/confirm messages.
``live_server``
    A factory: ``base_url = live_server(app)`` serves a WSGI app on
    127.0.0.1 (free port) in a background thread until the test ends.  A
    request that carries no session cookie is signed in as the app's test
    admin (``tests/signin.py``), so pages open as they did before login
    existed; ``live_server(app, user=None)`` serves anonymous browsers, and
    ``user="duanzhang"`` signs them in as that account.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
VIEWPORT = {"width": 1280, "height": 800}


def is_external(url: str) -> bool:
    """True if loading ``url`` would leave this machine (data:, blob:, about: stay local)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https", "ws", "wss", "ftp"}:
        return False
    return (parts.hostname or "") not in LOCAL_HOSTS


@contextlib.contextmanager
def serve_app(app) -> Iterator[str]:
    """Serve the WSGI ``app`` on 127.0.0.1 at a free port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live_server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    from playwright import sync_api  # a test dependency: its absence is a failure, not a skip

    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", service_workers="block")
    pg = context.new_page()
    pg.requests = []
    pg.external_requests = []
    pg.bad_responses = []
    pg.js_errors = []
    pg.dialogs = []
    pg.csp_violations = []

    def on_request(request):
        pg.requests.append(request.url)
        if is_external(request.url):
            pg.external_requests.append(request.url)

    def on_route(route):
        if is_external(route.request.url):
            route.abort("blockedbyclient")
        else:
            route.continue_()

    def on_dialog(dialog):
        pg.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("request", on_request)
    pg.on("response", lambda r: r.status >= 400 and pg.bad_responses.append((r.status, r.url)))
    pg.on("requestfailed", lambda r: not is_external(r.url) and pg.bad_responses.append((r.failure, r.url)))
    pg.on("pageerror", lambda exc: pg.js_errors.append(str(exc)))
    pg.on("dialog", on_dialog)
    pg.on("console", lambda m: "Content Security Policy" in m.text and pg.csp_violations.append(m.text))
    context.route("**/*", on_route)
    yield pg
    context.close()
    if pg.external_requests:
        pytest.fail(f"page requested {len(pg.external_requests)} external URL(s): {pg.external_requests}")
    if pg.csp_violations:
        pytest.fail(f"the Content-Security-Policy blocked {len(pg.csp_violations)} thing(s): {pg.csp_violations[:3]}")


def signed_in(app, cookie: str):
    """The WSGI ``app``, adding the session ``cookie`` to requests that carry no session."""
    name = app.config.get("SESSION_COOKIE_NAME", "session")

    def wsgi(environ, start_response):
        cookies = environ.get("HTTP_COOKIE", "")
        if f"{name}=" not in cookies:
            environ["HTTP_COOKIE"] = f"{cookies}; {name}={cookie}" if cookies else f"{name}={cookie}"
        return app(environ, start_response)

    return wsgi


@pytest.fixture()
def live_server():
    from tests.signin import session_cookie

    def serve(app, user: str | None = ""):
        gisgrid_app = "gisgrid.engine" in getattr(app, "extensions", {})
        wsgi = signed_in(app, session_cookie(app, user=user or None)) if gisgrid_app and user is not None else app
        return stack.enter_context(serve_app(wsgi))

    with contextlib.ExitStack() as stack:
        yield serve
