"""gisgrid.maps.ownership, the base map and gisgrid.maps.assets: offline assets, escaping, owner colours."""

from __future__ import annotations

import html
import re

import folium
import folium.plugins
import geopandas as gpd
import pytest

from gisgrid.config import PROJECT_ROOT
from gisgrid.errors import CRSError, InputError
from gisgrid.maps import base_map, render
from gisgrid.maps import ownership as maps
from gisgrid.maps.assets import VENDOR_DIR, assert_no_remote_assets, remote_urls, use_local_assets

ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
XSS_STREET = "<img src=x onerror=alert(1)>"
XSS_OWNER = "<script>alert(2)</script>"
OWNERS = [("张三", "13800000001"), ("李四", "13800000002"), ("王五", "13800000003"), (None, None)]


@pytest.fixture(scope="module", autouse=True)
def local_assets():
    use_local_assets()


@pytest.fixture(scope="module")
def segments() -> gpd.GeoDataFrame:
    """Twelve real Helsinki streets with 25 m frontage areas, four owners (one unassigned)."""
    streets = gpd.read_file(PROJECT_ROOT / "gisgrid" / "data" / "helsinki_streets.geojson").head(12)
    owners = [OWNERS[i % len(OWNERS)] for i in range(len(streets))]
    areas = streets.to_crs(3067).buffer(25).to_crs(4326)  # ETRS-TM35FIN, metres
    seg = gpd.GeoDataFrame(
        {
            "street_name": streets["name"].to_list(),
            "segment_name": [f"第{i + 1}段" for i in range(len(streets))],
            "owner_name": [o[0] for o in owners],
            "owner_phone": [o[1] for o in owners],
            "chain": [[f"段长 {o[0]}", "二级街长 赵六", "总街长 钱七"] if o[0] else None for o in owners],
        },
        geometry=areas.values,
        crs=4326,
    )
    seg["centerline"] = gpd.GeoSeries(streets.geometry.values, crs=4326)
    return seg


def _loaded_urls(page: str) -> list[str]:
    return re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', page)


def _segment_features(m: folium.Map) -> list[tuple[dict, dict]]:
    """(properties, style) of each feature of the map's segment layer."""
    layer = next(
        c
        for c in m._children.values()
        if isinstance(c, folium.GeoJson) and "popup_html" in c.data["features"][0]["properties"]
    )
    return [(f["properties"], layer.style_function(f)) for f in layer.data["features"]]


