"""OGC API – Features at /ogc/ with real clients on 127.0.0.1: owslib's ``Features``, GDAL's OAPIF driver
(``ogrinfo``/``ogr2ogr``), plain HTTP for CRS (Part 2), errors and the HTML pages."""

from __future__ import annotations

import json
import os
import subprocess

import requests
import shapely
from owslib.ogcapi.features import Features

from tests.interop.conftest import HAIDIAN, LONGGANG

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
CRS_CLASS = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
ALL = {"jurisdictions", "streets", "segments", "cells", "appointments", "cases", "audit-problems"}


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _get(base_url, key, path, **params):
    return requests.get(f"{base_url}/ogc{path}", headers=_auth(key), params=params, timeout=60)


def test_owslib_reads_conformance_collections_and_items(base_url, interop_keys):
    api = Features(f"{base_url}/ogc/", headers=_auth(interop_keys["manager"]))
    assert {CORE, CRS_CLASS} <= set(api.conformance()["conformsTo"])
    assert set(api.feature_collections()) == ALL
    segments = api.collection("segments")
    assert segments["extent"]["spatial"]["crs"] == CRS84 and EPSG4490 in segments["crs"]
    first = api.collection_items("segments", limit=5)
    assert first["numberReturned"] == 5 and first["numberMatched"] > 5
    assert [link["rel"] for link in first["links"]].count("next") == 1
    second = api.collection_items("segments", limit=5, offset=5)
    ids1, ids2 = [f["id"] for f in first["features"]], [f["id"] for f in second["features"]]
    assert len(ids2) == 5 and not set(ids1) & set(ids2)
    default = api.collection_items("segments")
    assert default["numberReturned"] == 10  # the default limit
    props = first["features"][0]["properties"]
    assert {"段长", "二级街长", "一级街长", "总街长", "street", "length_m"} <= set(props)
    assert any(f["properties"]["段长"] for f in default["features"])
    # a bbox around one segment: every feature returned meets it, and that segment is among them
    geom = shapely.geometry.shape(first["features"][0]["geometry"])
    x0, y0, x1, y1 = geom.buffer(0.0005).bounds
    boxed = api.collection_items("segments", bbox=[x0, y0, x1, y1], limit=1000)
    assert first["features"][0]["id"] in {f["id"] for f in boxed["features"]}
    box = shapely.box(x0, y0, x1, y1)
    assert all(shapely.geometry.shape(f["geometry"]).intersects(box) for f in boxed["features"])
    assert boxed["numberMatched"] == boxed["numberReturned"] < first["numberMatched"]
    one = api.collection_item("segments", str(ids1[0]))
    assert one["id"] == ids1[0] and one["properties"]["name"] == first["features"][0]["properties"]["name"]


def _ogr_env(key: str) -> dict:
    return {
        **os.environ,
        "GDAL_HTTP_AUTH": "BASIC",
        "GDAL_HTTP_USERPWD": f"apikey:{key}",
        "CPL_DEBUG": "OFF",
    }


