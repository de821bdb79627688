"""The case pages and JSON API: who may open what, intake, steps with CSRF, 404 out of sight, 409 on a stale
version, bad input answered clearly and escaped."""

from __future__ import annotations

import io
import re
import uuid

import pytest
import sqlalchemy as sa
from PIL import Image


@pytest.fixture(scope="module")
def point(case_engine):
    """A point on the 段长 demo account's segment (routed to them)."""
    with case_engine.connect() as conn:
        return conn.execute(
            sa.text("""
            SELECT ST_X(ST_LineInterpolatePoint(g.geom, 0.5)) AS lon, ST_Y(ST_LineInterpolatePoint(g.geom, 0.5)) AS lat
            FROM segment g JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id
            JOIN user_account u ON u.person_id = a.person_id
            WHERE u.username = 'duanzhang' AND a.role = '段长' AND a.valid_to IS NULL AND g.area IS NOT NULL
            ORDER BY g.length_m DESC LIMIT 1""")
        ).one()


@pytest.fixture(scope="module")
def other_point(case_engine):
    """A point on a segment of another street than the 段长's."""
    with case_engine.connect() as conn:
        return conn.execute(
            sa.text("""
            SELECT ST_X(ST_LineInterpolatePoint(g.geom, 0.5)) AS lon, ST_Y(ST_LineInterpolatePoint(g.geom, 0.5)) AS lat
            FROM segment g WHERE g.area IS NOT NULL AND g.street_id NOT IN (
                SELECT g2.street_id FROM segment g2 JOIN owner_assignment a ON a.target_type = 'segment'
                AND a.target_id = g2.id JOIN user_account u ON u.person_id = a.person_id WHERE u.username = 'duanzhang')
            ORDER BY g.length_m DESC LIMIT 1""")
        ).one()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (90, 160, 60)).save(buf, "JPEG")
    return buf.getvalue()


def _create(client, pt, **extra):
    body = {"lon": pt.lon, "lat": pt.lat, "crs": "EPSG:4326", "category": "0101", "description": "垃圾", **extra}
    return client.post("/api/cases", json=body)


def _error(res) -> str:
    """The error box of a page, as text."""
    import html

    found = re.search(r'id="gg-step-error">(.*?)</p>', res.get_data(as_text=True), re.S)
    return html.unescape(found.group(1)) if found else ""


def _version(case_app, case_id):
    with case_app.extensions["gisgrid.engine"].connect() as conn:
        return conn.execute(sa.text("SELECT version FROM report WHERE id = :i"), {"i": case_id}).scalar()


def test_intake_over_json_is_idempotent_and_says_where_the_case_went(case_app, point):
    clerk = case_app.test_client(user="clerk")
    key = str(uuid.uuid4())
    first = _create(clerk, point, client_id=key)
    assert first.status_code == 201, first.json
    body = first.json
    assert body["created"] and not body["unassigned"] and body["routing"]["rule"] == "segment_area"
    again = _create(clerk, point, client_id=key)
    assert again.status_code == 200 and again.json["id"] == body["id"] and not again.json["created"]


def test_bad_json_input_gets_a_clear_message(case_app, point):
    clerk = case_app.test_client(user="clerk")
    res = _create(clerk, point, category="9999")
    assert res.status_code == 400 and "未知的问题类别 '9999'" in res.json["detail"]  # the page's language: zh
    res = clerk.post("/api/cases", json={"lon": point.lat, "lat": point.lon, "category": "0101"})
    assert res.status_code == 400 and res.json["error"] == "swapped_lonlat"
    res = clerk.post("/api/cases", json=["not", "an", "object"])
    assert res.status_code == 400


def test_a_write_without_the_csrf_token_is_refused(case_app, point):
    clerk = case_app.test_client(user="clerk")
    clerk.environ_base.pop("HTTP_X_CSRFTOKEN")
    res = _create(clerk, point)
    assert res.status_code == 400 and res.json["error"] == "CSRFError"
    anonymous = case_app.test_client(user=None)
    assert _create(anonymous, point).status_code in (400, 401)  # refused before anything is read
    assert anonymous.get("/api/cases/1").status_code == 401
    assert anonymous.get("/cases").status_code == 302


