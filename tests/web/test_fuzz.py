"""A fuzz pass over every HTTP endpoint, served on 127.0.0.1: no request gets a 500, every 4xx says why.

The JSON endpoints are fuzzed by schemathesis from their OpenAPI description
(``/api/openapi.json``); the pages and forms by a bounded script of hostile
values for each parameter and field.  The server runs on a database of its own
(one sample town with its grid), so that an edit the fuzzer happens to get
right changes nothing other tests rely on.  Examples are few, to keep the run short.
"""

from __future__ import annotations

import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from gisgrid.web.openapi import openapi_spec
from tests.browser import serve_app
from tests.signin import account_for, csrf_header, session_data

#: Values that have broken web apps: blanks, quotes, markup, NUL, huge and odd numbers, bad dates, paths,
#: right-to-left marks, invalid UTF-8 (percent-encoded), long text.
HOSTILE = [
    "",
    "'",
    '"',
    "%",
    "%00",
    "%ff%fe",
    "%ED%A0%80",
    "<script>alert(1)</script>",
    "\u202e",
    "1e309",
    "99999999999999999999999999",
    "2026-13-45",
    "../../etc/passwd",
    "x" * 3000,
]
#: Pages and the parameters each reads.
PAGES = {
    "/": ["date", "jurisdiction"],
    "/map": ["jurisdiction", "date", "owner", "layer", "basemap"],
    "/map/summary.xlsx": ["jurisdiction", "date"],
    "/map/export.html": ["jurisdiction", "date"],
    "/audit": ["jurisdiction", "days"],
    "/audit/export.geojson": ["jurisdiction", "days"],
    "/audit/export.xlsx": ["jurisdiction", "days"],
    "/plan": ["town", "layer"],
    "/owners/": ["q"],
    "/owners/people.json": ["q"],
    "/audit-log/": ["actor", "action", "q"],
    "/geocode/": [],
    "/auth/login": ["next"],
    "/auth/password": ["next"],
    "/api/plan/units": ["town", "layer"],
    "/api/plan/history": ["id", "layer"],
    "/cases": ["view", "page", "status", "category", "owner", "since", "until", "jurisdiction", "bbox", "area"],
    "/cases/export.xlsx": ["owner", "since", "bbox", "area"],
    "/cases/export.geojson": ["bbox", "area"],
    "/cases/new": [],
    "/cases/inbox": [],
    "/cases/calendar": [],
    "/owners/bulk": [],
    "/users/": ["q", "role"],
}
#: Pages that draw a whole map or audit (up to a second each), and the password form (argon2 by design): a few
#: hostile values, each in every parameter at once.
HEAVY = {"/", "/map", "/map/export.html", "/map/summary.xlsx", "/audit", "/audit/export.geojson", "/audit/export.xlsx"}
HEAVY_VALUES = ["%ff%fe", "2026-13-45", "99999999999999999999999999", "x" * 3000]
#: Paths with their own segments to fuzz ({} is replaced by each hostile value).
PATHS = [
    "/units/{}/1",
    "/units/cell/{}",
    "/export/{}.geojson",
    "/export/cells.{}",
    "/jobs/{}",
    "/jobs/{}.json",
    "/geocode/{}",
    "/geocode/{}.csv",
    "/cases/{}",
    "/cases/photos/{}",
    "/users/{}",
]
#: Forms and their fields.
FORMS = {
    "/units/segment/1/appoint": ["owner", "role", "valid_from"],
    "/owners/appointments/1/end": ["valid_to"],
    "/auth/password": ["current", "new", "repeat"],
    "/geocode/": ["column", "sheet", "category", "date"],
    "/cases/new": ["lon", "lat", "address", "category", "description", "reported_at", "channel"],
    "/cases/1/step": ["action", "version", "note", "owner", "hours", "into"],
    "/cases/calendar": ["days"],
    "/cases/inbox/read": ["id"],
    "/users/new": ["username", "person", "role", "place", "password"],
    "/users/999999/grant": ["role", "place"],
    "/owners/bulk/nonexistent": ["x"],
}
#: Chinese: the pages' default language, which the fuzzer's requests get.
_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def fuzz_server(shatin_url, settings):
    """Base URL and a signed-in requests session (cookie and CSRF header) of an app on its own database."""
    from gisgrid.web import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": shatin_url, "GISGRID_SETTINGS": settings})
    data = session_data(app, account_for(app))
    cookie = app.session_interface.get_signing_serializer(app).dumps(data)
    session = requests.Session()
    session.cookies.set(app.config.get("SESSION_COOKIE_NAME", "session"), cookie)
    session.headers["X-CSRFToken"] = csrf_header(app, data["csrf_token"])
    with serve_app(app) as base:
        yield base, session
    app.extensions["gisgrid.engine"].dispose()


#: The JSON endpoints, from the description the app serves (checked to be the same below).
schema = schemathesis.openapi.from_dict(openapi_spec())


