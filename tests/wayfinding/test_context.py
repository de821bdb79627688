"""The light basemap's data: boundaries and streets of a map view, and bad views answered in the page's language."""

from __future__ import annotations

import pytest

from gisgrid.basemap.store import STREETS_FROM_ZOOM, parse_view
from gisgrid.errors import InputError


def test_views_are_read_and_checked():
    assert parse_view("116.28,39.98,116.41,40.02", "13.75") == ((116.28, 39.98, 116.41, 40.02), 13)
    for bbox, zoom in [
        ("x", "1"),
        ("1,2,3", "1"),
        ("3,2,1,4", "1"),
        ("1,2,3,4", "nan"),
        ("1,2,3,4", "inf"),
        ("1,2,3,4", "30"),
        ("nan,2,3,4", "5"),
        ("1,2,3,95", "5"),
    ]:
        with pytest.raises(InputError):
            parse_view(bbox, zoom)


def test_context_of_a_town_view(app, users, town_bounds):
    w, s, e, n = town_bounds[1]
    client = app.test_client(user="duanzhang")  # any signed-in user: the basemap is the place's geography
    far = client.get(f"/api/basemap/context?bbox={w},{s},{e},{n}&zoom={STREETS_FROM_ZOOM - 1}").get_json()
    assert far["boundaries"]["features"] and not far["streets"]["features"]  # boundaries only, far out
    near = client.get(f"/api/basemap/context?bbox={w},{s},{e},{n}&zoom=16").get_json()
    names = {f["properties"]["name"] for f in near["boundaries"]["features"]}
    assert any(f["properties"]["code"] == town_bounds[0] for f in near["boundaries"]["features"]), names
    streets = near["streets"]["features"]
    assert len(streets) > 10 and all(f["properties"]["name"] for f in streets)
    lon, lat = (
        streets[0]["geometry"]["coordinates"][0][:2]
        if streets[0]["geometry"]["type"] == "LineString"
        else (streets[0]["geometry"]["coordinates"][0][0])
    )
    assert w - 0.05 < lon < e + 0.05 and s - 0.05 < lat < n + 0.05


def test_a_bad_view_is_a_400_in_the_pages_language(app, users):
    client = app.test_client()
    zh = client.get("/api/basemap/context?bbox=1,2&zoom=3&lang=zh_CN")
    assert zh.status_code == 400 and "地图范围" in zh.get_json()["detail"]
    en = client.get("/api/basemap/context?bbox=1,2&zoom=3&lang=en")
    assert en.status_code == 400 and "map view" in en.get_json()["detail"]
