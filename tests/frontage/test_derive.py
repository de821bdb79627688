"""Frontages derived on the sample towns: each inside its segment's area, in front of its unit, none overlapping."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from gisgrid import crs as crsmod
from gisgrid.errors import InputError
from gisgrid.frontage.derive import derive_frontages, overlapping_pairs


def _frame(conn, sql):
    frame = pd.read_sql_query(sa.text(sql), conn)
    for col in [c for c in frame.columns if c.endswith("_wkb")]:
        frame[col[:-4]] = shapely.from_wkb([bytes(v) if v is not None else None for v in frame.pop(col)])
    return frame


@pytest.fixture(scope="module")
def frontages(engine, town):
    with engine.connect() as conn:
        return _frame(
            conn,
            """SELECT u.id, u.segment_id, j.metric_epsg AS epsg, ST_AsBinary(u.frontage) AS frontage_wkb,
                      ST_AsBinary(g.area) AS area_wkb, ST_AsBinary(u.location) AS location_wkb,
                      ST_AsBinary(g.geom) AS line_wkb
               FROM frontage_unit u JOIN segment g ON g.id = u.segment_id JOIN street s ON s.id = g.street_id
               JOIN jurisdiction j ON j.id = s.jurisdiction_id""",
        )


def test_every_demo_unit_has_a_frontage(frontages, town):
    assert town["frontage_unit"] >= 100  # 40 a town where shopping streets allow
    assert len(frontages) == town["frontage_unit"]
    assert frontages["frontage"].map(lambda g: g is not None and not g.is_empty).all()


def test_frontages_lie_within_their_segment_area(frontages):
    for epsg, part in frontages.groupby("epsg"):
        f = gpd.GeoSeries(part["frontage"].to_numpy(), crs=crsmod.STORAGE_SRID).to_crs(epsg)
        a = gpd.GeoSeries(part["area"].to_numpy(), crs=crsmod.STORAGE_SRID).to_crs(epsg)
        outside = f.difference(a).area.to_numpy()
        assert outside.max() < 0.01, f"up to {outside.max():.3f} m² of a frontage outside its segment area"
        assert f.area.min() > 20  # a shop front of 18 m, a few metres deep: tens of m² at least


def test_no_two_frontages_overlap(frontages):
    for epsg, part in frontages.groupby("epsg"):
        f = gpd.GeoSeries(part["frontage"].to_numpy(), crs=crsmod.STORAGE_SRID).to_crs(epsg)
        pairs = overlapping_pairs(f, part["id"].to_numpy(), min_m2=0.01)
        assert pairs.empty, pairs.head()


def test_each_frontage_faces_its_unit(frontages):
    """The frontage is on the unit's side of the street: nearer the unit than the opposite side's mirror."""
    for epsg, part in frontages.groupby("epsg"):
        f = gpd.GeoSeries(part["frontage"].to_numpy(), crs=crsmod.STORAGE_SRID).to_crs(epsg)
        u = gpd.GeoSeries(part["location"].to_numpy(), crs=crsmod.STORAGE_SRID).to_crs(epsg)
        assert (f.distance(u) < 10).all()  # the shop stands right behind its pavement


def test_a_footprint_gets_its_width_and_neighbours_share_an_overlap():
    line = shapely.LineString([(0, 0), (200, 0)])
    area = shapely.MultiPolygon([line.buffer(30, cap_style="flat")])
    segments = gpd.GeoDataFrame(
        {"road_class": ["tertiary"], "area": [area]}, geometry=gpd.GeoSeries([line], crs=32650, index=[7]), index=[7]
    )
    units = gpd.GeoDataFrame(
        {"id": [1, 2, 3], "segment_id": [7, 7, 7]},
        geometry=gpd.GeoSeries(
            [shapely.box(20, 15, 50, 35), shapely.Point(55, 20), shapely.Point(100, -20)], crs=32650
        ),
    )
    out = derive_frontages(units, segments, point_width_m=12, road_half_widths_m={"tertiary": 5})
    first, second, third = out.geometry
    assert out["from_m"][0] == pytest.approx(20) and out["side"][0] == 1
    assert first.bounds[0] == pytest.approx(20) and first.bounds[1] == pytest.approx(5)  # off the carriageway
    assert first.bounds[3] == pytest.approx(15)  # up to the building face: the footprint is not frontage
    assert out["side"][2] == -1 and third.bounds[3] == pytest.approx(-5)
    assert first.intersection(second).area == pytest.approx(0, abs=1e-6)
    assert out["to_m"][0] == pytest.approx(out["from_m"][1])  # 49..50 shared at its middle


def test_degrees_are_refused():
    seg = gpd.GeoDataFrame(
        {"road_class": ["x"], "area": [None]}, geometry=gpd.GeoSeries([shapely.LineString([(0, 0), (1, 1)])], crs=4326)
    )
    units = gpd.GeoDataFrame({"id": [1], "segment_id": [0]}, geometry=gpd.GeoSeries([shapely.Point(0, 0)], crs=4326))
    with pytest.raises(InputError, match="metric CRS"):
        derive_frontages(units, seg)
