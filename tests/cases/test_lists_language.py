"""Case lists and pages as a user reads them: local time (never UTC), an owner filter by name that keeps
namesakes apart, a count that stops at 1,000, and the stores' reasons in the page's language."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa


@pytest.fixture(scope="module")
def point(case_engine):
    """A point on the 段长 demo account's segment."""
    with case_engine.connect() as conn:
        return conn.execute(
            sa.text("""
            SELECT ST_X(ST_LineInterpolatePoint(g.geom, 0.5)) AS lon, ST_Y(ST_LineInterpolatePoint(g.geom, 0.5)) AS lat
            FROM segment g JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id
            JOIN user_account u ON u.person_id = a.person_id
            WHERE u.username = 'duanzhang' AND a.role = '段长' AND a.valid_to IS NULL AND g.area IS NOT NULL
            ORDER BY g.length_m DESC LIMIT 1""")
        ).one()


def _case(client, pt, **extra) -> int:
    body = {"lon": pt.lon, "lat": pt.lat, "crs": "EPSG:4326", "category": "0101", "description": "时间", **extra}
    res = client.post("/api/cases", json=body)
    assert res.status_code == 201, res.get_data(as_text=True)
    return res.json["id"]


def test_every_case_page_list_and_export_shows_local_time_not_utc(case_app, case_settings, point):
    from gisgrid.timeutil import local_text

    admin = case_app.test_client()
    utc = dt.datetime(2026, 12, 1, 20, 30, tzinfo=dt.timezone.utc)  # 04:30 the next day in Shanghai
    case_id = _case(admin, point, reported_at=utc.isoformat(), client_id=f"tz-{uuid.uuid4()}")
    local = local_text(utc, case_settings.timezone)
    assert local == "2026-12-02 04:30" and case_settings.timezone == "Asia/Shanghai"

    page = admin.get(f"/cases/{case_id}").get_data(as_text=True)
    assert local in page and "2026-12-01 20:30" not in page
    listed = admin.get("/cases?view=all&since=2026-12-02&until=2026-12-02").get_data(as_text=True)
    row = re.search(rf'data-case="{case_id}".*?</tr>', listed, re.S).group(0)
    assert local in row and "20:30" not in row

    exported = admin.get("/cases/export.geojson?view=all&since=2026-12-02&until=2026-12-02")
    feature = next(f for f in json.loads(exported.data)["features"] if f["properties"]["id"] == case_id)
    assert feature["properties"]["reported_at"] == local
    xlsx = pd.read_excel(
        io.BytesIO(admin.get("/cases/export.xlsx?view=all&since=2026-12-02&until=2026-12-02&lang=en").data)
    )
    assert xlsx.loc[xlsx["Case number"] == case_id, "Reported"].item() == local


@pytest.fixture
def namesake(case_engine):
    """A second person bearing the 段长 demo account's name, a 网格员 of a community today (removed after)."""
    with case_engine.begin() as conn:
        first = conn.execute(
            sa.text(
                "SELECT p.id, p.name FROM person p JOIN user_account u ON u.person_id = p.id WHERE u.username = 'duanzhang'"
            )
        ).one()
        other = conn.execute(sa.text("INSERT INTO person (name) VALUES (:n) RETURNING id"), {"n": first.name}).scalar()
        community = conn.execute(
            sa.text("SELECT id FROM jurisdiction WHERE level = 'community' ORDER BY id DESC LIMIT 1")
        ).scalar()
        conn.execute(
            sa.text("""INSERT INTO owner_assignment (target_type, target_id, person_id, role, valid_from)
                       VALUES ('jurisdiction', :c, :p, '网格员', CURRENT_DATE - 1)"""),
            {"c": community, "p": other},
        )
    yield first.id, other, first.name
    with case_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM owner_assignment WHERE person_id = :p"), {"p": other})
        conn.execute(sa.text("DELETE FROM person WHERE id = :p"), {"p": other})


