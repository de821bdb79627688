"""The page map builders are pure: data in, a map out, with no Flask app and no database connection."""

from __future__ import annotations

import re

import folium
import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gisgrid.analytics import store as analytics
from gisgrid.audit.store import audit_store, cells_meeting
from gisgrid.db import layers
from gisgrid.errors import InputError
from gisgrid.maps import audit as audit_maps
from gisgrid.maps import base_map, map_parts, render, translator
from gisgrid.maps import geocode as geocode_maps
from gisgrid.maps import manager as manager_maps
from gisgrid.maps.plan import plan_map

TOWN = "110108001"
CREDIT = "© test credit <b>"


def test_translator_reads_the_page_catalog():
    zh, en = translator("zh_CN"), translator("en")
    assert zh("Coverage gaps") == "覆盖空白" and en("Coverage gaps") == "Coverage gaps"
    assert zh("%(n)s reports", n=3).startswith("3") and en("%(n)s reports", n=3) == "3 reports"
    assert translator("zh-CN")("Coverage gaps") == "覆盖空白"
    with pytest.raises(InputError, match="xx"):
        translator("xx")


def test_map_parts_and_render_title():
    m = base_map((24.93, 60.16, 24.96, 60.18), attribution=CREDIT, lang="en")
    parts = map_parts(m)
    assert set(parts) == {"map_header", "map_html", "map_script", "map_name"}
    assert parts["map_name"] in parts["map_script"] and parts["map_name"] in parts["map_html"]
    page = render(m, title="<i>Helsinki</i>")
    assert "<title>&lt;i&gt;Helsinki&lt;/i&gt;</title>" in page
    assert "test credit" in page and "credit <b>" not in page  # the attribution is escaped


@pytest.fixture(scope="module")
def read(engine, town, settings):
    """What the pages read from the database, read once; the connection is closed before any map is drawn."""
    with engine.connect() as conn:
        filters = analytics.ReportFilters(jurisdiction=TOWN)
        data = analytics.manager_map_data(conn, filters, permutations=99)
        boundary = layers.fetch_layer(conn, "jurisdictions", jurisdiction_code=TOWN).geometry.iloc[0]
        cells = cells_meeting(conn, TOWN)
        audit = audit_store(conn, settings, TOWN, days=400)
    return {"manager": data, "boundary": boundary, "cells": cells, "audit": audit}


def _layer_names(m: folium.Map) -> list[str]:
    return [child.layer_name for child in m._children.values() if getattr(child, "layer_name", None)]


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_manager_map_from_data(read, lang):
    data = read["manager"]
    m, stats = manager_maps.manager_map(data, attribution=CREDIT, lang=lang)
    assert stats["n"] == data.n > 0 and stats["mode"] == "points" and stats["gaps"] == len(data.gaps)
    names = _layer_names(m)
    _ = translator(lang)
    assert _("Heatmap") in names and _("Overdue reports") in names
    # one layer control, at the end
    controls = [c for c in m._children.values() if isinstance(c, folium.LayerControl)]
    assert len(controls) == 1 and list(m._children.values())[-1] is controls[0]


def test_audit_map_and_tables_share_titles(read):
    m = audit_maps.audit_map(read["boundary"], read["cells"], read["audit"], attribution=CREDIT, lang="zh_CN")
    titles = audit_maps.problem_titles("zh_CN")
    names = _layer_names(m)
    for name in audit_maps.DRAW_ORDER:
        assert any(n.startswith(titles[name]) for n in names), name
    assert audit_maps.cell_text(True, "zh_CN") == translator("zh_CN")("yes")
    assert audit_maps.cell_text(1234.56, "en") == "1,234.6" and audit_maps.cell_text(None, "en") == ""


def test_plan_map_fits_the_town(read):
    m = plan_map(read["boundary"], attribution=CREDIT, lang="en")
    (lat0, lon0), (lat1, lon1) = m._children[next(k for k in m._children if k.startswith("fit_bounds"))].bounds
    minx, miny, maxx, maxy = read["boundary"].bounds
    assert (lon0, lat0, lon1, lat1) == pytest.approx((minx, miny, maxx, maxy))


def test_geocode_map_draws_located_rows_only():
    frame = pd.DataFrame(
        {
            "address": ["Kaivokatu 1", "<b>x</b>", "nowhere"],
            "lon": ["24.9414", "24.95", ""],
            "lat": ["60.1699", "60.17", ""],
            "quality": ["address_point", "street", "failed"],
            "owner_name": ["Aino", "", ""],
        }
    )
    names = {"lon": "lon", "lat": "lat", "quality": "quality", "owner_name": "owner_name"}
    points = geocode_maps.located_points(frame, names)
    assert points.index.tolist() == [0, 1]
    bounds = geocode_maps.result_bounds(points)
    assert bounds == pytest.approx((24.9404, 60.1689, 24.951, 60.171))
    assert geocode_maps.result_bounds(points.iloc[0:0], (1, 2, 3, 4)) == (1, 2, 3, 4)
    box = geocode_maps.context_box(bounds)
    assert box[0] < bounds[0] and box[3] > bounds[3]
    streets = gpd.GeoDataFrame(geometry=[shapely.LineString([(24.94, 60.169), (24.95, 60.17)])], crs=4326)
    m = geocode_maps.result_map(
        frame,
        names,
        frame["address"],
        points=points,
        bounds=bounds,
        streets=streets,
        max_points=1,
        attribution=CREDIT,
        lang="zh_CN",
    )
    html = render(m)
    assert len(re.findall(r"gg-geocoded gg-q-", html)) == 1  # max_points
    assert geocode_maps.quality_labels("zh_CN")["address_point"] in html
