"""The case loop in headless Chromium, offline: intake → accept → dispatch → handle → verify → closed,
each step by the person whose step it is, with screenshots (tests/artifacts/case_*.png)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from PIL import Image

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _jpeg(path: Path, colour) -> Path:
    Image.new("RGB", (640, 480), colour).save(path, "JPEG")
    return path


def _until(page, js: str, timeout_s: float = 20.0):
    """Poll ``js`` (a function expression) until it answers truthy: ``wait_for_function`` evaluates strings,
    which the pages' Content-Security-Policy forbids."""
    import time

    end = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(js)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not true after {timeout_s} s: {js}")
        page.wait_for_timeout(100)


def _clean(page):
    assert not page.js_errors, page.js_errors
    assert not [b for b in page.bad_responses if b[0] != 404], page.bad_responses


def test_intake_to_closed_in_a_browser(case_app, case_engine, live_server, browser, tmp_path):
    with case_engine.connect() as conn:
        lon, lat = conn.execute(
            sa.text("""
            SELECT ST_X(ST_LineInterpolatePoint(g.geom, 0.5)), ST_Y(ST_LineInterpolatePoint(g.geom, 0.5))
            FROM segment g JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id
            JOIN user_account u ON u.person_id = a.person_id
            WHERE u.username = 'duanzhang' AND a.role = '段长' AND a.valid_to IS NULL AND g.area IS NOT NULL
            ORDER BY g.length_m DESC LIMIT 1""")
        ).one()
    ARTIFACTS.mkdir(exist_ok=True)
    servers = {u: live_server(case_app, user=u) for u in ("clerk", "dispatcher", "duanzhang", "inspector")}
    contexts = []

    def as_user(name: str) -> str:
        """Each person in a browser context of their own (cookies are per host, not per port)."""
        nonlocal page
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN", service_workers="block")
        contexts.append(context)
        pg = context.new_page()
        pg.js_errors, pg.bad_responses = [], []
        pg.on("pageerror", lambda exc: pg.js_errors.append(str(exc)))
        pg.on("response", lambda r: r.status >= 400 and pg.bad_responses.append((r.status, r.url)))
        pg.on("console", lambda m: "Content Security Policy" in m.text and pg.js_errors.append(m.text))
        page = pg
        return servers[name]

    page = None
    try:
        _loop(as_user, lambda: page, lon, lat, tmp_path)
    finally:
        for context in contexts:
            context.close()


