"""Buildings on gisgrid's own basemap: imported like any layer (CRS stated, bad rows reported), served for a
map view from street zooms on, and drawn under the units in a real headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from gisgrid.basemap.store import BUILDINGS_FROM_ZOOM
from gisgrid.config import DATA_DIR
from gisgrid.db.imports import import_file

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
HELSINKI = DATA_DIR / "helsinki_buildings.geojson"


@pytest.fixture()
def buildings(engine, town):
    """The demo's Helsinki buildings imported (committed, so that the app sees them), removed after."""
    with engine.begin() as conn:
        summary = import_file(conn, "buildings", HELSINKI, again=True)
    yield summary
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM building"))
        conn.execute(sa.text("DELETE FROM import_log WHERE layer = 'buildings'"))


def _helsinki_view(engine) -> tuple[str, tuple[float, float, float, float]]:
    with engine.connect() as conn:
        code, w, s, e, n = conn.execute(
            sa.text("""
            SELECT j.code, ST_XMin(b.e), ST_YMin(b.e), ST_XMax(b.e), ST_YMax(b.e)
            FROM (SELECT ST_Extent(geom) AS e, min(jurisdiction_id) AS jid FROM building) b
            JOIN jurisdiction j ON j.id = b.jid""")
        ).one()
    return code, (w, s, e, n)


def test_the_demo_buildings_import_whole_and_belong_to_their_town(engine, buildings):
    features = json.loads(HELSINKI.read_text(encoding="utf-8"))["features"]
    assert buildings.total == len(features) == buildings.inserted and not buildings.rejected
    with engine.connect() as conn:
        towns = conn.execute(
            sa.text("""SELECT j.name, count(*) FROM building b JOIN jurisdiction j ON j.id = b.jurisdiction_id
                       GROUP BY j.name""")
        ).all()
        named = conn.execute(sa.text("SELECT count(*) FROM building WHERE name IS NOT NULL")).scalar()
    assert len(towns) == 1 and towns[0][1] > 0.9 * len(features), towns  # all in Helsinki's town, bar the rim
    assert named == sum(1 for f in features if f["properties"]["name"])


def test_a_bad_row_is_reported_with_its_number_and_the_good_ones_go_through(engine, town, tmp_path):
    square = [[[24.94, 60.17], [24.941, 60.17], [24.941, 60.171], [24.94, 60.171], [24.94, 60.17]]]
    path = tmp_path / "buildings.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "=cmd|' /C calc'!A0"},
                        "geometry": {"type": "Polygon", "coordinates": square},
                    },
                    {
                        "type": "Feature",
                        "properties": {"name": "a line"},
                        "geometry": {"type": "LineString", "coordinates": square[0][:2]},
                    },
                ],
            }  # fmt: skip
        ),
        encoding="utf-8",
    )
    try:
        with engine.begin() as conn:
            summary = import_file(conn, "buildings", path)
        assert summary.total == 2 and summary.inserted == 1
        assert [p.row for p in summary.rejected] == [2]  # rows in = rows stored + rows reported
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM building")).scalar() == "=cmd|' /C calc'!A0"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM building"))
            conn.execute(sa.text("DELETE FROM import_log WHERE layer = 'buildings'"))


def test_a_view_gets_buildings_from_street_zooms_on(app, users, engine, buildings):
    _, (w, s, e, n) = _helsinki_view(engine)
    client = app.test_client(user="duanzhang")
    far = client.get(f"/api/basemap/context?bbox={w},{s},{e},{n}&zoom={BUILDINGS_FROM_ZOOM - 1}").get_json()
    assert far["streets"]["features"] and not far["buildings"]["features"]
    near = client.get(f"/api/basemap/context?bbox={w},{s},{e},{n}&zoom={BUILDINGS_FROM_ZOOM}").get_json()
    got = near["buildings"]["features"]
    assert len(got) == buildings.inserted
    assert {f["geometry"]["type"] for f in got} <= {"Polygon", "MultiPolygon"}


def test_buildings_are_drawn_under_the_streets_and_units(app, engine, buildings, live_server, page):
    code, (w, s, e, n) = _helsinki_view(engine)
    base = live_server(app)
    page.goto(f"{base}/?town={code}", wait_until="networkidle")
    name = page.evaluate("() => Object.keys(window).find(k => k.startsWith('map_') && window[k] instanceof L.Map)")
    page.evaluate(f"() => {name}.setView([{(s + n) / 2}, {(w + e) / 2}], 17)")
    page.wait_for_selector("path.gg-base-building", state="attached", timeout=15000)
    page.wait_for_load_state("networkidle")
    assert page.locator("path.gg-base-building").count() > 20
    # in the basemap's pane, under the units
    assert page.evaluate(
        "() => document.querySelector('path.gg-base-building').closest('.leaflet-ggBase-pane') !== null"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "basemap-buildings.png"))
    assert not page.js_errors, page.js_errors
