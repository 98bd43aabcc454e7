"""Tests for spark_audit.drift.stats: pure numpy/scipy, no Spark."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from spark_audit.drift.stats import (
    STATISTICS,
    StatisticInfo,
    chi_square,
    dataset_drift,
    default_statistic,
    hellinger,
    is_drifted,
    jensen_shannon,
    ks_from_cdfs,
    linf,
    psi,
    total_variation,
    wasserstein_from_quantiles,
)

BIN_DISTANCES = [psi, jensen_shannon, hellinger, total_variation, linf]
BOUNDED_DISTANCES = [jensen_shannon, hellinger, total_variation, linf]


def random_counts(rng: np.random.Generator, k: int, with_zeros: bool) -> np.ndarray:
    counts = rng.integers(0, 200, size=k)
    if with_zeros:
        counts[rng.choice(k, size=k // 3, replace=False)] = 0
    counts[0] += 1  # never all zero
    return counts


def ecdf(sample: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Share of sample values <= each grid point (what Spark's count_if gives)."""
    return np.searchsorted(np.sort(sample), grid, side="right") / sample.size


# ---------------------------------------------------------------------------
# PSI
# ---------------------------------------------------------------------------


def test_psi_hand_worked():
    # p = [0.5, 0.5], q = [0.9, 0.1]; no bin is below eps so smoothing is a no-op.
    # (0.9 - 0.5) * ln(0.9 / 0.5) = 0.4 * ln 1.8 = 0.4 * 0.5877867 = 0.2351147
    # (0.1 - 0.5) * ln(0.1 / 0.5) = -0.4 * ln 0.2 = 0.4 * 1.6094379 = 0.6437752
    # PSI = 0.8788898
    assert psi([50, 50], [90, 10]) == pytest.approx(0.8788898, abs=1e-6)


def test_psi_is_symmetric_and_scale_free():
    assert psi([50, 50], [90, 10]) == pytest.approx(psi([90, 10], [50, 50]), rel=1e-12)
    assert psi([5, 5], [9, 1]) == pytest.approx(psi([500, 500], [900, 100]), rel=1e-12)


def test_psi_matches_formula_on_random_bins():
    rng = np.random.default_rng(11)
    ref = rng.integers(50, 500, size=12)
    cur = rng.integers(50, 500, size=12)
    p, q = ref / ref.sum(), cur / cur.sum()
    assert psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-9)


def test_psi_identical_is_zero():
    assert psi([10, 20, 30, 0], [1, 2, 3, 0]) == pytest.approx(0.0, abs=1e-12)


def test_psi_disjoint_supports_large_but_finite():
    # eps floor + renormalise: p = [1, 1e-4] / 1.0001, q = [1e-4, 1] / 1.0001.
    # Each bin adds (0.9999 / 1.0001) * ln(1e4); PSI = 2 * 0.99980002 * 9.2103404 = 18.41700
    value = psi([10, 0], [0, 10])
    assert math.isfinite(value)
    assert value == pytest.approx(18.41700, abs=1e-4)


def test_psi_empty_bin_smoothing_depends_on_eps():
    ref, cur = [100, 100, 0], [90, 90, 20]  # a new bin appears in current
    coarse = psi(ref, cur, eps=1e-2)
    fine = psi(ref, cur, eps=1e-6)
    assert math.isfinite(fine)
    assert fine > coarse > 0


@pytest.mark.parametrize("eps", [0.0, -1e-4, 1.0])
def test_psi_rejects_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        psi([1, 2], [2, 1], eps=eps)


# ---------------------------------------------------------------------------
# Jensen-Shannon, Hellinger, TV, L-inf
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("with_zeros", [False, True])
def test_js_matches_scipy(seed, with_zeros):
    rng = np.random.default_rng(seed)
    ref = random_counts(rng, 9, with_zeros)
    cur = random_counts(rng, 9, with_zeros)
    expected = scipy_js(ref / ref.sum(), cur / cur.sum(), base=2)
    assert jensen_shannon(ref, cur) == pytest.approx(expected, abs=1e-12)


