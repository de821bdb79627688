"""The /audit page and its downloads: a planted gap on the map and in the table, offline, escaped."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from gisgrid.grid.store import build_and_store_grid
from tests.grid.test_store import TOWN_CODE, grid_db  # noqa: F401  (module-scoped scratch database)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
EVIL = '<img src=x onerror="alert(1)">'
CLEAN_TOWN = "990099001"


@pytest.fixture(scope="module")
def planted(grid_db, settings):  # noqa: F811
    """The built grid with one interior cell deleted (the gap) and a vacant segment with a hostile name."""
    eng, _ = grid_db
    with eng.begin() as conn:
        build_and_store_grid(conn, settings, TOWN_CODE)
        epsg = conn.execute(sa.text("SELECT metric_epsg FROM jurisdiction WHERE code = :c"), {"c": TOWN_CODE}).scalar()
        code, area = conn.execute(
            sa.text(f"""
            SELECT c.code, ST_Area(ST_Transform(c.geom, {epsg})) FROM grid_cell c, jurisdiction t
            WHERE t.code = :c AND NOT ST_Intersects(c.geom, ST_Boundary(t.geom))
            ORDER BY c.code LIMIT 1"""),
            {"c": TOWN_CODE},
        ).one()
        conn.execute(sa.text("DELETE FROM grid_cell WHERE code = :c"), {"c": code})
        seg = conn.execute(sa.text("SELECT min(id) FROM segment")).scalar()
        conn.execute(sa.text("UPDATE segment SET name = :n WHERE id = :s"), {"n": EVIL, "s": seg})
        conn.execute(
            sa.text("DELETE FROM owner_assignment WHERE target_type = 'segment' AND target_id = :s"), {"s": seg}
        )
        # a clean town far away: one community, 4 square cells, each with its own owner
        county = conn.execute(
            sa.text("""
            INSERT INTO jurisdiction (code, level, name, geom) VALUES ('990099', 'county', '演示县',
            ST_Multi(ST_MakeEnvelope(100.0, 30.0, 100.01, 30.01, 4326))) RETURNING id""")
        ).scalar()
        town = conn.execute(
            sa.text("""
            INSERT INTO jurisdiction (code, level, name, parent_id, geom) VALUES (:code, 'town', '无问题镇', :p,
            ST_Multi(ST_MakeEnvelope(100.0, 30.0, 100.002, 30.0018, 4326))) RETURNING id"""),
            {"code": CLEAN_TOWN, "p": county},
        ).scalar()
        conn.execute(
            sa.text("""
            INSERT INTO jurisdiction (code, level, name, parent_id, geom) SELECT :code, 'community', '一社区', id, geom
            FROM jurisdiction WHERE id = :t"""),
            {"code": CLEAN_TOWN + "001", "t": town},
        )
        build_and_store_grid(conn, settings, CLEAN_TOWN, layout="square")
        conn.execute(
            sa.text("""
            WITH c AS (SELECT id, code FROM grid_cell WHERE code LIKE :p),
                 p AS (INSERT INTO person (name) SELECT '网格员 ' || code FROM c RETURNING id, name)
            INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from)
            SELECT p.id, 'cell', c.id, '网格员', :d FROM c JOIN p ON p.name = '网格员 ' || c.code"""),
            {"p": CLEAN_TOWN + "%", "d": dt.date.today() - dt.timedelta(days=5)},
        )
    return code, area


@pytest.fixture(scope="module")
def audit_app(grid_db, settings):  # noqa: F811
    from gisgrid.web import create_app
    from gisgrid.web.audit import bp

    _, url = grid_db
    app = create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings})
    if "audit" not in app.blueprints:
        app.register_blueprint(bp)
    return app


def grid_engine(app):
    return app.extensions["gisgrid.engine"]


def test_audit_page_shows_the_planted_gap_offline(audit_app, planted, live_server, page):
    _, area = planted
    base = live_server(audit_app)
    page.goto(f"{base}/audit?jurisdiction={TOWN_CODE}&lang=zh_CN", wait_until="networkidle")
    page.wait_for_selector("path.gg-gap")
    assert page.locator("path.gg-gap").count() == 1
    assert page.locator("path.gg-vacant").count() >= 1
    rows = page.locator("#gg-table-gaps tbody tr")
    assert rows.count() == 1
    assert f"{area:,.1f}" in rows.first.inner_text()
    # issue 21: where the gap is, in words, and a link that zooms to it; no jargon
    headers = page.inner_text("#gg-table-gaps thead")
    assert "社区" in headers and "附近道路" in headers and "形状" in headers
    assert "细长度" not in page.content() and "Thinness" not in page.content()
    row_text = rows.first.inner_text()
    assert "米" in row_text and "相距" in row_text  # the nearest street and how far
    with grid_engine(audit_app).connect() as conn:
        community = (
            conn.execute(
                sa.text(
                    "SELECT j.name FROM jurisdiction j JOIN jurisdiction t ON j.parent_id = t.id "
                    "WHERE t.code = :c AND j.level = 'community' ORDER BY j.code"
                ),
                {"c": TOWN_CODE},
            )
            .scalars()
            .all()
        )
    assert any(name in row_text for name in community)
    zoom = "() => window[Object.keys(window).find(k => k.startsWith('map_'))].getZoom()"
    before = page.evaluate(zoom)
    rows.first.locator("a.gg-zoom").click()
    page.wait_for_selector("path.gg-zoom-mark")
    after = page.evaluate(zoom)
    assert after == 19 and after > before
    page.screenshot(path=str(ARTIFACTS / "audit-zoomed.png"))
    page.goto(f"{base}/audit?jurisdiction={TOWN_CODE}&lang=zh_CN", wait_until="networkidle")
    page.wait_for_selector("path.gg-gap")
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.locator(".gg-legend").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "audit.png"))
    page.locator("path.gg-gap").click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "m²" in popup.inner_text()
    assert not page.dialogs, page.dialogs  # the hostile segment name never ran
    assert not page.js_errors, page.js_errors
    assert not page.bad_responses, page.bad_responses
    assert page.requests and all(u.startswith(base) or u.startswith("data:") for u in page.requests)
    assert not page.external_requests


def test_audit_page_escapes_names(audit_app, planted):
    html = audit_app.test_client().get(f"/audit?jurisdiction={TOWN_CODE}").get_data(as_text=True)
    assert EVIL not in html
    # the vacant segment's popup carries the name escaped (inside JSON, "&" is written \u0026)
    assert "\\u0026lt;img src=x" in html or "&lt;img src=x" in html


def test_audit_downloads(audit_app, planted):
    client = audit_app.test_client()
    res = client.get(f"/audit/export.geojson?jurisdiction={TOWN_CODE}")
    assert res.status_code == 200 and res.mimetype == "application/geo+json"
    assert "attachment" in res.headers["Content-Disposition"]
    doc = json.loads(res.data)
    gaps = [f for f in doc["features"] if f["properties"]["problem"] == "gaps"]
    assert len(gaps) == 1 and gaps[0]["properties"]["area_m2"] == pytest.approx(planted[1], abs=0.1)
    res = client.get(f"/audit/export.xlsx?jurisdiction={TOWN_CODE}&lang=en")
    assert res.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(res.data))
    assert len(list(book["Gaps"].iter_rows())) == 2


def test_clean_town_shows_no_problems(audit_app, planted):
    html = audit_app.test_client().get(f"/audit?jurisdiction={CLEAN_TOWN}&lang=en").get_data(as_text=True)
    assert "No problems found." in html
    assert 'id="gg-table-gaps"' in html and "gg-gap" not in html.split('id="gg-audit-summary"')[0].split("<script")[0]


def test_bad_requests(audit_app, planted):
    client = audit_app.test_client()
    assert client.get("/audit?jurisdiction=nope").status_code == 404
    assert client.get(f"/audit?jurisdiction={TOWN_CODE}&days=abc").status_code == 400
    assert client.get("/audit/export.xlsx?jurisdiction=nope").status_code == 404