def _loop(as_user, current, lon, lat, tmp_path):
    # the clerk clicks the map, then types the exact point, picks a category and attaches a photo
    base = as_user("clerk")
    page = current()
    page.goto(f"{base}/cases/new", wait_until="networkidle")
    page.locator("#gg-intake-map .folium-map").click()
    assert page.input_value("#gg-lon") and page.input_value("#gg-lat")  # the click placed the case
    page.fill("#gg-lon", f"{lon:.7f}")
    page.fill("#gg-lat", f"{lat:.7f}")
    page.select_option("#gg-category", "0101")
    page.fill("#gg-description", "人行道上堆放的生活垃圾 <b>浏览器测试</b>")
    page.set_input_files("input[name=photos]", str(_jpeg(tmp_path / "before.jpg", (150, 170, 120))))
    page.screenshot(path=str(ARTIFACTS / "case_1_intake.png"))
    page.click("#gg-submit")
    page.wait_for_url(re.compile(r".*/cases/\d+$"))
    case_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("#gg-case-state").get_attribute("data-state") == "reported"
    assert "<b>浏览器测试</b>" in page.locator("#gg-case-description").inner_text()  # shown as text, not markup
    # the case page's light map (vendored Leaflet, no Folium render): the marker, its unit, the streets around
    page.wait_for_selector("#gg-case-map path.gg-case")
    assert page.locator("#gg-case-map path.gg-context-street").count() > 0
    assert page.locator("#gg-case-map path.gg-case-area").count() == 1
    assert page.locator("#gg-case-map").get_attribute("lang") == "zh-CN"
    _clean(page)

    # the dispatcher sees it in the queue, accepts and dispatches it to the routed 段长
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    base = as_user("dispatcher")
    page = current()
    page.goto(f"{base}/cases?view=queue&since={today}", wait_until="networkidle")
    assert page.locator(f"tr[data-case='{case_id}']").count() == 1
    page.screenshot(path=str(ARTIFACTS / "case_2_queue.png"))
    page.click(f"tr[data-case='{case_id}'] a")
    page.wait_for_url(re.compile(rf".*/cases/{case_id}$"))
    page.click("#gg-open-accept")
    page.click("#gg-do-accept")
    page.wait_for_selector("#gg-case-state[data-state='accepted']")
    page.click("#gg-open-dispatch")
    page.click("#gg-do-dispatch")
    page.wait_for_selector("#gg-case-state[data-state='dispatched']")
    _clean(page)

    # the 段长 finds it in their list and inbox, handles it with an "after" photo
    base = as_user("duanzhang")
    page = current()
    page.goto(f"{base}/cases", wait_until="networkidle")
    assert page.locator(f"tr[data-case='{case_id}']").count() == 1
    assert page.locator("#gg-nav-inbox .gg-badge").count() == 1
    page.screenshot(path=str(ARTIFACTS / "case_3_chief_list.png"))
    page.click(f"tr[data-case='{case_id}'] a")
    assert page.locator("#gg-step-accept").count() == 0  # only the steps the chief may take
    page.click("#gg-open-handle")
    page.fill("#gg-step-handle textarea[name=note]", "已清理，垃圾已运走")
    page.set_input_files("#gg-step-handle input[name=photos]", str(_jpeg(tmp_path / "after.jpg", (210, 215, 205))))
    page.click("#gg-do-handle")
    page.wait_for_selector("#gg-case-state[data-state='handled']")
    _clean(page)

    # the inspector checks on site: passed, closed; before and after side by side, the whole timeline
    base = as_user("inspector")
    page = current()
    page.goto(f"{base}/cases/{case_id}", wait_until="networkidle")
    page.click("#gg-open-verify_pass")
    page.click("#gg-do-verify_pass")
    page.wait_for_selector("#gg-case-state[data-state='closed']")
    page.wait_for_selector("img.gg-photo-after")
    assert page.locator("img.gg-photo-before").evaluate("i => i.naturalWidth") > 0
    assert page.locator("img.gg-photo-after").evaluate("i => i.naturalWidth") > 0
    steps = page.locator("#gg-timeline li").evaluate_all("els => els.map(e => e.dataset.action)")
    assert steps == ["report", "accept", "dispatch", "handle", "verify_pass"]
    page.screenshot(path=str(ARTIFACTS / "case_4_closed.png"), full_page=True)
    _clean(page)


def test_a_chief_opening_another_chiefs_case_sees_404(case_app, case_engine, live_server, page):
    with case_engine.connect() as conn:
        other = conn.execute(
            sa.text("""
            SELECT r.id FROM report r WHERE r.assigned_type = 'segment' AND r.assignee_person_id IS DISTINCT FROM
              (SELECT person_id FROM user_account WHERE username = 'duanzhang')
              AND r.assigned_segment_id NOT IN (SELECT g.id FROM segment g WHERE g.street_id IN (
                  SELECT g2.street_id FROM segment g2 JOIN owner_assignment a ON a.target_type = 'segment'
                  AND a.target_id = g2.id JOIN user_account u ON u.person_id = a.person_id
                  WHERE u.username = 'duanzhang'))
            LIMIT 1""")
        ).scalar()
    base = live_server(case_app, user="duanzhang")
    response = page.goto(f"{base}/cases/{other}")
    assert response.status == 404