def test_js_hand_worked():
    # p = [1, 0], q = [0.5, 0.5], m = [0.75, 0.25]
    # KL2(p||m) = log2(1/0.75) = 0.4150375
    # KL2(q||m) = 0.5 log2(0.5/0.75) + 0.5 log2(0.5/0.25) = -0.2924813 + 0.5 = 0.2075187
    # JS = sqrt((0.4150375 + 0.2075187) / 2) = sqrt(0.3112781) = 0.5579230
    assert jensen_shannon([4, 0], [2, 2]) == pytest.approx(0.5579230, abs=1e-6)


def test_hellinger_tv_linf_hand_worked():
    # p = [0.5, 0.5], q = [0.9, 0.1]
    # Bhattacharyya coefficient = sqrt(0.45) + sqrt(0.05) = 0.6708204 + 0.2236068 = 0.8944272
    # Hellinger = sqrt(1 - 0.8944272) = 0.3249197
    assert hellinger([50, 50], [90, 10]) == pytest.approx(0.3249197, abs=1e-6)
    # TV = (0.4 + 0.4) / 2 = 0.4 ; L-inf = 0.4
    assert total_variation([50, 50], [90, 10]) == pytest.approx(0.4, abs=1e-12)
    assert linf([50, 50], [90, 10]) == pytest.approx(0.4, abs=1e-12)


def test_tv_and_linf_differ_when_mass_moves_between_several_bins():
    # p = [.4, .4, .1, .1], q = [.1, .1, .4, .4]: |p - q| = .3 everywhere
    assert total_variation([40, 40, 10, 10], [10, 10, 40, 40]) == pytest.approx(0.6)
    assert linf([40, 40, 10, 10], [10, 10, 40, 40]) == pytest.approx(0.3)


@pytest.mark.parametrize("seed", range(5))
def test_bounded_distances_in_range_and_ordered(seed):
    rng = np.random.default_rng(100 + seed)
    ref = random_counts(rng, 7, with_zeros=True)
    cur = random_counts(rng, 7, with_zeros=True)
    h, tv, li = hellinger(ref, cur), total_variation(ref, cur), linf(ref, cur)
    for value in (h, tv, li, jensen_shannon(ref, cur)):
        assert 0.0 < value <= 1.0
    # Standard inequalities: H^2 <= TV <= sqrt(2) H and L-inf <= TV
    assert h**2 <= tv + 1e-12
    assert tv <= math.sqrt(2) * h + 1e-12
    assert li <= tv + 1e-12


