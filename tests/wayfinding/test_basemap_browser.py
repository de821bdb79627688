"""The basemap under every map, in a real headless Chromium, offline: gisgrid's own layers, an installed
tile package, a configured tile service."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _first_town(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("""
            SELECT j.code FROM jurisdiction j JOIN street s ON s.jurisdiction_id = j.id
            JOIN segment g ON g.street_id = s.id WHERE j.level = 'town' GROUP BY j.code ORDER BY j.code LIMIT 1""")
        ).scalar()


def _map_name(page) -> str:
    return page.evaluate("() => Object.keys(window).find(k => k.startsWith('map_') && window[k] instanceof L.Map)")


def test_own_layers_draw_boundaries_and_street_names_along_the_streets(app, engine, live_server, page):
    base = live_server(app)
    page.goto(f"{base}/?town={_first_town(engine)}", wait_until="networkidle")
    page.wait_for_selector("path.gg-base-street")
    assert page.locator("path.gg-base-boundary").count() > 0
    assert page.locator(".gg-base-label").count() > 0  # the town's name
    # zoomed to street level, streets carry their names along the centerline
    name = _map_name(page)
    page.evaluate(f"() => {name}.setZoom(17)")
    page.wait_for_selector("text.gg-street-label textPath", state="attached", timeout=15000)
    page.wait_for_load_state("networkidle")
    labels = page.locator("text.gg-street-label textPath").all_text_contents()
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(sa.text("SELECT DISTINCT name FROM street"))}
    assert labels and set(labels) <= names
    # the basemap lies under the units: a click on a segment still opens its popup
    assert page.evaluate("() => getComputedStyle(document.querySelector('.leaflet-ggBase-pane')).zIndex") == "250"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "basemap-own-layers.png"))
    assert not page.js_errors, page.js_errors
    assert not page.bad_responses, page.bad_responses