def test_the_case_list_fits_a_phone(case_app, live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    page = context.new_page()
    base = live_server(case_app, user="duanzhang")
    page.goto(f"{base}/cases", wait_until="networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(ARTIFACTS / "case_5_phone_list.png"))
    context.close()
    assert width <= 390


def test_the_phone_page_keeps_reports_without_signal_and_sends_them_once(
    case_app, case_engine, live_server, browser, tmp_path
):
    """Chromium with the network emulated offline, then online: the report waits on the device, then
    makes exactly one case (its client id), even when sent again."""
    from tests.browser import CHROMIUM_ARGS  # noqa: F401 - the same Chromium as every browser test

    with case_engine.connect() as conn:
        lon, lat = conn.execute(
            sa.text(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_LineInterpolatePoint(geom, 0.3) AS c FROM segment "
                "ORDER BY length_m DESC LIMIT 1) s"
            )  # fmt: skip
        ).one()
    base = live_server(case_app, user="clerk")
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        locale="zh-CN",
        service_workers="allow",
        permissions=["geolocation"],
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{base}/cases/phone/", wait_until="networkidle")
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        page.reload(wait_until="networkidle")  # now controlled by the service worker: the page is cached
        page.click("#gg-gps")
        _until(page, "() => document.getElementById('gg-lon').value !== ''")
        context.set_offline(True)
        page.reload()  # no signal: the page still opens, from the service worker's cache
        page.wait_for_selector("#gg-net[data-online='0']")
        page.click("#gg-gps")
        _until(page, "() => document.getElementById('gg-lon').value !== ''")
        page.select_option("#gg-category", "0101")
        page.fill("#gg-description", "离线上报：路口垃圾堆放")
        page.set_input_files("#gg-photo", str(_jpeg(tmp_path / "phone.jpg", (90, 90, 90))))
        page.click("#gg-send")
        page.wait_for_selector("#gg-queue[data-count='1']", state="attached")
        client_id = page.locator("#gg-queue li").get_attribute("data-client-id")
        page.screenshot(path=str(ARTIFACTS / "case_6_phone_offline.png"))
        with case_engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT count(*) FROM report WHERE client_id = :k"), {"k": client_id}).scalar()
                == 0
            )
        context.set_offline(False)  # the connection returns: the outbox empties itself
        page.wait_for_selector("#gg-queue[data-count='0']", state="attached", timeout=20000)
        assert "#" in page.locator("#gg-msg").inner_text()
        page.screenshot(path=str(ARTIFACTS / "case_7_phone_sent.png"))
        # the same report sent again (a retry after a lost answer): still one case
        again = page.evaluate(
            """([id, lon, lat]) => { const f = new FormData();
                 f.append('client_id', id); f.append('lon', lon); f.append('lat', lat); f.append('category', '0101');
                 return fetch('/api/cases/phone', {method: 'POST', body: f, headers: {'X-CSRFToken':
                   document.querySelector('meta[name=csrf-token]').content}}).then(r => r.status); }""",
            [client_id, str(lon), str(lat)],
        )
        assert again == 200
        with case_engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT r.source, (SELECT count(*) FROM case_photo p WHERE p.report_id = r.id) FROM report r "
                    "WHERE r.client_id = :k"
                ),  # fmt: skip
                {"k": client_id},
            ).all()
        assert rows == [("phone", 1)]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not errors, errors
    finally:
        context.close()


def test_a_manager_draws_an_area_and_the_list_and_export_keep_only_its_cases(
    case_app, case_engine, live_server, browser
):
    """Issue 19: export of cases "by an area drawn on the map" — the list's area map (Leaflet-Geoman)."""
    import json
    import urllib.request

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
    base = live_server(case_app, user="manager")
    try:
        page.goto(f"{base}/cases?view=all", wait_until="networkidle")
        page.click("#gg-area-box summary")
        page.wait_for_selector("#gg-area-map .leaflet-pm-icon-rectangle")
        box = page.locator("#gg-area-map").bounding_box()
        page.click("#gg-area-map .leaflet-pm-icon-rectangle")
        x, y, w, h = box["x"], box["y"], box["width"], box["height"]
        page.mouse.click(x + w * 0.25, y + h * 0.25)
        page.mouse.click(x + w * 0.6, y + h * 0.75)
        area = page.input_value("#gg-area")
        assert area.startswith("POLYGON((") and area.count(",") == 4
        page.screenshot(path=str(ARTIFACTS / "case_6_area_drawn.png"))
        page.click("#gg-filter")
        page.wait_for_load_state("networkidle")
        assert "area=POLYGON" in page.url and page.locator("#gg-area-map path.gg-drawn-area").count() == 1
        listed = {int(i) for i in page.locator("tr.gg-case-row").evaluate_all("rs => rs.map(r => r.dataset.case)")}
        href = page.get_attribute("#gg-export-geojson", "href")
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
        req = urllib.request.Request(base + href if href.startswith("/") else href, headers={"Cookie": cookies})
        with urllib.request.urlopen(req, timeout=60) as res:
            exported = json.loads(res.read())
        assert not errors, errors
    finally:
        context.close()
    with case_engine.connect() as conn:
        inside = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT id FROM report WHERE status <> 'merged' AND ST_Intersects(geom, ST_GeomFromText(:a, 4326))"
                ),
                {"a": area},
            )
        }
    assert inside, "the drawn rectangle should hold some demo cases"
    ids = {f["properties"]["id"] for f in exported["features"]}
    assert ids == inside and listed <= inside