@pytest.mark.parametrize("fn", BIN_DISTANCES)
def test_identical_distributions_give_zero(fn):
    assert fn([3, 0, 7, 10], [30, 0, 70, 100]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("fn", BOUNDED_DISTANCES)
def test_disjoint_point_masses_give_one(fn):
    assert fn([0, 25, 0], [0, 0, 40]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("fn", [jensen_shannon, hellinger, total_variation])
def test_disjoint_supports_give_one(fn):
    assert fn([5, 5, 0, 0], [0, 0, 3, 9]) == pytest.approx(1.0, abs=1e-12)


def test_linf_on_disjoint_spread_supports_is_largest_bin():
    assert linf([1, 1, 0, 0], [0, 0, 1, 1]) == pytest.approx(0.5)


@pytest.mark.parametrize("fn", BIN_DISTANCES)
def test_one_value_column_gives_zero(fn):
    assert fn([100], [7]) == pytest.approx(0.0, abs=1e-12)
    assert fn([100, 0], [7, 0]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("fn", BIN_DISTANCES)
@pytest.mark.parametrize(
    ("ref", "cur"),
    [([0, 0, 0], [1, 2, 3]), ([1, 2, 3], [0, 0, 0]), ([0, 0], [0, 0]), ([], [])],
)
def test_empty_input_gives_nan(fn, ref, cur):
    assert math.isnan(fn(ref, cur))


@pytest.mark.parametrize("fn", [*BIN_DISTANCES, chi_square])
def test_bin_functions_reject_bad_counts(fn):
    with pytest.raises(ValueError, match="negative"):
        fn([1, -2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="negative"):
        fn([1, 2, 3], [1, 2, -0.5])
    with pytest.raises(ValueError, match="mismatched lengths: 3 vs 2"):
        fn([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN or infinite"):
        fn([1, float("nan")], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        fn([[1, 2], [3, 4]], [[1, 2], [3, 4]])


@pytest.mark.parametrize("fn", BIN_DISTANCES)
def test_lists_arrays_ints_floats_agree(fn):
    expected = fn(np.array([10, 20, 5]), np.array([12, 15, 9]))
    assert fn([10, 20, 5], [12, 15, 9]) == pytest.approx(expected, rel=1e-12)
    assert fn([10.0, 20.0, 5.0], (12.0, 15.0, 9.0)) == pytest.approx(expected, rel=1e-12)
    assert fn(np.array([10, 20, 5], dtype=np.int32), [12.0, 15, 9]) == pytest.approx(expected)


# ---------------------------------------------------------------------------
# Chi-square
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 3, 10])
def test_chi_square_matches_scipy(seed, k):
    rng = np.random.default_rng(seed)
    ref = rng.integers(1, 300, size=k)
    cur = rng.integers(1, 300, size=k)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    statistic, p_value = chi_square(ref, cur)
    assert statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)


def test_chi_square_drops_bins_empty_on_both_sides():
    ref, cur = [30, 0, 50, 0, 20], [10, 0, 70, 5, 15]
    expected = stats.chi2_contingency([[30, 50, 0, 20], [10, 70, 5, 15]], correction=False)
    assert expected.dof == 3
    statistic, p_value = chi_square(ref, cur)
    assert statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-8)


def test_chi_square_identical_proportions():
    statistic, p_value = chi_square([10, 20, 30], [100, 200, 300])
    assert statistic == pytest.approx(0.0, abs=1e-10)
    assert p_value == pytest.approx(1.0)


def test_chi_square_fewer_than_two_bins():
    assert chi_square([100, 0, 0], [40, 0, 0]) == (0.0, 1.0)
    assert chi_square([100], [40]) == (0.0, 1.0)


def test_chi_square_disjoint_supports_tiny_p():
    statistic, p_value = chi_square([100, 0], [0, 100])
    assert statistic == pytest.approx(200.0)  # 2x2 perfect association: chi2 = N
    assert p_value < 1e-40


@pytest.mark.parametrize(("ref", "cur"), [([0, 0], [1, 2]), ([1, 2], [0, 0]), ([], [])])
def test_chi_square_empty_input_gives_nan_pair(ref, cur):
    statistic, p_value = chi_square(ref, cur)
    assert math.isnan(statistic) and math.isnan(p_value)


# ---------------------------------------------------------------------------
# Kolmogorov-Smirnov
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "n_ref", "n_cur", "shift", "integers"),
    [
        (0, 500, 700, 0.0, False),
        (1, 800, 800, 0.15, False),
        (2, 3000, 1200, 0.05, False),
        (3, 400, 900, 0.3, False),
        (4, 600, 600, 0.0, True),  # many ties
        (5, 1000, 300, 1.0, True),
    ],
)
def test_ks_matches_scipy_on_pooled_grid(seed, n_ref, n_cur, shift, integers):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, n_ref)
    b = rng.normal(shift, 1.0, n_cur)
    if integers:
        a, b = np.round(a * 3), np.round(b * 3)
    grid = np.unique(np.concatenate([a, b]))
    statistic, p_value = ks_from_cdfs(ecdf(a, grid), ecdf(b, grid), n_ref, n_cur)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert statistic == expected.statistic
    assert p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)