def _standard_error(body) -> bool:
    """The error shapes the standards prescribe: Open311's ``[{code, description}]``, OGC API's
    ``{code, description}``."""
    items = body if isinstance(body, list) else [body]
    return bool(items) and all(
        isinstance(i, dict) and i.get("code") and str(i.get("description") or "").strip() for i in items
    )


def _said_why(response) -> str | None:
    """What is wrong with a 4xx or 5xx answer, or None when it says why in the page's language."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:300]}"
    if response.status_code < 400:
        return None
    if "Traceback" in response.text:
        return "a traceback"
    kind = response.headers.get("Content-Type") or response.headers.get("content-type") or ""
    kind = " ".join(kind) if isinstance(kind, list) else kind
    if "json" in kind:
        body = response.json()
        if _standard_error(body):
            return None
        if not (isinstance(body, dict) and str(body.get("detail") or "").strip() and body.get("error")):
            return f"a JSON error without error and detail: {response.text[:200]}"
        return None
    if response.status_code == 405:
        return None  # a method the route does not take: werkzeug's own answer
    if "xml" in kind:  # Open311's error list in XML
        if re.search(r"<errors><error><code>\d{3}</code><description>[^<]+</description>", response.text):
            return None
        return f"an XML error without code and description: {response.text[:200]}"
    # the error page, its heading in the page's language over the reason; or the form again with its warning,
    # on a page in the page's language (the reasons some forms give are the stores' English words)
    heading = re.search(
        r'<div class="gg-error">\s*<h1>(.*?)</h1>\s*<p id="gg-error-text">(.*?)</p>', response.text, re.S
    )
    if heading:
        if not (_CJK.search(heading.group(1)) and heading.group(2).strip()):
            return f"an error page without a reason in the page's language: {heading.group(0)[:200]}"
        return None
    warning = re.search(r'<p class="gg-(?:warn|error-box)[^"]*"[^>]*>(.*?)</p>', response.text, re.S)
    if not (warning and warning.group(1).strip() and '<html lang="zh-CN">' in response.text):
        text = re.sub(r"\s+", " ", response.text)
        return f"no message in the page's language: {text[:300]}"
    return None


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_json_endpoints_never_answer_500(case, fuzz_server):
    base, session = fuzz_server
    response = case.call(base_url=base, session=session)
    assert _said_why(response) is None, case.as_curl_command()


def test_pages_and_forms_answer_hostile_values_with_a_4xx_that_says_why(fuzz_server):
    base, session = fuzz_server
    problems = []

    def check(method: str, url: str, **kwargs):
        response = session.request(method, base + url, allow_redirects=False, timeout=60, **kwargs)
        why = _said_why(response)
        if why is not None:
            problems.append(f"{method} {url[:120]} {sorted(kwargs.get('data') or {})}: {why}")

    for path, params in PAGES.items():
        check("GET", path)
        if path in HEAVY:
            for value in HEAVY_VALUES:
                check("GET", path + "?" + "&".join(f"{name}={value}" for name in params))
            continue
        for name in params:
            for value in HOSTILE:
                check("GET", f"{path}?{name}={value}")
    for pattern in PATHS:
        for value in HOSTILE:
            if value and "/" not in value:
                check("GET", pattern.format(value))
    for path, fields in FORMS.items():
        for value in HEAVY_VALUES if path == "/auth/password" else HOSTILE:
            check("POST", path, data={field: value for field in fields})
        check("POST", path, data={fields[0]: "x"})  # the other fields missing
    check("POST", "/geocode/", files={"file": ("x.csv", b"\xff\xfe\x00garbage")}, data={"column": "地址"})
    check("POST", "/geocode/", files={"file": ("x.xlsx", b"PK\x03\x04 not a workbook")}, data={"column": "地址"})
    assert problems == []


def test_the_description_served_is_the_one_fuzzed(fuzz_server):
    base, session = fuzz_server
    assert requests.get(f"{base}/api/openapi.json", timeout=60).json() == openapi_spec()  # public: no session


def test_a_clerks_point_with_odd_numbers_is_a_400(fuzz_server):
    base, session = fuzz_server
    upload = session.post(
        f"{base}/geocode/",
        files={"file": ("hotline.csv", "编号,地址\nR1,大埔公路\n".encode())},
        data={"column": "地址"},
        allow_redirects=False,
        timeout=60,
    )
    assert upload.status_code == 302, upload.text[:300]
    job = upload.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    for body in (
        '{"row": 1e999, "lon": 114.2, "lat": 22.38}',  # JSON's 1e999 is infinity: no row number
        '{"row": -1e999, "lon": 114.2, "lat": 22.38}',
        '{"row": 0, "lon": "nan", "lat": 22.38}',
        '{"row": 0, "lon": 1e999, "lat": 22.38}',
        '{"row": [0], "lon": 114.2, "lat": 22.38}',
        "[1]",
        "{",
    ):
        response = session.post(
            f"{base}/geocode/{job}/place", data=body, headers={"Content-Type": "application/json"}, timeout=60
        )
        assert 400 <= response.status_code < 500 and _said_why(response) is None, (body, response.text[:200])
