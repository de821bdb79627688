"""The in-memory assignment engine on a small synthetic town (no database).

The town is drawn in CGCS2000 / 3-degree GK CM 114E (EPSG:4547) near
lon 114.2, lat 22.7, in metres from an origin, and handed to the engine in
EPSG:4326 as the database holds it:

* segment 1 (residential) and segment 2 (primary) run along y = 0 from x = 0
  to 100 and 100 to 200, with frontage areas 20 m deep on each side; they
  share the area boundary x = 100;
* segment 7 runs along y = -30 with an area y in [-50, -10] that overlaps
  segment 1's area (a planner's mistake the engine must still settle);
* segment 3 (residential) runs along y = 100 with no area (nearest-centerline rule);
* segments 5 and 4 (listed in that order) run along y = 0 and y = 40 for
  x in [300, 400], without areas: (350, 20) is equidistant;
* grid cells 10 and 11 share the edge x = 250 for y in [150, 300];
* community 100, town 200 and county 300 nest around everything.
"""

from __future__ import annotations

import datetime as dt
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, box

from gisgrid.crs import from_storage, transformer
from gisgrid.errors import CRSError, InputError
from gisgrid.ownership.history import OwnerHistory
from gisgrid.routing.files import AssignSummary, assign_file
from gisgrid.routing.frames import assign_frame
from gisgrid.routing.index import AssignmentIndex, PartitionedIndex
from gisgrid.routing.rules import (
    ERROR_CODES,
    RESULT_COLUMNS,
    RULES,
    RuleSet,
    parse_dates,
    validate_categories,
    validate_points,
)

METRIC = 4547
X0, Y0 = 520500.0, 2511300.0
ROUTES = {
    "0101": {"mode": "location"},  # exposed garbage
    "0301": {"mode": "by_road_class", "road_classes": {"primary": 7, "trunk": 8}},  # street-occupying vending
    "0501": {"mode": "department", "department_id": 9},  # smoke discharge
    "0601": {},  # location, as the table's default '{}'
}
RULESET = RuleSet(version="2026.1", tolerance_m=30.0, category_routes=ROUTES)


