"""Every page at a phone's size (390 × 844) in a real headless Chromium: nothing wider than the screen, the
menu behind its button, maps filling the screen, legends and layer lists folded.  Screenshots in
tests/artifacts/phone-*.png."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def places(app, users, engine) -> dict:
    """Ids the pages need: a case, a segment, a user, a geocoding job of the test admin."""
    with engine.connect() as conn:
        case_id = conn.execute(sa.text("SELECT min(id) FROM report WHERE geom IS NOT NULL")).scalar()
        segment_id = conn.execute(sa.text("SELECT min(id) FROM segment")).scalar()
        user_id = conn.execute(sa.text("SELECT id FROM user_account WHERE username = 'duanzhang'")).scalar()
        street = conn.execute(
            sa.text("SELECT a.street || a.housenumber || '号' FROM address_point a ORDER BY a.id LIMIT 1")
        ).scalar()
    client = app.test_client()
    sheet = f"编号,地址\n1,{street}\n2,无法识别的地址\n".encode()
    resp = client.post(
        "/geocode/",
        data={"file": (io.BytesIO(sheet), "hotline.csv"), "column": "地址", "sheet": ""},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    job = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    return {"case": case_id, "segment": segment_id, "user": user_id, "job": job}


#: name -> (path, has a map)
PAGES = {
    "home": ("/", True),
    "manager": ("/map", True),
    "plan": ("/plan", True),
    "audit": ("/audit", True),
    "geocode": ("/geocode/", False),
    "geocode-job": ("/geocode/{job}", True),
    "cases": ("/cases", False),
    "case": ("/cases/{case}", True),
    "case-new": ("/cases/new", True),
    "inbox": ("/cases/inbox", False),
    "calendar": ("/cases/calendar", False),
    "unit": ("/units/segment/{segment}", False),
    "owners": ("/owners/", False),
    "owners-bulk": ("/owners/bulk", False),
    "audit-log": ("/audit-log/", False),
    "users": ("/admin/users/", False),
    "user": ("/admin/users/{user}", False),
    "user-new": ("/admin/users/new", False),
    "password": ("/auth/password", False),
    "help": ("/help", False),
    "inspections": ("/inspections/", False),
    "inspections-coverage": ("/inspections/coverage", False),
    "rankings": ("/rankings/", False),
    "redblack": ("/frontage/redblack", False),
    "frontage-segment": ("/frontage/segment/{segment}", False),
}


@pytest.fixture()
def phone(browser):
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN", service_workers="block", is_mobile=True, has_touch=True
    )
    pg = context.new_page()
    pg.js_errors = []
    pg.on("pageerror", lambda exc: pg.js_errors.append(str(exc)))
    yield pg
    context.close()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_fits_a_phone(name, app, places, live_server, phone):
    path, has_map = PAGES[name]
    base = live_server(app)
    phone.goto(base + path.format(**places), wait_until="networkidle")
    phone.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"))
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path} is {width} px wide on a {PHONE['width']} px screen"
    # the menu sits behind its button, and opens
    nav = phone.locator("#gg-nav")
    assert not nav.is_visible()
    phone.locator("#gg-menu-toggle").click()
    assert nav.is_visible() and nav.locator("#gg-nav-help").is_visible()
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    phone.locator("#gg-menu-toggle").click()
    if has_map:
        box = phone.locator(".leaflet-container").first.bounding_box()
        assert box["width"] >= PHONE["width"] - 20, f"the map is {box['width']} px wide"
        assert box["height"] >= 0.5 * PHONE["height"], f"the map is {box['height']} px high"
        for legend in phone.locator(".leaflet-container .gg-legend").all():  # folded: the map comes first
            assert "gg-folded" in legend.get_attribute("class")
        for fold in phone.locator("details.gg-fold").all():  # filters and side legends too
            assert fold.get_attribute("open") is None
        assert phone.locator(".leaflet-control-layers-expanded").count() == 0
    assert not phone.js_errors, phone.js_errors


def test_phone_report_page_fits(app, users, live_server, phone):
    base = live_server(app)
    phone.goto(base + "/cases/phone/", wait_until="networkidle")
    phone.screenshot(path=str(ARTIFACTS / "phone-report.png"))
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.locator("a[href='/help']").count() == 1


@pytest.mark.parametrize("layer", ["cell", "segment"])
@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_plan_tools_fit_a_phone(layer, lang, app, users, live_server, phone):
    """/plan at 390 × 844: the tools are a bar at the bottom of the screen, over the map, every button whole on
    the screen, none covered, none wider than the screen, each one picked by a tap (its hint shows in the bar)."""
    base = live_server(app)
    phone.goto(f"{base}/plan?layer={layer}&lang={lang}", wait_until="networkidle")
    phone.wait_for_timeout(300)
    phone.screenshot(path=str(ARTIFACTS / f"phone-plan-tools-{layer}-{lang}.png"))
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    buttons = phone.locator("#gg-plan-tools button[data-tool]")
    wanted = ["draw", "reshape", "split", "merge", "delete", "cancel"] if layer == "cell" else [
        "reshape", "split", "merge", "cancel"]  # fmt: skip
    assert [b.get_attribute("data-tool") for b in buttons.all()] == wanted
    bar = phone.locator("#gg-plan-toolbar").bounding_box()
    assert bar["y"] + bar["height"] <= PHONE["height"] + 1 and bar["height"] < 0.25 * PHONE["height"]
    map_box = phone.locator(".leaflet-container").first.bounding_box()
    assert bar["y"] < map_box["y"] + map_box["height"] + 60  # on the map's screen: no scrolling between tool and map
    credit = phone.locator(".leaflet-control-attribution").first.bounding_box()
    assert credit["y"] + credit["height"] <= bar["y"] + 1  # the map's credits are not hidden behind the bar
    rows = set()
    for b in buttons.all():
        assert b.is_visible()
        box = b.bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
        assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], box
        assert box["width"] >= 80 and box["height"] >= 32, box  # a finger's size
        rows.add(round(box["y"]))
        # nothing covers it, and its whole label shows (no ellipsis)
        covered = phone.evaluate(
            "([x, y]) => { const e = document.elementFromPoint(x, y); return e ? e.closest('button')?.dataset.tool : null }",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert covered == b.get_attribute("data-tool")
        assert b.evaluate("e => e.scrollWidth <= e.clientWidth"), b.inner_text()
    assert len(rows) == 2  # three buttons a row, not one word a line
    hint = phone.locator("#gg-plan-hint")
    for b in buttons.all():
        tool = b.get_attribute("data-tool")
        before = hint.inner_text()
        b.tap()
        active = phone.locator("#gg-plan-tools button.gg-active")
        if tool == "cancel":
            assert active.count() == 0
        else:
            assert active.count() == 1 and active.get_attribute("data-tool") == tool
            assert hint.is_visible() and hint.inner_text().strip() not in ("", before)  # the tool's own hint
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert not phone.js_errors, phone.js_errors
