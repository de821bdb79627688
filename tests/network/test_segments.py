"""Segments and their frontage areas, on the real sample towns.

What a town relies on: every metre of street belongs to exactly one segment,
no segment is longer than the configured maximum, segments end at
intersections, and every point of frontage belongs to exactly one segment
(no 多头管, no 没人管).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box

from gisgrid.config import DEFAULT_FRONTAGE_DEPTH_M, DEFAULT_ROAD_WIDTHS_M, PROJECT_ROOT
from gisgrid.crs import metric_crs_for
from gisgrid.errors import CRSError, InputError
from gisgrid.network.segments import SEGMENT_COLUMNS, build_segments, pairwise_overlap_m2

DATA = PROJECT_ROOT / "gisgrid" / "data"
TOWNS = ["helsinki", "shatin", "beijing_haidian", "shenzhen_longgang"]
CJK_TOWNS = ["shatin", "beijing_haidian", "shenzhen_longgang"]
MAX_LENGTHS = [500.0, 200.0]


@pytest.fixture(scope="module")
def streets():
    """The sample towns' OSM streets, ``highway`` renamed to ``road_class`` (EPSG:4326)."""
    cache: dict[str, gpd.GeoDataFrame] = {}

    def load(town: str) -> gpd.GeoDataFrame:
        if town not in cache:
            frame = gpd.read_file(DATA / f"{town}_streets.geojson")
            cache[town] = frame.rename(columns={"highway": "road_class"})
        return cache[town]

    return load


@pytest.fixture(scope="module")
def built(streets):
    """``build_segments`` output per (town, max_length_m, min_length_m), computed once."""
    cache: dict[tuple[str, float, float], gpd.GeoDataFrame] = {}

    def get(town: str, max_length_m: float = 500.0, min_length_m: float = 20.0) -> gpd.GeoDataFrame:
        key = (town, max_length_m, min_length_m)
        if key not in cache:
            cache[key] = build_segments(streets(town), max_length_m=max_length_m, min_length_m=min_length_m)
        return cache[key]

    return get


def _metric(frame: gpd.GeoDataFrame) -> int:
    minx, miny, maxx, maxy = frame.total_bounds
    return metric_crs_for((minx + maxx) / 2, (miny + maxy) / 2)


def _reach_m(road_class: str) -> float:
    half = DEFAULT_ROAD_WIDTHS_M.get(road_class, DEFAULT_ROAD_WIDTHS_M.get(road_class.removesuffix("_link"), 6.0))
    return half + DEFAULT_FRONTAGE_DEPTH_M


# --- the helper the audit reuses -----------------------------------------------------------
def test_pairwise_overlap_counts_shared_area_once_per_pair():
    areas = gpd.GeoSeries([box(0, 0, 10, 10), box(5, 0, 15, 10), box(20, 0, 30, 10)], crs=32635)
    assert pairwise_overlap_m2(areas) == pytest.approx(50.0)
    assert pairwise_overlap_m2(gpd.GeoSeries([box(0, 0, 10, 10), box(10, 0, 20, 10)], crs=32635)) == 0.0


def test_pairwise_overlap_refuses_degrees():
    with pytest.raises(CRSError):
        pairwise_overlap_m2(gpd.GeoSeries([box(0, 0, 1, 1)], crs=4326))


# --- segments ------------------------------------------------------------------------------
@pytest.mark.parametrize("town", TOWNS)
def test_output_shape_and_crs(built, town):
    segs = built(town)
    assert list(segs.columns) == SEGMENT_COLUMNS
    assert segs.crs.to_epsg() == 4326 and segs["area"].crs.to_epsg() == 4326
    assert set(segs.geometry.geom_type) == {"LineString"}
    assert set(segs["area"].geom_type) == {"MultiPolygon"}
    assert segs["area"].is_valid.all()
    assert not segs["area"].is_empty.any(), "every segment has some frontage"
    # names identify a segment within its town; seq numbers 1..n along each street
    assert not segs["name"].duplicated().any()
    for _, street in segs.groupby("street_id"):
        assert sorted(street["seq"]) == list(range(1, len(street) + 1))


