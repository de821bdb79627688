"""The search box and the legend in a real headless Chromium: find, zoom, outline; filter, fold, highlight."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _map(page) -> str:
    return page.evaluate("() => Object.keys(window).find(k => k.startsWith('map_') && window[k] instanceof L.Map)")


def test_search_zooms_to_a_street_and_outlines_it(app, engine, live_server, page, town_bounds):
    code = town_bounds[0]
    with engine.connect() as conn:
        street = conn.execute(
            sa.text("""
            SELECT s.name FROM street s JOIN jurisdiction j ON j.id = s.jurisdiction_id
            WHERE j.code = :c ORDER BY ST_Length(s.geom::geography) LIMIT 1"""),
            {"c": code},
        ).scalar()
    base = live_server(app)
    page.goto(f"{base}/?town={code}", wait_until="networkidle")
    name = _map(page)
    zoom_before = page.evaluate(f"() => {name}.getZoom()")
    box = page.locator(".gg-search-input")
    box.fill(street)
    page.locator(".gg-search-result").first.wait_for()
    assert street in page.locator(".gg-search-results").inner_text()
    box.press("Enter")  # Enter takes the first result: the exact name
    page.locator("path.gg-found").first.wait_for()
    page.wait_for_timeout(600)  # the zoom animation
    assert page.evaluate(f"() => {name}.getZoom()") > zoom_before
    assert street in page.locator(".gg-found-popup").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-street.png"))
    # nothing found: said so, in the page's language
    box.fill("不存在的路名XYZ")
    page.locator(".gg-search-note").wait_for()
    assert page.locator(".gg-search-note").inner_text() == "没有找到记录。"
    assert not page.js_errors and not [b for b in page.bad_responses if b[0] != "net::ERR_ABORTED"]


def test_legend_filters_folds_and_highlights_an_owners_units(app, live_server, page, town_bounds):
    base = live_server(app)
    page.goto(f"{base}/?town={town_bounds[0]}", wait_until="networkidle")
    legend = page.locator(".gg-legend")
    rows = legend.locator(".gg-legend-row[data-owner]")
    n = rows.count()
    assert n > 6
    # filter by a name
    first_name = rows.first.locator("span").nth(1).inner_text().split(" ")[0]
    legend.locator(".gg-legend-filter").fill(first_name)
    visible = [r for r in rows.all() if r.is_visible()]
    assert 1 <= len(visible) < n and all(first_name in r.inner_text() for r in visible)
    # a click outlines that owner's units, a second click clears
    visible[0].click()
    page.wait_for_timeout(500)
    key = visible[0].get_attribute("data-owner")
    name = _map(page)
    styled = page.evaluate(
        f"""k => {{ const out = []; {name}.eachLayer(l => {{ if (l.feature && l.feature.properties.owner_key !== undefined)
            out.push([l.feature.properties.owner_key === k, l.options.weight]); }}); return out; }}""",
        key,
    )
    assert any(mine for mine, _ in styled)
    assert all(w == 4 for mine, w in styled if mine) and all(w != 4 for mine, w in styled if not mine)
    assert "gg-active" in visible[0].get_attribute("class")
    page.screenshot(path=str(ARTIFACTS / "legend-highlight.png"))
    visible[0].click()
    assert page.locator(".gg-legend-row.gg-active").count() == 0
    # fold and unfold
    legend.locator(".gg-legend-toggle").click()
    assert not legend.locator(".gg-legend-filter").is_visible()
    legend.locator(".gg-legend-toggle").click()
    assert legend.locator(".gg-legend-filter").is_visible()
    assert not page.js_errors