def _to_lonlat(geoms, native=False):
    """Metric (relative to the origin) shapely geometries → EPSG:4326 (or absolute EPSG:4547 if ``native``)."""
    t = transformer(METRIC, 4326)
    moved = [None if g is None else shapely.affinity.translate(g, X0, Y0) for g in geoms]
    if native:
        return moved
    return [
        None if g is None else shapely.transform(g, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
        for g in moved
    ]


def _town(order=None, native=False):
    """The town's layers in EPSG:4326, or in EPSG:4547 itself with ``native`` (exact metric coordinates)."""
    segments = [
        # id, road class, centerline, area
        (5, "residential", LineString([(300, 0), (400, 0)]), None),
        (4, "residential", LineString([(300, 40), (400, 40)]), None),
        (1, "residential", LineString([(0, 0), (100, 0)]), box(0, -20, 100, 20)),
        (2, "primary", LineString([(100, 0), (200, 0)]), box(100, -20, 200, 20)),
        (3, "residential", LineString([(0, 100), (200, 100)]), None),
        (7, None, LineString([(0, -30), (100, -30)]), box(0, -50, 100, -10)),
    ]
    if order is not None:
        segments = [segments[i] for i in order]
    crs = METRIC if native else 4326
    seg = gpd.GeoDataFrame(
        {
            "id": [s[0] for s in segments],
            "road_class": [s[1] for s in segments],
            "area": gpd.GeoSeries(_to_lonlat([s[3] for s in segments], native), crs=crs),
        },
        geometry=_to_lonlat([s[2] for s in segments], native),
        crs=crs,
    )
    cells = gpd.GeoDataFrame(
        {"id": [11, 10]}, crs=crs, geometry=_to_lonlat([box(250, 150, 500, 300), box(-50, 150, 250, 300)], native)
    )
    jur = gpd.GeoDataFrame(
        {"id": [300, 200, 100], "level": ["county", "town", "community"]},
        crs=crs,
        geometry=_to_lonlat(
            [box(-2000, -2000, 2000, 2000), box(-100, -100, 1000, 1000), box(-100, -100, 600, 400)], native
        ),
    )
    return seg, cells, jur


@pytest.fixture(scope="module")
def index():
    seg, cells, jur = _town()
    return AssignmentIndex.build(seg, cells, jur, metric_epsg=METRIC, ruleset=RULESET)


def _lonlat(points):
    """Points (metres from the origin) in EPSG:4326, as stored."""
    pts = np.asarray(points, dtype=float)
    return transformer(METRIC, 4326).transform(pts[:, 0] + X0, pts[:, 1] + Y0)


def _xy(points):
    """Stored points projected back to the metric CRS, exactly as the index projects its layers."""
    return transformer(4326, METRIC).transform(*_lonlat(points))


# (dx, dy, category) → (rule, target_type, target_id, segment_id)
CASES = [
    ((50, 10, None), ("segment_area", "segment", 1, 1)),
    ((150, -5, None), ("segment_area", "segment", 2, 2)),
    ((100, 20, None), ("segment_area", "segment", 1, 1)),  # shared corner: same distance, lowest id
    ((50, -18, None), ("segment_area", "segment", 7, 7)),  # overlap: nearer centerline (12 m vs 18 m)
    ((50, 129, None), ("nearest_segment", "segment", 3, 3)),  # 29 m from segment 3
    ((50, 131, None), ("jurisdiction_default", "jurisdiction", 100, None)),  # 31 m: next rule
    ((350, 20, None), ("nearest_segment", "segment", 4, 4)),  # equidistant 20 m: lowest id
    ((100, 200, None), ("grid_cell", "cell", 10, None)),
    ((250, 150, None), ("grid_cell", "cell", 10, None)),  # shared cell corner: lowest id
    ((400, 200, None), ("grid_cell", "cell", 11, None)),
    ((800, 800, None), ("jurisdiction_default", "jurisdiction", 200, None)),
    ((1500, 1500, None), ("jurisdiction_default", "jurisdiction", 300, None)),
    ((5000, 5000, None), ("unassigned", None, None, None)),
    ((150, 5, "0301"), ("category_route", "department", 7, 2)),  # vending on a primary road → department
    ((50, 5, "0301"), ("segment_area", "segment", 1, 1)),  # on a residential road → the segment
    ((1500, 1500, "0301"), ("jurisdiction_default", "jurisdiction", 300, None)),  # no segment: by location
    ((5000, 5000, "0501"), ("category_route", "department", 9, None)),  # always the department
    ((50, 5, "0101"), ("segment_area", "segment", 1, 1)),
    ((50, 5, "0601"), ("segment_area", "segment", 1, 1)),
]


def _check(result, cases):
    assert list(result.columns[-len(RESULT_COLUMNS) :]) == list(RESULT_COLUMNS)
    for (point, (rule, ttype, tid, sid)), (_, row) in zip(cases, result.iterrows()):
        got = (
            row["rule"],
            None if pd.isna(row["target_type"]) else row["target_type"],
            None if pd.isna(row["target_id"]) else int(row["target_id"]),
            None if pd.isna(row["segment_id"]) else int(row["segment_id"]),
        )
        assert got == (rule, ttype, tid, sid), point
        assert row["ruleset_version"] == "2026.1"
        assert pd.isna(row["error_code"])


def test_each_rule_fires_where_expected(index):
    x, y = _xy([c[0][:2] for c in CASES])
    result = index.assign(x, y, categories=[c[0][2] for c in CASES])
    assert len(result) == len(CASES)
    _check(result, CASES)
    assert set(result["rule"]) == set(RULES) - {"address_street"}  # no written address: tested in test_address.py
    by_point = {c[0]: row for c, (_, row) in zip(CASES, result.iterrows())}
    assert by_point[(50, 10, None)]["distance_m"] == 0.0
    assert by_point[(50, 129, None)]["distance_m"] == pytest.approx(29.0, abs=1e-3)
    assert by_point[(350, 20, None)]["distance_m"] == pytest.approx(20.0, abs=1e-3)
    assert np.isnan(by_point[(100, 200, None)]["distance_m"])
    assert by_point[(5000, 5000, None)]["reason"] == "outside coverage"
    assert "primary" in by_point[(150, 5, "0301")]["reason"]


def test_points_on_shared_edges_in_exact_metric_coordinates():
    """With layers given in the metric CRS itself, points in the middle of shared edges are exact."""
    native = AssignmentIndex.build(*_town(native=True), metric_epsg=METRIC, ruleset=RULESET)
    points = np.array([(100, 5), (100, -20), (250, 200), (250, 150), (50, -10), (50, -20), (350, 20)], dtype=float)
    # (100, -20) is on areas 1, 2 and 7: 20 m from centerlines 1 and 2, 10 m from 7;
    # (50, -10): 10 m from 1, 20 m from 7; (50, -20): 20 m from 1, 10 m from 7
    expected = [1, 7, 10, 10, 1, 7, 4]
    for attempt in range(3):
        order = np.random.default_rng(attempt).permutation(len(points))
        shuffled = AssignmentIndex.build(
            *_town(order=np.random.default_rng(attempt).permutation(6), native=True),
            metric_epsg=METRIC,
            ruleset=RULESET,
        )
        for idx, pts, exp in ((native, points, expected), (shuffled, points[order], [expected[i] for i in order])):
            result = idx.assign(pts[:, 0] + X0, pts[:, 1] + Y0)
            assert result["target_id"].tolist() == exp


def test_tolerance_bound(index):
    x, y = _xy([(50, 100 + d) for d in (29.0, 29.999, 30.0, 30.001, 31.0)])
    result = index.assign(x, y)
    assert result["rule"].tolist() == ["nearest_segment"] * 3 + ["jurisdiction_default"] * 2
    looser = AssignmentIndex.build(
        *_town(), metric_epsg=METRIC, ruleset=RuleSet(version="loose", tolerance_m=40.0, category_routes=ROUTES)
    )
    assert looser.assign(*_xy([(50, 131)]))["rule"].tolist() == ["nearest_segment"]


def test_ties_are_deterministic_whatever_the_order(index):
    rng = np.random.default_rng(7)
    points = [c[0][:2] for c in CASES]
    cats = [c[0][2] for c in CASES]
    reference = index.assign(*_xy(points), categories=cats).astype(object)
    for _attempt in range(5):
        order = rng.permutation(len(points))
        seg_order = rng.permutation(6)
        shuffled = AssignmentIndex.build(*_town(order=seg_order), metric_epsg=METRIC, ruleset=RULESET)
        result = shuffled.assign(*_xy([points[i] for i in order]), categories=[cats[i] for i in order])
        back = result.astype(object).set_axis(order).sort_index()
        pd.testing.assert_frame_equal(back, reference, check_dtype=False)
    # repeated runs on the same index
    again = index.assign(*_xy(points), categories=cats).astype(object)
    pd.testing.assert_frame_equal(again, reference)


def test_assign_frame_in_lonlat_keeps_columns_and_order(index):
    lon, lat = _lonlat([c[0][:2] for c in CASES])
    frame = pd.DataFrame(
        {
            "ref": [f"R{i}" for i in range(len(CASES))],
            "lon": lon,
            "lat": lat,
            "category": [c[0][2] for c in CASES],
            "note": "人民路88号",
        },
        index=pd.RangeIndex(100, 100 + len(CASES)),
    )
    before = frame.copy()
    result = assign_frame(index, frame, crs="EPSG:4326")
    pd.testing.assert_frame_equal(frame, before)  # input not mutated
    assert list(result.columns) == list(frame.columns) + list(RESULT_COLUMNS)
    assert result.index.equals(frame.index)
    pd.testing.assert_frame_equal(result[list(frame.columns)], frame)
    _check(result, CASES)


def test_text_coordinates_and_cgcs2000(index):
    lon, lat = _lonlat([(50, 10), (150, -5)])
    frame = pd.DataFrame({"经度": [f" {v:.9f}" for v in lon], "纬度": [f"{v:.9f}" for v in lat]}, dtype="str")
    result = assign_frame(index, frame, lon="经度", lat="纬度", crs="EPSG:4490")
    assert result["target_id"].tolist() == [1, 2]


def test_projected_input(index):
    x, y = _xy([(50, 10), (150, -5)])
    frame = pd.DataFrame({"x": x, "y": y})
    result = assign_frame(index, frame, lon="x", lat="y", crs=METRIC)
    assert result["target_id"].tolist() == [1, 2]
    swapped = assign_frame(index, frame.rename(columns={"x": "y", "y": "x"}), lon="x", lat="y", crs=METRIC)
    assert swapped["error_code"].tolist() == ["swapped_lonlat"] * 2


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_web_map_input_lands_on_the_true_target(index, system):
    points = [(50, 10), (150, -5), (50, 129), (100, 200), (800, 800)]
    lon, lat = _lonlat(points)
    shifted_lon, shifted_lat = from_storage(lon, lat, system)
    assert np.hypot(shifted_lon - lon, shifted_lat - lat).min() > 1e-3  # hundreds of metres off as given
    true = assign_frame(index, pd.DataFrame({"lon": lon, "lat": lat}), crs="EPSG:4326")
    web = assign_frame(index, pd.DataFrame({"lon": shifted_lon, "lat": shifted_lat}), crs=system)
    for column in ("rule", "target_type", "target_id"):
        assert web[column].tolist() == true[column].tolist()
    assert np.allclose(web["distance_m"].fillna(-1), true["distance_m"].fillna(-1), atol=0.5)
    wrong = assign_frame(index, pd.DataFrame({"lon": shifted_lon, "lat": shifted_lat}), crs="EPSG:4326")
    assert wrong["target_id"].tolist() != true["target_id"].tolist()  # why the CRS must be declared


def test_bad_rows_come_back_with_codes_and_rows_in_equal_rows_out(index):
    lon, lat = _lonlat([(50, 10)] * 3)
    good_lon, good_lat = float(lon[0]), float(lat[0])
    rows = [
        # lon, lat, category, date, expected error
        (good_lon, good_lat, "0101", "2026-03-01", None),
        (np.nan, good_lat, "0101", "2026-03-01", "missing_coordinates"),
        ("", "", "0101", "2026-03-01", "missing_coordinates"),
        ("abc", good_lat, "0101", "2026-03-01", "bad_coordinates"),
        (190.0, good_lat, "0101", "2026-03-01", "out_of_range"),
        (good_lon, -95.0, "0101", "2026-03-01", "out_of_range"),
        (good_lat, good_lon, "0101", "2026-03-01", "swapped_lonlat"),
        (good_lon, good_lat, "9999", "2026-03-01", "unknown_category"),
        (good_lon, good_lat, "0101", "yesterday-ish", "bad_date"),
        (good_lon, good_lat, " 0101 ", "2026/3/1", None),
        (good_lon, good_lat, "", "2026年3月1日", None),
        (good_lon, good_lat, None, None, None),
        (good_lon, good_lat, "0101", "2026-03-01T08:30:00+08:00", None),
        (good_lon + 1.0, good_lat, "0101", "2026-03-01", None),  # outside the area: unassigned, not an error
    ]
    frame = pd.DataFrame(
        {
            "lon": [str(r[0]) for r in rows],
            "lat": [str(r[1]) for r in rows],
            "category": [r[2] for r in rows],
            "date": [r[3] for r in rows],
        }
    ).replace("nan", "")
    result = assign_frame(index, frame, crs="EPSG:4326")
    assert len(result) == len(frame)
    expected = [r[4] for r in rows]
    assert [None if pd.isna(c) else c for c in result["error_code"]] == expected
    failed = result["error_code"].notna()
    assert result.loc[failed, "target_id"].isna().all()
    assert result.loc[failed, "rule"].isna().all()
    assert result.loc[failed, "error_message"].notna().all()
    assert result.loc[~failed, "error_message"].isna().all()
    assert result["rule"].iloc[-1] == "unassigned"
    assert (result.loc[~failed, "rule"].iloc[:-1] == "segment_area").all()
    assert "swapped" in result["error_message"].iloc[6]
    assert "'9999'" in result["error_message"].iloc[7]
    assert set(result["error_code"].dropna()) <= set(ERROR_CODES)


def test_validate_points_directly():
    extent = (114.0, 22.5, 114.4, 22.9)
    ok, code, message = validate_points(
        [114.2, np.nan, 200.0, 22.7, 116.0], [22.7, 22.7, 22.7, 114.2, 22.7], extent=extent
    )
    assert ok.tolist() == [True, False, False, False, True]  # outside the extent is not an error
    assert code.tolist() == [None, "missing_coordinates", "out_of_range", "swapped_lonlat", None]
    assert message[0] is None and "swapped" in message[3]
    _, code, _ = validate_points([22.7], [114.2])  # without an extent a swap cannot be told
    assert code.tolist() == ["out_of_range"]


def test_validate_categories_and_parse_dates():
    ok, code, _ = validate_categories(["0101", "0301", "", None, "X"], RULESET)
    assert ok.tolist() == [True, True, True, True, False]
    assert code[-1] == "unknown_category"
    dates, ok, code, message = parse_dates(
        ["2026-07-01", "2026/7/1", "2026年7月1日", "2026-07-01 23:59", "", "31/31/2026", dt.date(2026, 7, 1)]
    )
    assert ok.tolist() == [True] * 5 + [False, True]
    assert dates[0] == dates[1] == dates[2] == dates[3] == dates[6] == np.datetime64("2026-07-01")
    assert np.isnat(dates[4]) and np.isnat(dates[5])
    assert code[5] == "bad_date" and "31/31/2026" in message[5]


def test_unknown_category_and_nan_in_assign(index):
    x, y = _xy([(50, 10), (50, 10), (50, 10)])
    x[2] = np.nan
    result = index.assign(x, y, categories=["0101", "nope", "0101"])
    assert result["error_code"].tolist()[1:] == ["unknown_category", "missing_coordinates"]
    assert result["target_id"].tolist()[0] == 1 and result["target_id"].isna().tolist()[1:] == [True, True]


def test_ruleset_validation_lists_all_problems():
    with pytest.raises(InputError) as err:
        RuleSet(
            version="",
            tolerance_m=-1,
            category_routes={"A": {"mode": "department"}, "B": {"mode": "teleport"}, "C": {"mode": "by_road_class"}},
        )
    text = str(err.value)
    for part in ("version", "tolerance_m", "'A'", "'B'", "'C'"):
        assert part in text
    rs = RuleSet.from_categories(
        pd.DataFrame(
            {
                "code": ["0101", "0501", "0301"],
                "department_id": [None, 9, None],
                "routing": ["{}", json.dumps({"mode": "department"}), ROUTES["0301"]],
            }
        ),
        version="db",
    )
    assert rs.category_routes["0501"]["department_id"] == 9
    assert rs.category_routes["0101"]["mode"] == "location"


def test_build_checks_layers():
    seg, cells, jur = _town()
    with pytest.raises(InputError, match="duplicate ids"):
        AssignmentIndex.build(pd.concat([seg, seg]), metric_epsg=METRIC, ruleset=RULESET)
    with pytest.raises(InputError, match="no CRS"):
        AssignmentIndex.build(seg.set_crs(None, allow_override=True), metric_epsg=METRIC, ruleset=RULESET)
    with pytest.raises(CRSError):
        AssignmentIndex.build(seg, metric_epsg=4326, ruleset=RULESET)
    auto = AssignmentIndex.build(seg, ruleset=RULESET)  # metric CRS chosen from the centre
    assert auto.metric_epsg == METRIC
    only_segments = AssignmentIndex.build(seg, metric_epsg=METRIC, ruleset=RULESET)
    assert only_segments.assign(*_xy([(100, 200)]))["rule"].tolist() == ["unassigned"]


# --- owners by date -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def owners():
    return OwnerHistory(
        pd.DataFrame(
            [
                # a handover in the middle of the year on segment 1
                {
                    "target_type": "segment",
                    "target_id": 1,
                    "role": "段长",
                    "person_id": 11,
                    "owner_name": "张三",
                    "valid_from": "2025-01-01",
                    "valid_to": "2026-07-01",
                },
                {
                    "target_type": "segment",
                    "target_id": 1,
                    "role": "段长",
                    "person_id": 12,
                    "owner_name": "李四",
                    "valid_from": "2026-07-01",
                    "valid_to": None,
                },
                {
                    "target_type": "segment",
                    "target_id": 1,
                    "role": "二级街长",
                    "person_id": 21,
                    "owner_name": "王五",
                    "valid_from": "2020-01-01",
                    "valid_to": None,
                },
                {
                    "target_type": "cell",
                    "target_id": 10,
                    "role": "段长",
                    "department_id": 5,
                    "owner_name": "环卫所",
                    "valid_from": "2024-01-01",
                    "valid_to": "2026-01-01",
                },
                # a forgotten open assignment overlapping a later closed one: the open one still answers after it
                {
                    "target_type": "segment",
                    "target_id": 2,
                    "role": "段长",
                    "person_id": 31,
                    "owner_name": "赵六",
                    "valid_from": "2026-01-01",
                    "valid_to": None,
                },
                {
                    "target_type": "segment",
                    "target_id": 2,
                    "role": "段长",
                    "person_id": 32,
                    "owner_name": "钱七",
                    "valid_from": "2026-03-01",
                    "valid_to": "2026-04-01",
                },
            ]
        ),
        department_names={7: "公路局"},
    )


def test_owner_history_handover(owners):
    days = ["2024-12-31", "2025-01-01", "2026-06-30", "2026-07-01", "2027-01-01"]
    found = owners.owners_on(["segment"] * 5, [1] * 5, pd.to_datetime(days))
    assert found["owner_name"].tolist() == [None, "张三", "张三", "李四", "李四"]
    assert found["person_id"].tolist()[1:] == [11, 11, 12, 12] and pd.isna(found["person_id"].iloc[0])
    assert found["valid_to"].iloc[2] == pd.Timestamp("2026-07-01")
    chiefs = owners.owners_on(["segment"], [1], ["2026-07-01"], role="二级街长")
    assert chiefs["owner_name"].tolist() == ["王五"]
    other = owners.owners_on(
        ["cell", "cell", "department", "segment", None, "segment", "segment", "segment"],
        [10, 10, 7, 99, 1, 2, 2, 2],
        [
            "2025-06-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-02-01",
            "2026-03-15",
            "2026-05-01",
        ],
    )
    assert other["owner_name"].tolist() == ["环卫所", None, "公路局", None, None, "赵六", "钱七", "赵六"]
    assert other["department_id"].tolist()[:1] == [5] and other["department_id"].iloc[2] == 7


def test_assign_frame_attaches_owner_of_the_report_date(index, owners):
    lon, lat = _lonlat([(50, 10), (50, 10), (150, 5)])
    frame = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "category": ["0101", "0101", "0301"],
            "date": ["2026-06-30", "2026-07-01", "2026-07-01"],
        }
    )
    result = assign_frame(index, frame, crs="EPSG:4326", owners=owners)
    assert result["owner_name"].tolist() == ["张三", "李四", "公路局"]
    assert result["owner_person_id"].tolist()[:2] == [11, 12]
    assert result["owner_department_id"].iloc[2] == 7


