"""Property tests of the one point rule (gisgrid.io.points): every row is either a storage point or a problem."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gisgrid.io.points import POINT_ERRORS, PointError, check_point, check_points, parse_coordinates
from gisgrid.io.rows import RowProblems

SHATIN = (114.15, 22.35, 114.25, 22.42)
CRSES = ["EPSG:4326", "EPSG:4490", "gcj02", "bd09", "EPSG:4547", "EPSG:3857"]

anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-200, 200),
    st.floats(-1e7, 1e7),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(anything, anything), max_size=30), st.sampled_from(CRSES), st.booleans())
def test_every_row_is_a_point_in_range_or_a_problem_with_a_reason(pairs, crs, with_areas):
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    lon, lat, problems = check_points(x, y, crs, areas=SHATIN if with_areas else None)
    ok = problems.ok
    assert len(lon) == len(lat) == problems.n == len(pairs)
    assert np.isfinite(lon[ok]).all() and np.isfinite(lat[ok]).all()
    assert (np.abs(lon[ok]) <= 180).all() and (np.abs(lat[ok]) <= 90).all()
    assert np.isnan(lon[~ok]).all() and np.isnan(lat[~ok]).all()
    codes, messages = problems.codes(), problems.messages()
    for i in np.flatnonzero(~ok):
        assert codes[i] in POINT_ERRORS and messages[i]
    for i in np.flatnonzero(ok):
        assert codes[i] is None and messages[i] is None


lon_in = st.floats(SHATIN[0], SHATIN[2])
lat_in = st.floats(SHATIN[1], SHATIN[3])


@settings(max_examples=100, deadline=None)
@given(lon_in, lat_in)
def test_a_point_in_the_area_passes_unchanged_and_swapped_it_is_flagged(lon, lat):
    got = check_point(lon, lat, "EPSG:4326", areas=SHATIN)
    assert got == (lon, lat)
    with pytest.raises(PointError) as caught:
        check_point(lat, lon, "EPSG:4326", areas=SHATIN)
    assert caught.value.code == "swapped_lonlat"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.floats(), st.none(), st.integers(-(10**20), 10**20)), max_size=30))
def test_coordinates_from_any_cell_are_numbers_or_named_problems(cells):
    problems = RowProblems(len(cells), tuple(POINT_ERRORS))
    values = parse_coordinates(pd.Series(cells, dtype=object), "lon", problems)
    assert len(values) == len(cells)
    for i in range(len(cells)):
        if problems.ok[i]:
            assert math.isfinite(values[i])
        else:
            assert math.isnan(values[i])
            assert problems.codes()[i] in ("missing_coordinates", "bad_coordinates")
            assert "lon" in problems.messages()[i]


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=20), anything, st.none()), st.one_of(st.text(max_size=20), anything, st.none()))
def test_the_single_point_form_agrees_with_the_array_form(lon, lat):
    problems = RowProblems(1, tuple(POINT_ERRORS))
    x = parse_coordinates(pd.Series([lon], dtype=object), "longitude", problems)
    y = parse_coordinates(pd.Series([lat], dtype=object), "latitude", problems)
    many_lon, many_lat, problems = check_points(x, y, "EPSG:4326", areas=SHATIN, problems=problems)
    try:
        one = check_point(lon, lat, "EPSG:4326", areas=SHATIN)
    except PointError as exc:
        assert not problems.ok[0] and exc.code == problems.codes()[0]
    else:
        assert problems.ok[0] and one == (many_lon[0], many_lat[0])
