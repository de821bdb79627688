"""Frontage pages: a segment's units, a unit with its agreement and document, the registry import (good rows
in, bad rows named), the red and black list, the /plan frontage layer; sight limits every page."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.frontage.store import import_units
from gisgrid.frontage.units import make_uscc


@pytest.fixture(scope="module")
def unit(engine, town):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("""SELECT u.id, u.name, u.segment_id, u.revision, ST_AsGeoJSON(u.frontage) AS frontage
                       FROM frontage_unit u JOIN frontage_agreement a ON a.unit_id = u.id
                       WHERE a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on ORDER BY u.id LIMIT 1""")
        ).first()


def test_the_segment_page_lists_its_units_with_their_agreements(client, unit):
    page = client.get(f"/frontage/segment/{unit.segment_id}")
    assert page.status_code == 200
    assert unit.name in page.text and "gg-frontage" in page.text  # the frontages drawn on the map
    assert 'class="gg-ag-valid"' in page.text


def test_a_chief_sees_units_of_their_segments_only(app, engine, users, unit):
    chief = app.test_client(user="duanzhang")
    with engine.connect() as conn:
        mine = conn.execute(
            sa.text("""SELECT min(f.id) FROM frontage_unit f JOIN owner_on(CURRENT_DATE) a ON a.target_type = 'segment'
                       AND a.target_id = f.segment_id JOIN user_account u ON u.person_id = a.person_id
                       WHERE u.username = 'duanzhang'""")
        ).scalar()
    if mine is not None:
        assert chief.get(f"/frontage/unit/{mine}").status_code == 200
    if mine != unit.id:
        assert chief.get(f"/frontage/unit/{unit.id}").status_code == 404


def test_an_agreement_with_its_scan_is_recorded_and_served(app, client, unit):
    manager = app.test_client(role="manager")
    pdf = b"%PDF-1.4\n% scanned agreement\n"
    sent = manager.post(f"/frontage/unit/{unit.id}/agreement", data={
        "signed_on": "2026-01-01", "expires_on": "2029-01-01", "duties": ["clean", "order"],
        "document": (io.BytesIO(pdf), "责任书.pdf")}, content_type="multipart/form-data")  # fmt: skip
    assert sent.status_code == 303
    page = client.get(f"/frontage/unit/{unit.id}")
    link = re.search(r'href="(/frontage/agreement/\d+/document)"', page.text).group(1)
    assert client.get(link).data == pdf
    bad = manager.post(
        f"/frontage/unit/{unit.id}/agreement", data={"signed_on": "2026-05-01", "expires_on": "2026-01-01"}
    )
    assert bad.status_code == 400
    wrong = manager.post(f"/frontage/unit/{unit.id}/agreement", data={"signed_on": "2026-01-01",
                         "expires_on": "2027-01-01", "document": (io.BytesIO(b"MZ"), "x.exe")},
                         content_type="multipart/form-data")  # fmt: skip
    assert wrong.status_code == 400


def _registry_sheet(path, rows):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["2026年市场主体登记信息导出"])  # a title row above the header, as exports have
    ws.append(
        ["序号", "企业名称", "统一社会信用代码", "住所", "经营场所", "联系人", "联系电话", "签订日期", "到期日期"]
    )
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def test_a_registry_export_is_imported_with_bad_rows_named(shatin_url, settings, tmp_path):
    engine = sa.create_engine(shatin_url)
    good = make_uscc("91810006MA0001234")
    path = _registry_sheet(tmp_path / "registry.xlsx", [
        [1, "陈记茶餐厅", good, "沙田正街1号", "沙田正街18号", "陈大文", "21234567", "2026-01-01", "2028-12-31"],
        [2, "坏代码公司", good[:-1] + ("0" if good[-1] != "0" else "1"), "", "沙田正街18号", "李四", "21234568", None, None],
        [3, "无处可寻公司", make_uscc("91810006MA0009999"), "", "火星路99号", "王五", "21234569", None, None],
        [4, "", make_uscc("91810006MA0008888"), "", "源禾路18号", "", "", None, None],
    ])  # fmt: skip
    try:
        with engine.begin() as conn:
            result = import_units(conn, Actor.system("test"), settings, path)
            row = conn.execute(
                sa.text("SELECT u.segment_id, NOT ST_IsEmpty(u.frontage) AS has_frontage, a.expires_on "
                        "FROM frontage_unit u LEFT JOIN frontage_agreement a ON a.unit_id = u.id WHERE u.uscc = :c"),
                {"c": good},
            ).first()  # fmt: skip
            again = import_units(conn, Actor.system("test"), settings, path)
    finally:
        engine.dispose()
    assert (result.rows, result.inserted, result.updated) == (4, 1, 0)
    reasons = dict(result.rejected)
    assert sorted(reasons) == [2, 3, 4]
    assert "check digit" in reasons[2]
    assert "not found" in reasons[3]
    assert "a name" in reasons[4]
    assert row.segment_id is not None and row.has_frontage and str(row.expires_on) == "2028-12-31"
    assert (again.inserted, again.updated) == (0, 1)  # the same code again: updated, not stored twice


def test_the_import_page_reports_rows(app, tmp_path):
    manager = app.test_client(role="manager")
    path = _registry_sheet(tmp_path / "r.xlsx", [[1, "赵记", "123", "", "", "赵", "1", None, None]])
    page = manager.post(
        "/frontage/import", data={"file": (path.open("rb"), "r.xlsx")}, content_type="multipart/form-data"
    )
    assert page.status_code == 200 and 'id="gg-import-rejected"' in page.text and "18" in page.text
    # the reasons in the page's language (issue 21: one language per page)
    reason = re.search(r'id="gg-import-rejected".*?<td>1</td><td>(.*?)</td>', page.text, re.S).group(1)
    assert "统一社会信用代码" in reason and "电话" in reason and not re.search(r"[A-Za-z]{4,}", reason), reason
    path = _registry_sheet(tmp_path / "r2.xlsx", [[1, "赵记", "123", "", "", "赵", "1", None, None]])
    english = manager.post(
        "/frontage/import?lang=en", data={"file": (path.open("rb"), "r.xlsx")}, content_type="multipart/form-data"
    )
    reason = re.search(r'id="gg-import-rejected".*?<td>1</td><td>(.*?)</td>', english.text, re.S).group(1)
    assert "unified social credit code" in reason and not re.search(r"[\u4e00-\u9fff]", reason), reason


def test_the_red_and_black_list_page_and_its_workbook(client, engine):
    with engine.connect() as conn:
        month = conn.execute(sa.text("SELECT to_char(CURRENT_DATE, 'YYYY-MM')")).scalar()
    page = client.get(f"/frontage/redblack?month={month}")
    assert page.status_code == 200 and 'id="gg-black"' in page.text
    book = client.get(f"/frontage/redblack?month={month}&format=xlsx")
    assert book.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(book.data))
    assert wb.sheetnames == ["黑榜", "红榜"]
    assert client.get("/frontage/redblack?month=2026-13").status_code == 400


def test_a_planner_adjusts_a_frontage_clipped_to_the_segment_area(app, engine, unit):
    import json

    import shapely

    planner = app.test_client(role="admin")
    with engine.connect() as conn:
        code = conn.execute(
            sa.text("SELECT j.code FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j "
                    "ON j.id = s.jurisdiction_id WHERE g.id = :s"), {"s": unit.segment_id}).scalar()  # fmt: skip
    layer = planner.get(f"/api/plan/frontages?town={code}").get_json()["units"]
    mine = next(f for f in layer["features"] if f["id"] == unit.id)
    rev = mine["properties"]["revision"]
    grown = shapely.from_geojson(json.dumps(mine["geometry"])).buffer(0.001)  # ~100 m: beyond the area and neighbours
    saved = planner.post("/api/plan/frontage", json={"id": unit.id, "revision": rev,
                                                      "geometry": shapely.geometry.mapping(grown)})  # fmt: skip
    assert saved.status_code == 200, saved.text
    with engine.connect() as conn:
        outside, overlap, source = conn.execute(
            sa.text("""SELECT ST_Area(ST_Difference(u.frontage, g.area)),
                              (SELECT COALESCE(sum(ST_Area(ST_Intersection(u.frontage, o.frontage))), 0)
                               FROM frontage_unit o WHERE o.id <> u.id AND o.frontage && u.frontage),
                              u.frontage_source
                       FROM frontage_unit u JOIN segment g ON g.id = u.segment_id WHERE u.id = :u"""),
            {"u": unit.id},
        ).one()
    assert outside < 1e-12 and overlap < 1e-12 and source == "planner"
    stale = planner.post("/api/plan/frontage", json={"id": unit.id, "revision": rev, "geometry": mine["geometry"]})
    assert stale.status_code == 409
    assert planner.get(f"/plan?town={code}&layer=frontage").status_code == 200
