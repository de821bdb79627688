"""Hotspots on the demo towns (issue 21): the study area is what the streets and the grid cover,
no town is blanketed in cold spots, a sparse filter gives no cold spots, and the popups explain
their numbers in the page's language."""

from __future__ import annotations

import re

import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from gisgrid.analytics import store as manager


@pytest.fixture()
def conn(engine, town):
    with engine.connect() as c:
        yield c


def _towns(conn) -> list[str]:
    return list(conn.execute(sa.text("SELECT code FROM jurisdiction WHERE level = 'town' ORDER BY code")).scalars())


def test_only_the_study_area_is_tested_and_no_town_is_blanketed(conn):
    for code in _towns(conn):
        flt = manager.ReportFilters(jurisdiction=code)
        hot = manager.hotspots(conn, flt, permutations=999)
        if hot.empty:
            continue
        covered = manager.study_area_shapes(conn, code)
        touches = np.zeros(len(hot), dtype=bool)
        touches[np.unique(shapely.STRtree(hot.geometry.values).query(covered, predicate="intersects")[1])] = True
        assert (touches | (hot["count"] > 0)).all(), code
        # the jurisdiction's bounding box holds many more hexagons than its streets and cells cover
        box = manager._bins_from_counts(
            manager.aggregate(conn, flt).counts,
            100.0,
            manager.study_area(conn, flt)[0],
            manager.study_area(conn, flt)[1],
        )
        assert len(hot) < len(box)
        cold = hot["hotspot"].str.startswith("cold").mean()
        assert cold < 0.05, f"{code}: {cold:.0%} of the study area called cold"


def test_a_sparse_filter_gives_no_cold_spots(conn):
    for code in _towns(conn):
        cat = conn.execute(
            sa.text(
                "SELECT c.code FROM report r JOIN category c ON c.id = r.category_id "
                "JOIN jurisdiction j ON ST_Contains(j.geom, r.geom) WHERE j.code = :c "
                "GROUP BY c.code HAVING count(*) BETWEEN 2 AND 12 ORDER BY count(*) LIMIT 1"
            ),
            {"c": code},
        ).scalar()
        if cat is None:
            continue
        hot = manager.hotspots(conn, manager.ReportFilters(jurisdiction=code, categories=(cat,)), permutations=999)
        assert 0 < hot["count"].sum() <= 12
        assert not hot["hotspot"].str.startswith("cold").any(), code


def test_hotspot_popups_explain_their_numbers(app):
    from types import SimpleNamespace

    from gisgrid.maps._base import translator
    from gisgrid.maps.manager import hotspot_labels, hotspot_popup

    row = SimpleNamespace(
        hotspot="hot_95", neighbourhood_count=23, n_neighbours=6, expected_count=7.14, count=5, gi_z=4.12, p_fdr=0.031
    )
    zh = hotspot_popup(row, hotspot_labels("zh_CN"), translator("zh_CN"))
    en = hotspot_popup(row, hotspot_labels("en"), translator("en"))
    assert "相邻六边形共有 23 件报告" in zh and "按全图平均应有 7.1 件" in zh and "本六边形 5 件" in zh
    assert "z = 4.12" in zh and "p = 0.031" in zh and not re.search(r"[A-Za-z]{3,}", zh.replace("FDR", ""))
    assert "23 reports in this hexagon and its 6 neighbours" in en and "7.1" in en and "p = 0.031" in en
    assert not re.search(r"[\u4e00-\u9fff]", en)
    code = "440307001"
    for lang in ("zh_CN", "en"):
        html = app.test_client().get(f"/map?jurisdiction={code}&lang={lang}").get_data(as_text=True)
        assert "p(FDR)" not in html
        method = re.search(r'id="gg-method">(.*?)</p>', html, re.S).group(1)
        assert ("研究区域" in method) if lang == "zh_CN" else ("Study area" in method)
