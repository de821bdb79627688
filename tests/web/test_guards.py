"""Hostile and broken requests get a clear 4xx in the page's language, never a 500 or a traceback."""

from __future__ import annotations

import dataclasses
import io
import json
import time

import pytest

from gisgrid.web import create_app
from gisgrid.web.guards import json_depth


@pytest.mark.parametrize(
    "url",
    [
        "/map?jurisdiction=%00",
        "/map/?jurisdiction=1101%00",
        "/audit?jurisdiction=%00x",
        "/api/plan/units?town=%00",
        "/?date=2026-01-01%00",
    ],
)
def test_a_nul_character_in_a_parameter_is_a_400_with_a_message(client, url):
    response = client.get(url + "&lang=en" if "?" in url else url)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "NUL" in text and "Traceback" not in text


def test_the_message_follows_the_page_language(client):
    zh = client.get("/map?jurisdiction=%00&lang=zh_CN").get_data(as_text=True)
    assert "请求" in zh  # the heading of the error page in Chinese


def test_deeply_nested_json_is_refused_not_a_recursion_error(client):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/assign", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.is_json and response.get_json()["detail"]


def test_a_large_json_body_is_a_413_before_it_is_read(client):
    body = json.dumps({"lon": 1, "lat": 2, "pad": "x" * (2 * 1024 * 1024)})
    response = client.post("/api/assign", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "MB" in response.get_json()["detail"]


def test_an_upload_over_the_request_limit_is_a_413_page(app, settings):
    small = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "GISGRID_SETTINGS": dataclasses.replace(settings, max_request_bytes=1024),
        }
    )
    response = small.test_client().post("/geocode/?lang=en", data={"file": (io.BytesIO(b"x" * 4096), "big.csv")})
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "too large" in text.lower() and "Traceback" not in text


def test_database_gone_is_a_503_page_not_a_traceback(settings):
    # a server that does not exist: every page that needs the database answers 503
    gone = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2",
            "GISGRID_SETTINGS": settings,
        }
    )
    client = gone.test_client()  # nobody can sign in without the database: a session as if signed in before
    with client.session_transaction() as sess:
        sess.update({"_user_id": "1:1", "_fresh": True, "_login_at": int(time.time())})
    response = client.get("/map?lang=en")
    assert response.status_code == 503
    assert gone.test_client(user=None).get("/auth/login?lang=en").status_code == 503
    assert "database" in response.get_data(as_text=True).lower()


def test_json_depth_skips_brackets_inside_strings():
    assert json_depth('{"a": "[[[[[", "b": [1, {"c": []}]}') == 4
    assert json_depth(r'["\"[[[", []]') == 2
    assert json_depth("[]" * 1000) == 1