def test_ks_coarse_grid_is_lower_bound():
    rng = np.random.default_rng(21)
    a, b = rng.normal(0, 1, 2000), rng.normal(0.2, 1, 2000)
    exact, _ = ks_from_cdfs(*(ecdf(x, np.union1d(a, b)) for x in (a, b)), 2000, 2000)
    grid = np.linspace(-3, 3, 25)
    coarse, _ = ks_from_cdfs(ecdf(a, grid), ecdf(b, grid), 2000, 2000)
    assert 0 < coarse <= exact
    assert coarse == pytest.approx(exact, abs=0.03)


def test_ks_identical_cdfs():
    cdf = [0.1, 0.4, 0.4, 0.9, 1.0]
    assert ks_from_cdfs(cdf, cdf, 100, 5000) == (0.0, 1.0)


def test_ks_disjoint_supports():
    statistic, p_value = ks_from_cdfs([1.0, 1.0, 1.0], [0.0, 0.5, 1.0], 200, 200)
    assert statistic == 1.0
    assert p_value < 1e-50


def test_ks_effective_sample_size_drives_p_value():
    # n_eff = 100 * 100 / 200 = 50 either way the sizes are given.
    d = 0.2
    _, p = ks_from_cdfs([0.5], [0.5 + d], 100, 100)
    assert p == pytest.approx(stats.kstwo.sf(d, 50), rel=1e-12)
    # Larger samples make the same D more significant.
    _, p_large = ks_from_cdfs([0.5], [0.5 + d], 10_000, 10_000)
    assert p_large < p


@pytest.mark.parametrize(
    ("ref", "cur", "n_ref", "n_cur"),
    [([], [], 10, 10), ([0.5, 1.0], [0.2, 1.0], 0, 10), ([0.5, 1.0], [0.2, 1.0], 10, 0)],
)
def test_ks_empty_input_gives_nan_pair(ref, cur, n_ref, n_cur):
    statistic, p_value = ks_from_cdfs(ref, cur, n_ref, n_cur)
    assert math.isnan(statistic) and math.isnan(p_value)


def test_ks_rejects_bad_input():
    with pytest.raises(ValueError, match=r"ref_cdf must hold CDF values in \[0, 1\]"):
        ks_from_cdfs([0.5, 1.2], [0.5, 1.0], 10, 10)
    with pytest.raises(ValueError, match="cur_cdf"):
        ks_from_cdfs([0.5, 1.0], [-0.1, 1.0], 10, 10)
    with pytest.raises(ValueError, match="cur_cdf"):
        ks_from_cdfs([0.5, 1.0], [float("nan"), 1.0], 10, 10)
    with pytest.raises(ValueError, match="mismatched lengths"):
        ks_from_cdfs([0.5, 1.0], [1.0], 10, 10)
    with pytest.raises(ValueError, match="n_ref"):
        ks_from_cdfs([0.5, 1.0], [0.5, 1.0], -1, 10)
    with pytest.raises(ValueError, match="n_cur"):
        ks_from_cdfs([0.5, 1.0], [0.5, 1.0], 10, float("inf"))


# ---------------------------------------------------------------------------
# Wasserstein
# ---------------------------------------------------------------------------

GRID = np.linspace(0.0, 1.0, 1001)


@pytest.mark.parametrize(
    ("seed", "n_ref", "n_cur", "shift", "spread"),
    [(0, 2000, 3000, 0.1, 1.2), (1, 4000, 2000, 1.0, 1.0), (2, 3000, 3000, 0.0, 2.0)],
)
def test_wasserstein_matches_scipy_on_fine_grid(seed, n_ref, n_cur, shift, spread):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, n_ref)
    b = rng.normal(shift, spread, n_cur)
    value = wasserstein_from_quantiles(np.quantile(a, GRID), np.quantile(b, GRID))
    assert value == pytest.approx(stats.wasserstein_distance(a, b), rel=0.01, abs=2e-3)