@pytest.mark.parametrize("max_length_m", MAX_LENGTHS)
@pytest.mark.parametrize("town", TOWNS)
def test_no_segment_longer_than_maximum(built, town, max_length_m):
    segs = built(town, max_length_m)
    lengths = segs.geometry.to_crs(_metric(segs)).length
    assert lengths.max() <= max_length_m + 0.01
    np.testing.assert_allclose(segs["length_m"], lengths, atol=1e-3)


@pytest.mark.parametrize("max_length_m", MAX_LENGTHS)
@pytest.mark.parametrize("town", TOWNS)
def test_segments_cover_the_noded_network_once(streets, built, town, max_length_m):
    """Total centerline length equals the input network's (overlapping ways counted once)."""
    segs = built(town, max_length_m)
    epsg = _metric(segs)
    network_m = shapely.union_all(streets(town).geometry.to_crs(epsg).to_numpy()).length
    segment_m = segs.geometry.to_crs(epsg).length.sum()
    assert segment_m == pytest.approx(network_m, rel=1e-3)
    # and no two segments share any stretch of street
    lines = segs.geometry.to_crs(epsg).to_numpy()
    left, right = shapely.STRtree(lines).query(lines, predicate="overlaps")
    assert not (left < right).any()


@pytest.mark.parametrize("town", TOWNS)
def test_segment_centerlines_never_cross(built, town):
    """Ways are split at every intersection: with no minimum length, segments meet only at their ends."""
    runs = built(town, min_length_m=0)
    lines = runs.geometry.to_crs(_metric(runs)).to_numpy()
    left, right = shapely.STRtree(lines).query(lines, predicate="crosses")
    assert not (left < right).any()


@pytest.mark.parametrize("town", TOWNS)
def test_segments_cross_only_where_a_stub_was_joined_across_a_junction(built, town):
    """A stub that could join its street only through a junction another street passes through
    is joined there: the two centerlines cross at that junction and nowhere else."""
    epsg = _metric(built(town))
    runs = built(town, min_length_m=0).to_crs(epsg)
    stubs = runs[runs["length_m"] < 20].geometry.to_numpy()
    lines = built(town).geometry.to_crs(epsg).to_numpy()
    left, right = shapely.STRtree(lines).query(lines, predicate="crosses")
    for a, b in zip(left[left < right], right[left < right], strict=True):
        crossing = shapely.intersection(lines[a], lines[b])
        assert crossing.geom_type in ("Point", "MultiPoint"), (a, b, crossing.wkt)  # points, never a shared run
        for at in shapely.get_parts(crossing):
            if min(shapely.distance(shapely.boundary(lines[k]), at) for k in (a, b)) < 1e-3:
                continue  # one ends on the other there: they meet, as everywhere
            # they cross at a junction of the network where a stub of one of the two ends
            ends_here = [s for s in stubs if shapely.distance(shapely.boundary(s), at) < 1e-3]
            assert any(shapely.within(s, shapely.buffer(lines[k], 1e-3)) for s in ends_here for k in (a, b)), at.wkt


def test_streets_are_split_where_they_cross(streets, built):
    """Annankatu crosses Bulevardi mid-way in the OSM ways; both streets get a segment end there."""
    raw = streets("helsinki")
    epsg = _metric(raw)
    ways = raw.to_crs(epsg)
    anna = ways[ways["name"] == "Annankatu"].geometry.union_all()
    bule = ways[ways["name"] == "Bulevardi"].geometry.union_all()
    assert anna.crosses(bule)
    crossing = anna.intersection(bule)
    assert crossing.geom_type == "Point"

    segs = built("helsinki").to_crs(epsg)
    for street, other in (("Annankatu", "Bulevardi"), ("Bulevardi", "Annankatu")):
        mine = segs[segs["street_name"] == street]
        starts = shapely.get_point(mine.geometry.to_numpy(), 0)
        ends = shapely.get_point(mine.geometry.to_numpy(), -1)
        at_start = shapely.distance(starts, crossing) < 1e-3
        at_end = shapely.distance(ends, crossing) < 1e-3
        assert at_start.sum() >= 1 and at_end.sum() >= 1, f"{street} is not cut at {other}"
        assert all(other in name.split("/") for name in mine.loc[at_start, "from_name"])
        assert all(other in name.split("/") for name in mine.loc[at_end, "to_name"])