# --- files ----------------------------------------------------------------------------------
def _report_rows():
    points = [(50, 10), (150, -5), (50, 129), (100, 200), (800, 800), (5000, 5000), (150, 5)]
    lon, lat = _lonlat(points)
    rows = [
        {
            "编号": f"R{i}",
            "lon": f"{a:.8f}",
            "lat": f"{b:.8f}",
            "category": "0101",
            "date": "2026-03-01",
            "description": f"人民路{i}号, 门口",
        }
        for i, (a, b) in enumerate(zip(lon, lat))
    ]
    rows[-1]["category"] = "0301"
    rows.append(
        {"编号": "bad1", "lon": "", "lat": "", "category": "0101", "date": "2026-03-01", "description": "no place"}
    )
    rows.append(
        {
            "编号": "bad2",
            "lon": rows[0]["lat"],
            "lat": rows[0]["lon"],
            "category": "0101",
            "date": "2026-03-01",
            "description": "swapped",
        }
    )
    rows.append(
        {
            "编号": "bad3",
            "lon": rows[0]["lon"],
            "lat": rows[0]["lat"],
            "category": "X",
            "date": "someday",
            "description": "two problems",
        }
    )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_assign_file_csv_keeps_every_row_and_column(index, tmp_path, encoding):
    frame = _report_rows()
    src = tmp_path / "reports.csv"
    frame.to_csv(src, index=False, encoding=encoding)
    with src.open("a", encoding=encoding) as f:
        f.write("R-malformed,1,2,3,4,5,6,7\n\n")  # too many fields, then a blank line
    dst = tmp_path / "out.csv"
    summary = assign_file(index, src, dst, crs="EPSG:4326", chunk_rows=4, progress=False)
    assert isinstance(summary, AssignSummary)
    out = pd.read_csv(dst, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(out) == len(frame) + 1 == summary.rows
    assert list(out.columns) == list(frame.columns) + list(RESULT_COLUMNS)
    pd.testing.assert_frame_equal(out[list(frame.columns)].iloc[: len(frame)], frame.astype(str), check_dtype=False)
    assert out["target_id"].tolist()[:7] == ["1", "2", "3", "10", "200", "", "7"]
    assert out["rule"].tolist()[:7] == [
        "segment_area",
        "segment_area",
        "nearest_segment",
        "grid_cell",
        "jurisdiction_default",
        "unassigned",
        "category_route",
    ]
    assert out["error_code"].tolist()[7:] == [
        "missing_coordinates",
        "swapped_lonlat",
        "unknown_category",
        "malformed_row",
    ]
    assert "bad_date" not in summary.by_error  # the second problem of a row is in its message
    assert "cannot be read" in out["error_message"].iloc[9]
    assert summary.by_rule["segment_area"] == 2 and summary.by_error["malformed_row"] == 1
    assert sum(summary.by_rule.values()) + sum(summary.by_error.values()) == summary.rows
    assert "R-malformed" in out["error_message"].iloc[-1]


def test_assign_file_xlsx(index, tmp_path):
    frame = _report_rows()
    frame["lon"] = pd.to_numeric(frame["lon"], errors="coerce")
    frame["lat"] = pd.to_numeric(frame["lat"], errors="coerce")
    src = tmp_path / "reports.xlsx"
    frame.to_excel(src, index=False)
    summary = assign_file(index, src, tmp_path / "out.xlsx", crs="EPSG:4326", chunk_rows=3, progress=False)
    out = pd.read_excel(tmp_path / "out.xlsx")
    assert len(out) == len(frame) == summary.rows
    assert list(out.columns) == list(frame.columns) + list(RESULT_COLUMNS)
    assert out["target_id"].tolist()[:5] == [1, 2, 3, 10, 200]


def test_assign_file_reads_a_named_sheet_below_a_title_row(index, tmp_path):
    import openpyxl

    frame = _report_rows()
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.active.append(["工单在第二页"])
    sheet = book.create_sheet("工单")
    sheet.append(["2026年3月 热线工单"])  # a title merged across the columns
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(frame.columns))
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        sheet.append(list(row))
    src = tmp_path / "hotline.xlsx"
    book.save(src)
    summary = assign_file(index, src, tmp_path / "out.csv", crs="EPSG:4326", sheet="工单", progress=False)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert summary.rows == len(frame) and out["编号"].tolist() == frame["编号"].tolist()
    assert out["target_id"].tolist()[:5] == ["1", "2", "3", "10", "200"]
    with pytest.raises(InputError, match="its sheets are 说明, 工单: choose one with --sheet"):
        assign_file(index, src, tmp_path / "first.csv", crs="EPSG:4326", progress=False)