def test_wasserstein_normalised_by_reference_std():
    rng = np.random.default_rng(5)
    a = rng.normal(10.0, 4.0, 3000)
    b = rng.normal(11.0, 4.0, 3000)
    qa, qb = np.quantile(a, GRID), np.quantile(b, GRID)
    raw = wasserstein_from_quantiles(qa, qb)
    assert wasserstein_from_quantiles(qa, qb, scale=a.std()) == pytest.approx(raw / a.std())
    # Normalising makes the score unit-free: rescaling the column changes nothing.
    scaled = wasserstein_from_quantiles(qa * 1000, qb * 1000, scale=a.std() * 1000)
    assert scaled == pytest.approx(raw / a.std(), rel=1e-9)


def test_wasserstein_trapezoid_hand_worked():
    # grid u = 0, .5, 1; |diff| = [0, 1, 4]; trapezoid = (0/2 + 1 + 4/2) / 2 = 1.5
    assert wasserstein_from_quantiles([0, 1, 2], [0, 2, 6]) == pytest.approx(1.5)


def test_wasserstein_identical_and_shift():
    q = np.quantile(np.random.default_rng(9).exponential(2.0, 500), GRID)
    assert wasserstein_from_quantiles(q, q) == 0.0
    assert wasserstein_from_quantiles(q, q + 0.75) == pytest.approx(0.75, rel=1e-12)


def test_wasserstein_one_value_reference_fallback():
    # Constant reference 5 and current 6: W1 = 1, std = 0 -> divide by max(|5|, 1)
    assert wasserstein_from_quantiles([5, 5, 5], [6, 6, 6], scale=0.0) == pytest.approx(0.2)
    # Constant reference 0.5: divide by max(|0.5|, 1) = 1
    assert wasserstein_from_quantiles([0.5] * 3, [1.0] * 3, scale=0.0) == pytest.approx(0.5)
    # Float noise in a Spark stddev of a constant column counts as zero
    assert wasserstein_from_quantiles([5, 5, 5], [6, 6, 6], scale=1e-16) == pytest.approx(0.2)
    # A std that could not be computed (NaN) falls back the same way
    assert wasserstein_from_quantiles([5, 5, 5], [6, 6, 6], scale=math.nan) == pytest.approx(0.2)
    # One-value column on both sides: no drift
    assert wasserstein_from_quantiles([5, 5], [5, 5], scale=0.0) == 0.0


@pytest.mark.parametrize(
    ("ref", "cur"),
    [([], []), ([float("nan")] * 3, [1, 2, 3]), ([1, 2, 3], [float("nan")] * 3)],
)
def test_wasserstein_empty_input_gives_nan(ref, cur):
    assert math.isnan(wasserstein_from_quantiles(ref, cur, scale=1.0))