def test_run_between_intersections_is_one_segment(streets, built):
    """OSM splits streets at arbitrary points; a run with no crossing is still one segment.

    Where exactly two segments meet and nothing else does, they differ in street
    or road class, or they are equal parts of one run cut for length.
    """
    segs = built("helsinki")
    assert len(segs) < len(streets("helsinki"))
    epsg = _metric(segs)
    lines = segs.geometry.to_crs(epsg).to_numpy()
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    left, right = shapely.STRtree(lines).query(ends, predicate="dwithin", distance=1e-3)
    touching = np.bincount(left, minlength=len(ends))
    # end to end: a line passing through (a fork where a stub was joined) is not a joint
    end_left, end_right = shapely.STRtree(ends).query(ends, predicate="dwithin", distance=1e-3)
    ends_at = np.bincount(end_left, minlength=len(ends))
    for e in np.flatnonzero((touching == 2) & (ends_at == 2)):
        a, b = right[left == e]
        if a == b:  # a closed loop touching itself
            continue
        sa, sb = segs.iloc[a], segs.iloc[b]
        if sa["street_id"] == sb["street_id"] and sa["road_class"] == sb["road_class"]:
            assert sa["length_m"] == pytest.approx(sb["length_m"], abs=1e-6), (sa["name"], sb["name"])


def test_long_runs_are_cut_into_equal_parts(built):
    segs = built("shenzhen_longgang", 200.0)
    coarse = built("shenzhen_longgang", 500.0)
    assert len(segs) > len(coarse)
    # cut parts of one run have equal length
    lengths = segs.groupby(["street_id", segs["length_m"].round(3)]).size()
    assert (lengths >= 2).any()


# --- areas -----------------------------------------------------------------------------------
@pytest.mark.parametrize("max_length_m", MAX_LENGTHS)
@pytest.mark.parametrize("town", TOWNS)
def test_areas_never_overlap(built, town, max_length_m):
    segs = built(town, max_length_m)
    assert pairwise_overlap_m2(segs["area"].to_crs(_metric(segs))) <= 0.01


@pytest.mark.parametrize("town", TOWNS)
def test_areas_cover_all_frontage(built, town):
    """Union of areas = union of the road-class buffers (within 0.1 %), both ways round."""
    segs = built(town)
    epsg = _metric(segs)
    lines = segs.geometry.to_crs(epsg).to_numpy()
    reach = np.array([_reach_m(rc) for rc in segs["road_class"]])
    buffers = shapely.union_all(shapely.buffer(lines, reach))
    areas = shapely.union_all(segs["area"].to_crs(epsg).to_numpy())
    assert areas.area == pytest.approx(buffers.area, rel=1e-3)
    assert areas.difference(buffers).area <= 1e-3 * buffers.area
    assert buffers.difference(areas).area <= 1e-3 * buffers.area


@pytest.mark.parametrize("town", TOWNS)
def test_each_area_holds_its_own_street(built, town):
    """A segment's area is around its own centerline, not somewhere else."""
    segs = built(town)
    epsg = _metric(segs)
    lines = segs.geometry.to_crs(epsg).to_numpy()
    areas = segs["area"].to_crs(epsg).to_numpy()
    inside = shapely.length(shapely.intersection(lines, areas))
    assert inside.sum() >= 0.99 * shapely.length(lines).sum()
    assert shapely.intersects(areas, shapely.line_interpolate_point(lines, 0.5, normalized=True)).mean() > 0.98


def test_boundary_clips_areas(streets):
    raw = streets("helsinki")
    minx, miny, maxx, maxy = raw.total_bounds
    town = box(minx, miny, (minx + maxx) / 2, maxy)
    segs = build_segments(raw, boundary=town)
    epsg = _metric(raw)
    areas = segs["area"].to_crs(epsg)
    outside = gpd.GeoSeries([town], crs=4326).to_crs(epsg).iloc[0]
    assert areas.difference(outside).area.sum() <= 0.01
    assert pairwise_overlap_m2(areas) <= 0.01
    assert areas.is_valid.all() and set(areas.geom_type) == {"MultiPolygon"}
    assert areas.is_empty.any() and not areas.is_empty.all()


