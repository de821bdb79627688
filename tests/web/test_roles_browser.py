"""People and roles in headless Chromium: log in through the form, see only what is yours, and be named for what you do."""

from __future__ import annotations

from pathlib import Path

import shapely
import sqlalchemy as sa

from gisgrid.demo import DEMO_PASSWORD
from tests.grid.test_plan_store import TOWN, plan_db  # noqa: F401  (module-scoped scratch town)
from tests.signin import TEST_PASSWORD, account_for
from tests.web.test_plan_browser import _click, plan_app  # noqa: F401

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _log_in(page, base: str, username: str, password: str, next_path: str = "/") -> None:
    page.goto(f"{base}{next_path}")
    assert "/auth/login" in page.url, "an anonymous browser is sent to the login page"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#gg-login")
    page.wait_for_load_state("networkidle")


def test_segment_chief_logs_in_and_sees_only_their_streets(app, engine, users, live_server, page):
    base = live_server(app, user=None)
    with engine.connect() as conn:
        mine = conn.execute(
            sa.text("""
            SELECT g.id, s.name FROM owner_assignment a JOIN user_account u ON u.person_id = a.person_id
            JOIN segment g ON a.target_type = 'segment' AND g.id = a.target_id JOIN street s ON s.id = g.street_id
            WHERE u.username = 'duanzhang' AND a.valid_from <= CURRENT_DATE
              AND (a.valid_to IS NULL OR CURRENT_DATE < a.valid_to)""")
        ).all()
    _log_in(page, base, "duanzhang", DEMO_PASSWORD)
    page.wait_for_selector("path.gg-segment")
    assert page.locator("path.gg-segment").count() == len(mine) == 1
    assert users["duanzhang"]["name"] in page.inner_text("#gg-user-name")
    page.locator("path.gg-segment").first.click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert mine[0].name in popup.inner_text()
    nav = page.inner_text("nav")
    assert "网格编辑" not in nav and "覆盖检查" not in nav  # no links to pages a chief may not open
    assert "管理地图" in nav  # the manager map, limited to the reports routed to what they own
    page.screenshot(path=str(ARTIFACTS / "roles-duanzhang.png"))
    assert not page.js_errors and not page.bad_responses


def test_chief_cannot_open_plan(app, users, live_server, page):
    base = live_server(app, user=None)
    _log_in(page, base, "erjijiezhang", DEMO_PASSWORD)
    response = page.goto(f"{base}/plan")
    assert response.status == 403
    assert "您的账号无权打开此页面" in page.inner_text("#gg-error-text")
    assert page.locator("path.gg-plan-unit").count() == 0
    page.bad_responses.clear()  # the 403 is the point


def test_planner_saves_an_edit_and_the_audit_log_names_them(plan_app, plan_db, live_server, page):  # noqa: F811
    eng, _ = plan_db
    planner = account_for(plan_app, role="planner")  # a planner account of the scratch town's database
    with eng.connect() as conn:
        code, cell_id, wkb = conn.execute(
            sa.text("SELECT code, id, ST_AsBinary(geom) FROM grid_cell ORDER BY code DESC LIMIT 1")
        ).one()
        n = conn.execute(sa.text("SELECT count(*) FROM grid_cell")).scalar()
    cell = shapely.from_wkb(bytes(wkb))
    cell = cell.geoms[0] if cell.geom_type == "MultiPolygon" else cell
    base = live_server(plan_app, user=None)
    _log_in(page, base, planner.username, TEST_PASSWORD, f"/plan?town={TOWN}")
    page.wait_for_function(f"() => document.querySelectorAll('path.gg-plan-unit').length === {n}")
    assert page.input_value("#gg-plan-who") == planner.name
    minx, miny, maxx, maxy = cell.bounds
    page.evaluate(
        "(b) => ggPlan.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [150, 150], animate: false})",
        [minx, miny, maxx, maxy],
    )
    page.wait_for_timeout(300)
    centre = shapely.ops.polylabel(cell, tolerance=1e-7)
    _click(page, centre.x, centre.y)
    assert code in page.inner_text("#gg-plan-selected")
    page.click("button[data-tool=delete]")
    page.fill("#gg-plan-reason", "并入道路")
    page.click("#gg-plan-save")  # a fetch() write: it carries the CSRF token of the page
    page.wait_for_selector("#gg-plan-msg.gg-ok")
    with eng.connect() as conn:
        saved_by = conn.execute(
            sa.text("SELECT saved_by FROM plan_version WHERE unit_id = :i AND action = 'delete'"), {"i": cell_id}
        ).scalar()
        log = conn.execute(
            sa.text("""SELECT actor_user_id, actor_name, action, before, after FROM audit_log
                       WHERE action = 'plan.save' ORDER BY id DESC LIMIT 1""")
        ).one()
    assert saved_by == planner.name
    assert (log.actor_user_id, log.actor_name) == (planner.id, planner.name)
    assert log.before["unit_ids"] == [cell_id] and log.after["units"][0]["action"] == "delete"
    assert not page.js_errors and not page.bad_responses
