"""The /map HTML export is ready for a slide: title, jurisdiction, period and legend on the map, no controls
(tests/artifacts/map-slide.png)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.test_manager import TOWN

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="module")
def slide_app(db_url, town, settings):
    from gisgrid.web import create_app

    return create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings})


def test_the_html_export_names_place_and_period_and_hides_the_controls(slide_app, browser, tmp_path):
    client = slide_app.test_client()
    r = client.get("/map/export.html", query_string={"jurisdiction": TOWN, "from": "2026-01-01", "to": "2026-06-30"})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="gg-slide-box"' in html
    assert "2026-01-01 至 2026-06-30" in html and "学院路街道" in html
    path = tmp_path / "map.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(path.as_uri())
    page.wait_for_selector("#gg-slide-box")
    page.wait_for_timeout(500)
    assert page.locator("#gg-slide-box").is_visible()
    assert page.locator("#gg-slide-box .gg-slide-legend div").count() >= 1
    assert not page.locator(".leaflet-control-zoom").is_visible()
    assert not page.locator(".leaflet-control-layers").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map-slide.png"))
    page.close()
    en = client.get("/map/export.html", query_string={"jurisdiction": TOWN, "lang": "en"}).get_data(as_text=True)
    assert "Period: all dates" in en and "Manager map" in en
