"""The manager map in headless Chromium: layers drawn and toggled, filters change counts, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from gisgrid.web import create_app
from gisgrid.web.manager import bp

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TOWN = "110108001"


@pytest.fixture(scope="module")
def manager_app(db_url, town, settings):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings})
    if "manager" not in app.blueprints:
        app.register_blueprint(bp)
    return app


def test_manager_map_in_chromium(manager_app, live_server, page):
    base = live_server(manager_app)
    page.goto(f"{base}/map?jurisdiction={TOWN}")
    page.wait_for_load_state("networkidle")
    assert page.js_errors == []
    assert page.bad_responses == []
    total = int(page.locator("#gg-count").inner_text())
    assert total > 0
    assert page.locator("path.gg-segment").count() > 10
    assert page.locator(".marker-cluster, path.gg-report").count() > 0
    assert page.locator("#gg-method").inner_text().startswith("研究区域")

    # toggle the hotspots layer off and on in the layer control
    control = page.locator(".leaflet-control-layers-overlays label", has_text="Gi*")
    box = control.locator("input")
    assert box.is_checked()
    n_hot = page.locator("path.gg-hotspot").count()
    assert n_hot > 0
    box.uncheck()
    assert page.locator("path.gg-hotspot").count() == 0
    box.check()
    assert page.locator("path.gg-hotspot").count() == n_hot
    page.screenshot(path=str(ARTIFACTS / "manager.png"))

    # one category: fewer reports
    page.locator("select[name=category]").select_option(index=0)
    page.locator("#gg-filter button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "category=" in page.url
    filtered = int(page.locator("#gg-count").inner_text())
    assert 0 < filtered < total
    assert page.js_errors == []
    assert all(not u.startswith("http") or u.startswith(base) for u in page.requests)
