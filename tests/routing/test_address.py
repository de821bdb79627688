"""The address-street rule: a report located from a written address reaches a segment of the street it names.

A synthetic crossing, drawn in EPSG:4547 metres (exact, no reprojection):

* Kalevankatu (residential) runs along y = 0: segment 11 for x in [-200, 0],
  segment 12 for x in [0, 200]; frontage areas 30 m deep each side, stopping
  30 m short of the crossing;
* Annankatu (secondary) runs along x = 0: segment 21 for y in [-200, 0],
  segment 22 for y in [0, 200]; its areas take the whole corner square
  [-30, 30]², as a Voronoi split of a wider road does;
* Bulevardi runs along y = 500, far from both.

The point (10, 12) lies in Annankatu's area (segment 22), 12 m from
Kalevankatu's centerline: a corner address of Kalevankatu placed there.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, box

from gisgrid.config import DATA_DIR
from gisgrid.errors import InputError
from gisgrid.routing.address import StreetNames, road_class_rank, street_name_key
from gisgrid.routing.files import assign_file
from gisgrid.routing.frames import assign_frame
from gisgrid.routing.index import AssignmentIndex
from gisgrid.routing.rules import RuleSet

METRIC = 4547
X0, Y0 = 520500.0, 2511300.0
ROUTES = {
    "0101": {},
    "0301": {"mode": "by_road_class", "road_classes": {"secondary": 7}},
    "0501": {"mode": "department", "department_id": 9},
}
CORNER = (10.0, 12.0)


def _crossing(ruleset: RuleSet) -> AssignmentIndex:
    rows = [
        (11, "Kalevankatu", "residential", LineString([(-200, 0), (0, 0)]), box(-200, -30, -30, 30)),
        (12, "Kalevankatu", "residential", LineString([(0, 0), (200, 0)]), box(30, -30, 200, 30)),
        (21, "Annankatu", "secondary", LineString([(0, -200), (0, 0)]), box(-30, -200, 30, 0)),
        (22, "Annankatu", "secondary", LineString([(0, 0), (0, 200)]), box(-30, 0, 30, 200)),
        (31, "Bulevardi", "residential", LineString([(-200, 500), (200, 500)]), box(-200, 470, 200, 530)),
    ]
    move = lambda g: shapely.affinity.translate(g, X0, Y0)  # noqa: E731
    segments = gpd.GeoDataFrame(
        {
            "id": [r[0] for r in rows],
            "street": [r[1] for r in rows],
            "road_class": [r[2] for r in rows],
            "area": gpd.GeoSeries([move(r[4]) for r in rows], crs=METRIC),
        },
        geometry=[move(r[3]) for r in rows],
        crs=METRIC,
    )
    return AssignmentIndex.build(segments, metric_epsg=METRIC, ruleset=ruleset)


@pytest.fixture(scope="module")
def index() -> AssignmentIndex:
    return _crossing(RuleSet(version="t", category_routes=ROUTES, address_tolerance_m=100.0))


def _at(points) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    return pts[:, 0] + X0, pts[:, 1] + Y0


def test_a_corner_address_goes_to_the_street_it_names(index):
    """Inside the cross street's frontage area, the written street still wins: its nearest segment."""
    r = index.assign(*_at([CORNER]), address_streets=["Kalevankatu"]).iloc[0]
    assert (r["rule"], r["target_type"], r["target_id"], r["segment_id"]) == ("address_street", "segment", 12, 12)
    assert (
        r["distance_m"] == pytest.approx(12.0)
        and r["reason"] == "address street Kalevankatu: the written address names it"
    )


def test_a_gps_point_at_the_same_place_goes_to_the_area_that_holds_it(index):
    by_point = index.assign(*_at([CORNER])).iloc[0]
    blank = index.assign(*_at([CORNER]), address_streets=[None]).iloc[0]
    for r in (by_point, blank):
        assert (r["rule"], r["target_id"], r["distance_m"]) == ("segment_area", 22, 0.0)


@pytest.mark.parametrize("written", ["KALEVANKATU", " Kalevan katu ", "kalevankatu."])
def test_a_street_name_is_matched_whatever_its_case_spaces_or_punctuation(index, written):
    assert index.assign(*_at([CORNER]), address_streets=[written])["target_id"].iloc[0] == 12


@pytest.mark.parametrize("written", ["Bulevardi", "Nowhere street"])
def test_a_street_far_away_or_unknown_leaves_the_point_to_the_other_rules(index, written):
    """Bulevardi lies 488 m away, beyond the tolerance (100 m here): the area holding the point answers."""
    r = index.assign(*_at([CORNER]), address_streets=[written]).iloc[0]
    assert (r["rule"], r["target_id"]) == ("segment_area", 22)