def test_wasserstein_rejects_bad_input():
    with pytest.raises(ValueError, match="mismatched lengths: 3 vs 2"):
        wasserstein_from_quantiles([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        wasserstein_from_quantiles([1.0], [2.0])
    with pytest.raises(ValueError, match="cur_q must be non-decreasing"):
        wasserstein_from_quantiles([1, 2, 3], [3, 2, 1])
    with pytest.raises(ValueError, match="ref_q contains infinite"):
        wasserstein_from_quantiles([1, 2, float("inf")], [1, 2, 3])
    with pytest.raises(ValueError, match="scale"):
        wasserstein_from_quantiles([1, 2, 3], [1, 2, 3], scale=-1.0)


# ---------------------------------------------------------------------------
# Registry, defaults, decisions
# ---------------------------------------------------------------------------


def test_registry_contents():
    assert set(STATISTICS) == {"psi", "js", "hellinger", "tv", "linf", "chi2", "ks", "wasserstein", "energy"}
    for name, info in STATISTICS.items():
        assert isinstance(info, StatisticInfo) and info.name == name
        assert info.kinds and info.kinds <= {"numeric", "categorical"}
        assert 0 < info.threshold < 1
    assert {n for n, i in STATISTICS.items() if not i.higher_is_drift} == {"chi2", "ks"}
    assert STATISTICS["ks"].needs == "bins"  # exact counts: a KLL sketch's rank error does not shrink with n
    assert STATISTICS["wasserstein"].needs == "pair"  # exact bins + tails, or the sketches
    assert {STATISTICS[n].needs for n in ("psi", "js", "hellinger", "tv", "linf", "chi2")} == {
        "bins"
    }
    assert STATISTICS["ks"].kinds == {"numeric"}
    assert STATISTICS["wasserstein"].kinds == {"numeric"}
    assert "categorical" in STATISTICS["js"].kinds and "categorical" in STATISTICS["chi2"].kinds


def test_registry_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        STATISTICS["psi"].threshold = 0.2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_cur", "expected"),
    [
        ("numeric", 1000, 1000, ("ks", 0.05)),
        ("numeric", 10, 500, ("ks", 0.05)),
        ("numeric", 1001, 500, ("wasserstein", 0.1)),
        ("numeric", 500, 1001, ("wasserstein", 0.1)),
        ("numeric", 10**7, 10**7, ("wasserstein", 0.1)),
        ("categorical", 1000, 1000, ("chi2", 0.05)),
        ("categorical", 0, 0, ("chi2", 0.05)),
        ("categorical", 1001, 1001, ("js", 0.12)),
        ("categorical", 20, 5000, ("js", 0.12)),
    ],
)
def test_default_statistic(kind, n_ref, n_cur, expected):
    assert default_statistic(kind, n_ref, n_cur) == expected


def test_default_statistic_rejects_bad_input():
    with pytest.raises(ValueError, match="kind"):
        default_statistic("text", 10, 10)
    with pytest.raises(ValueError, match="sample sizes"):
        default_statistic("numeric", -1, 10)


def test_default_statistics_fit_their_kind():
    for kind in ("numeric", "categorical"):
        for n in (10, 10_000):
            name, threshold = default_statistic(kind, n, n)
            assert kind in STATISTICS[name].kinds
            assert threshold == STATISTICS[name].threshold


def test_is_drifted_distances():
    assert is_drifted("js", 0.1, None, 0.1)  # >= threshold
    assert is_drifted("wasserstein", 0.5, None, 0.1)
    assert not is_drifted("psi", 0.09, None, 0.1)
    assert not is_drifted("hellinger", float("nan"), None, 0.1)


def test_is_drifted_p_value_tests():
    assert is_drifted("ks", 0.3, 0.01, 0.05)
    assert not is_drifted("ks", 0.3, 0.05, 0.05)  # p must be strictly below
    assert not is_drifted("chi2", 12.0, 0.2, 0.05)
    # a huge statistic with a large p-value is not drift: the p-value decides
    assert not is_drifted("chi2", 1e6, 0.5, 0.05)
    assert not is_drifted("chi2", float("nan"), float("nan"), 0.05)
    assert not is_drifted("chi2", float("nan"), None, 0.05)  # no input at all
    assert not is_drifted("ks", 0.3, float("nan"), 0.05)


def test_is_drifted_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown drift statistic 'kl'"):
        is_drifted("kl", 0.3, None, 0.1)
    with pytest.raises(ValueError, match="p_value is None"):
        is_drifted("ks", 0.3, None, 0.05)
    with pytest.raises(ValueError, match="NaN"):
        is_drifted("js", 0.3, None, float("nan"))


def test_is_drifted_end_to_end_with_defaults():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 800), rng.normal(0.5, 1, 800)
    name, threshold = default_statistic("numeric", a.size, b.size)
    assert name == "ks"
    grid = np.union1d(a, b)
    d, p = ks_from_cdfs(ecdf(a, grid), ecdf(b, grid), a.size, b.size)
    assert is_drifted(name, d, p, threshold)
    c = rng.normal(0, 1, 800)
    d, p = ks_from_cdfs(ecdf(a, np.union1d(a, c)), ecdf(c, np.union1d(a, c)), 800, 800)
    assert not is_drifted(name, d, p, threshold)