def test_a_chief_gets_404_for_another_chiefs_case_and_403_for_intake_he_may_not(case_app, point, other_point):
    clerk = case_app.test_client(user="clerk")
    mine = _create(clerk, point).json["id"]
    other = _create(clerk, other_point).json["id"]
    chief = case_app.test_client(user="duanzhang")
    assert chief.get(f"/cases/{mine}").status_code == 200
    assert chief.get(f"/cases/{other}").status_code == 404
    assert chief.get(f"/api/cases/{other}").status_code == 404
    res = chief.post(f"/api/cases/{other}/handle", json={"version": 1, "note": "x"})
    assert res.status_code == 404
    # a planner takes in no cases; an API client sees none
    assert case_app.test_client(role="planner").get("/cases/new").status_code == 403
    assert case_app.test_client(role="api_client").get(f"/cases/{mine}").status_code == 403


def test_the_loop_through_the_pages_with_a_photo_and_a_409_on_a_stale_version(case_app, point):
    clerk = case_app.test_client(user="clerk")
    res = clerk.post(
        "/cases/new",
        data={
            "lon": point.lon,
            "lat": point.lat,
            "crs": "EPSG:4326",
            "category": "0101",
            "description": "<script>alert(1)</script>=cmd",
            "client_id": str(uuid.uuid4()),
            "photos": (io.BytesIO(_jpeg()), "before.jpg"),
        },  # fmt: skip
        content_type="multipart/form-data",
    )
    assert res.status_code == 303
    case_id = int(re.search(r"/cases/(\d+)$", res.headers["Location"]).group(1))
    page = clerk.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;=cmd" in page and "<script>alert(1)" not in page
    assert "gg-photo-before" in page
    dispatcher = case_app.test_client(user="dispatcher")
    page = dispatcher.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'id="gg-step-accept"' in page and 'id="gg-step-handle"' not in page  # only the allowed steps
    stale = _version(case_app, case_id)
    assert dispatcher.post(f"/cases/{case_id}/step", data={"action": "accept", "version": stale}).status_code == 303
    res = dispatcher.post(f"/cases/{case_id}/step", data={"action": "reject", "version": stale, "reason": "dup"})
    assert res.status_code == 409
    text = res.get_data(as_text=True)
    assert "已被他人修改" in text and 'id="gg-kept-input"' in text and ">dup</div>" in text  # kept to copy
    assert (
        dispatcher.post(
            f"/cases/{case_id}/step", data={"action": "dispatch", "version": _version(case_app, case_id)}
        ).status_code
        == 303
    )
    chief = case_app.test_client(user="duanzhang")
    res = chief.post(f"/cases/{case_id}/step", data={"action": "handle", "version": _version(case_app, case_id),
                                                      "note": "cleaned"})  # fmt: skip
    assert res.status_code == 400 and "需要上传处置后照片" in _error(res)  # the store's reason, in Chinese
    res = chief.post(
        f"/cases/{case_id}/step",
        data={
            "action": "handle",
            "version": _version(case_app, case_id),
            "note": "cleaned",
            "photos": (io.BytesIO(b"MZ not a picture"), "after.exe"),
        },  # fmt: skip
        content_type="multipart/form-data",
    )
    assert res.status_code == 400 and "after.exe：不是照片：只接受 JPEG、PNG 和 WebP 图片" in _error(res)
    res = chief.post(
        f"/cases/{case_id}/step",
        data={
            "action": "handle",
            "version": _version(case_app, case_id),
            "note": "cleaned",
            "photos": (io.BytesIO(_jpeg()), "after.jpg"),
        },  # fmt: skip
        content_type="multipart/form-data",
    )
    assert res.status_code == 303
    inspector = case_app.test_client(user="inspector")
    res = inspector.post(f"/api/cases/{case_id}/verify_pass", json={"version": _version(case_app, case_id)})
    assert res.status_code == 200 and res.json["status"] == "closed"
    page = clerk.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "gg-photo-before" in page and "gg-photo-after" in page
    photo = re.search(r'src="(/cases/photos/\d+)/thumb" alt="[^"]*" class="gg-photo-after"', page).group(1)
    img = clerk.get(photo)
    assert img.status_code == 200 and img.mimetype == "image/jpeg" and img.data[:3] == b"\xff\xd8\xff"
    assert case_app.test_client(user="duanzhang").get(photo).status_code == 200
    # a step from the wrong state, over JSON: 409 naming the state
    res = inspector.post(f"/api/cases/{case_id}/verify_pass", json={"version": _version(case_app, case_id)})
    assert res.status_code == 409 and res.json["status"] == "closed" and "结案" in res.json["detail"]
    # a step the role may not take: 403 naming the role
    res = clerk.post(f"/api/cases/{case_id}/reopen", json={"version": _version(case_app, case_id)})
    assert res.status_code == 400  # a reopening needs a reason
    res = case_app.test_client(user="duanzhang").post(
        f"/api/cases/{case_id}/reopen", json={"version": _version(case_app, case_id), "reason": "back"}
    )
    assert res.status_code == 403 and "chief" in res.json["detail"]


