"""The residents' channel: no login, a report routed but counting against nobody until confirmed, its number and
link, the segment's public page with no personal data, and the abuse limits."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from PIL import Image

from gisgrid.web import create_app


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture(scope="module")
def spot(engine, town):
    """A point in a frontage of a unit with a valid agreement, and its segment."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text("""
            SELECT u.id AS unit_id, u.segment_id, u.person_id, ST_X(ST_PointOnSurface(u.frontage)) AS lon,
                   ST_Y(ST_PointOnSurface(u.frontage)) AS lat
            FROM frontage_unit u JOIN frontage_agreement a ON a.unit_id = u.id
            WHERE a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on ORDER BY u.id LIMIT 1""")
        ).first()


def _report(client, spot, **extra):
    page = client.get(f"/public/report?segment={spot.segment_id}")
    assert page.status_code == 200
    data = {"csrf_token": _csrf(page.text), "lon": spot.lon, "lat": spot.lat, "category": "0503",
            "description": "门口堆满纸箱", **extra}  # fmt: skip
    return client.post(f"/public/report?segment={spot.segment_id}", data=data, content_type="multipart/form-data")


def test_the_form_needs_no_login_and_knows_the_segment(app, spot, engine):
    anon = app.test_client(user=None)
    page = anon.get(f"/public/report?segment={spot.segment_id}")
    assert page.status_code == 200
    with engine.connect() as conn:
        name = conn.execute(sa.text("SELECT name FROM segment WHERE id = :s"), {"s": spot.segment_id}).scalar()
    assert name in page.text
    assert "gg_device" in page.headers.get("Set-Cookie", "")
    assert anon.get("/public/report?segment=999999999").status_code == 404
    assert anon.get("/public/report?segment=abc").status_code == 404


def test_a_report_gets_a_number_and_waits_for_a_dispatcher(app, spot, engine):
    anon = app.test_client(user=None)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "JPEG")
    sent = _report(anon, spot, photo=(io.BytesIO(buf.getvalue()), "box.jpg"))
    assert sent.status_code == 303, sent.text[:500]
    link = sent.headers["Location"]
    case_id = int(re.search(r"/public/case/(\d+)", link).group(1))
    follow = anon.get(link)
    assert follow.status_code == 200 and f"{case_id}" in follow.text
    assert 'data-state="waiting"' in follow.text
    assert anon.get(f"/public/case/{case_id}?t=wrong").status_code == 404
    assert anon.get(f"/public/case/{case_id}").status_code == 404
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, source, due_at, frontage_unit_id, assignee_person_id, reporter_user_id, "
                    "(SELECT count(*) FROM case_photo p WHERE p.report_id = r.id) AS photos FROM report r WHERE id = :i"),
            {"i": case_id},
        ).first()  # fmt: skip
    assert (row.status, row.source, row.due_at) == ("reported", "public", None)  # counts against nobody yet
    assert row.frontage_unit_id == spot.unit_id and row.assignee_person_id == spot.person_id
    assert row.reporter_user_id is None and row.photos == 1
    # a dispatcher confirms it (立案): its clock starts
    dispatcher = app.test_client(role="dispatcher")
    case = dispatcher.get(f"/api/cases/{case_id}").get_json()
    done = dispatcher.post(f"/api/cases/{case_id}/accept", json={"version": case["version"]})
    assert done.status_code == 200, done.text
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT due_at FROM report WHERE id = :i"), {"i": case_id}).scalar() is not None
    assert 'data-state="accepted"' in anon.get(link).text


def test_bad_input_is_told_in_the_page_language(app, spot):
    anon = app.test_client(user=None)
    page = anon.get("/public/report?lang=en")
    sent = anon.post("/public/report", data={"csrf_token": _csrf(page.text), "category": "0503"})
    assert sent.status_code == 400 and "Set the place first" in sent.text
    bad = anon.post("/public/report", data={"csrf_token": _csrf(page.text), "lon": spot.lon, "lat": spot.lat,
                    "category": "0503", "photo": (io.BytesIO(b"not an image"), "x.jpg")},
                    content_type="multipart/form-data")  # fmt: skip
    assert bad.status_code == 400 and "The photo could not be used" in bad.text  # the page's language (en, chosen)


def test_the_segment_page_shows_the_board_and_no_personal_data(app, spot, engine):
    anon = app.test_client(user=None)
    page = anon.get(f"/public/segment/{spot.segment_id}")
    assert page.status_code == 200
    with engine.connect() as conn:
        chief = conn.execute(
            sa.text("SELECT owner_name, owner_phone FROM owner_on(CURRENT_DATE) WHERE target_type = 'segment' "
                    "AND target_id = :s AND role = '段长'"), {"s": spot.segment_id}).first()  # fmt: skip
        contact = conn.execute(
            sa.text("SELECT contact_phone FROM frontage_unit WHERE id = :u"), {"u": spot.unit_id}
        ).scalar()
    assert chief.owner_name in page.text
    assert contact not in page.text  # a unit's contact is not on the signboard
    assert "门口堆满纸箱" not in page.text  # nor what residents wrote


@pytest.fixture()
def strict_app(db_url, town, settings):
    return create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings,
                       "PUBLIC_RATE_PER_DEVICE": "2 per hour", "PUBLIC_RATE_PER_ADDRESS": "3 per hour"})  # fmt: skip


def test_abuse_limits_per_device_and_per_address(strict_app, spot):
    phone = strict_app.test_client(user=None)
    assert [_report(phone, spot).status_code for _ in range(2)] == [303, 303]
    third = _report(phone, spot)
    assert third.status_code == 429 and "上报次数过多" in third.text
    other = strict_app.test_client(user=None)  # another phone on the same network: the address limit
    assert _report(other, spot).status_code == 303
    assert _report(other, spot).status_code == 429


def test_a_report_over_the_size_cap_is_refused_unread(app, spot, settings):
    anon = app.test_client(user=None)
    page = anon.get("/public/report")
    big = b"x" * (settings.public_max_bytes + 10)
    sent = anon.post("/public/report", data={"csrf_token": _csrf(page.text), "lon": spot.lon, "lat": spot.lat,
                     "category": "0503", "photo": (io.BytesIO(big), "big.jpg")}, content_type="multipart/form-data")  # fmt: skip
    assert sent.status_code == 413


def test_the_limits_hold_across_processes(db_url, town, settings, spot):
    """Two apps on one database — two processes of ``gisgrid serve --processes 2`` — count against one limit:
    the counters are in PostgreSQL, not in each process."""
    from gisgrid.web.public import DEVICE_COOKIE

    config = {"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings,
              "PUBLIC_RATE_PER_DEVICE": "2 per hour", "PUBLIC_RATE_PER_ADDRESS": "4 per hour"}  # fmt: skip
    first, second = create_app(config), create_app(config)
    phone = first.test_client(user=None)
    assert [_report(phone, spot).status_code for _ in range(2)] == [303, 303]
    # the same phone, its next request served by the other process
    same_phone = second.test_client(user=None)
    same_phone.set_cookie(DEVICE_COOKIE, phone.get_cookie(DEVICE_COOKIE).value)
    refused = _report(same_phone, spot)
    assert refused.status_code == 429 and "上报次数过多" in refused.text
    # other phones on the same network, one on each process: the address limit (4) is shared too
    others = [first.test_client(user=None), second.test_client(user=None)]
    assert [_report(c, spot).status_code for c in others] == [303, 303]
    assert [_report(c, spot).status_code for c in others] == [429, 429]
