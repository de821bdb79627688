"""Coverage audit: planted gaps, overlaps and slivers are found exactly; a clean grid shows nothing.

The planted problems sit in a synthetic town of 10 × 10 square cells of 100 m
(drawn in the metric CRS near Beijing, stored in EPSG:4326) so their areas are
known exactly; the clean case is the grid and segments gisgrid builds for the
real Haidian sample town.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from gisgrid.audit.coverage import GEOMETRY_PROBLEMS, PROBLEMS, AuditResult, audit_coverage
from gisgrid.config import DATA_DIR
from gisgrid.crs import STORAGE_SRID, metric_crs_for, transformer
from gisgrid.demo import _town_polygons
from gisgrid.errors import InputError
from gisgrid.grid.build import build_grid
from gisgrid.network.segments import build_segments

TODAY = dt.date(2026, 5, 1)
EPSG = metric_crs_for(116.35, 40.0)
SIDE = 100.0
N = 10


def _to_storage(geom):
    t = transformer(EPSG, STORAGE_SRID)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def synthetic():
    """Metric cells (list), their codes, the jurisdiction, segment areas along the middle row."""
    x0, y0 = transformer(STORAGE_SRID, EPSG).transform(116.35, 40.0)
    x0, y0 = round(x0), round(y0)
    cells, codes = [], []
    for row in range(N):  # north to south
        for col in range(N):
            cells.append(box(x0 + col * SIDE, y0 - (row + 1) * SIDE, x0 + (col + 1) * SIDE, y0 - row * SIDE))
            codes.append(f"110108001001{row * N + col + 1:03d}")
    jurisdiction = shapely.union_all(cells)
    # frontage strips 20 m deep along a street at the middle, 10 segments of 100 m
    segs = [box(x0 + i * SIDE, y0 - 5 * SIDE - 10, x0 + (i + 1) * SIDE, y0 - 5 * SIDE + 10) for i in range(N)]
    return {"cells": cells, "codes": codes, "jurisdiction": jurisdiction, "segments": segs, "origin": (x0, y0)}


def _frames(synth, cells=None, segments=None):
    cells = synth["cells"] if cells is None else cells
    segments = synth["segments"] if segments is None else segments
    cell_frame = gpd.GeoDataFrame(
        {"id": np.arange(1, len(cells) + 1), "code": synth["codes"][: len(cells)]},
        geometry=[_to_storage(c) for c in cells],
        crs=STORAGE_SRID,
    )
    seg_frame = gpd.GeoDataFrame(
        {"id": np.arange(1, len(segments) + 1), "name": [f"学院路第{i + 1}段" for i in range(len(segments))]},
        geometry=[_to_storage(s) for s in segments],
        crs=STORAGE_SRID,
    )
    return _to_storage(synth["jurisdiction"]), cell_frame, seg_frame


def _owners(n_cells: int = N * N, n_segments: int = N) -> pd.DataFrame:
    rows = [
        {
            "target_type": "cell",
            "target_id": i,
            "role": "网格长",
            "owner_name": f"网格员{(i - 1) // 5}",
            "person_id": 1000 + (i - 1) // 5,
            "valid_from": "2025-01-01",
            "valid_to": None,
        }
        for i in range(1, n_cells + 1)
    ]
    rows += [
        {
            "target_type": "segment",
            "target_id": i,
            "role": "段长",
            "owner_name": f"段长{i}",
            "person_id": 2000 + i,
            "valid_from": "2025-01-01",
            "valid_to": None,
        }
        for i in range(1, n_segments + 1)
    ]
    return pd.DataFrame(rows)


def test_clean_synthetic_grid_reports_nothing(synthetic):
    jurisdiction, cells, segments = _frames(synthetic)
    result = audit_coverage(
        jurisdiction,
        cells,
        segments,
        owners=_owners(),
        today=TODAY,
        frontage=_to_storage(shapely.union_all(synthetic["segments"])),
    )
    assert isinstance(result, AuditResult) and result.clean
    assert {k: v for k, v in result.summary().items() if v} == {}
    assert result.metric_epsg == EPSG


def test_clean_sample_town_reports_nothing():
    streets = gpd.read_file(DATA_DIR / "beijing_haidian_streets.geojson")
    streets = streets.rename(columns={"highway": "road_class"})
    centre = streets.union_all().centroid
    epsg = metric_crs_for(centre.x, centre.y)
    town, parts = _town_polygons(streets, epsg)
    communities = gpd.GeoDataFrame(
        {"code": [f"110108001{i + 1:03d}" for i in range(4)]}, geometry=parts, crs=STORAGE_SRID
    )
    cells = build_grid("110108001", town, communities, streets)
    segs = build_segments(streets, boundary=town)
    segments = gpd.GeoDataFrame(
        {"id": np.arange(len(segs)), "name": segs["name"]}, geometry=segs["area"].values, crs=STORAGE_SRID
    )
    result = audit_coverage(town, cells.assign(id=np.arange(len(cells))), segments, frontage=segments.union_all())
    assert result.clean, result.summary()


def test_planted_gap_is_found_exactly(synthetic):
    removed = 34
    jurisdiction, frame, _ = _frames(synthetic)
    frame = frame.drop(index=removed)
    result = audit_coverage(jurisdiction, frame, None, today=TODAY)
    assert len(result.gaps) == 1 and len(result.overlaps) == 0
    gap = result.gaps.iloc[0]
    assert gap["layer"] == "cell"
    assert gap["area_m2"] == pytest.approx(synthetic["cells"][removed].area, abs=0.1)
    assert not gap["sliver"]
    # the layer is where the cell was
    where = gpd.GeoSeries([result.gaps.geometry.iloc[0]], crs=STORAGE_SRID).to_crs(EPSG).iloc[0]
    assert where.symmetric_difference(synthetic["cells"][removed]).area < 0.1


def test_planted_overlap_names_both_units_and_owners(synthetic):
    cells = list(synthetic["cells"])
    a, b = 22, 23  # b is a's east neighbour
    xmin, ymin, xmax, ymax = cells[a].bounds
    rect = box(xmax, ymin + 20.0, xmax + 12.5, ymax - 10.0)  # 12.5 m × 70 m into b
    cells[a] = shapely.union_all([cells[a], rect])
    jurisdiction, frame, segments = _frames(synthetic, cells=cells)
    owners = _owners()
    result = audit_coverage(jurisdiction, frame, segments, owners=owners, today=TODAY)
    assert len(result.gaps) == 0
    assert len(result.overlaps) == 1
    row = result.overlaps.iloc[0]
    assert row["area_m2"] == pytest.approx(rect.area, abs=0.1)
    assert row["layer"] == "cell" and row["n_units"] == 2
    assert row["units"] == [synthetic["codes"][a], synthetic["codes"][b]]
    assert list(row["unit_ids"]) == [a + 1, b + 1]
    for i in (a, b):
        assert f"{synthetic['codes'][i]}: 网格员{i // 5} (网格长)" in row["owners"]
    table = result.to_tables()["overlaps"]
    assert table.loc[0, "units"] == f"{synthetic['codes'][a]}, {synthetic['codes'][b]}"
    assert table.loc[0, "area_m2"] == round(rect.area, 1)


def test_overlap_of_three_units_is_one_region(synthetic):
    segments = list(synthetic["segments"])
    x0, y0 = synthetic["origin"]
    extra = box(x0 + 90, y0 - 5 * SIDE - 5, x0 + 110, y0 - 5 * SIDE + 5)  # straddles segments 1 and 2
    jurisdiction, cells, seg_frame = _frames(synthetic, segments=segments + [extra])
    result = audit_coverage(jurisdiction, cells, seg_frame, today=TODAY)
    seg_overlaps = result.overlaps[result.overlaps["layer"] == "segment"]
    assert len(seg_overlaps) == 1
    assert seg_overlaps.iloc[0]["n_units"] == 3
    assert seg_overlaps.iloc[0]["area_m2"] == pytest.approx(extra.area, abs=0.1)


def test_planted_slivers(synthetic):
    cells = list(synthetic["cells"])
    xmin, ymin, xmax, ymax = cells[55].bounds
    strip = box(xmin, ymin, xmin + 1.0, ymax)  # 1 m × 100 m: area 100 m², thinness 0.03
    cells[55] = box(xmin + 1.0, ymin, xmax, ymax)
    cells.append(strip)
    hole = box(cells[77].bounds[0] + 40, cells[77].bounds[1] + 40, cells[77].bounds[0] + 42, cells[77].bounds[1] + 42)
    cells[77] = cells[77].difference(hole)  # a 4 m² gap
    synth = dict(synthetic, codes=synthetic["codes"] + ["110108001001101"])
    jurisdiction, frame, _ = _frames(synth, cells=cells)
    result = audit_coverage(jurisdiction, frame, None, today=TODAY)
    assert len(result.overlaps) == 0
    kinds = result.slivers.set_index("kind")
    assert set(kinds.index) == {"cell", "gap"}
    cell = kinds.loc[["cell"]].iloc[0]
    assert cell["unit"] == "110108001001101"
    assert cell["area_m2"] == pytest.approx(100.0, abs=0.1) and cell["thinness"] < 0.1
    gap = kinds.loc[["gap"]].iloc[0]
    assert gap["area_m2"] == pytest.approx(4.0, abs=0.1)
    assert result.gaps["sliver"].all() and len(result.gaps) == 1


def test_owner_problems(synthetic):
    jurisdiction, cells, segments = _frames(synthetic)
    owners = _owners()
    owners = owners[~((owners["target_type"] == "cell") & (owners["target_id"] == 7))]  # vacant cell 7
    owners.loc[(owners["target_type"] == "segment") & (owners["target_id"] == 3), "valid_to"] = "2026-05-01"
    owners.loc[(owners["target_type"] == "segment") & (owners["target_id"] == 4), "valid_to"] = "2026-05-11"
    owners.loc[(owners["target_type"] == "segment") & (owners["target_id"] == 5), "valid_to"] = "2026-07-01"
    busy = (owners["target_type"] == "cell") & owners["target_id"].between(50, 74)
    owners.loc[busy, ["owner_name", "person_id"]] = ["王大忙", 9999]  # 25 cells
    result = audit_coverage(jurisdiction, cells, segments, owners=owners, today=TODAY, max_units_per_owner=20)
    vacant = result.vacant
    # cell 7 has no owner; segment 3's assignment ended today (valid_to is exclusive)
    assert sorted(zip(vacant["layer"], vacant["unit_id"])) == [("cell", 7), ("segment", 3)]
    assert vacant.set_index("unit_id").loc[7, "unit"] == synthetic["codes"][6]
    assert vacant.set_index("unit_id").loc[7, "area_m2"] == pytest.approx(SIDE * SIDE, abs=0.1)
    expiring = result.expiring
    assert list(expiring["unit_id"]) == [4] and expiring.iloc[0]["days_left"] == 10
    assert expiring.iloc[0]["owner_name"] == "段长4" and expiring.iloc[0]["unit"] == "学院路第4段"
    over = result.over_limit
    assert list(over["owner_name"]) == ["王大忙"] and over.iloc[0]["n_units"] == 25
    assert over.iloc[0]["person_id"] == 9999
    # the default limit of 20 names nobody else: the others own 5 cells each
    assert result.summary()["over_limit_count"] == 1


def test_reports_as_gap_evidence(synthetic):
    removed = 12
    jurisdiction, cells, segments = _frames(synthetic)
    cells = cells.drop(index=removed)
    inside_gap = _to_storage(synthetic["cells"][removed].centroid)
    in_cell = _to_storage(synthetic["cells"][40].centroid)
    reports = gpd.GeoDataFrame(
        {
            "id": [1, 2, 3, 4],
            "reported_at": pd.to_datetime(["2026-04-28", "2026-04-29", "2026-02-01", "2026-04-30"]),
            "rule": ["unassigned", "grid_cell", "unassigned", "unassigned"],
        },
        geometry=[inside_gap, in_cell, inside_gap, in_cell],
        crs=STORAGE_SRID,
    )
    result = audit_coverage(jurisdiction, cells, segments, reports=reports, today=TODAY, report_days=30)
    found = result.reports.set_index("report_id")
    assert sorted(found.index) == [1, 4]  # 3 is too old, 2 was routed to a cell
    assert found.loc[1, "reason"] == "unassigned; in no cell or segment area"
    assert found.loc[4, "reason"] == "unassigned"
    # the evidence lies in the gap the audit found
    gap = result.gaps.geometry.iloc[0]
    assert gap.contains(result.reports.set_index("report_id").geometry.loc[1])


def test_frontage_gap(synthetic):
    segments = [s for i, s in enumerate(synthetic["segments"]) if i != 4]
    jurisdiction, cells, seg_frame = _frames(synthetic, segments=segments)
    frontage = _to_storage(shapely.union_all(synthetic["segments"]))
    result = audit_coverage(jurisdiction, cells, seg_frame, frontage=frontage, today=TODAY)
    gaps = result.gaps[result.gaps["layer"] == "frontage"]
    assert len(gaps) == 1 and gaps.iloc[0]["area_m2"] == pytest.approx(2000.0, abs=0.1)


def test_tables_and_layers(synthetic):
    cells = list(synthetic["cells"])
    cells[3] = shapely.union_all([cells[3], box(*cells[4].bounds).buffer(-30)])
    jurisdiction, frame, segments = _frames(synthetic, cells=cells[:-1])
    result = audit_coverage(jurisdiction, frame, segments, owners=_owners(N * N - 1), today=TODAY)
    tables = result.to_tables()
    assert set(tables) == {"summary", *PROBLEMS}
    assert all(isinstance(t, pd.DataFrame) and "geometry" not in t.columns for t in tables.values())
    assert {"lon", "lat"} <= set(tables["gaps"].columns)
    layers = result.layers()
    assert set(layers) == set(GEOMETRY_PROBLEMS)
    assert all(layer.crs.to_epsg() == STORAGE_SRID for layer in layers.values())
    assert layers["overlaps"]["units"].map(type).eq(str).all()
    geojson = layers["overlaps"].to_json()
    assert "110108001001004" in geojson


def test_bad_input_is_refused(synthetic):
    jurisdiction, cells, segments = _frames(synthetic)
    with pytest.raises(InputError, match="jurisdiction"):
        audit_coverage(shapely.Point(0, 0), cells, segments)
    with pytest.raises(InputError, match="EPSG:4326"):
        audit_coverage(jurisdiction, cells.to_crs(EPSG), segments)
    with pytest.raises(InputError, match="sliver_thinness") as err:
        audit_coverage(jurisdiction, cells.drop(columns="code"), segments, sliver_thinness=2.0)
    assert "code" in str(err.value)  # all problems at once