def test_dataset_drift_unweighted():
    assert dataset_drift({"a": True, "b": True, "c": False, "d": False}) == (0.5, True)
    share, drift = dataset_drift({"a": True, "b": False, "c": False})
    assert share == pytest.approx(1 / 3) and not drift
    assert dataset_drift({"a": True, "b": False, "c": False}, share_threshold=0.3)[1]


def test_dataset_drift_weighted():
    drifted = {"a": True, "b": False, "c": False}
    share, drift = dataset_drift(drifted, weights={"a": 0.8, "b": 0.1, "c": 0.1})
    assert share == pytest.approx(0.8) and drift
    # scale of the importances does not matter
    assert dataset_drift(drifted, weights={"a": 8, "b": 1, "c": 1})[0] == pytest.approx(0.8)


def test_dataset_drift_missing_weight_gets_mean_of_given():
    # c missing -> weight mean(0.6, 0.2) = 0.4; share = 0.6 / 1.2 = 0.5
    share, drift = dataset_drift(
        {"a": True, "b": False, "c": False}, weights={"a": 0.6, "b": 0.2, "zzz": 100.0}
    )
    assert share == pytest.approx(0.5)
    assert drift  # 0.4999999999999999 in floats: the 1e-12 tolerance keeps it at the threshold
    # no usable weights -> unweighted
    assert dataset_drift({"a": True, "b": False}, weights={}) == (0.5, True)


def test_dataset_drift_empty_and_zero_weight():
    assert dataset_drift({}) == (0.0, False)
    assert dataset_drift({"a": True, "b": True}, weights={"a": 0, "b": 0}) == (0.0, False)


def test_dataset_drift_rejects_bad_input():
    with pytest.raises(ValueError, match="weights"):
        dataset_drift({"a": True}, weights={"a": -1.0})
    with pytest.raises(ValueError, match="weights"):
        dataset_drift({"a": True}, weights={"a": float("nan")})
    with pytest.raises(ValueError, match="share_threshold"):
        dataset_drift({"a": True}, share_threshold=1.5)


def test_wasserstein_from_bins_hand_worked():
    """Reference uniform on [0, 1) (one bin, 10 rows), current all at 2 (beyond the last edge: its tail sum
    is 10 x (2 - 1)): W1 = E|2 - U| = 1.5, as 0.5 inside the bin plus 1 in the upper tail."""
    from spark_audit.drift.stats import wasserstein_from_bins

    assert wasserstein_from_bins([0.0, 1.0], [0, 10, 0], [0, 0, 10], (0.0, 0.0), (0.0, 10.0)) == pytest.approx(1.5)
    assert wasserstein_from_bins([0.0, 1.0], [0, 10, 0], [0, 10, 0], (0.0, 0.0), (0.0, 0.0)) == 0.0
    with pytest.raises(ValueError):
        wasserstein_from_bins([0.0, 1.0], [0, 10], [0, 10], (0.0, 0.0), (0.0, 0.0))


def test_pool_sparse_bins_merges_until_five_expected_on_the_smaller_side():
    from spark_audit.drift.stats import chi_square_pvalue, pool_sparse_bins

    ref = np.array([0, 31, 274, 1218, 1300, 1200, 37, 0], dtype=float)
    cur = np.array([2, 6, 45, 179, 190, 170, 2, 0], dtype=float)
    r, c = pool_sparse_bins(ref, cur)
    assert r.sum() == ref.sum() and c.sum() == cur.sum()
    share = cur.sum() / (ref.sum() + cur.sum())
    assert np.all((r + c) * share >= 5)
    assert r[0] == 305 and c[0] == 53  # the out-of-range bin and the 0.1 % bin joined the 1 % bin
    # one value below the reference's minimum no longer decides the test
    assert chi_square_pvalue(ref, cur) > 0.05
    assert chi_square(ref, cur)[1] < 0.05


def _binned(ref, cur, edges):
    """Counts on (-inf, e1), [e1, e2), ..., [eK, inf) and the tail sums, as a profile keeps them."""
    def side(x):
        counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
        return counts, (float(np.sum(edges[0] - x[x < edges[0]])), float(np.sum(x[x >= edges[-1]] - edges[-1])))
    (rc, rt), (cc, ct) = side(ref), side(cur)
    return rc, cc, rt, ct