# --- names and order -------------------------------------------------------------------------
@pytest.mark.parametrize("town", CJK_TOWNS)
def test_chinese_segments_are_named_by_position(built, town):
    segs = built(town)
    epsg = _metric(segs)
    mid = shapely.get_coordinates(
        shapely.line_interpolate_point(segs.geometry.to_crs(epsg).to_numpy(), 0.5, normalized=True)
    )
    segs = segs.assign(x=mid[:, 0], y=mid[:, 1])
    checked = 0
    for _, street in segs.groupby("street_id"):
        street = street.sort_values("seq")
        names = street["name"].tolist()
        base = street["street_name"].iloc[0]
        assert len(set(names)) == len(names)
        if len(street) == 1:
            assert names == [base]
        elif any("（" in n for n in names):  # named after the crossing streets: tested below
            assert all(n.startswith(base) for n in names)
        elif len(street) <= 3:
            suffixes = [n.removeprefix(base) for n in names]
            if suffixes[0] == "西段":
                assert suffixes[-1] == "东段" and street["x"].iloc[0] < street["x"].iloc[-1]
            else:
                assert suffixes[0] == "北段" and suffixes[-1] == "南段"
                assert street["y"].iloc[0] > street["y"].iloc[-1]
            if len(street) == 3:
                assert suffixes[1] == "中段"
            checked += 1
        else:
            assert names == [f"{base}第{k}段" for k in range(1, len(street) + 1)]


def test_latin_segments_are_numbered_in_order(built):
    segs = built("helsinki")
    epsg = _metric(segs)
    for _, street in segs.groupby("street_id"):
        base = street["street_name"].iloc[0]
        if len(street) == 1:
            assert street["name"].tolist() == [base]
        elif not street["name"].str.contains(r" \(\D", regex=True).any():  # no crossing street known
            assert street["name"].tolist() == [f"{base} ({k})" for k in street["seq"]]
        else:
            assert street["name"].is_unique and street["name"].str.startswith(base).all()
    # Mannerheimintie runs north–south: seq goes from north to south
    manski = segs[segs["street_name"] == "Mannerheimintie"].to_crs(epsg).sort_values("seq")
    y = shapely.get_coordinates(shapely.line_interpolate_point(manski.geometry.to_numpy(), 0.5, normalized=True))[:, 1]
    assert len(manski) > 3 and np.all(np.diff(y) <= 1e-6)


def test_street_id_column_is_respected(streets):
    raw = streets("shatin").copy()
    raw["street_id"] = np.arange(len(raw)) * 10 + 7  # every way its own street
    segs = build_segments(raw)
    assert set(segs["street_id"]) <= set(raw["street_id"])
    by_id = raw.set_index("street_id")["name"]
    assert (segs["street_name"].to_numpy() == by_id.loc[segs["street_id"]].to_numpy()).all()
    assert segs["street_id"].nunique() > raw["name"].nunique()


def test_deterministic(streets, built):
    first = built("shatin")
    second = build_segments(streets("shatin"))
    assert first["name"].tolist() == second["name"].tolist()
    assert first["from_name"].tolist() == second["from_name"].tolist()
    assert first.geometry.geom_equals_exact(second.geometry, tolerance=0).all()
    assert first["area"].geom_equals_exact(second["area"], tolerance=0).all()


def test_input_is_not_modified(streets):
    raw = streets("beijing_haidian")
    before = raw.copy()
    build_segments(raw)
    assert raw.equals(before)


# --- bad input -------------------------------------------------------------------------------
def test_rejects_missing_columns_with_a_hint():
    raw = gpd.read_file(DATA / "beijing_haidian_streets.geojson")
    with pytest.raises(InputError, match="road_class.*highway"):
        build_segments(raw)


def test_rejects_projected_input(streets):
    with pytest.raises(CRSError):
        build_segments(streets("shatin").to_crs(2326))


