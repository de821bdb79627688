"""The ownership map in a real browser: drawn, clickable, escaped, offline."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import pytest
from flask import Flask

from gisgrid.config import DATA_DIR
from gisgrid.maps import ownership as maps
from gisgrid.maps import render
from gisgrid.maps.assets import VENDOR_DIR, use_local_assets

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
XSS_STREET = "<img src=x onerror=alert(1)>"
OWNERS = ["张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十"]

# The Leaflet map object and the layer of a segment whose tooltip starts with a label.
_FIND_LAYER = """
(label) => {
    const map = window[document.querySelector(".folium-map").id];
    let found = null;
    map.eachLayer((layer) => {
        const p = layer.feature && layer.feature.properties;
        if (p && p.label_html !== undefined && layer.getTooltip().getContent().startsWith(label)) found = layer;
    });
    return found;
}
"""


@pytest.fixture(scope="module")
def segments() -> gpd.GeoDataFrame:
    """~100 real Helsinki streets; areas are a 0.0001 deg buffer (drawing only), 8 owners + unassigned."""
    streets = gpd.read_file(DATA_DIR / "helsinki_streets.geojson").head(100)
    with warnings.catch_warnings():  # a buffer in degrees, on purpose: fake areas for drawing only
        warnings.filterwarnings("ignore", "Geometry is in a geographic CRS", UserWarning)
        fake_areas = streets.geometry.buffer(0.0001).values
    owners = [None if i % 9 == 8 else OWNERS[i % 9] for i in range(len(streets))]
    seg = gpd.GeoDataFrame(
        {
            "street_name": streets["name"].to_list(),
            "segment_name": [f"第{i + 1}段" for i in range(len(streets))],
            "owner_name": owners,
            "owner_phone": [f"1380000{OWNERS.index(o):04d}" if o else None for o in owners],
            "chain": [f"段长 {o} → 二级街长 李明 → 总街长 王强" if o else None for o in owners],
        },
        geometry=fake_areas,
        crs=4326,
    )
    seg.loc[0, "street_name"] = XSS_STREET
    seg["centerline"] = gpd.GeoSeries(streets.geometry.values, crs=4326)
    return seg


@pytest.fixture(scope="module")
def app(segments) -> Flask:
    use_local_assets("/static/vendor")
    app = Flask(__name__, static_folder=str(VENDOR_DIR.parent))
    page_html = render(
        maps.ownership_map(segments, attribution="© OpenStreetMap contributors (ODbL)", title="赫尔辛基 路段责任图")
    )
    app.add_url_rule("/", "ownership", lambda: page_html)
    return app


def test_ownership_map_in_chromium(app, segments, live_server, page):  # noqa: F811
    page.goto(live_server(app) + "/")
    page.wait_for_load_state("networkidle")

    paths = page.locator("path.gg-segment")
    assert paths.count() > 50
    assert page.locator("path.gg-segment.gg-unassigned").count() == (segments["owner_name"].isna()).sum()
    assert page.locator("path.gg-centerline").count() == len(segments)
    legend = page.locator(".gg-legend")
    assert legend.is_visible()
    for name in OWNERS + ["未分配"]:
        assert legend.get_by_text(name, exact=True).count() == 1, name
    page.screenshot(path=str(ARTIFACTS / "maps_ownership.png"))

    # Click the topmost (last drawn) segment on its outline: its popup opens.
    x, y = page.evaluate("""() => {
        const paths = document.querySelectorAll("path.gg-segment");
        const path = paths[paths.length - 1];
        const pt = path.getPointAtLength(path.getTotalLength() / 2).matrixTransform(path.getScreenCTM());
        return [pt.x, pt.y];
    }""")
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).classList.contains('gg-segment')", [x, y])
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    last = segments.iloc[-1]
    assert last["street_name"] in popup.inner_text()
    assert last["segment_name"] in popup.inner_text()

    # The street named like an HTML tag shows as text and runs nothing.
    page.evaluate(f"() => ({_FIND_LAYER})({XSS_STREET!r}.replace('<', '&lt;').replace('>', '&gt;')).openPopup()")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert XSS_STREET in popup.inner_text()
    assert page.locator(".leaflet-popup-content img").count() == 0
    page.wait_for_timeout(200)
    assert page.dialogs == []

    assert page.js_errors == []
    assert page.bad_responses == []
    assert page.external_requests == []
    assert {u.split("/static/vendor/")[1] for u in page.requests if "/static/vendor/" in u} >= {
        "leaflet/leaflet.js",
        "leaflet/leaflet.css",
        "bootstrap/css/bootstrap.min.css",
    }