def test_lists_per_role(case_app, point):
    clerk = case_app.test_client(user="clerk")
    case_id = _create(clerk, point).json["id"]
    dispatcher = case_app.test_client(user="dispatcher")
    page = dispatcher.get("/cases").get_data(as_text=True)
    assert 'class="gg-active" id="gg-view-queue"' in page and f'data-case="{case_id}"' in page
    chief = case_app.test_client(user="duanzhang")
    assert f'data-case="{case_id}"' not in chief.get("/cases").get_data(as_text=True)  # not dispatched yet
    for step in ("accept", "dispatch"):
        assert (
            dispatcher.post(f"/api/cases/{case_id}/{step}", json={"version": _version(case_app, case_id)}).status_code
            == 200
        )
    page = chief.get("/cases").get_data(as_text=True)
    assert 'id="gg-view-mine"' in page and f'data-case="{case_id}"' in page
    assert "gg-badge" in page  # the inbox has the assignment
    inbox = chief.get("/cases/inbox").get_data(as_text=True)
    assert f"#{case_id}" in inbox
    manager = case_app.test_client(user="manager")
    assert manager.get("/cases?view=all&overdue=1").status_code == 200
    assert manager.get("/cases?since=yesterday").status_code == 400


def test_the_geocoding_pages_rows_become_cases_in_one_step(case_app):
    clerk = case_app.test_client(user="clerk")
    csv = "地址,类别\n龙翔大道2001号,0101\n龙飞大道501号,\n火星路1号,0101\n".encode()
    res = clerk.post(
        "/geocode/", data={"file": (io.BytesIO(csv), "hotline.csv"), "column": "地址", "category": "类别"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert res.status_code in (200, 302, 303), res.get_data(as_text=True)[:500]
    job = re.search(r"/geocode/([0-9a-f]{32})", res.headers.get("Location", "") or res.get_data(as_text=True)).group(1)
    page = clerk.get(f"/geocode/{job}").get_data(as_text=True)
    assert 'id="gg-to-cases"' in page
    res = clerk.post(f"/cases/from-geocode/{job}", data={"category": "0201"})
    text = res.get_data(as_text=True)
    assert res.status_code == 200
    rows = re.findall(r"<tr><td>(\d+)</td>.*?</tr>", text, re.S)
    assert rows == ["1", "2", "3"]  # every source row is kept, in order
    made = re.findall(r'href="/cases/(\d+)"', text)
    assert len(made) == 2 and ("not located" in text or "未定位" in text)  # the third address is nowhere
    again = clerk.post(f"/cases/from-geocode/{job}", data={"category": "0201"}).get_data(as_text=True)
    assert re.findall(r'href="/cases/(\d+)"', again) == made  # twice: the same cases, none new
    assert case_app.test_client(user="dispatcher").post(f"/cases/from-geocode/{job}").status_code == 404


def test_exports_follow_the_filters_an_area_and_neutralise_formulas(case_app, point):
    import openpyxl

    clerk = case_app.test_client(user="clerk")
    case_id = _create(clerk, point, description='=HYPERLINK("http://evil")').json["id"]
    manager = case_app.test_client(user="manager")
    box = (point.lon - 0.001, point.lat - 0.001, point.lon + 0.001, point.lat + 0.001)
    area = "POLYGON(({0} {1},{2} {1},{2} {3},{0} {3},{0} {1}))".format(*box)
    res = manager.get("/cases/export.geojson", query_string={"view": "all", "area": area, "category": "0101"})
    assert res.status_code == 200 and res.mimetype == "application/geo+json"
    features = res.get_json()["features"]
    assert case_id in [f["id"] for f in features]
    assert all(box[0] <= f["geometry"]["coordinates"][0] <= box[2] for f in features)
    res = manager.get("/cases/export.xlsx", query_string={"view": "all", "area": area, "lang": "en"})
    sheet = openpyxl.load_workbook(io.BytesIO(res.data)).active
    header = [c.value for c in sheet[1]]
    rows = {r[header.index("Case number")]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows[case_id][header.index("Description")].startswith("'=")  # never a live formula
    chief = case_app.test_client(user="duanzhang")
    mine = chief.get("/cases/export.geojson", query_string={"view": "all"}).get_json()["features"]
    everything = manager.get("/cases/export.geojson", query_string={"view": "all"}).get_json()["features"]
    assert 0 < len(mine) < len(everything)  # an export holds only what the user sees


@pytest.mark.parametrize(
    "area",
    ["POLYGON((1e400 0,1 0,1 1,1e400 0))", "POLYGON((500 0,501 0,501 1,500 0))", "POLYGON((NaN 0,1 0,1 1,NaN 0))"],
)
def test_an_area_beyond_longitude_and_latitude_is_refused_with_its_reason(case_app, area):
    """An area no map can draw (infinite, or not degrees) is a 400 that says why, not an empty list."""
    manager = case_app.test_client(user="manager")
    for path in ("/cases", "/cases/export.geojson"):
        res = manager.get(path, query_string={"view": "all", "area": area, "lang": "en"})
        assert res.status_code == 400, (path, res.status_code)
        assert "area must be a polygon" in res.get_data(as_text=True)


def test_an_admin_enters_a_years_calendar_in_the_browser_and_the_warning_goes(case_app, case_engine):
    admin = case_app.test_client(role="admin")
    manager = case_app.test_client(user="manager")
    with case_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM work_calendar_day; DELETE FROM work_calendar_year"))
    from gisgrid.cases.workflow import WorkingTime

    today_year = __import__("datetime").date.today().year
    uncovered = [y for y in (today_year, today_year + 1) if not WorkingTime().covers(y)]
    page = manager.get("/cases").get_data(as_text=True)
    assert ('id="gg-calendar-warning"' in page) == bool(uncovered)
    assert case_app.test_client(user="duanzhang").get("/cases/calendar").status_code == 403
    res = admin.post("/cases/calendar", data={"days": "2027-01-01,休,元旦\n2027-13-01,班,?"})
    assert res.status_code == 400 and "不是日期" in res.get_data(as_text=True)
    lines = "\n".join(f"{y}-01-01,休,元旦" for y in [uncovered[-1] if uncovered else 2027])
    assert admin.post("/cases/calendar", data={"days": lines}).status_code == 303
    page = manager.get("/cases").get_data(as_text=True)
    if len(uncovered) == 1:
        assert 'id="gg-calendar-warning"' not in page
    with case_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM work_calendar_day; DELETE FROM work_calendar_year"))