def test_gdal_lists_every_collection_and_reads_every_feature(base_url, interop_keys, tmp_path):
    env = _ogr_env(interop_keys["manager"])
    listing = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{base_url}/ogc/"], env=env, capture_output=True, text=True, timeout=300
    )
    assert listing.returncode == 0, listing.stderr
    names = {line.split(":", 1)[1].split("(")[0].strip() for line in listing.stdout.splitlines() if ":" in line}
    assert ALL <= names, listing.stdout
    matched = _get(base_url, interop_keys["manager"], "/collections/segments/items", limit=1).json()["numberMatched"]
    out = tmp_path / "segments.geojson"
    copy = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "-lco", "RFC7946=YES", "-oo", "PAGE_SIZE=1000", str(out),
         f"OAPIF:{base_url}/ogc/", "segments"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert copy.returncode == 0, copy.stderr
    data = json.loads(out.read_text())
    assert data["type"] == "FeatureCollection" and "crs" not in data  # RFC 7946: no crs member, CRS84
    assert len(data["features"]) == matched
    assert len({json.dumps(f["geometry"]) for f in data["features"]}) == matched  # each one once
    for feature in data["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.is_valid and geom.geom_type == "LineString"
        lon, lat = geom.coords[0]
        assert 100 < lon < 120 and 20 < lat < 45  # longitude first
    assert any(f["properties"].get("段长") for f in data["features"])


def test_crs_parameters_and_content_crs(base_url, interop_keys):
    key = interop_keys["manager"]
    base = _get(base_url, key, "/collections/segments/items", limit=3)
    assert base.headers["Content-Crs"] == f"<{CRS84}>"
    assert base.headers["Content-Type"].startswith("application/geo+json")
    lonlat = base.json()["features"][0]["geometry"]["coordinates"][0]
    for uri in (EPSG4326, EPSG4490):
        res = _get(base_url, key, "/collections/segments/items", limit=3, crs=uri)
        assert res.status_code == 200 and res.headers["Content-Crs"] == f"<{uri}>"
        assert res.json()["features"][0]["geometry"]["coordinates"][0] == [lonlat[1], lonlat[0]]  # lat, lon
    collection = _get(base_url, key, "/collections/segments").json()
    metric = [c for c in collection["crs"] if c not in (CRS84, EPSG4326, EPSG4490)]
    assert metric, collection["crs"]
    projected = _get(base_url, key, "/collections/segments/items", limit=3, crs=metric[0]).json()
    x, y = projected["features"][0]["geometry"]["coordinates"][0]
    assert abs(x) > 1000 and abs(y) > 1000  # metres
    # bbox-crs: the same box in EPSG:4326 (lat, lon order) finds the same features as in CRS84
    x0, y0 = lonlat[0] - 0.001, lonlat[1] - 0.001
    x1, y1 = lonlat[0] + 0.001, lonlat[1] + 0.001
    in84 = _get(base_url, key, "/collections/segments/items", bbox=f"{x0},{y0},{x1},{y1}", limit=100).json()
    in4326 = _get(
        base_url, key, "/collections/segments/items", bbox=f"{y0},{x0},{y1},{x1}", limit=100, **{"bbox-crs": EPSG4326}
    ).json()
    assert in84["numberMatched"] >= 1
    assert [f["id"] for f in in84["features"]] == [f["id"] for f in in4326["features"]]
    bad = _get(base_url, key, "/collections/segments/items", crs="http://www.opengis.net/def/crs/EPSG/0/3857")
    assert bad.status_code == 400 and "crs" in bad.json()["description"]


def test_unknown_parameters_and_limits(base_url, interop_keys):
    key = interop_keys["manager"]
    for params in ({"colour": "red"}, {"limit": "x"}, {"bbox": "1,2,3"}, {"datetime": "soon"}, {"limit": "0"}):
        res = _get(base_url, key, "/collections/segments/items", **params)
        assert res.status_code == 400, params
        assert set(res.json()) == {"code", "description"}
    assert _get(base_url, key, "/collections", colour="red").status_code == 400
    assert _get(base_url, key, "/collections/nope/items").status_code == 404
    assert _get(base_url, key, "/collections/segments/items/999999999").status_code == 404
    big = _get(base_url, key, "/collections/segments/items", limit="20000").json()
    assert big["numberReturned"] == min(big["numberMatched"], 10_000)  # larger than the maximum: the maximum
    named = _get(base_url, key, "/collections/jurisdictions/items", code=LONGGANG).json()
    assert [f["properties"]["code"] for f in named["features"]] == [LONGGANG]


def test_owners_on_the_datetime(base_url, interop_keys):
    key = interop_keys["manager"]
    now = _get(base_url, key, "/collections/segments/items", limit=200).json()["features"]
    long_ago = _get(base_url, key, "/collections/segments/items", limit=200, datetime="1990-01-01").json()["features"]
    assert any(f["properties"]["段长"] for f in now)
    assert not any(f["properties"]["段长"] for f in long_ago)  # nobody owned them in 1990
    appointments = _get(base_url, key, "/collections/appointments/items", limit=10000).json()
    assert appointments["numberMatched"] > 0
    valid_1990 = _get(base_url, key, "/collections/appointments/items", datetime="1990-01-01").json()
    assert valid_1990["numberMatched"] == 0
    cells = _get(base_url, key, "/collections/cells/items", limit=5).json()
    assert all("网格员" in f["properties"] for f in cells["features"])


def test_collections_reach_no_further_than_the_scope(base_url, interop_keys):
    mine = _get(base_url, interop_keys["longgang"], "/collections/segments/items", limit=10000).json()
    everyone = _get(base_url, interop_keys["manager"], "/collections/segments/items", limit=10000).json()
    assert 0 < mine["numberMatched"] < everyone["numberMatched"]
    assert {f["properties"]["jurisdiction"] for f in mine["features"]} == {LONGGANG}
    cases = _get(base_url, interop_keys["longgang"], "/collections/cases/items", limit=10000).json()
    assert cases["numberMatched"] > 0
    assert all(113 < f["geometry"]["coordinates"][0] < 115 for f in cases["features"])
    theirs = _get(base_url, interop_keys["haidian"], "/collections/cases/items", limit=10000).json()
    assert not {f["id"] for f in theirs["features"]} & {f["id"] for f in cases["features"]}
    one = cases["features"][0]["id"]
    assert _get(base_url, interop_keys["haidian"], f"/collections/cases/items/{one}").status_code == 404
    juris = _get(base_url, interop_keys["haidian"], "/collections/jurisdictions/items", limit=100).json()
    assert LONGGANG not in {f["properties"]["code"] for f in juris["features"]} and juris["features"]
    # a clerk sees no audit; an account with no reading role reads no layer
    assert _get(base_url, interop_keys["longgang"], "/collections/audit-problems/items").status_code == 404
    assert "audit-problems" not in {
        c["id"] for c in _get(base_url, interop_keys["longgang"], "/collections").json()["collections"]
    }
    assert _get(base_url, interop_keys["bare"], "/collections").status_code == 403
    assert requests.get(f"{base_url}/ogc/conformance", timeout=30).status_code == 200  # holds no data


def test_audit_problems(base_url, interop_keys):
    res = _get(base_url, interop_keys["manager"], "/collections/audit-problems/items", limit=50, jurisdiction=HAIDIAN)
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["numberMatched"] >= data["numberReturned"]
    assert all(f["properties"]["problem"] and f["properties"]["jurisdiction"] == HAIDIAN for f in data["features"])


def test_html_pages_in_the_sites_look(base_url, interop_keys):
    key = interop_keys["manager"]
    for path in ("/", "/collections", "/collections/segments", "/collections/segments/items", "/conformance"):
        res = _get(base_url, key, path, f="html")
        assert res.status_code == 200 and res.headers["Content-Type"].startswith("text/html"), path
        html = res.text
        assert 'class="gg-top"' in html and "/static/gisgrid.css" in html
        assert "://" not in html.split("<main>")[0].replace(base_url, "")  # nothing from elsewhere
    zh = _get(base_url, key, "/collections/segments/items", f="html").text
    assert "下一页" in zh and "Next page" not in zh
    en = _get(base_url, key, "/collections/segments/items", f="html", lang="en").text
    assert "Next page" in en
    browser = requests.get(
        f"{base_url}/ogc/collections", headers={**_auth(key), "Accept": "text/html,application/xhtml+xml"}, timeout=30
    )
    assert browser.headers["Content-Type"].startswith("text/html")


def test_items_page_in_a_browser_draws_the_features_offline(interop_app, live_server, page):
    base = live_server(interop_app, user="manager")
    page.goto(f"{base}/ogc/collections/segments/items?f=html&limit=20")
    page.wait_for_selector("#gg-ogc-map[data-features]", timeout=30_000)
    assert page.get_attribute("#gg-ogc-map", "data-features") == "20"
    assert page.locator("#gg-ogc-map path.leaflet-interactive").count() == 20
    assert page.locator("#gg-ogc-items tbody tr").count() == 20
    assert "下一页" in page.inner_text("#gg-ogc")
    page.click("a[rel=next]")
    page.wait_for_selector("#gg-ogc-map[data-features]", timeout=30_000)
    assert "offset=20" in page.url
    assert not page.js_errors and not page.bad_responses