def test_assign_file_keeps_a_malformed_row_in_its_place(index, tmp_path):
    frame = _report_rows()
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(3, "R-long,1,2,3,4,5,6,7")  # data row 3: too many fields
    src = tmp_path / "r.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = assign_file(index, src, tmp_path / "out.csv", crs="EPSG:4326", chunk_rows=4, progress=False)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert summary.rows == len(out) == len(frame) + 1
    assert out["编号"].tolist() == [*frame["编号"][:2], "", *frame["编号"][2:]]
    assert out["error_code"].iloc[2] == "malformed_row"
    assert out["error_message"].iloc[2].startswith("row 3 has 8 fields") and "R-long" in out["error_message"].iloc[2]


def test_assign_file_geojson_keeps_every_row_and_column(index, tmp_path):
    frame = _report_rows()
    points = [shapely.Point(float(a), float(b)) if a else None for a, b in zip(frame["lon"], frame["lat"])]
    gdf = gpd.GeoDataFrame(
        frame.drop(columns=["lon", "lat"]).assign(count=np.arange(len(frame))), geometry=points, crs=4326
    )
    gdf.loc[gdf.index[-1], "geometry"] = LineString([(114.2, 22.7), (114.21, 22.71)])
    src = tmp_path / "reports.geojson"
    pyogrio.write_dataframe(gdf, src)
    dst = tmp_path / "out.geojson"
    summary = assign_file(index, src, dst, chunk_rows=4, progress=False)
    out = pyogrio.read_dataframe(dst)
    assert len(out) == len(gdf) == summary.rows
    assert list(out.columns) == list(gdf.columns.drop("geometry")) + list(RESULT_COLUMNS) + ["geometry"]
    assert out["count"].tolist() == list(range(len(gdf)))
    assert out["description"].tolist() == gdf["description"].tolist()
    assert out["target_id"].tolist()[:5] == [1, 2, 3, 10, 200]
    assert out["error_code"].tolist()[7:] == ["missing_coordinates", "swapped_lonlat", "not_a_point"]
    as_csv = tmp_path / "out.csv"
    assign_file(index, src, as_csv, progress=False)
    table = pd.read_csv(as_csv, encoding="utf-8-sig")
    assert len(table) == len(gdf) and "wkt" in table.columns
    with pytest.raises(CRSError):
        assign_file(index, src, tmp_path / "x.csv", crs=METRIC, progress=False)


