"""Inspection rounds in headless Chromium, offline assets only: a manager plans an unannounced round with a
sample, the inspector records a finding and a check-in on the phone page (390 px), the manager ends and scores
it, the coverage map; screenshots in tests/artifacts/inspections_*.png."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _until(page, js: str, timeout_s: float = 20.0):
    import time

    end = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(js)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not true after {timeout_s} s: {js}")
        page.wait_for_timeout(100)


def _context(browser, *, phone=False, **extra):
    size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 860}
    context = browser.new_context(viewport=size, is_mobile=phone, locale="zh-CN", **extra)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda m: "Content Security Policy" in m.text and page.errors.append(m.text))
    page.on("requestfailed", lambda r: "127.0.0.1" not in r.url and page.errors.append(r.url))
    return context, page


def test_plan_find_end_and_cover_in_a_browser(insp_app, insp_engine, live_server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    manager_url = live_server(insp_app, user="manager")
    inspector_url = live_server(insp_app, user="inspector")
    chief_url = live_server(insp_app, user="zongjiezhang")  # 总街长 of the county: sees the town once it ends
    with insp_engine.connect() as conn:
        town = conn.execute(sa.text("SELECT id FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1")).scalar()
        inspector_id = conn.execute(sa.text("SELECT id FROM user_account WHERE username = 'inspector'")).scalar()

    # the manager plans an unannounced round of 8 sampled cells
    context, page = _context(browser)
    try:
        page.goto(f"{manager_url}/inspections/new", wait_until="networkidle")
        page.check("input[name=kind][value=unannounced]")
        page.fill("#gg-round-name", "十二月暗访（浏览器测试）")
        page.check(f"input[name=town_ids][value='{town}']")
        page.check("input[name=sample]")
        page.select_option("select[name=sample_kind]", "cell")
        page.fill("input[name=sample_size]", "8")
        page.fill("input[name=seed]", "42")
        page.check(f"input[name=inspector_ids][value='{inspector_id}']")
        page.screenshot(path=str(ARTIFACTS / "inspections_1_plan.png"), full_page=True)
        page.click("#gg-plan-save")
        page.wait_for_selector("#gg-round-title")
        round_id = int(page.url.rstrip("/").split("/")[-1])
        _until(page, "() => document.querySelectorAll('path.gg-target').length === 8")
        assert page.locator("path.gg-target-unvisited").count() == 8  # nobody has been there yet
        assert "暗访" in page.inner_text("#gg-round-title")
        page.screenshot(path=str(ARTIFACTS / "inspections_2_round.png"))
        assert not page.errors, page.errors
    finally:
        context.close()

    # the inspected (the county's 总街长) does not learn of it
    context, page = _context(browser)
    try:
        res = page.goto(f"{chief_url}/inspections/{round_id}")
        text = page.inner_text("#gg-error-text")
        assert res.status == 404 and "十二月暗访" not in page.inner_text("body") and "没有此检查轮次" in text, text
    finally:
        context.close()

    # the inspector, on the phone at one of the sampled cells: a finding, then "patrolled here"
    with insp_engine.connect() as conn:
        lon, lat = conn.execute(
            sa.text("""SELECT ST_X(ST_PointOnSurface(c.geom)), ST_Y(ST_PointOnSurface(c.geom)) FROM inspection_target t
                       JOIN grid_cell c ON c.id = t.unit_id WHERE t.round_id = :r ORDER BY t.rank LIMIT 1"""),
            {"r": round_id},
        ).one()
    context, page = _context(
        browser, phone=True, service_workers="block", permissions=["geolocation"],
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 5},
    )  # fmt: skip
    try:
        page.goto(f"{inspector_url}/cases/phone/", wait_until="networkidle")
        page.click("#gg-gps")
        _until(page, "() => document.getElementById('gg-lon').value !== ''")
        page.select_option("#gg-round", str(round_id))
        assert page.is_hidden("#gg-category-label") and page.is_visible("#gg-item-label")
        page.click("#gg-send")  # no item picked: said so, nothing queued
        assert "检查项" in page.inner_text("#gg-msg")
        page.select_option("#gg-item", index=1)
        page.fill("#gg-description", "暗访发现：垃圾桶满溢")
        page.click("#gg-send")
        _until(page, "() => /#\\d+/.test(document.getElementById('gg-msg').textContent)")
        page.wait_for_selector("#gg-queue[data-count='0']", state="attached")
        assert page.input_value("#gg-round") == str(round_id)  # the next finding is in the same round
        page.screenshot(path=str(ARTIFACTS / "inspections_3_phone_finding.png"), full_page=True)
        page.click("#gg-checkin")
        _until(page, "() => document.getElementById('gg-msg').textContent.indexOf('已打卡') >= 0")
        page.screenshot(path=str(ARTIFACTS / "inspections_4_phone_checkin.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not page.errors, page.errors
    finally:
        context.close()
    with insp_engine.connect() as conn:
        source = conn.execute(sa.text("SELECT r.source FROM report r WHERE r.inspection_round_id = :r"),
                              {"r": round_id}).scalars().all()  # fmt: skip
        assert source == ["unannounced"]

    # the manager ends and scores it (in English), at desktop width and on a phone
    context, page = _context(browser)
    try:
        page.goto(f"{manager_url}/inspections/{round_id}?lang=en", wait_until="networkidle")
        page.click("#gg-end-round")
        page.wait_for_selector("details.gg-scores[data-kind=town]")
        _until(page, "() => document.querySelectorAll('path.gg-target-unvisited').length === 7")  # the finding's cell
        text = page.inner_text("body")
        assert "Scores" in text and "ended" in text and "得分" not in text
        page.screenshot(path=str(ARTIFACTS / "inspections_5_scores_en.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload(wait_until="networkidle")
        page.screenshot(path=str(ARTIFACTS / "inspections_6_scores_phone_en.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # coverage: the map layer of units nobody visited this month
        page.set_viewport_size({"width": 1280, "height": 860})
        page.goto(f"{manager_url}/inspections/coverage?lang=zh_CN", wait_until="networkidle")
        _until(page, "() => document.querySelectorAll('path.gg-unvisited-cell').length > 0")
        assert page.locator("path.gg-visited").count() >= 1  # the finding's and the check-in's cell
        page.screenshot(path=str(ARTIFACTS / "inspections_7_coverage.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload(wait_until="networkidle")
        page.screenshot(path=str(ARTIFACTS / "inspections_8_coverage_phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not page.errors, page.errors
    finally:
        context.close()
    # ended: now the 总街长 sees the round
    context, page = _context(browser)
    try:
        assert page.goto(f"{chief_url}/inspections/{round_id}").status == 200
    finally:
        context.close()
