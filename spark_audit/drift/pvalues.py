"""Two-sample tests on the same summaries (``spark_audit.drift.distances`` describes them): KS from CDFs or
exact bin counts, Pearson's chi-square p-value on pooled sparse bins, both with an overdispersion factor
``phi``, and the Benjamini-Hochberg adjustment across an audit's tests. No Spark here."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import chi2, kstwo

from spark_audit.drift.distances import NAN, _counts, _same_length, _sample_size, _vector, chi_square, pool_sparse_bins

# ---------------------------------------------------------------------------
# Two-sample tests: statistic and p-value
# ---------------------------------------------------------------------------


def ks_from_cdfs(
    ref_cdf: ArrayLike, cur_cdf: ArrayLike, n_ref: float, n_cur: float
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test from CDFs on a common grid: ``(D, p_value)``.

    ``D = max_i |F_ref(x_i) - F_cur(x_i)|`` over the grid. When the grid holds
    every distinct value of both samples (and ``F`` counts values ``<= x``) this
    is exactly the KS statistic; on a coarser grid it is a lower bound.

    The p-value is the two-sided one-sample KS distribution at the effective
    sample size ``n_eff = n_ref * n_cur / (n_ref + n_cur)``, rounded to an integer
    (at least 1): ``scipy.stats.kstwo.sf(D, round(n_eff))``. This is what
    ``scipy.stats.ks_2samp(..., method="asymp")`` computes; for small samples
    scipy's exact method can differ slightly. Drift when ``p < threshold``.

    Identical CDFs give ``(0.0, 1.0)``. An empty grid or ``n_ref``/``n_cur`` equal
    to 0 give ``(nan, nan)``. Raises ``ValueError`` for CDF values outside
    [0, 1] or NaN, mismatched lengths, negative or non-finite sample sizes.
    """
    ref = _vector(ref_cdf, "ref_cdf")
    cur = _vector(cur_cdf, "cur_cdf")
    _same_length(ref, cur, "CDF values")
    for name, arr in (("ref_cdf", ref), ("cur_cdf", cur)):
        if not np.all((arr >= 0.0) & (arr <= 1.0)):
            raise ValueError(f"{name} must hold CDF values in [0, 1] (no NaN)")
    n1 = _sample_size(n_ref, "n_ref")
    n2 = _sample_size(n_cur, "n_cur")
    if ref.size == 0 or n1 == 0 or n2 == 0:
        return NAN, NAN
    statistic = float(np.max(np.abs(ref - cur)))
    n_eff = max(1, round(n1 * n2 / (n1 + n2)))
    p_value = float(np.clip(kstwo.sf(statistic, n_eff), 0.0, 1.0))
    return statistic, p_value


def ks_from_counts(ref_counts: ArrayLike, cur_counts: ArrayLike, *, phi: float = 1.0) -> tuple[float, float]:
    """Two-sample KS test on exact counts on the same ordered bins: ``(D, p_value)``.

    ``D`` is the largest difference of the two cumulative shares at the bin edges,
    a lower bound of the KS statistic of the raw values; the p-value,
    ``kstwo.sf(D / sqrt(phi), round(n_eff))`` with ``n_eff = n m / (n + m)``, is
    therefore conservative. Counts are exact (no sketch rank error), so the p-value
    stays valid at any sample size, unlike a KS read from two KLL sketches, whose
    rank error (about 1 % at k=200) does not shrink with n. ``phi`` >= 1 is an
    overdispersion factor for the statistic's variance (1 for independent rows).
    Empty sides give ``(nan, nan)``.
    """
    ref, cur = _counts(ref_counts, cur_counts)
    n1, n2 = ref.sum(), cur.sum()
    if ref.size == 0 or n1 <= 0 or n2 <= 0:
        return NAN, NAN
    statistic = float(np.max(np.abs(np.cumsum(ref) / n1 - np.cumsum(cur) / n2)))
    n_eff = max(1, round(n1 * n2 / (n1 + n2)))
    p_value = float(np.clip(kstwo.sf(statistic / math.sqrt(max(phi, 1.0)), n_eff), 0.0, 1.0))
    return statistic, p_value


def chi_square_pvalue(ref_counts: ArrayLike, cur_counts: ArrayLike, *, phi: float = 1.0) -> float:
    """The chi-square homogeneity p-value, on sparse bins pooled (:func:`pool_sparse_bins`), with the
    statistic divided by ``phi`` (>= 1).

    ``phi`` is the overdispersion the reference showed between its own windows
    (quasi-likelihood: ``X^2 / phi`` is again about chi-square with K-1 degrees of
    freedom when windows vary more than independent rows would).
    """
    ref, cur = pool_sparse_bins(*_counts(ref_counts, cur_counts))
    statistic, p_value = chi_square(ref, cur)
    if math.isnan(statistic) or phi <= 1.0:
        return p_value
    df = int(np.count_nonzero((ref + cur) > 0)) - 1
    return float(chi2.sf(statistic / phi, df)) if df > 0 else 1.0


def benjamini_hochberg(p_values: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg q-values (adjusted p-values) of a family of tests.

    ``q_(i) = min_{j >= i} p_(j) * m / j`` over the p-values sorted ascending, capped
    at 1; deciding ``q <= alpha`` controls the false discovery rate at ``alpha`` for
    independent or positively dependent tests. NaN p-values (tests that could not be
    run) get NaN and do not count in ``m``. Matches
    ``scipy.stats.false_discovery_control(p, method="bh")`` on finite input.

    >>> benjamini_hochberg([0.01, 0.04, 0.03]).tolist()
    [0.03, 0.04, 0.04]
    >>> benjamini_hochberg([0.01, float("nan")]).tolist()
    [0.01, nan]
    """
    p = _vector(p_values, "p_values")
    out = np.full(p.shape, NAN)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    idx = np.flatnonzero(ok)
    order = np.argsort(p[ok], kind="stable")
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out[idx[order]] = np.minimum(q, 1.0)
    return out


