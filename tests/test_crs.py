"""CRS parsing, GCJ-02 / BD-09 conversion against published pairs, and the metric CRS choice."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from gisgrid import crs
from gisgrid.errors import CRSError

GEOD = Geod(ellps="WGS84")

# (wgs lat, wgs lon, gcj lat, gcj lon): the test vectors of the eviltransform project
GCJ_PAIRS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# (gcj lon, gcj lat, bd lon, bd lat, wgs lon, wgs lat): the test vectors of the gcoord project
GCOORD = [(123.0, 45.0, 123.00636499, 45.00636899, 122.99395597, 44.99804071)]


def _metres(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize("wlat,wlon,glat,glon", GCJ_PAIRS)
def test_wgs84_to_gcj02_matches_published_pairs(wlat, wlon, glat, glon):
    lon, lat = crs.wgs84_to_gcj02(wlon, wlat)
    assert _metres(float(lon), float(lat), glon, glat) < 0.5


@pytest.mark.parametrize("wlat,wlon,glat,glon", GCJ_PAIRS)
def test_gcj02_inverse_is_within_half_a_metre(wlat, wlon, glat, glon):
    lon, lat = crs.to_storage([glon], [glat], "gcj02")
    assert _metres(lon[0], lat[0], wlon, wlat) < 0.5


@pytest.mark.parametrize("glon,glat,blon,blat,wlon,wlat", GCOORD)
def test_bd09_matches_published_pairs(glon, glat, blon, blat, wlon, wlat):
    lon, lat = crs.gcj02_to_bd09(glon, glat)
    assert _metres(float(lon), float(lat), blon, blat) < 0.5
    lon, lat = crs.to_storage([blon], [blat], "BD-09")
    assert _metres(lon[0], lat[0], wlon, wlat) < 0.5
    lon, lat = crs.to_storage([glon], [glat], "gcj02")
    assert _metres(lon[0], lat[0], wlon, wlat) < 0.5


def test_round_trip_over_a_town_is_sub_centimetre():
    rng = np.random.default_rng(1)
    lon = rng.uniform(114.17, 114.27, 1000)
    lat = rng.uniform(22.65, 22.73, 1000)
    for name in ("gcj02", "bd09"):
        x, y = crs.from_storage(lon, lat, name)
        back_lon, back_lat = crs.to_storage(x, y, name)
        err = GEOD.inv(lon, lat, back_lon, back_lat)[2]
        assert err.max() < 0.01, name
        # and the shift itself is real: hundreds of metres
        assert GEOD.inv(lon, lat, x, y)[2].min() > 100


def test_gcj02_is_identity_outside_china():
    lon, lat = crs.to_storage([24.94], [60.17], "gcj02")
    assert (lon[0], lat[0]) == (24.94, 60.17)


@pytest.mark.parametrize(
    "value,kind,epsg",
    [
        ("EPSG:4326", "geographic", 4326),
        ("4490", "geographic", 4490),
        (4547, "projected", 4547),
        ("gcj02", "gcj02", None),
        ("GCJ-02", "gcj02", None),
        ("bd09", "bd09", None),
        ("EPSG:32650", "projected", 32650),
    ],
)
def test_parse_crs(value, kind, epsg):
    parsed = crs.parse_crs(value)
    assert (parsed.kind, parsed.epsg) == (kind, epsg)


@pytest.mark.parametrize("bad", ["", None, "EPSG:99999999", "wgs-85"])
def test_unknown_crs_is_a_clear_error(bad):
    with pytest.raises(CRSError, match="CRS"):
        crs.parse_crs(bad)


def test_projected_input_converts_to_lonlat():
    # CGCS2000 / 3-degree GK CM 114E: the Shenzhen sample
    x, y = crs.from_storage([114.2041224], [22.691965], 4547)
    lon, lat = crs.to_storage(x, y, "EPSG:4547")
    assert _metres(lon[0], lat[0], 114.2041224, 22.691965) < 0.01


def test_metric_crs_is_gauss_kruger_in_china_and_utm_elsewhere():
    assert crs.metric_crs_for(114.2, 22.7) == 4547  # CGCS2000 3° GK CM 114E
    assert crs.metric_crs_for(116.35, 40.0) == 4548  # CM 117E
    assert crs.metric_crs_for(24.94, 60.17) == 32635  # UTM 35N
    assert crs.resolve_metric_crs("auto", 24.94, 60.17) == 32635
    assert crs.resolve_metric_crs("EPSG:3067", 24.94, 60.17) == 3067
    with pytest.raises(CRSError):
        crs.resolve_metric_crs("EPSG:4326", 24.94, 60.17)