@pytest.mark.parametrize("shift,spread", [(0.0, 1.0), (0.3, 1.0), (0.0, 1.5), (1.0, 0.7)])
def test_energy_from_bins_matches_scipy_on_fine_bins(shift, spread):
    from scipy.stats import energy_distance

    from spark_audit.drift.stats import energy_from_bins

    rng = np.random.default_rng(11)
    ref, cur = rng.normal(0, 1, 20000), rng.normal(shift, spread, 20000)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 401)))
    edges[-1] = np.nextafter(edges[-1], np.inf)
    rc, cc, rt, ct = _binned(ref, cur, edges)
    ours = energy_from_bins(edges, rc, cc, rt, ct, scale=ref.std())
    expected = energy_distance(ref, cur) / ref.std()
    assert ours == pytest.approx(expected, rel=0.05, abs=0.01)


def test_energy_sees_a_sentinel_beyond_the_reference_range_exactly():
    """All extra mass at one point beyond the last edge: the tail term is exact."""
    from spark_audit.drift.stats import energy_from_bins

    edges = np.array([0.0, 1.0])
    ref = np.array([0.0, 100.0, 0.0])  # uniform on [0, 1)
    cur = np.array([0.0, 50.0, 50.0])  # half of it at x = 11 (tail sum 50 * 10)
    value = energy_from_bins(edges, ref, cur, (0.0, 0.0), (0.0, 500.0))
    # F_r - F_c: 0.5 t on [0, 1) (integral of square 1/12), then 0.5 on [1, 11) (integral 2.5)
    assert value == pytest.approx(math.sqrt(2 * (1 / 12 + 2.5)))
    assert energy_from_bins(edges, ref, ref, (0.0, 0.0), (0.0, 0.0)) == 0.0


def test_a_registered_statistic_runs_end_to_end_from_its_one_entry():
    """energy is only registered in drift/stats.py: the spec accepts it, compare computes it with evidence."""
    from spark_audit.drift.compare import compare_column
    from spark_audit.spec import DriftSpec, parse_spec

    spec = parse_spec({"name": "a", "source": {"path": "/t"}, "output": {"path": "/o"},
                       "features": [{"name": "x", "drift": {"statistic": "energy"}}]})
    assert spec.features[0].drift.statistic == "energy"
    from tests.test_drift_compare import numeric_pair

    rng = np.random.default_rng(3)
    ref, moved = numeric_pair(rng.normal(0, 1, 5000), rng.normal(0.5, 1, 5000))
    [res] = compare_column(ref, moved, spec.features[0], DriftSpec(statistics=()))
    assert res.statistic == "energy" and res.is_default and res.drifted and res.value > 0.3
    _, same = numeric_pair(rng.normal(0, 1, 5000), rng.normal(0, 1, 5000))
    [calm] = compare_column(ref, same, spec.features[0], DriftSpec(statistics=()))
    assert not calm.drifted and calm.value < 0.1
    # exact bins with tail sums, as an audit's profiles have them: the bins' formula, same verdicts
    from dataclasses import replace as _replace

    from spark_audit.drift.compare import pair

    def with_tails(p, values):
        e = np.asarray(p.bins.edges)
        return _replace(p, bins=_replace(p.bins, tails=(float(np.sum(e[0] - values[values < e[0]])),
                                                        float(np.sum(values[values >= e[-1]] - e[-1])))))

    x0, x1 = rng.normal(0, 1, 5000), rng.normal(0.5, 1, 5000)
    r0, m0 = numeric_pair(x0, x1)
    r0, m0 = with_tails(r0, x0), with_tails(m0, x1)
    assert pair(r0, m0).edges is not None
    [binned] = compare_column(r0, m0, spec.features[0], DriftSpec(statistics=()))
    assert binned.drifted and binned.value == pytest.approx(res.value, rel=0.25)