def test_the_tolerance_is_the_rule_sets(index):
    near = _crossing(RuleSet(version="t", address_tolerance_m=12.0))
    tight = _crossing(RuleSet(version="t", address_tolerance_m=11.9))
    assert near.assign(*_at([CORNER]), address_streets=["Kalevankatu"])["rule"].iloc[0] == "address_street"
    assert tight.assign(*_at([CORNER]), address_streets=["Kalevankatu"])["rule"].iloc[0] == "segment_area"


@pytest.mark.parametrize(
    "rule, first, second, segment",
    [
        ("first_written", "Kalevankatu", "Annankatu", 11),  # both Kalevankatu segments meet there: lower id
        ("first_written", "Annankatu", "Kalevankatu", 21),
        ("road_class", "Kalevankatu", "Annankatu", 21),  # secondary over residential, whatever the order
        ("road_class", "Annankatu", "Kalevankatu", 21),
    ],
)
def test_a_crossing_goes_to_one_of_its_streets_by_the_deployments_rule(rule, first, second, segment):
    index = _crossing(RuleSet(version="t", intersection_rule=rule))
    r = index.assign(*_at([(0.0, 0.0)]), address_streets=[first], cross_streets=[second]).iloc[0]
    assert (r["rule"], r["target_id"]) == ("address_street", segment)
    words = "the street written first" if rule == "first_written" else "the street of the higher road class"
    assert (
        r["reason"]
        == f"address street {'Kalevankatu' if segment < 20 else 'Annankatu'}: {words} of the crossing the address names"
    )


def test_a_long_road_of_many_segments_finds_its_nearest_one():
    """A road cut into more segments than are paired point by point is searched through the line tree:
    the same answer, the nearest segment of the road."""
    n = 100
    segments = gpd.GeoDataFrame(
        {
            "id": np.arange(1, n + 1),
            "street": ["龙岗大道"] * (n - 1) + ["横街"],
            "road_class": "primary",
        },
        geometry=[LineString([(X0 + 10 * k, Y0), (X0 + 10 * k + 10, Y0)]) for k in range(n - 1)]
        + [LineString([(X0 + 455, Y0 - 100), (X0 + 455, Y0 + 100)])],
        crs=METRIC,
    )
    index = AssignmentIndex.build(segments, metric_epsg=METRIC, ruleset=RuleSet(version="t"))
    x, y = _at([(453.0, 20.0), (457.0, 20.0), (5.0, -3.0)])
    r = index.assign(x, y, address_streets=["龙岗大道", "龙岗大道", "龙岗大道"])
    assert list(r["rule"]) == ["address_street"] * 3 and list(r["target_id"]) == [46, 46, 1]
    cross = index.assign(x[:1], y[:1], address_streets=["横街"], cross_streets=["龙岗大道"])
    assert cross["target_id"].iloc[0] == n


def test_a_crossing_whose_first_street_is_far_goes_to_the_second():
    index = _crossing(RuleSet(version="t", address_tolerance_m=100.0))
    r = index.assign(*_at([(5, 150)]), address_streets=["Kalevankatu"], cross_streets=["Annankatu"]).iloc[0]
    assert (r["rule"], r["target_id"]) == ("address_street", 22)


def test_a_category_department_still_wins_and_road_classes_follow_the_address_street(index):
    """0501 always goes to department 9; 0301 goes to department 7 on a secondary road only: by the point
    the corner is Annankatu (secondary), by the written street Kalevankatu (residential)."""
    x, y = _at([CORNER, CORNER, CORNER])
    r = index.assign(x, y, categories=["0501", "0301", "0301"], address_streets=["Kalevankatu", "Kalevankatu", None])
    assert list(r["rule"]) == ["category_route", "address_street", "category_route"]
    assert list(r["target_id"]) == [9, 12, 7]
    assert list(r["segment_id"]) == [12, 12, 22]


def test_assign_frame_and_file_take_a_written_street_column(index, tmp_path):
    lon_lat = gpd.GeoSeries(gpd.points_from_xy(*_at([CORNER] * 3)), crs=METRIC).to_crs(4326)
    frame = pd.DataFrame(
        {"lon": lon_lat.x, "lat": lon_lat.y, "街道": ["Kalevankatu", "", "Annankatu"], "路口": ["", "", "Kalevankatu"]}
    )
    out = assign_frame(index, frame, crs=4326, address_street="街道", cross_street="路口")
    assert list(out["target_id"]) == [12, 22, 22] and list(out["rule"]) == [
        "address_street",
        "segment_area",
        "address_street",
    ]
    assert list(out.columns[:4]) == ["lon", "lat", "街道", "路口"]
    with pytest.raises(InputError, match="address street column 'street' not found; columns are: lon, lat, 街道, 路口"):
        assign_frame(index, frame, crs=4326, address_street="street")
    with pytest.raises(InputError, match="needs an address-street column"):
        assign_frame(index, frame, crs=4326, cross_street="路口")
    src = tmp_path / "reports.csv"
    frame.to_csv(src, index=False)
    summary = assign_file(index, src, tmp_path / "out.csv", crs=4326, address_street="街道", progress=False)
    assert summary.by_rule == {"address_street": 2, "segment_area": 1}
    written = pd.read_csv(tmp_path / "out.csv", encoding="utf-8-sig")
    assert list(written["target_id"]) == [12, 22, 22]
    assert written.loc[0, "reason"] == "address street Kalevankatu: the written address names it"


