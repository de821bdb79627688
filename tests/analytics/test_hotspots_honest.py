"""Honest hotspots (issue 21): random reports flag about the nominal share, empty hexagons are not
cold spots by default, a planted cluster is found, and a popup's p never undercuts its z.

Pure in-memory tests; the study area on the map (bins covered by streets or cells) is tested in
tests/analytics/test_hotspots_store.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from gisgrid.analytics.hotspots import getis_ord, hex_bins
from tests.analytics.test_hotspots import SIDE_M, _hex_of, _points, _uniform


@pytest.mark.parametrize("n_reports", [3000, 150])
def test_twenty_random_fields_flag_near_the_nominal_share_and_blanket_nothing(n_reports):
    """Dense (≈ 7 per hexagon) and sparse (≈ 0.3 per hexagon, most empty) uniform fields."""
    shares = []
    for seed in range(20):
        x, y = _uniform(seed, n_reports)
        result = getis_ord(hex_bins(_points(x, y), size_m=100), permutations=1999, seed=seed)
        flagged = result["p_fdr"] <= 0.05
        shares.append(flagged.mean())
        assert flagged.mean() < 0.05, f"seed {seed}: {flagged.sum()} of {len(result)} hexagons flagged"
        assert not result["hotspot"].str.startswith("cold").any() or n_reports == 3000
    # BH at 5 % under a random field: any flag at all in about 5 % of maps, a few hexagons when it happens
    assert np.mean(shares) <= 0.01
    assert sum(s > 0 for s in shares) <= 3


def test_zero_bins_of_a_sparse_filter_are_not_cold_spots():
    """Four reports in ~190 hexagons (the page once read "热点 4 · 冷点 250" for such a filter)."""
    x = np.array([300.0, 900.0, 1500.0, 1700.0])
    y = np.array([400.0, 1200.0, 600.0, 1800.0])
    bins = hex_bins(_points(x, y), size_m=100, extent=_points([0, SIDE_M], [0, SIDE_M]))
    result = getis_ord(bins, permutations=9999, seed=0)
    assert (result["count"] == 0).sum() > 150
    assert (result["hotspot"] == "not_significant").all()
    empty = result[result["neighbourhood_count"] == 0]
    assert (empty["p"] == 1.0).all()  # every random draw ties with an empty neighbourhood


def test_a_real_cold_area_in_a_dense_field_is_cold():
    """Cold spots stay possible when the statistics support them: a 500 m hole in a dense field."""
    x, y = _uniform(5, 6000)
    hole = np.hypot(x - 1000, y - 1000) < 250
    result = getis_ord(hex_bins(_points(x[~hole], y[~hole]), size_m=100), permutations=9999, seed=0)
    assert _hex_of(result, 1000, 1000)["hotspot"].startswith("cold")
    assert not result["hotspot"].str.startswith("hot").any()


def test_a_planted_cluster_is_found_in_a_sparse_field():
    rng = np.random.default_rng(3)
    x, y = _uniform(3, 200)
    x = np.r_[x, rng.normal(1200, 80, 60)]
    y = np.r_[y, rng.normal(700, 80, 60)]
    result = getis_ord(hex_bins(_points(x, y), size_m=100), permutations=9999, seed=0)
    assert _hex_of(result, 1200, 700)["hotspot"] in ("hot_99", "hot_95")
    assert not result["hotspot"].str.startswith("cold").any()


def test_p_never_below_what_z_allows_and_popup_numbers_add_up():
    rng = np.random.default_rng(8)
    x, y = _uniform(8, 800)
    x = np.r_[x, rng.normal(500, 60, 80)]
    y = np.r_[y, rng.normal(500, 60, 80)]
    result = getis_ord(hex_bins(_points(x, y), size_m=100), permutations=999, seed=0)
    z = result["gi_z"].to_numpy()
    assert (result["p"].to_numpy() >= 2 * norm.sf(np.abs(z)) - 1e-12).all()
    assert (result["p_fdr"] >= result["p"] - 1e-12).all()
    # the popup's "n reports in this hexagon and its k neighbours, m expected" are the data's
    row = _hex_of(result, 500, 500)
    assert row["neighbourhood_count"] >= row["count"]
    assert row["expected_count"] == pytest.approx((row["n_neighbours"] + 1) * result["count"].mean())
    assert row["neighbourhood_count"] > 3 * row["expected_count"]


def test_gi_star_z_is_esdas():
    import warnings

    from esda.getisord import G_Local
    from libpysal.weights import W, fill_diagonal

    from gisgrid.analytics.hotspots import _axial_neighbours, gi_star_z

    x, y = _uniform(2, 500)
    bins = hex_bins(_points(x, y), size_m=100)
    neighbours = _axial_neighbours(bins["q"].to_numpy(), bins["r"].to_numpy())
    counts = bins["count"].to_numpy(float)
    w = fill_diagonal(W({i: list(nb) for i, nb in enumerate(neighbours)}, silence_warnings=True), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        esda_z = G_Local(counts, w, transform="B", permutations=0, star=True).Zs
    assert np.allclose(gi_star_z(counts, neighbours), esda_z)
