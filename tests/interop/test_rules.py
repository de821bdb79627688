"""The pure rules of the interfaces: Open311's parameters and XML, OGC API's parameters and axis order."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from gisgrid.interop import features, open311
from gisgrid.interop.features import CRS84, FeaturesError
from gisgrid.interop.open311 import Open311Error

NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.timezone.utc)
SUPPORTED = features.supported_crs([4547])


def test_open311_default_window_and_overrides():
    f = open311.parse_request_filters({}, now=NOW)
    assert f.start == NOW - dt.timedelta(days=90) and f.end is None and f.page_size == 1000
    only_end = open311.parse_request_filters({"end_date": "2026-01-31T00:00:00Z"}, now=NOW)
    assert only_end.start == dt.datetime(2025, 11, 2, tzinfo=dt.timezone.utc)
    ids = open311.parse_request_filters({"service_request_id": "5, 7", "status": "bogus"}, now=NOW)
    assert ids.ids == (5, 7)  # the ids override every other filter, as the specification says
    assert open311.parse_request_filters({"end_date": "0001-01-01"}, now=NOW).start is not None
    for bad in ({"status": "pending"}, {"page": "0"}, {"page_size": "1001"}, {"start_date": "x"},
                {"start_date": "2026-02-01", "end_date": "2026-01-01"}, {"service_request_id": "1;drop"}):  # fmt: skip
        with pytest.raises(Open311Error) as err:
            open311.parse_request_filters(bad, now=NOW)
        assert err.value.status == 400


def test_open311_attributes():
    definitions = [
        {"code": "kind", "datatype": "multivaluelist", "required": True, "values": [{"key": "a", "name": "A"},
                                                                                   {"key": "b", "name": "B"}]},
        {"code": "n", "datatype": "number"},
        {"code": "when", "datatype": "datetime"},
    ]  # fmt: skip
    assert open311.check_attributes(definitions, {"kind": ["a", "b"], "n": ["2.5"]}) == {"kind": ["a", "b"], "n": 2.5}
    with pytest.raises(Open311Error) as err:
        open311.check_attributes(definitions, {"n": ["many"], "colour": ["red"], "when": ["soon"]})
    text = err.value.description
    assert all(w in text for w in ("attribute[kind] is required", "attribute[n] must be a number", "'colour'", "when"))
    form = {"attribute[kind][]": ["a", "b"], "attribute[n]": ["1"], "attributes": ["x"]}
    assert open311.attributes_of(form) == {"kind": ["a", "b"], "n": ["1"]}


def test_open311_xml():
    body = open311.to_xml("service_requests", "request", [{"service_request_id": "1", "lat": 22.5, "note": None}])
    root = ET.fromstring(body)
    assert root.tag == "service_requests" and root.find("request/service_request_id").text == "1"
    assert root.find("request/note").text is None
    assert open311.iso(dt.datetime(2026, 1, 1, 8, tzinfo=dt.timezone.utc), dt.timezone(dt.timedelta(hours=8))) == (
        "2026-01-01T16:00:00+08:00"
    )


def test_ogc_crs_and_axis_order():
    assert SUPPORTED[:3] == [
        CRS84,
        "http://www.opengis.net/def/crs/EPSG/0/4326",
        "http://www.opengis.net/def/crs/EPSG/0/4490",
    ]
    assert features.parse_crs("EPSG:4490", SUPPORTED) == 4490
    assert features.parse_crs(CRS84, SUPPORTED) is None
    assert features.axes_swapped(4326) and features.axes_swapped(4490) and not features.axes_swapped(None)
    assert not features.axes_swapped(32650)  # UTM: easting first
    with pytest.raises(FeaturesError):
        features.parse_crs("http://www.opengis.net/def/crs/EPSG/0/3857", SUPPORTED)
    segments = features.COLLECTIONS["segments"]
    q = features.parse_items_query(
        {"bbox": "22.5,114.1,22.6,114.2", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}, segments, SUPPORTED
    )
    assert q.bbox_lonlat_order() == (114.1, 22.5, 114.2, 22.6)
    with pytest.raises(FeaturesError):  # a lon/lat box sent as EPSG:4326 has its latitude out of range
        features.parse_items_query(
            {"bbox": "114.1,22.5,114.2,22.6", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
            segments,
            SUPPORTED,
        )


def test_ogc_items_parameters():
    segments = features.COLLECTIONS["segments"]
    q = features.parse_items_query({}, segments, SUPPORTED)
    assert (q.limit, q.offset, q.bbox, q.crs, q.day) == (10, 0, None, None, None)
    assert features.parse_items_query({"limit": "99999"}, segments, SUPPORTED).limit == 10_000
    day = features.parse_items_query({"datetime": "2026-03-01"}, segments, SUPPORTED)
    assert day.start == dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc) and day.day == dt.date(2026, 3, 1)
    interval = features.parse_items_query({"datetime": "../2026-03-01"}, segments, SUPPORTED)
    assert interval.start is None and interval.end.date() == dt.date(2026, 3, 1)
    assert features.parse_items_query({"datetime": "9999-12-31"}, segments, SUPPORTED).day == dt.date(9999, 12, 31)
    assert features.parse_items_query({"road_class": "primary"}, segments, SUPPORTED).properties == {
        "road_class": "primary"
    }
    for bad in ({"colour": "red"}, {"limit": "0"}, {"offset": "-1"}, {"bbox": "1,2,3"}, {"bbox": "0,91,1,92"},
                {"bbox-crs": CRS84}, {"datetime": "../.."}, {"datetime": "2026-02-01/2026-01-01"},
                {"street_id": "x"}, {"length_m": "long"}):  # fmt: skip
        with pytest.raises(FeaturesError) as err:
            features.parse_items_query(bad, segments, SUPPORTED)
        assert err.value.status == 400, bad
    links = features.page_links("http://h/items", {"limit": "10"}, features.ItemsQuery(limit=10, offset=10), 10, 25)
    assert links["next"].endswith("offset=20") and links["prev"].endswith("offset=0")
    assert features.page_links("http://h/items", {}, features.ItemsQuery(limit=10, offset=20), 5, 25)["next"] is None
