"""Unit-grid generation on the real sample town (Beijing Haidian OSM streets).

What planners rely on: cells tile the town (no 没人管, no 多头管), never cross
a community border, carry unique codes built on the community code, come out
near the target area, and keep their codes when a re-run leaves them unchanged.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gisgrid.config import PROJECT_ROOT
from gisgrid.crs import STORAGE_SRID, metric_crs_for
from gisgrid.demo import _town_polygons
from gisgrid.errors import InputError
from gisgrid.grid.build import GRID_COLUMNS, build_grid, tiling_errors_m2

DATA = PROJECT_ROOT / "gisgrid" / "data"
TOWN_CODE = "110108001"
TARGET = 10_000.0


@pytest.fixture(scope="module")
def town():
    """(streets, town polygon, communities, metric EPSG) exactly as gisgrid.demo builds them."""
    streets = gpd.read_file(DATA / "beijing_haidian_streets.geojson").to_crs(STORAGE_SRID)
    centre = streets.union_all().centroid
    epsg = metric_crs_for(centre.x, centre.y)
    boundary, parts = _town_polygons(streets, epsg)
    communities = gpd.GeoDataFrame(
        {"code": [f"{TOWN_CODE}{i + 1:03d}" for i in range(4)]}, geometry=parts, crs=STORAGE_SRID
    )
    return streets, boundary, communities, epsg


@pytest.fixture(scope="module")
def grids(town):
    streets, boundary, communities, _ = town
    cache: dict[str, gpd.GeoDataFrame] = {}

    def get(layout: str) -> gpd.GeoDataFrame:
        if layout not in cache:
            cache[layout] = build_grid(TOWN_CODE, boundary, communities, streets, target_area_m2=TARGET, layout=layout)
        return cache[layout]

    return get


def _assert_tiles(cells: gpd.GeoDataFrame, town) -> None:
    _, boundary, communities, epsg = town
    assert list(cells.columns) == GRID_COLUMNS
    assert cells.crs.to_epsg() == STORAGE_SRID
    assert set(cells.geom_type) == {"Polygon"}
    assert cells.is_valid.all()
    errors = tiling_errors_m2(cells, boundary, metric_epsg=epsg)
    town_m2 = gpd.GeoSeries([boundary], crs=STORAGE_SRID).to_crs(epsg).area.iloc[0]
    union_m2 = shapely.union_all(cells.to_crs(epsg).geometry.to_numpy()).area
    assert abs(union_m2 - town_m2) <= 1e-4 * town_m2
    assert errors["gap_m2"] <= 1e-4 * town_m2 and errors["outside_m2"] <= 1e-4 * town_m2
    assert errors["overlap_m2"] <= 0.01
    # every cell lies in exactly one community, and in its own
    metric = cells.to_crs(epsg).geometry.to_numpy()
    comms = communities.to_crs(epsg).geometry.to_numpy()
    shares = shapely.area(shapely.intersection(metric[:, None], comms[None, :])) / shapely.area(metric)[:, None]
    assert (shares.max(axis=1) >= 0.9999).all()
    best = communities["code"].to_numpy()[shares.argmax(axis=1)]
    assert (best == cells["community_code"].to_numpy()).all()
    assert np.allclose(cells["area_m2"], shapely.area(metric), rtol=1e-6)


def _assert_codes(cells: gpd.GeoDataFrame) -> None:
    assert cells["code"].is_unique
    assert cells["code"].str.fullmatch(r"\d{15}").all()
    assert (cells["code"].str[:12] == cells["community_code"]).all()
    assert (cells["code"].str[12:].astype(int) == cells["seq"]).all()
    for _, seqs in cells.groupby("community_code")["seq"]:
        assert sorted(seqs) == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize("layout", ["blocks", "square", "hex"])
def test_cells_tile_the_town_within_communities(grids, town, layout):
    cells = grids(layout)
    _assert_tiles(cells, town)
    _assert_codes(cells)
    assert cells.attrs["layout"] == layout and cells.attrs["note"] == ""


def test_blocks_follow_streets_and_approach_the_target(grids, town):
    cells = grids("blocks")
    median = float(np.median(cells["area_m2"]))
    assert TARGET / 2 <= median <= TARGET * 2
    assert cells["area_m2"].min() >= 0.3 * TARGET * 0.99  # slivers were merged
    # cell edges run along the streets: the borders of the street blocks (the streets that
    # enclose something; dead ends cannot) are cell borders, except around merged small blocks
    streets, boundary, communities, epsg = town
    town_m = gpd.GeoSeries([boundary], crs=STORAGE_SRID).to_crs(epsg)
    lines = np.concatenate(
        [
            streets.to_crs(epsg).geometry.to_numpy(),
            town_m.boundary.to_numpy(),
            communities.to_crs(epsg).boundary.to_numpy(),
        ]
    )
    blocks = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(lines))))
    block_borders = shapely.intersection(shapely.union_all(shapely.boundary(blocks)), town_m.iloc[0].buffer(-1.0))
    cell_borders = shapely.union_all(shapely.boundary(cells.to_crs(epsg).geometry.to_numpy()))
    on_cell_border = shapely.intersection(block_borders, cell_borders.buffer(0.01)).length / block_borders.length
    assert on_cell_border > 0.65  # 0.72 on this town: dual-carriageway medians join a side


def test_regular_layouts_have_target_cells(grids):
    for layout in ("square", "hex"):
        assert np.median(grids(layout)["area_m2"]) == pytest.approx(TARGET, rel=1e-4)


def test_codes_are_ordered_west_east_north_south(grids, town):
    cells = grids("square")
    epsg = town[3]
    first = cells[cells["community_code"] == f"{TOWN_CODE}001"].to_crs(epsg)
    y = first.geometry.centroid.y.to_numpy()
    band = np.floor((first.total_bounds[3] - y) / np.sqrt(TARGET))
    assert (np.diff(band) >= 0).all()  # seq order runs north to south by band


def test_rerun_gives_identical_codes(grids, town):
    streets, boundary, communities, _ = town
    again = build_grid(TOWN_CODE, boundary, communities, streets, target_area_m2=TARGET)
    first = grids("blocks")
    assert list(again["code"]) == list(first["code"])
    assert all(a.equals_exact(b, 1e-9) for a, b in zip(again.geometry, first.geometry))
    with_previous = build_grid(TOWN_CODE, boundary, communities, streets, target_area_m2=TARGET, previous=first)
    assert list(with_previous["code"]) == list(first["code"])


def test_unchanged_cells_keep_codes_after_a_street_changes(grids, town):
    streets, boundary, communities, epsg = town
    first = grids("blocks")
    changed = streets.copy()
    lengths = changed.to_crs(epsg).length
    i = int((lengths - lengths.median()).abs().idxmin())  # move a street of median length 15 m east
    moved = gpd.GeoSeries([changed.geometry.loc[i]], crs=STORAGE_SRID).to_crs(epsg).translate(15.0, 0.0)
    changed.loc[i, "geometry"] = moved.to_crs(STORAGE_SRID).iloc[0]
    second = build_grid(TOWN_CODE, boundary, communities, changed, target_area_m2=TARGET, previous=first)
    _assert_tiles(second, town)
    assert second["code"].is_unique
    old = first.set_index("code").to_crs(epsg).geometry
    new = second.set_index("code").to_crs(epsg).geometry
    kept = old.index.intersection(new.index)
    # a kept code means the same cell (symmetric difference < 0.1 m²)
    sym = shapely.area(shapely.symmetric_difference(old.loc[kept].to_numpy(), new.loc[kept].to_numpy()))
    assert (sym < 0.1).all()
    # every new cell equal to an old one kept the old code
    fresh = new.drop(kept)
    if len(fresh):
        idx_new, idx_old = shapely.STRtree(old.to_numpy()).query(fresh.to_numpy(), predicate="intersects")
        sym = shapely.area(shapely.symmetric_difference(fresh.to_numpy()[idx_new], old.to_numpy()[idx_old]))
        assert (sym >= 0.1).all()
        # fresh cells are numbered after the community's highest previous number
        prev_max = first.groupby("community_code")["seq"].max()
        fresh_rows = second[second["code"].isin(fresh.index)]
        assert (fresh_rows["seq"].to_numpy() > prev_max.loc[fresh_rows["community_code"]].to_numpy()).all()
    assert len(kept) < len(first)  # the move changed some cells ...
    # ... and left most others alone (a block touching the street is re-split as a whole)
    assert len(kept) >= 0.6 * len(first)


def test_no_streets_falls_back_to_square(grids, town, caplog):
    _, boundary, communities, _ = town
    empty = gpd.GeoDataFrame({"name": []}, geometry=gpd.GeoSeries([], crs=STORAGE_SRID))
    with caplog.at_level("WARNING", logger="gisgrid.grid.build"):
        cells = build_grid(TOWN_CODE, boundary, communities, empty, target_area_m2=TARGET)
    assert cells.attrs["layout"] == "square" and "no streets" in cells.attrs["note"]
    assert "no streets" in caplog.text
    assert list(cells["code"]) == list(grids("square")["code"])
    none_given = build_grid(TOWN_CODE, boundary, communities, None, target_area_m2=TARGET)
    assert none_given.attrs["layout"] == "square"


def test_bad_input_is_refused(town):
    streets, boundary, communities, _ = town
    with pytest.raises(InputError, match="layout"):
        build_grid(TOWN_CODE, boundary, communities, streets, layout="triangles")
    with pytest.raises(InputError, match="target_area_m2"):
        build_grid(TOWN_CODE, boundary, communities, streets, target_area_m2=0)
    with pytest.raises(InputError, match="boundary"):
        build_grid(TOWN_CODE, shapely.Polygon(), communities, streets)
    with pytest.raises(InputError, match="EPSG:4326"):
        build_grid(TOWN_CODE, boundary, communities.to_crs(3857), streets)
    dup = communities.assign(code=communities["code"].iloc[0])
    with pytest.raises(InputError, match="duplicate"):
        build_grid(TOWN_CODE, boundary, dup, streets)
    with pytest.raises(InputError, match="more than 999"):
        build_grid(TOWN_CODE, boundary, communities, streets, target_area_m2=1_000.0, layout="square")