def test_refuses_to_measure_in_degrees(streets):
    with pytest.raises(CRSError):
        build_segments(streets("shatin"), metric_epsg=4326)


def test_explicit_metric_crs_gives_the_same_segments(streets, built):
    """Hong Kong's own grid (EPSG:2326) instead of the CGCS2000 zone: same cuts, same lengths."""
    auto = built("shatin")
    local = build_segments(streets("shatin"), metric_epsg=2326)
    assert len(local) == len(auto)
    assert local["length_m"].sum() == pytest.approx(auto["length_m"].sum(), rel=1e-3)
    assert pairwise_overlap_m2(local["area"].to_crs(2326)) <= 0.01


def test_rejects_bad_geometries_naming_rows(streets):
    raw = streets("beijing_haidian").copy()
    raw.loc[raw.index[3], "geometry"] = shapely.Point(116.3, 40.0)
    with pytest.raises(InputError, match="rows 4"):
        build_segments(raw)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_length_m": 0},
        {"frontage_depth_m": -1},
        {"sample_spacing_m": float("nan")},
        {"half_widths_m": {"primary": -3.0}},
    ],
)
def test_rejects_bad_parameters(streets, kwargs):
    with pytest.raises(ValueError):
        build_segments(streets("beijing_haidian"), **kwargs)


def test_empty_input_gives_empty_result():
    empty = gpd.GeoDataFrame({"name": [], "road_class": []}, geometry=gpd.GeoSeries([], crs=4326))
    segs = build_segments(empty)
    assert len(segs) == 0 and list(segs.columns) == SEGMENT_COLUMNS


# --- short runs and names from the crossing streets (issue 21) -------------------------------------------
@pytest.mark.parametrize("town", TOWNS)
def test_short_runs_join_a_neighbour_of_their_street(built, town):
    kept = built(town, min_length_m=0)
    joined = built(town)  # default: 20 m
    assert (joined["length_m"] < 20).sum() <= 0.1 * (kept["length_m"] < 20).sum()
    # nothing is lost: the same street length, street by street
    a = kept.groupby("street_id")["length_m"].sum()
    b = joined.groupby("street_id")["length_m"].sum()
    assert np.allclose(a.sort_index(), b.reindex(a.index).sort_index(), rtol=1e-6)
    # a short segment left over has no run of its street to join in one line: a street of its own
    # (a short lane, a way cut off at the edge of the data) or a spur off its own street
    epsg = _metric(joined)
    lines = joined.geometry.to_crs(epsg).to_numpy()
    for i in np.flatnonzero(joined["length_m"].to_numpy() < 20):
        same = np.flatnonzero(joined["street_id"].to_numpy() == joined["street_id"].iloc[i])
        for j in same[same != i]:
            line = shapely.line_merge(shapely.multilinestrings([lines[j], lines[i]]))
            assert not (line.geom_type == "LineString" and shapely.touches(lines[i], lines[j])), (
                joined["name"].iloc[i],
                joined["name"].iloc[j],
            )


def test_min_length_is_a_setting_and_zero_keeps_every_run(streets):
    raw = streets("shatin")
    none = build_segments(raw, min_length_m=0)
    some = build_segments(raw, min_length_m=20)
    more = build_segments(raw, min_length_m=60)
    assert len(none) > len(some) > len(more)
    with pytest.raises(ValueError, match="min_length_m"):
        build_segments(raw, min_length_m=-1)


def test_segments_are_named_after_the_crossing_streets(built):
    segs = built("beijing_haidian")
    between = segs[segs["name"].str.fullmatch(r"[^（]+（[^—（）]+—[^—（）]+）")]
    assert len(between) >= 5
    for row in between.itertuples():
        # the run between two crossings: the names are those of the streets crossing at its ends
        assert row.name == f"{row.street_name}（{row.from_name.split('/')[0]}—{row.to_name.split('/')[0]}）"
    assert not segs["name"].str.contains("段第").any()
    latin = built("helsinki")
    assert latin["name"].str.fullmatch(r"Mannerheimintie \([^()]+–[^()]+\)").any()
