"""The home page of the sample town in a real headless Chromium, offline."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def test_home_page_draws_the_segment_layer_offline(app, engine, live_server, page):
    base = live_server(app)
    with engine.connect() as conn:
        code, n_segments = conn.execute(
            sa.text("""
            SELECT j.code, count(g.id) FROM jurisdiction j JOIN street s ON s.jurisdiction_id = j.id
            JOIN segment g ON g.street_id = s.id WHERE j.level = 'town' GROUP BY j.code ORDER BY j.code LIMIT 1""")
        ).one()
    page.goto(f"{base}/?town={code}", wait_until="networkidle")
    page.wait_for_selector("path.gg-segment")
    drawn = page.locator("path.gg-segment").count()
    assert drawn == n_segments > 50
    assert "段" in page.locator("#gg-stats").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"))
    # a popup names the street and the chain of chiefs
    page.locator("path.gg-segment").nth(drawn // 2).click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "段长" in popup.inner_text() and "总街长" in popup.inner_text()
    assert not page.js_errors, page.js_errors
    assert not page.bad_responses, page.bad_responses
    assert page.requests and all(u.startswith(base) or u.startswith("data:") for u in page.requests)
    assert not page.external_requests
