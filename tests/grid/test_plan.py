"""Checks of a planner's drawing in memory (gisgrid.grid.edit): refusals with their place, overlaps, gaps, split, merge.

Shapes are laid out in metres in EPSG:3067 (Finland, metric) and stored in
lon/lat like gisgrid stores them, so every expected area is exact.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from gisgrid import crs
from gisgrid.grid.edit import check_edit, merge_polygons, split_polygon

EPSG = 3067
X0, Y0 = 385_000.0, 6_672_000.0  # Helsinki


def ll(geom):
    """Metres relative to (X0, Y0) in EPSG:3067 -> lon/lat."""
    return crs.reproject(shapely.affinity.translate(geom, X0, Y0), EPSG, crs.STORAGE_SRID)


def m2(geom) -> float:
    return float(shapely.area(crs.reproject(geom, crs.STORAGE_SRID, EPSG)))


TOWN = ll(box(0, 0, 1000, 1000))
NEIGHBOURS = gpd.GeoDataFrame(
    {"unit_id": [1, 2], "code": ["C001", "C002"], "owners": ["网格员 张三", "网格员 <b>李四</b>"]},
    geometry=gpd.GeoSeries([ll(box(100, 100, 200, 200)), ll(box(200, 100, 300, 200))], crs=4326),
)


def check(drawn, **kw):
    kw.setdefault("neighbours", NEIGHBOURS)
    return check_edit(drawn, boundary=TOWN, boundary_name="测试镇", metric_epsg=EPSG, **kw)


def test_self_intersection_is_refused_at_the_crossing():
    bowtie = ll(Polygon([(400, 400), (500, 500), (500, 400), (400, 500)]))
    result = check(bowtie)
    assert not result.ok
    (problem,) = result.problems
    assert problem.code == "invalid" and "crosses itself" in problem.message
    crossing = ll(Point(450, 450))
    assert problem.location.distance(crossing) < 1e-7  # degrees: about a centimetre
    assert result.to_json()["problems"][0]["location"] == pytest.approx([crossing.x, crossing.y], abs=1e-6)


@pytest.mark.parametrize(
    "drawn, code",
    [
        (None, "empty"),
        (Polygon(), "empty"),
        (ll(Point(450, 450)), "not_polygon"),
        (ll(LineString([(400, 400), (500, 500)])), "not_polygon"),
        (ll(MultiPolygon([box(400, 400, 450, 450), box(500, 500, 550, 550)])), "multi_part"),
        (Polygon([(400, 400), (200, 100), (1e3, 95)]), "bad_coordinates"),  # metres, not degrees
    ],
)
def test_unusable_drawings_are_refused(drawn, code):
    result = check(drawn)
    assert [p.code for p in result.problems] == [code]
    assert result.problems[0].message


def test_drawing_outside_the_jurisdiction_is_refused():
    result = check(ll(box(1100, 100, 1200, 200)))
    assert [p.code for p in result.problems] == ["outside"]
    assert "测试镇" in result.problems[0].message


def test_part_outside_is_refused_or_clipped():
    drawn = ll(box(900, 500, 1100, 600))  # 100 m x 100 m beyond the east edge
    refused = check(drawn)
    assert [p.code for p in refused.problems] == ["outside"]
    # the town's 1 km edge is straight in lon/lat, not in EPSG:3067: the cut differs by ~0.2 m² (0.002%)
    assert refused.outside_m2 == pytest.approx(10_000, abs=1.0)
    clipped = check(drawn, overlap="clip")
    assert clipped.ok and clipped.clipped
    assert clipped.area_m2 == pytest.approx(10_000, abs=1.0)
    assert m2(shapely.difference(clipped.geometry, TOWN)) < 0.01


def test_overlap_names_neighbours_and_is_refused_or_clipped():
    drawn = ll(box(180, 120, 400, 180))  # 20 m into C001, 100 m across C002
    refused = check(drawn)
    assert [p.code for p in refused.problems] == ["overlap"]
    rows = refused.overlaps.set_index("code")
    assert rows.loc["C001", "area_m2"] == pytest.approx(20 * 60, abs=0.1)
    assert rows.loc["C002", "area_m2"] == pytest.approx(100 * 60, abs=0.1)
    assert rows.loc["C002", "owners"] == "网格员 <b>李四</b>"  # text, escaped by the page
    clipped = check(drawn, overlap="clip")
    assert clipped.ok
    assert clipped.area_m2 == pytest.approx(100 * 60, abs=0.1)
    for neighbour in NEIGHBOURS.geometry:
        assert m2(shapely.intersection(clipped.geometry, neighbour)) < 0.01


def test_snapping_noise_is_no_overlap_and_clipped_to_the_shared_edge():
    edge = ll(box(300, 100, 400, 200))
    xy = shapely.get_coordinates(edge)
    xy[xy[:, 0] < xy[:, 0].mean(), 0] -= 1e-11  # a hair (1 µm) into C002, as snapping leaves it
    result = check(Polygon(xy))
    assert result.ok, result.problems
    assert len(result.overlaps) == 0
    assert (
        shapely.intersection(result.geometry, NEIGHBOURS.geometry[1]).area == 0
        or m2(shapely.intersection(result.geometry, NEIGHBOURS.geometry[1])) < 1e-6
    )


def test_gap_opened_by_a_reshape_is_measured():
    before = ll(box(400, 400, 500, 500))
    after = ll(box(400, 400, 500, 480))
    result = check(after, previous=before)
    assert result.ok
    assert result.gaps["area_m2"].sum() == pytest.approx(100 * 20, abs=0.1)
    assert check(before, previous=before).gaps.empty


def test_tiny_drawing_is_refused():
    result = check(ll(box(400, 400, 400.5, 400.5)))
    assert [p.code for p in result.problems] == ["too_small"]


def test_split_cuts_along_the_line_largest_piece_first():
    cell = ll(box(0, 0, 100, 100))
    pieces, problems = split_polygon(cell, ll(LineString([(30, -5), (30, 105)])), metric_epsg=EPSG)
    assert not problems
    assert [round(m2(p), 1) for p in pieces] == [7000.0, 3000.0]
    # a line drawn only up to the edges (snapped onto them) still cuts
    pieces, problems = split_polygon(cell, ll(LineString([(50, 0), (50, 100)])), metric_epsg=EPSG)
    assert not problems and len(pieces) == 2
    pieces, problems = split_polygon(cell, ll(LineString([(30, 10), (30, 60)])), metric_epsg=EPSG)
    assert pieces == [] and problems[0].code == "split_line"


def test_merge_needs_units_that_share_an_edge():
    a, b, far = ll(box(0, 0, 100, 100)), ll(box(100, 0, 200, 100)), ll(box(300, 0, 400, 100))
    merged, problems = merge_polygons([a, b], ["A", "B"], metric_epsg=EPSG)
    assert not problems and merged.geom_type == "Polygon"
    assert m2(merged) == pytest.approx(20_000, abs=0.1)
    merged, problems = merge_polygons([a, far], ["A", "F"], metric_epsg=EPSG)
    assert merged is None and problems[0].code == "merge" and "A, F" in problems[0].message
