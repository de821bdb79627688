"""The web app through Flask's test client: health, language, exports."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest
from shapely.geometry import shape

from gisgrid.web import create_app


def test_healthz_checks_the_database(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ok" and body["postgis"].startswith("3")


def test_healthz_reports_an_unreachable_database(settings):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
            "GISGRID_SETTINGS": settings,
        }
    )
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["database"] == "unreachable"


def test_home_page_is_chinese_by_default_and_english_on_request(client):
    zh = client.get("/")
    assert zh.status_code == 200
    html = zh.get_data(as_text=True)
    assert 'lang="zh-CN"' in html and "责任地图" in html
    en = client.get("/?lang=en")
    assert 'lang="en"' in en.get_data(as_text=True) and "Ownership map" in en.get_data(as_text=True)
    assert "lang=en" in en.headers.get("Set-Cookie", "")


def test_unknown_town_is_a_404_with_a_message(client):
    resp = client.get("/?town=999999999")
    assert resp.status_code == 404
    assert "999999999" in resp.get_data(as_text=True)


def test_bad_date_is_a_400(client):
    assert client.get("/?date=yesterday").status_code == 400


@pytest.mark.parametrize("layer", ["segments", "streets", "jurisdictions", "reports", "centerlines"])
def test_geojson_export_is_rfc7946(client, layer):
    resp = client.get(f"/export/{layer}.geojson")
    assert resp.status_code == 200
    assert resp.mimetype == "application/geo+json"
    doc = json.loads(resp.data)
    assert "crs" not in doc
    assert doc["features"], layer
    for feat in doc["features"][:200]:
        geom = shape(feat["geometry"])
        assert -180 <= geom.bounds[0] <= 180 and -90 <= geom.bounds[1] <= 90
        if geom.geom_type in {"Polygon", "MultiPolygon"}:
            polys = getattr(geom, "geoms", [geom])
            assert all(p.exterior.is_ccw for p in polys)


def test_owners_export_as_xlsx(client):
    resp = client.get("/export/owners.xlsx")
    assert resp.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(resp.data))
    sheet = book.active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert {"role", "target_type", "valid_from"} <= set(header)
    assert sheet.max_row > 100


def test_unknown_export_layer_or_format(client):
    assert client.get("/export/nothing.geojson").status_code == 404
    assert client.get("/export/segments.kml").status_code == 404
    assert client.get("/export/owners.geojson").status_code == 404


def test_maps_credit_the_configured_attribution(db_url, town, settings):
    import dataclasses

    own = dataclasses.replace(settings, attribution="Stadtvermessung Testhausen")
    client = create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": own}).test_client()
    for url in ("/", "/map", "/audit", "/plan"):
        html = client.get(url).get_data(as_text=True)
        assert "Stadtvermessung Testhausen" in html, url
        assert "OpenStreetMap" not in html, url