def test_the_owner_filter_takes_a_name_and_keeps_namesakes_apart(case_app, point, namesake):
    first, other, name = namesake
    admin = case_app.test_client()
    mine = _case(admin, point, client_id=f"owner-{uuid.uuid4()}")  # routed to the 段长 (the first of the two)

    found = admin.get("/cases/owners.json", query_string={"q": name[:1]}).json["people"]
    labels = {p["id"]: p["label"] for p in found}
    assert {first, other} <= set(labels) and labels[first] != labels[other]
    assert f"#{first}" in labels[first] and f"#{other}" in labels[other]

    page = admin.get("/cases", query_string={"view": "all", "owner": name})  # a bare name two people bear
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="gg-namesakes"' in text and "有多人同名" in text
    assert f"owner={first}" in text and f"owner={other}" in text

    picked = admin.get("/cases", query_string={"view": "all", "owner": labels[first]}).get_data(as_text=True)
    ids = {int(i) for i in re.findall(r'data-case="(\d+)"', picked)}
    assert mine in ids and 'id="gg-namesakes"' not in picked
    assert f'value="{labels[first]}"' in picked  # the box shows who is filtered, by name, number and place
    theirs = admin.get("/cases", query_string={"view": "all", "owner": labels[other]}).get_data(as_text=True)
    assert mine not in {int(i) for i in re.findall(r'data-case="(\d+)"', theirs)}

    nobody = admin.get("/cases", query_string={"view": "all", "owner": "没有这个人"})  # said, and kept in the box
    text = nobody.get_data(as_text=True)
    assert nobody.status_code == 200 and 'id="gg-owner-error"' in text and "没有名为 没有这个人 的责任人" in text
    assert 'value="没有这个人"' in text
    part = admin.get("/cases", query_string={"view": "all", "owner": name[1:]}).get_data(as_text=True)
    assert f"owner={first}" in part and f"owner={other}" in part  # part of a name: the people who bear it


def test_a_count_beyond_the_cap_reads_more_than(case_app, case_engine, case_settings):
    from gisgrid.accounts.scope import Scope
    from gisgrid.accounts.store import find_user
    from gisgrid.cases import lists as case_lists

    with case_engine.connect() as conn:
        admin = find_user(conn, "admin")
        total = conn.execute(sa.text("SELECT count(*) FROM report WHERE status <> 'merged'")).scalar()
        assert total > 3
        capped = case_lists.case_page(conn, Scope(admin.id, dt.date.today()), admin, case_settings, count_cap=3)
        exact = case_lists.case_page(conn, Scope(admin.id, dt.date.today()), admin, case_settings, count_cap=None)
    assert (capped.total, capped.more) == (3, True) and (exact.total, exact.more) == (total, False)
    assert [r["id"] for r in capped.rows] == [r["id"] for r in exact.rows]


def test_store_reasons_are_in_the_pages_language(case_app, point):
    """Intake, the calendar and a step gave the stores' English on Chinese pages (README: What gisgrid does with bad input)."""
    clerk = case_app.test_client(user="clerk")
    form = {"lon": "abc", "lat": "", "category": "", "description": "x", "client_id": "short"}
    zh = clerk.post("/cases/new", data=form).get_data(as_text=True)
    assert "lon 必须是数字" in zh and "需要问题类别" in zh and "client_id 必须是 8 至 64" in zh
    assert "must be a number" not in zh
    en = clerk.post("/cases/new?lang=en", data=form).get_data(as_text=True)
    assert "lon must be a number" in en and "a category is needed" in en

    clerk = case_app.test_client(user="clerk")  # a new browser: the ?lang=en above is remembered in a cookie
    api = clerk.post("/api/cases", json={"lon": point.lon, "lat": point.lat, "category": "9999"})
    assert api.status_code == 400 and "未知的问题类别" in api.json["detail"]
    api_en = clerk.post("/api/cases?lang=en", json={"lon": point.lon, "lat": point.lat, "category": "9999"})
    assert "unknown category '9999'" in api_en.json["detail"]

    admin = case_app.test_client()
    cal = admin.post("/cases/calendar", data={"days": "2031-13-45,休,x\n2031-01-02,maybe,y"})
    text = cal.get_data(as_text=True)
    assert cal.status_code == 400 and "第 1 行" in text and "不是日期" in text and "工作日标记" in text
    assert "is not a date" not in text

    photo = (
        case_app.test_client(user="clerk")
        .post(
            "/cases/new",
            data={
                "lon": str(point.lon),
                "lat": str(point.lat),
                "category": "0101",
                "photos": (io.BytesIO(b"MZ"), "a.exe"),
            },
            content_type="multipart/form-data",
        )
        .get_data(as_text=True)
    )
    assert "a.exe：不是照片" in photo


def test_bulk_appointment_preview_reasons_in_chinese(case_app):
    admin = case_app.test_client()
    sheet = "unit_type,unit,role,person\nsegment,没有这段,段长,没有这人\nriver,x,段长,张三\n".encode()
    res = admin.post(
        "/owners/bulk", data={"file": (io.BytesIO(sheet), "owners.csv")}, content_type="multipart/form-data"
    )
    text = html.unescape(res.get_data(as_text=True))
    assert res.status_code == 200 and "没有名为 '没有这人' 的人员" in text and "单元类型 'river'" in text
    assert "nobody is named" not in text
