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


def _failures(page) -> list:
    """Answers >= 400 and failed loads, except tiles Leaflet itself cancelled when the view moved."""
    return [(what, url) for what, url in page.bad_responses if what != "net::ERR_ABORTED"]


def _tile_images(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('img.leaflet-tile')].map(
        i => ({src: i.src, loaded: i.complete && i.naturalWidth > 0}))""")


def test_an_installed_tile_package_is_the_basemap(tiles_app, town_bounds, live_server, page):
    base = live_server(tiles_app)
    page.goto(f"{base}/?town={town_bounds[0]}", wait_until="networkidle")
    page.wait_for_selector("img.leaflet-tile-loaded")
    tiles = _tile_images(page)
    assert tiles and all(t["src"].startswith(f"{base}/basemap/tiles/") and t["loaded"] for t in tiles)
    assert not any("/api/basemap/context" in u for u in page.requests)  # tiles replace the drawn basemap
    assert "Test tiles" in page.locator(".leaflet-control-attribution").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "basemap-mbtiles.png"))
    assert not page.js_errors and not _failures(page), (page.js_errors, _failures(page))


def test_a_configured_tile_service_on_another_host_is_the_basemap(
    app, db_url, settings, town_bounds, live_server, page
):
    import dataclasses

    from flask import Flask, Response

    from gisgrid.web import create_app
    from tests.wayfinding.conftest import TILE_RGB, png

    served = []
    tile_server = Flask("tiles")

    @tile_server.get("/t/<int:z>/<int:x>/<int:y>.png")
    def _tile(z, x, y):
        served.append((z, x, y))
        return Response(png(TILE_RGB), mimetype="image/png")

    tiles_base = live_server(tile_server)
    configured = dataclasses.replace(
        settings, basemap_url=tiles_base + "/t/{z}/{x}/{y}.png", basemap_attribution="天地图"
    )
    web = create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": configured})
    base = live_server(web)
    page.goto(f"{base}/?town={town_bounds[0]}", wait_until="networkidle")
    page.wait_for_selector("img.leaflet-tile-loaded")
    tiles = _tile_images(page)
    assert tiles and all(t["src"].startswith(tiles_base + "/t/") and t["loaded"] for t in tiles)
    assert served  # the page's CSP let the other host's tiles in (the page fixture fails on CSP reports)
    assert "天地图" in page.locator(".leaflet-control-attribution").inner_text()
    assert not page.js_errors and not _failures(page), (page.js_errors, _failures(page))