def test_route_point_takes_a_written_street(index):
    lon, lat = gpd.GeoSeries(gpd.points_from_xy(*_at([CORNER])), crs=METRIC).to_crs(4326).iloc[0].coords[0]
    assert index.route_point(lon, lat)["target_id"] == 22
    found = index.route_point(lon, lat, address_street="Kalevankatu")
    assert (found["rule"], found["target_id"], found["distance_m"]) == ("address_street", 12, 12.0)


def test_rule_set_checks_the_address_settings():
    with pytest.raises(
        InputError,
        match="address_tolerance_m must be a finite number >= 0.*intersection_rule must be one of first_written, road_class",
    ):
        RuleSet(version="t", address_tolerance_m=-1, intersection_rule="longest")
    assert RuleSet(version="t").address_tolerance_m == 150.0


def test_names_keys_and_ranks():
    assert street_name_key("Kalevan Katu") == street_name_key("KALEVANKATU") == "kalevankatu"
    assert street_name_key(None) == street_name_key(float("nan")) == ""
    names = StreetNames(["人民路", None, "人民路", "Annankatu"])
    assert list(names.segment_street) == [0, -1, 0, 1] and names.names == ["人民路", "Annankatu"]
    assert list(names.encode(["人民路", "", None, "annankatu", "北京路"])) == [0, -1, -1, 1, -1]
    assert road_class_rank("primary") < road_class_rank("primary_link") + 1 < road_class_rank("residential") + 1
    assert road_class_rank("primary_link") == road_class_rank("primary") and road_class_rank("track") > road_class_rank(
        "steps"
    )


# --- on the sample data -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def helsinki():
    """Helsinki's segments and frontage areas (as ``gisgrid segments build`` makes them) in an index that
    knows their street names; the gazetteer holds every dev door plate except Kalevankatu 13, the
    address that comes in (leave-one-out, as in bench/geocode.py)."""
    from gisgrid.geocode.gazetteer import Gazetteer, addresses_frame
    from gisgrid.network.segments import build_segments

    streets = gpd.read_file(DATA_DIR / "helsinki_streets.geojson")
    ways = streets.rename(columns={"highway": "road_class"})[["name", "road_class", "geometry"]]
    segments = build_segments(ways)
    segments["id"] = np.arange(1, len(segments) + 1)
    index = AssignmentIndex.build(
        segments[["id", "road_class", "street_name", "area", "geometry"]], ruleset=RuleSet(version="t")
    )
    table = pd.read_csv(DATA_DIR / "helsinki_addresses_dev.csv", dtype=str)
    unseen = (table["street"] == "Kalevankatu") & (table["housenumber"] == "13")
    gazetteer = Gazetteer.build(streets, addresses_frame(table[~unseen]))
    return index, segments, gazetteer, table[unseen].iloc[0]


def test_a_corner_address_of_the_sample_data_reaches_its_own_streets_segment(helsinki):
    """Kalevankatu 13 is interpolated near its corner with Annankatu, inside Annankatu's frontage area (the
    issue's 'Kalevankatu 14 went to Annankatu'): the report goes to the Kalevankatu segment nearest the true
    door plate, while a GPS point at the same place goes to the Annankatu segment whose area holds it."""
    from gisgrid.crs import transformer
    from gisgrid.geocode.match import geocode

    index, segments, gazetteer, truth = helsinki
    found = geocode("Kalevankatu 13", gazetteer)
    assert found.quality == "interpolated" and found.matched_name == "Kalevankatu"
    to_metric = transformer(4326, index.metric_epsg)
    x, y = to_metric.transform([found.lon, float(truth["lon"])], [found.lat, float(truth["lat"])])
    name = segments.set_index("id")["name"]
    by_point = index.assign(x[:1], y[:1]).iloc[0]
    assert by_point["rule"] == "segment_area" and name[by_point["target_id"]].startswith("Annankatu")
    by_address = index.assign(x[:1], y[:1], address_streets=["Kalevankatu"]).iloc[0]
    assert by_address["rule"] == "address_street" and name[by_address["target_id"]].startswith("Kalevankatu")
    own = segments[segments["street_name"] == "Kalevankatu"]
    lines = own.geometry.to_crs(index.metric_epsg).to_numpy()
    nearest_to_truth = own["id"].to_numpy()[np.argmin(shapely.distance(shapely.points(x[1], y[1]), lines))]
    assert by_address["target_id"] == nearest_to_truth
