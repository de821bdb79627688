"""The /plan editor in headless Chromium: delete a cell, draw a self-intersecting cell (refused, marked),
draw a proper one (saved, clipped to the gap), then view and restore the deleted cell's earlier version.

Clicks are real mouse events on the map (Leaflet-Geoman draws from them);
screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import shape

from tests.grid.test_plan_store import TOWN, plan_db  # noqa: F401  (module-scoped scratch town)
from tests.signin import account_for

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="module")
def plan_app(plan_db, settings):  # noqa: F811
    from gisgrid.web import create_app

    _, url = plan_db
    return create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings})


def _px(page, lon: float, lat: float) -> tuple[float, float]:
    return tuple(
        page.evaluate(
            """([lon, lat]) => {
        const m = ggPlan.map, p = m.latLngToContainerPoint([lat, lon]), r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }""",
            [lon, lat],
        )
    )


def _click(page, lon, lat):
    page.mouse.click(*_px(page, lon, lat))
    page.wait_for_timeout(80)


def test_draw_refuse_save_view_restore(plan_app, plan_db, live_server, page):  # noqa: F811
    eng, _ = plan_db
    with eng.connect() as conn:
        cells = {
            r.code: (r.id, shapely.from_wkb(bytes(r.g)))
            for r in conn.execute(sa.text("SELECT id, code, ST_AsBinary(geom) AS g FROM grid_cell ORDER BY code"))
        }
    n = len(cells)
    code = f"{TOWN}001002"
    cell_id, cell = cells[code]
    cell = cell.geoms[0] if cell.geom_type == "MultiPolygon" else cell
    base = live_server(plan_app)
    page.goto(f"{base}/plan?town={TOWN}")
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-unit').length === {n}")
    # the author is the signed-in user (the test admin): shown, not typed
    planner = account_for(plan_app).name
    assert (
        page.input_value("#gg-plan-who") == planner
        and page.locator("#gg-plan-who").get_attribute("readonly") is not None
    )
    minx, miny, maxx, maxy = cell.bounds
    page.evaluate(
        "(b) => ggPlan.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [150, 150], animate: false})",
        [minx, miny, maxx, maxy],
    )
    page.wait_for_timeout(300)

    # select the cell and delete it: the gap it leaves is drawn
    centre = shapely.ops.polylabel(cell, tolerance=1e-7)
    _click(page, centre.x, centre.y)
    assert code in page.inner_text("#gg-plan-selected")
    page.click("button[data-tool=delete]")
    page.click("#gg-plan-save")
    page.wait_for_selector("#gg-plan-msg.gg-ok")
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-unit').length === {n - 1}")
    assert page.locator("path.gg-plan-gap").count() == 1
    assert code in page.inner_text("#gg-plan-removed")

    # a self-intersecting drawing: refused on check and on save, the crossing marked on the map
    page.click("button[data-tool=draw]")
    r = cell.exterior.distance(centre) * 0.5
    for dx, dy in [(-r, -r), (r, r), (r, -r), (-r, r), (-r, -r)]:
        _click(page, centre.x + dx, centre.y + dy)
    page.wait_for_selector("#gg-plan-msg.gg-bad")  # the automatic check already refuses it
    with page.expect_response(f"{base}/api/plan/save") as saved:
        page.click("#gg-plan-save")
    assert saved.value.status == 422
    page.wait_for_selector("path.gg-plan-problem.gg-problem-invalid")
    assert page.locator("#gg-plan-problems li.gg-problem-invalid").count() == 1
    page.screenshot(path=str(ARTIFACTS / "plan-refused-self-intersection.png"))
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM grid_cell")).scalar() == n - 1

    # a proper drawing over the gap and its neighbours, clipped: it fills the gap exactly
    page.click("button[data-tool=draw]")
    page.check("input[name=gg-overlap][value=clip]")
    pad = (maxx - minx) * 0.2
    for x, y in [
        (minx - pad, miny - pad),
        (maxx + pad, miny - pad),
        (maxx + pad, maxy + pad),
        (minx - pad, maxy + pad),
        (minx - pad, miny - pad),
    ]:
        _click(page, x, y)
    page.wait_for_selector("#gg-plan-msg.gg-ok")
    page.fill("#gg-plan-reason", "重画")
    page.click("#gg-plan-save")
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-unit').length === {n}")
    with eng.connect() as conn:
        new = conn.execute(
            sa.text("""
            SELECT g.id, g.code, ST_AsBinary(g.geom) AS g, v.saved_by, v.reason FROM grid_cell g
            JOIN plan_version v ON v.layer = 'cell' AND v.unit_id = g.id AND v.action = 'create'""")
        ).one()
    drawn = shapely.from_wkb(bytes(new.g))
    assert new.code != code and (new.saved_by, new.reason) == (planner, "重画")
    assert shapely.symmetric_difference(drawn, cell).area / cell.area < 1e-4

    # remove the drawn cell again, then view and restore the deleted cell's original version
    page.click("button[data-tool=cancel]")
    _click(page, centre.x, centre.y)
    assert new.code in page.inner_text("#gg-plan-selected")
    page.click("button[data-tool=delete]")
    page.click("#gg-plan-save")
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-unit').length === {n - 1}")
    page.locator("#gg-plan-removed li", has_text=code).locator("button").click()
    history = page.locator(f'#gg-plan-history[data-unit="{cell_id}"] li.gg-version')
    history.first.wait_for()
    assert history.count() == 2  # delete, original
    original = history.nth(1)
    original.locator("button.gg-view").click()
    page.wait_for_selector("path.gg-plan-version")
    page.screenshot(path=str(ARTIFACTS / "plan-view-version.png"))
    page.check("input[name=gg-overlap][value=refuse]")
    # a restore asks first (the page fixture dismisses real dialogs): dismissed, nothing is saved
    original.locator("button.gg-restore").click()
    page.wait_for_selector("#gg-plan-msg.gg-info")
    assert page.dialogs and "r1" in page.dialogs[-1] and "原因" in page.dialogs[-1]
    assert page.locator("path.gg-plan-unit").count() == n - 1
    # an empty reason is not enough; then a reason (answered in place of the dialog)
    page.evaluate("() => { window.prompt = () => '   '; }")
    original.locator("button.gg-restore").click()
    page.wait_for_selector("#gg-plan-msg.gg-bad")
    assert page.locator("path.gg-plan-unit").count() == n - 1
    page.evaluate("() => { window.prompt = () => '误删，恢复原网格'; }")
    original.locator("button.gg-restore").click()
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-unit').length === {n}")
    page.wait_for_selector("#gg-plan-msg.gg-ok")
    page.wait_for_function(
        "(id) => document.querySelectorAll(`#gg-plan-history[data-unit='${id}'] li.gg-version`).length === 3",
        arg=cell_id,
    )
    page.screenshot(path=str(ARTIFACTS / "plan-restored.png"))
    with eng.connect() as conn:
        back = conn.execute(
            sa.text("SELECT code, revision, ST_AsBinary(geom) AS g FROM grid_cell WHERE id = :i"), {"i": cell_id}
        ).one()
    assert back.code == code and back.revision == 3
    with eng.connect() as conn:
        why = conn.execute(
            sa.text("SELECT reason FROM plan_version WHERE layer = 'cell' AND unit_id = :i AND action = 'restore'"),
            {"i": cell_id},
        ).scalar()
    assert why == "误删，恢复原网格"
    assert "误删，恢复原网格" in page.inner_text("#gg-plan-history")
    assert shape(shapely.geometry.mapping(shapely.from_wkb(bytes(back.g)))).equals(cell)
    assert page.js_errors == []


def test_segment_layer_in_english(plan_app, plan_db, live_server, page):  # noqa: F811
    base = live_server(plan_app)
    page.goto(f"{base}/plan?town={TOWN}&layer=segment&lang=en")
    page.wait_for_function("() => document.querySelectorAll('path.gg-plan-unit').length === 2")
    assert page.inner_text("#gg-plan-count") == "2 units"
    assert page.locator("button[data-tool=draw]").count() == 0  # segments come from centerlines
    assert page.locator("button[data-tool=split]").is_visible()
    page.locator("path.gg-plan-unit").first.click()
    page.wait_for_selector("#gg-plan-history li")
    assert "试验路" in page.inner_text("#gg-plan-selected")
    assert page.js_errors == []


def test_switching_tools_clears_the_selection_and_a_split_check_gives_the_new_areas(
    plan_app,
    plan_db,  # noqa: F811
    live_server,
    page,
):
    """Issue 21: a merge once went out with a cell picked for an earlier tool, off screen."""
    eng, _ = plan_db
    with eng.connect() as conn:
        cells = [
            (r.code, shapely.from_wkb(bytes(r.g)))
            for r in conn.execute(
                sa.text("SELECT code, ST_AsBinary(geom) AS g FROM grid_cell WHERE code LIKE :p ORDER BY code LIMIT 3"),
                {"p": f"{TOWN}001%"},
            )
        ]
        n = conn.execute(sa.text("SELECT count(*) FROM grid_cell")).scalar()
    base = live_server(plan_app)
    page.goto(f"{base}/plan?town={TOWN}")
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-unit').length === {n}")
    (code_a, a), (code_b, b) = cells[0], cells[1]
    pa, pb = a.representative_point(), b.representative_point()
    _click(page, pa.x, pa.y)
    assert code_a in page.inner_text("#gg-plan-selected")
    page.click("button[data-tool=merge]")
    assert page.inner_text("#gg-plan-selected").strip() == ""  # the merge starts from nothing
    _click(page, pb.x, pb.y)
    assert code_b in page.inner_text("#gg-plan-selected") and code_a not in page.inner_text("#gg-plan-selected")
    page.click("button[data-tool=cancel]")
    assert page.inner_text("#gg-plan-selected").strip() == ""
    # one cell picked, then Split: the cell stays picked; the check gives each new cell's area
    _click(page, pa.x, pa.y)
    page.click("button[data-tool=split]")
    assert code_a in page.inner_text("#gg-plan-selected")
    minx, miny, maxx, maxy = a.bounds
    x = minx + (maxx - minx) * 0.35
    _click(page, x, maxy + (maxy - miny) * 0.1)
    _click(page, x, miny - (maxy - miny) * 0.1)
    _click(page, x, miny - (maxy - miny) * 0.1)
    page.wait_for_selector("#gg-plan-msg.gg-ok")
    text = page.inner_text("#gg-plan-msg")
    assert "拆分后面积" in text and " + " in text and "2 个网格" in text
    page.screenshot(path=str(ARTIFACTS / "plan-split-check.png"))
    assert page.js_errors == []