def test_assign_file_gpkg(index, tmp_path):
    lon, lat = _lonlat([(50, 10), (150, -5)])
    gdf = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    src = tmp_path / "reports.gpkg"
    pyogrio.write_dataframe(gdf, src, layer="reports")
    summary = assign_file(index, src, tmp_path / "out.gpkg", progress=False)
    out = pyogrio.read_dataframe(tmp_path / "out.gpkg")
    assert out["target_id"].tolist() == [1, 2] and summary.rows == 2


def test_assign_file_needs_a_crs_for_tables(index, tmp_path):
    src = tmp_path / "r.csv"
    _report_rows().to_csv(src, index=False)
    with pytest.raises(CRSError, match="no CRS given"):
        assign_file(index, src, tmp_path / "o.csv", progress=False)
    with pytest.raises(InputError):
        assign_file(index, src, tmp_path / "o.geojson", crs=4326, progress=False)
    assert not (tmp_path / "o.csv").exists()


def test_threaded_queries_give_the_same_answers():
    seg, cells, jur = _town()
    one = AssignmentIndex.build(seg, cells, jur, metric_epsg=METRIC, ruleset=RULESET, threads=1)
    two = AssignmentIndex.build(seg, cells, jur, metric_epsg=METRIC, ruleset=RULESET, threads=3)
    rng = np.random.default_rng(3)
    x, y = _xy(np.column_stack([rng.uniform(-200, 2500, 90_000), rng.uniform(-200, 2500, 90_000)]))
    cats = rng.choice(["0101", "0301", "0501", ""], size=len(x))
    pd.testing.assert_frame_equal(one.assign(x, y, categories=cats), two.assign(x, y, categories=cats))
    assert set(two.assign(x, y)["rule"].dropna()) == set(RULES) - {"category_route", "address_street"}