def _js_unescaped(page: str) -> str:
    """Undo the \\uXXXX escaping of strings Folium embeds in scripts (what the browser decodes)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


def test_ownership_map_loads_only_vendored_files(segments):
    page = render(maps.ownership_map(segments, attribution=ATTRIBUTION, title="赫尔辛基"))
    assert remote_urls(page) == []
    assert_no_remote_assets(page)
    urls = _loaded_urls(page)
    assert len(urls) >= 10
    for url in urls:
        assert url.startswith("/static/vendor/"), url
        assert (VENDOR_DIR / url.removeprefix("/static/vendor/")).is_file(), url


def test_plugins_use_vendored_files():
    m = base_map((24.93, 60.16, 24.96, 60.18), attribution=ATTRIBUTION)
    points = [[60.17, 24.94], [60.171, 24.945], [60.172, 24.95]]
    folium.plugins.MarkerCluster(locations=points).add_to(m)
    folium.plugins.FastMarkerCluster(points).add_to(m)
    folium.plugins.HeatMap(points).add_to(m)
    folium.plugins.GeoMan().add_to(m)
    folium.Marker(points[0], icon=folium.Icon(icon="info-sign")).add_to(m)
    folium.Marker(points[1], icon=folium.Icon(icon="flag", prefix="fa", angle=30)).add_to(m)
    page = render(m)
    assert remote_urls(page) == []
    urls = _loaded_urls(page)
    for expected in (
        "leaflet.markercluster.js",
        "MarkerCluster.Default.css",
        "leaflet-heat.js",
        "leaflet-geoman.min.js",
        "leaflet-geoman.css",
    ):
        assert any(u.endswith(expected) for u in urls), expected
    for url in urls:
        assert (VENDOR_DIR / url.removeprefix("/static/vendor/")).is_file(), url


def test_vendored_css_references_existing_files():
    """Every url(...) in vendored CSS (fonts, marker images) is shipped."""
    for css in VENDOR_DIR.rglob("*.css"):
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(encoding="utf-8")):
            if ref.startswith(("data:", "#", "%23")):
                continue
            assert (css.parent / ref.split("?")[0].split("#")[0]).is_file(), f"{css.name}: {ref}"


def test_remote_urls_finds_external_scripts_and_styles():
    page = (
        '<html><head><script src="https://example.org/a.js"></script>'
        '<link rel="stylesheet" href="//example.org/b.css"/>'
        '<script src="/static/vendor/leaflet/leaflet.js"></script>'
        "<script>var s = '<script src=\"http://inside.js/x\"></script>';</script>"
        '</head><body><a href="https://example.org/">link</a></body></html>'
    )
    assert remote_urls(page) == ["https://example.org/a.js", "//example.org/b.css"]
    with pytest.raises(AssertionError, match="a.js"):
        assert_no_remote_assets(page)


def test_use_local_assets_refuses_remote_prefix():
    with pytest.raises(ValueError, match="another host"):
        use_local_assets("https://example.org/vendor")
    assert folium.Map.default_js[0][1] == "/static/vendor/leaflet/leaflet.js"


def test_user_text_is_escaped(segments):
    seg = segments.copy()
    seg.loc[0, "street_name"] = XSS_STREET
    seg.loc[1, "owner_name"] = XSS_OWNER
    m = maps.ownership_map(seg, attribution=ATTRIBUTION, title=XSS_STREET)
    page = render(m)
    decoded = _js_unescaped(page)
    for raw in (XSS_STREET, XSS_OWNER):
        assert raw not in page
        assert raw not in decoded  # not even after the browser decodes the script strings
        assert html.escape(raw) in decoded
    assert f"<title>{html.escape(XSS_STREET)}</title>" in page
    props = {p["label_html"].split(" · ")[0]: p for p, _ in _segment_features(m)}
    assert html.escape(XSS_STREET) in props[html.escape(XSS_STREET)]["popup_html"]


JINJA_STREET = "{{ 7*7 }}路"
JINJA_OWNER = "{% for x in range(3) %}X{% endfor %}"


def test_user_text_is_never_run_as_a_template(segments):
    # folium wraps each layer's rendered output in Element(text), and branca compiled that text as a jinja
    # template: a name holding {{ … }} was evaluated on the server (template injection)
    seg = segments.copy()
    seg.loc[0, "street_name"] = JINJA_STREET
    seg.loc[1, "owner_name"] = JINJA_OWNER
    page = render(maps.ownership_map(seg, attribution=ATTRIBUTION, title=JINJA_STREET))
    decoded = _js_unescaped(page)
    assert JINJA_STREET in decoded and JINJA_OWNER in decoded
    assert "49路" not in decoded and "XXX" not in decoded


def test_a_marker_popup_is_rendered_as_written():
    m = base_map((116.3, 39.9, 116.4, 40.0), attribution=ATTRIBUTION)
    folium.Marker([39.95, 116.35], popup=folium.Popup("A {{ 6*7 }} B")).add_to(m)
    page = render(m)
    assert "A {{ 6*7 }} B" in page and "A 42 B" not in page


def test_popup_shows_street_segment_chain_and_phone(segments):
    m = maps.ownership_map(segments, attribution=ATTRIBUTION, lang="en")
    first = _segment_features(m)[0][0]["popup_html"]
    assert segments.loc[0, "street_name"] in first
    assert "第1段" in first
    # an English map says the chain's roles in English (names stay as written)
    assert "segment chief 张三 → second-level street chief 赵六 → general street chief 钱七" in first
    assert "段长" not in first
    assert "13800000001" in first
    unassigned = _segment_features(m)[3][0]["popup_html"]
    assert "Unassigned" in unassigned
    zh = _segment_features(maps.ownership_map(segments, attribution=ATTRIBUTION, lang="zh_CN"))[0][0]["popup_html"]
    assert "段长 张三 → 二级街长 赵六 → 总街长 钱七" in zh


def test_colours_are_deterministic_per_owner(segments):
    m1 = maps.ownership_map(segments, attribution=ATTRIBUTION)
    m2 = maps.ownership_map(segments.iloc[::-1], attribution=ATTRIBUTION)
    colour_of = {}
    for seg_map in (m1, m2):
        for (_props, style), owner in zip(_segment_features(seg_map), _owners_in_order(seg_map, segments)):
            colour_of.setdefault(owner, set()).add(style["fillColor"])
    assert all(len(c) == 1 for c in colour_of.values()), colour_of
    assigned = {o: c.pop() for o, c in colour_of.items() if isinstance(o[0], str)}
    assert len(assigned) == 3
    assert len(set(assigned.values())) == 3  # different owners, different colours
    assert set(assigned.values()) <= set(maps.OWNER_PALETTE)


def test_owner_colours_are_stable_and_distinct():
    keys = [f"段长{i}\x1f1380000{i:04d}" for i in range(len(maps.OWNER_PALETTE))]
    colours = maps.owner_colours(keys + keys[:3] + [""])
    assert colours == maps.owner_colours(list(reversed(keys)))
    assert len({colours[k] for k in keys}) == len(maps.OWNER_PALETTE)
    assert colours[""] == maps.UNASSIGNED_COLOUR
    # an owner alone on a map gets its own colour, the same in every process and run
    assert maps.owner_colours(["张三\x1f13800000001"]) == {"": maps.UNASSIGNED_COLOUR, "张三\x1f13800000001": "#bcbd22"}


def _owners_in_order(m, segments):
    by_label = {
        f"{s} · {g}": (o, p)
        for s, g, o, p in segments[["street_name", "segment_name", "owner_name", "owner_phone"]].itertuples(index=False)
    }
    return [by_label[html.unescape(props["label_html"])] for props, _ in _segment_features(m)]


def test_unassigned_segments_are_grey_and_dashed(segments):
    styles = [
        (props, style) for props, style in _segment_features(maps.ownership_map(segments, attribution=ATTRIBUTION))
    ]
    unassigned = [style for props, style in styles if props["unassigned"]]
    assert len(unassigned) == 3
    for style in unassigned:
        assert style["fillColor"] == maps.UNASSIGNED_COLOUR
        assert style["dashArray"]
        assert maps.UNASSIGNED_CLASS in style["className"].split()
    assert all(maps.SEGMENT_CLASS in style["className"].split() for _, style in styles)


def test_legend_lists_each_owner_once(segments):
    page = _js_unescaped(render(maps.ownership_map(segments, attribution=ATTRIBUTION)))
    legend = re.search(r'div\.innerHTML = "(<h4>路段责任人</h4>.*?)";', page).group(1)
    for name in ("张三", "李四", "王五", "未分配"):
        assert legend.count(f"<span>{name}</span>") == 1, name


def test_map_has_attribution_scale_and_no_tiles(segments):
    page = render(maps.ownership_map(segments, attribution=ATTRIBUTION))
    assert "L.tileLayer" not in page
    assert "L.control.scale" in page
    assert 'addAttribution("\\u00a9 OpenStreetMap contributors (ODbL)")' in page


def test_wrong_crs_and_missing_columns_are_refused(segments):
    with pytest.raises(CRSError, match="EPSG:4326"):
        maps.ownership_map(segments.to_crs(3067), attribution=ATTRIBUTION)
    with pytest.raises(InputError, match="'segment_name'.*'owner_name'"):
        maps.ownership_map(segments.drop(columns=["segment_name", "owner_name"]), attribution=ATTRIBUTION)
    with pytest.raises(InputError, match="not polygons"):
        maps.ownership_map(segments.set_geometry("centerline"), attribution=ATTRIBUTION)
    with pytest.raises(InputError, match="bounds"):
        base_map((25, 61, 24, 60), attribution=ATTRIBUTION)
    with pytest.raises(InputError, match="language"):
        base_map((24, 60, 25, 61), attribution=ATTRIBUTION, lang="xx")
