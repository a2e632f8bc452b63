"""The OOD suite's bootstrap intervals (``benchmarks/ood_bootstrap.py``)."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bootstrap():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import ood_bootstrap
    finally:
        sys.path.remove(str(BENCHMARKS))
    return ood_bootstrap


def _noisy(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + rng.normal(size=n)


def test_a_perfect_ranking_has_a_point_interval(bootstrap):
    y = np.arange(12.0)
    clusters = np.repeat(["a", "b", "c", "d"], 3)
    for by in (None, clusters):
        rho, low, high, share = bootstrap.interval(y, 2 * y, 0.85, 200, 0, by)
        assert rho == low == high == 1.0 and share == 1.0


def test_resampling_architectures_is_wider_when_their_programs_are_alike(bootstrap):
    # Eight architectures of four identical programs each: 32 points that say
    # no more than 8. Resampling the points makes the interval too narrow.
    y8, p8 = _noisy(8, seed=3)
    y, p = np.repeat(y8, 4), np.repeat(p8, 4)
    clusters = np.repeat(np.arange(8), 4)
    rho, low_m, high_m, _ = bootstrap.interval(y, p, 0.85, 2000, 0)
    rho_c, low_c, high_c, _ = bootstrap.interval(y, p, 0.85, 2000, 0, clusters)
    assert rho == rho_c
    assert high_c - low_c > 1.5 * (high_m - low_m)
    # and it is about the interval of the eight distinct points
    _, low_8, high_8, _ = bootstrap.interval(y8, p8, 0.85, 2000, 0)
    assert abs((high_c - low_c) - (high_8 - low_8)) < 0.2


def test_missing_values_are_left_out_with_their_cluster_labels(bootstrap):
    y, p = _noisy(20, seed=1)
    clusters = np.repeat(np.arange(5), 4)
    y_gap = y.copy()
    y_gap[[0, 7]] = np.nan
    keep = ~np.isnan(y_gap)
    full = bootstrap.interval(y[keep], p[keep], 0.5, 500, 0, clusters[keep])
    assert bootstrap.interval(y_gap, p, 0.5, 500, 0, clusters) == full
