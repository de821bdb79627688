"""Inspection pages: who opens what (an unannounced round is 404 to the inspected), planning with bad input in
both languages, findings through the phone page's API, ending and scoring, the checklist, coverage, check-ins."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid

import pytest
import sqlalchemy as sa

from gisgrid import timeutil


def _text(res) -> str:
    return html.unescape(res.get_data(as_text=True))


def _error(res, box: str) -> str:
    found = re.search(rf'id="{box}">(.*?)</p>', res.get_data(as_text=True), re.S)
    return html.unescape(found.group(1)) if found else ""


@pytest.fixture(scope="module")
def ids(insp_engine, insp_settings):
    with insp_engine.connect() as conn:
        town = conn.execute(sa.text("SELECT id FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1")).scalar()
        users = dict(conn.execute(sa.text("SELECT username, id FROM user_account")).all())
        item = conn.execute(
            sa.text("""SELECT i.id FROM inspection_checklist_item i JOIN category c ON c.id = i.category_id
                       WHERE c.code = '0101' ORDER BY i.id LIMIT 1""")
        ).scalar()
        seg = conn.execute(
            sa.text("""SELECT ST_X(ST_PointOnSurface(g.area)) AS lon, ST_Y(ST_PointOnSurface(g.area)) AS lat
                       FROM segment g WHERE g.area IS NOT NULL ORDER BY g.id LIMIT 1""")
        ).one()
        box = conn.execute(sa.text("SELECT ST_XMax(geom), ST_YMax(geom) FROM jurisdiction WHERE id = :t"),
                           {"t": town}).one()  # fmt: skip
    today = timeutil.local_today(insp_settings.timezone)
    return {"town": town, "users": users, "item": item, "point": seg, "outside": (box[0] + 0.05, box[1] + 0.05),
            "today": today}  # fmt: skip


def _plan(client, ids, *, kind="unannounced", **extra):
    form = {
        "kind": kind,
        "name": f"网页测试{kind}{uuid.uuid4().hex[:4]}",
        "period_start": str(ids["today"].replace(day=1)),
        "period_end": str(ids["today"] + dt.timedelta(days=3)),
        "scope_kind": "town",
        "town_ids": [str(ids["town"])],
        "inspector_ids": [str(ids["users"]["inspector"])],
        **extra,
    }
    res = client.post("/inspections/new", data=form)
    assert res.status_code == 303, _error(res, "gg-plan-error")
    return int(res.headers["Location"].rstrip("/").split("/")[-1])


def test_who_opens_an_unannounced_round(insp_app, ids):
    manager = insp_app.test_client(user="manager")
    rid = _plan(manager, ids, kind="unannounced")
    expected = {"manager": 200, "admin": 200, "inspector": 200, "duanzhang": 404, "clerk": 404, "planner": 404,
                "dispatcher": 404, "zongjiezhang": 404, "wanggeyuan": 404}  # fmt: skip
    got = {u: insp_app.test_client(user=u).get(f"/inspections/{rid}").status_code for u in expected}
    assert got == expected
    page = insp_app.test_client(user="duanzhang").get(f"/inspections/{rid}")
    assert "没有此检查轮次，或您无权查看" in _text(page) and "网页测试" not in _text(page)
    # the list leaves it out for the inspected; the round's own inspector sees it
    assert f'data-round="{rid}"' not in insp_app.test_client(user="duanzhang").get("/inspections/").get_data(True)
    assert f'data-round="{rid}"' in insp_app.test_client(user="inspector").get("/inspections/").get_data(True)
    # planning, ending and the checklist are the managers'
    for user in ("inspector", "duanzhang", "clerk"):
        c = insp_app.test_client(user=user)
        assert c.get("/inspections/new").status_code == 403
        assert c.post(f"/inspections/{rid}/end").status_code == 403
        assert c.get("/inspections/checklist").status_code == 403
    assert insp_app.test_client(user=None).get("/inspections/").status_code == 302
    # ended: the inspected see it
    assert manager.post(f"/inspections/{rid}/end").status_code == 303
    assert insp_app.test_client(user="duanzhang").get(f"/inspections/{rid}").status_code == 200


def test_planning_with_bad_input_says_why_in_the_pages_language_and_keeps_the_form(insp_app, ids):
    manager = insp_app.test_client(user="manager")
    bad = {"kind": "announced", "name": "", "period_start": "2026-05-31", "period_end": "2026-05-01",
           "scope_kind": "town", "town_ids": [str(ids["town"])], "sample": "1", "sample_kind": "cell",
           "sample_size": "zero"}  # fmt: skip
    res = manager.post("/inspections/new", data=bad)
    assert res.status_code == 400
    text = _error(res, "gg-plan-error")
    for part in (
        "需要填写名称",
        "结束日期（2026-05-01）早于开始日期（2026-05-31）",
        "请至少选择一名督查人员",
        "抽样数量必须是整数",
    ):
        assert part in text, text
    assert 'value="2026-05-31"' in res.get_data(as_text=True)  # what was typed stays
    res = manager.post("/inspections/new?lang=en", data=bad)
    text = _error(res, "gg-plan-error")
    assert "a name is needed" in text and "the sample size must be a whole number" in text
    # a town outside the manager's sight, and a user who is no inspector
    manager = insp_app.test_client(user="manager")  # (the other client remembers English)
    res = manager.post("/inspections/new", data={**bad, "name": "x", "period_start": "2026-05-01",
                                                 "sample": "", "town_ids": ["99999"],
                                                 "inspector_ids": [str(ids["users"]["clerk"])]})  # fmt: skip
    assert res.status_code == 400 and "不在您的辖区内或不存在" in _error(res, "gg-plan-error")


def test_a_finding_sent_from_the_phone_page_becomes_a_case_of_the_round(insp_app, insp_engine, ids):
    manager = insp_app.test_client(user="manager")
    rid = _plan(manager, ids, kind="announced")
    inspector = insp_app.test_client(user="inspector")
    page = inspector.get("/cases/phone/").get_data(as_text=True)
    assert f'<option value="{rid}"' in page and 'id="gg-item"' in page and 'id="gg-checkin"' in page
    body = {"lon": ids["point"].lon, "lat": ids["point"].lat, "crs": "EPSG:4326", "round_id": str(rid),
            "item_id": str(ids["item"]), "description": "督查发现垃圾", "client_id": f"web-finding-{uuid.uuid4().hex[:8]}"}  # fmt: skip
    res = inspector.post("/api/cases/phone", data=body)
    assert res.status_code == 201, res.get_json()
    case_id = res.get_json()["id"]
    with insp_engine.connect() as conn:
        row = conn.execute(sa.text("SELECT source, inspection_round_id, reporter_user_id FROM report WHERE id = :i"),
                           {"i": case_id}).one()  # fmt: skip
    assert row == ("inspection", rid, ids["users"]["inspector"])
    # the case page says where it came from, in the page's language
    page = _text(inspector.get(f"/cases/{case_id}"))
    assert 'data-source="inspection">督查</span>' in page
    assert 'data-source="inspection">announced inspection</span>' in _text(inspector.get(f"/cases/{case_id}?lang=en"))
    inspector.get("/cases/phone/?lang=zh_CN")
    assert inspector.post("/api/cases/phone", data=body).status_code == 200  # sent twice: one case
    # refusals are 400 with the reason in the page's language (the phone keeps the report with it)
    res = inspector.post("/api/cases/phone", data={**body, "client_id": None,
                                                    "lon": ids["outside"][0], "lat": ids["outside"][1]})  # fmt: skip
    assert res.status_code == 400 and "不在本轮检查范围内" in res.get_json()["detail"]
    res = inspector.post("/api/cases/phone", data={**body, "client_id": None, "item_id": ""})
    assert res.status_code == 400 and "检查项必须是编号" in res.get_json()["detail"]
    # a patrol member who sees this announced round (it covers their cells) but is no inspector of it
    res = insp_app.test_client(user="wanggeyuan").post("/api/cases/phone", data={**body, "client_id": None})
    assert res.status_code == 403 and "只有本轮的督查人员" in res.get_json()["detail"]
    res = inspector.post("/api/cases/phone", data={**body, "client_id": None, "round_id": "999999"})
    assert res.status_code == 400 and "没有您参与的此检查轮次" in res.get_json()["detail"]
    # the round page lists it; ending scores it
    page = manager.get(f"/inspections/{rid}")
    assert f'data-case="{case_id}"' in page.get_data(as_text=True)
    assert manager.post(f"/inspections/{rid}/end").status_code == 303
    page = _text(manager.get(f"/inspections/{rid}"))
    assert "得分" in page and 'data-kind="town"' in page
    again = manager.post(f"/inspections/{rid}/end", follow_redirects=True)
    assert "本轮已经结束" in _text(again)
    res = inspector.post("/api/cases/phone", data={**body, "client_id": None})
    assert res.status_code == 400 and "本轮未开放" in res.get_json()["detail"]


def test_checklist_refuses_bad_deductions_and_keeps_what_was_typed(insp_app, ids):
    manager = insp_app.test_client(user="manager")
    page = manager.get("/inspections/checklist")
    assert page.status_code == 200
    item = ids["item"]
    res = manager.post("/inspections/checklist", data={f"found_{item}": "0,2x", f"overdue_{item}": "0.5",
                                                        f"repeat_{item}": "200", f"active_{item}": "1"})  # fmt: skip
    assert res.status_code == 400
    text = _error(res, "gg-checklist-error")
    assert "必须是分数" in text and "最多为 100" in text
    assert 'value="0,2x"' in res.get_data(as_text=True)
    res = manager.post("/inspections/checklist", data={f"found_{item}": "0.2", f"overdue_{item}": "0.5",
                                                        f"repeat_{item}": "1", f"active_{item}": "1"})  # fmt: skip
    assert res.status_code == 303


def test_coverage_page_and_checkins(insp_app, ids):
    inspector = insp_app.test_client(user="wanggeyuan")
    res = inspector.post("/api/inspections/checkin", json={"lon": ids["point"].lon, "lat": ids["point"].lat,
                                                           "client_id": f"web-checkin-{uuid.uuid4().hex[:8]}"})  # fmt: skip
    assert res.status_code == 201 and res.get_json()["segment"]
    res = inspector.post("/api/inspections/checkin", json={"lon": "east", "lat": 22.7})
    assert res.status_code == 400 and res.get_json()["detail"]
    assert (
        insp_app.test_client(user="clerk").post("/api/inspections/checkin", json={"lon": 1, "lat": 1}).status_code
        == 403
    )
    manager = insp_app.test_client(user="manager")
    page = manager.get("/inspections/coverage")
    assert page.status_code == 200
    text = _text(page)
    assert "无人巡查的网格" in text and 'id="gg-cells-unvisited"' in text
    res = manager.get("/inspections/coverage?month=May")
    assert res.status_code == 400 and "月份必须写成 2026-05" in _error(res, "gg-coverage-error")
    res = manager.get("/inspections/coverage?town=abc&lang=en")
    assert res.status_code == 400 and "No such town in your area" in _error(res, "gg-coverage-error")