# --- a deployment across Gauss–Krüger zones ------------------------------------------------
def _zone_town(town_id: int, segment_id: int, outline, street) -> AssignmentIndex:
    """One town as the database loads it: its jurisdiction, one street segment, in its own zone."""
    from gisgrid.crs import metric_crs_for

    jurisdictions = gpd.GeoDataFrame({"id": [town_id], "level": ["town"]}, geometry=[outline], crs=4326)
    area = shapely.buffer(street, 0.0005, cap_style="flat")
    segments = gpd.GeoDataFrame(
        {"id": [segment_id], "road_class": ["residential"], "area": [area]}, geometry=[street], crs=4326
    )
    centre = outline.centroid
    return AssignmentIndex.build(
        segments, None, jurisdictions, ruleset=RULESET, metric_epsg=metric_crs_for(centre.x, centre.y)
    )


def test_neighbouring_towns_in_two_zones_route_by_polygon_not_by_box():
    """Town A (mostly west of the 115.5°E zone border, GK CM 114E) has an arm running east above town B
    (GK CM 117E), so A's box holds all of B.  A point of B is routed by B's index, not A's."""

    town_a = shapely.union(box(115.40, 22.60, 115.50, 22.70), box(115.50, 22.68, 115.60, 22.70))
    town_b = box(115.50, 22.60, 115.60, 22.68)
    a = _zone_town(1, 11, town_a, LineString([(115.42, 22.65), (115.48, 22.65)]))
    b = _zone_town(2, 22, town_b, LineString([(115.52, 22.63), (115.58, 22.63)]))
    assert a.metric_epsg != b.metric_epsg
    index = PartitionedIndex([(tuple(town_a.bounds), a), (tuple(town_b.bounds), b)])
    assert shapely.box(*index.parts[0][0]).contains(town_b)  # A's box holds B entirely

    points = pd.DataFrame(
        {
            "lon": [115.55, 115.53, 115.45, 115.55, 115.45, 115.70],
            "lat": [22.63, 22.66, 22.65, 22.69, 22.62, 22.65],
        }
    )
    out = assign_frame(index, points, crs="EPSG:4326")
    routed = [
        (None if pd.isna(t) else t, None if pd.isna(i) else int(i), r)
        for t, i, r in zip(out["target_type"], out["target_id"], out["rule"])
    ]
    assert routed == [
        ("segment", 22, "segment_area"),  # on B's street
        ("jurisdiction", 2, "jurisdiction_default"),  # in B, off its street
        ("segment", 11, "segment_area"),  # on A's street
        ("jurisdiction", 1, "jurisdiction_default"),  # in A's arm, above B
        ("jurisdiction", 1, "jurisdiction_default"),  # in A
        (None, None, "unassigned"),  # in neither town
    ]
    assert index.route_point(115.53, 22.66)["target_id"] == 2  # the single-request path agrees
    assert index.route_point(115.55, 22.63)["target_id"] == 22
