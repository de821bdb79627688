"""The /plan frontage layer and the segment's frontage page in headless Chromium (offline, no script errors)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
TOWN = "810006001"


def test_a_planner_selects_and_saves_a_frontage(app, engine, town, live_server, page):
    ARTIFACTS.mkdir(exist_ok=True)
    with engine.connect() as conn:
        n, unit_id, rev, x, y = conn.execute(
            sa.text("""SELECT count(*) OVER (), u.id, u.revision, ST_X(ST_PointOnSurface(u.frontage)),
                              ST_Y(ST_PointOnSurface(u.frontage))
                       FROM frontage_unit u JOIN segment g ON g.id = u.segment_id JOIN street s ON s.id = g.street_id
                       JOIN jurisdiction j ON j.id = s.jurisdiction_id
                       WHERE j.code LIKE :c || '%' AND NOT ST_IsEmpty(u.frontage) ORDER BY u.id LIMIT 1"""),
            {"c": TOWN},
        ).one()
    base = live_server(app)
    page.goto(f"{base}/plan?town={TOWN}&layer=frontage")
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-frontage').length === {n}")
    point = page.evaluate(
        """([lon, lat]) => { const m = window[ggFrontagePlan.map]; m.setView([lat, lon], 19, {animate: false});
           const p = m.latLngToContainerPoint([lat, lon]), r = m.getContainer().getBoundingClientRect();
           return [r.left + p.x, r.top + p.y]; }""",
        [x, y],
    )
    page.wait_for_timeout(300)
    page.mouse.click(*point)
    page.wait_for_function("() => document.getElementById('gg-plan-selected').textContent !== ''")
    page.click("#gg-frontage-save")
    page.wait_for_selector("#gg-plan-msg.gg-ok")
    assert str(rev + 1) in page.text_content("#gg-plan-msg")
    page.screenshot(path=str(ARTIFACTS / "frontage_plan.png"))
    with engine.connect() as conn:
        source = conn.execute(
            sa.text("SELECT frontage_source FROM frontage_unit WHERE id = :u"), {"u": unit_id}
        ).scalar()
    assert source == "planner"
    with engine.connect() as conn:
        seg = conn.execute(sa.text("SELECT segment_id FROM frontage_unit WHERE id = :u"), {"u": unit_id}).scalar()
    page.goto(f"{base}/frontage/segment/{seg}")
    page.wait_for_selector("path.gg-frontage")
    page.wait_for_timeout(1000)  # the map's zoom animation ends
    page.screenshot(path=str(ARTIFACTS / "frontage_segment.png"))
    assert not page.js_errors and not page.external_requests and not page.csp_violations
