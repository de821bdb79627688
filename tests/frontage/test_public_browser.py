"""The public report page in headless Chromium at 390 px: from a signboard's QR link, a map tap, a report sent
without login; the resident's page and the segment's public page fit the phone.  Screenshots in tests/artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "locale": "zh-CN"}


@pytest.fixture(scope="module")
def segment(engine, town):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("""SELECT u.segment_id, ST_X(ST_PointOnSurface(u.frontage)) AS lon,
                              ST_Y(ST_PointOnSurface(u.frontage)) AS lat
                       FROM frontage_unit u ORDER BY u.id LIMIT 1""")
        ).first()


def test_a_resident_reports_from_the_qr_link_on_a_phone(app, live_server, browser, segment, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server(app, user=None)
    context = browser.new_context(**PHONE, permissions=["geolocation"],
                                  geolocation={"longitude": segment.lon, "latitude": segment.lat, "accuracy": 6})  # fmt: skip
    page = context.new_page()
    errors, external = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request", lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None
    )
    try:
        page.goto(f"{base}/public/report?segment={segment.segment_id}", wait_until="networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("#gg-board").is_visible()
        page.screenshot(path=str(ARTIFACTS / "public_1_form.png"), full_page=True)
        # the QR code's segment placed the report at the segment already; a tap on the map moves it
        before = page.input_value("#gg-lon")
        assert before != ""
        box = page.locator("#gg-public-map .folium-map").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
        assert page.input_value("#gg-lon") != before
        page.click("#gg-gps")  # the phone's GPS puts it back on the frontage
        page.wait_for_function(
            f"() => Math.abs(Number(document.getElementById('gg-lon').value) - {segment.lon}) < 1e-6"
        )
        page.select_option("#gg-category", "0105")
        page.fill("#gg-description", "门前人行道很脏")
        page.click("#gg-send")
        page.wait_for_selector("#gg-public-state")
        assert page.get_attribute("#gg-public-state", "data-state") == "waiting"
        assert "/public/case/" in page.url and "t=" in page.url
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(ARTIFACTS / "public_2_number.png"), full_page=True)
        page.click(f"a[href='/public/segment/{segment.segment_id}']")
        page.wait_for_selector("#gg-public-chain")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(ARTIFACTS / "public_3_segment.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
    assert not external, external
