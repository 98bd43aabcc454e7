"""Distances between two distributions given as small summaries Spark has already computed (no Spark here).

Every function compares a *reference* distribution with a *current* one given as
one of three aligned summaries:

``bins``
    Counts on the same bins for both sides: a numeric histogram on the reference's
    bin edges, or categorical counts on the reference's categories with an
    "other / unseen" bucket as the last element. Counts may be ints or floats
    (weighted counts); the functions turn them into proportions ``p`` (reference)
    and ``q`` (current).
``cdf``
    Empirical CDF values ``F(x_i)`` (share of values <= ``x_i``) of both sides on
    one common grid of points ``x_i``.
``quantiles``
    Quantiles ``Q(u_i)`` of both sides on one common uniform probability grid.

Conventions shared by all functions:

* Inputs may be lists, tuples or numpy arrays of ints or floats.
* Empty input (no bins, all counts zero on either side, a sample size of 0)
  gives ``float("nan")``, or ``(nan, nan)`` for the tests that return a p-value,
  instead of raising: an empty column has no distribution to compare.
* Bad input raises ``ValueError`` naming the problem: arrays that are not 1-D,
  of different lengths, negative or non-finite counts, CDF values outside [0, 1],
  decreasing quantiles, negative sample sizes.

The p-value tests are ``spark_audit.drift.pvalues``; the registry that names, dispatches and
thresholds them all is ``spark_audit.drift.stats``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import rel_entr
from scipy.stats import chi2, wasserstein_distance

NAN = float("nan")


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _vector(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array; ``ValueError`` when it is not 1-D."""
    arr: np.ndarray = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {arr.shape}")
    return arr


def _same_length(ref: np.ndarray, cur: np.ndarray, what: str) -> None:
    if ref.shape != cur.shape:
        raise ValueError(
            f"reference and current {what} have mismatched lengths: "
            f"{ref.shape[0]} vs {cur.shape[0]}"
        )


def _counts(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated count vectors: 1-D, same length, finite, non-negative."""
    ref = _vector(ref_counts, "ref_counts")
    cur = _vector(cur_counts, "cur_counts")
    _same_length(ref, cur, "bin counts")
    for name, arr in (("ref_counts", ref), ("cur_counts", cur)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite counts")
        if np.any(arr < 0):
            raise ValueError(f"{name} contains negative counts: {arr[arr < 0].tolist()}")
    return ref, cur


def _proportions(
    ref_counts: ArrayLike, cur_counts: ArrayLike
) -> tuple[np.ndarray, np.ndarray] | None:
    """Validated counts as proportions ``(p, q)``; ``None`` when either side is empty."""
    ref, cur = _counts(ref_counts, cur_counts)
    ref_total, cur_total = ref.sum(), cur.sum()
    if ref_total <= 0 or cur_total <= 0:
        return None
    return ref / ref_total, cur / cur_total


def _sample_size(n: float, name: str) -> float:
    value = float(n)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {n!r}")
    return value


# ---------------------------------------------------------------------------
# Statistics on aligned bin counts
# ---------------------------------------------------------------------------


def psi(ref_counts: ArrayLike, cur_counts: ArrayLike, *, eps: float = 1e-4) -> float:
    """Population stability index of the current bins against the reference bins.

    ``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)`` over the proportions ``p``
    (reference) and ``q`` (current).

    Smoothing: each side's proportions are floored at ``eps`` and renormalised to
    sum to 1 before the sum, so a bin that is empty on one side adds a large but
    finite term instead of infinity. With the default ``eps=1e-4`` two disjoint
    supports give about ``2 * ln(1e4) = 18.4``; bins with proportion >= ``eps`` on
    both sides are unaffected apart from the renormalisation.

    Range ``[0, inf)``, 0 for identical proportions. Common reading: < 0.1 stable,
    0.1-0.25 moderate shift, > 0.25 significant shift.

    Returns ``nan`` when there are no bins or either side's counts are all zero.
    Raises ``ValueError`` for bad counts (see module doc) or ``eps`` not in (0, 1).

    >>> round(psi([10, 20, 30], [30, 20, 10]), 4)
    0.7324
    >>> psi([5, 5], [50, 50])
    0.0
    """
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    props = _proportions(ref_counts, cur_counts)
    if props is None:
        return NAN
    p, q = (np.maximum(x, eps) for x in props)
    p, q = p / p.sum(), q / q.sum()
    return max(float(np.sum((q - p) * np.log(q / p))), 0.0)


def jensen_shannon(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """Jensen-Shannon *distance* (base 2) between the reference and current bins.

    With ``m = (p + q) / 2``:
    ``JS = sqrt( (KL(p || m) + KL(q || m)) / 2 )`` where ``KL`` uses log base 2 and
    ``0 * log 0 = 0``, so empty bins need no smoothing. This is the square root of
    the JS divergence and equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    Range ``[0, 1]``: 0 for identical proportions, 1 for disjoint supports.
    Returns ``nan`` when there are no bins or either side's counts are all zero.

    >>> jensen_shannon([1, 0], [0, 1])
    1.0
    >>> round(jensen_shannon([1, 1], [1, 0]), 4)
    0.5579
    """
    props = _proportions(ref_counts, cur_counts)
    if props is None:
        return NAN
    p, q = props
    m = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / (2.0 * np.log(2.0))
    return float(np.clip(np.sqrt(max(divergence, 0.0)), 0.0, 1.0))


def hellinger(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """Hellinger distance between the reference and current bins.

    ``H = sqrt( sum_i (sqrt(p_i) - sqrt(q_i))^2 / 2 )`` on the proportions; no
    smoothing needed. Range ``[0, 1]``: 0 for identical proportions, 1 for
    disjoint supports. Returns ``nan`` when there are no bins or either side's
    counts are all zero.
    """
    props = _proportions(ref_counts, cur_counts)
    if props is None:
        return NAN
    p, q = props
    return float(np.clip(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2.0), 0.0, 1.0))


def total_variation(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """Total variation distance ``TV = sum_i |p_i - q_i| / 2`` between the bins.

    The largest difference in probability the two distributions give any set of
    bins. Range ``[0, 1]``: 0 for identical proportions, 1 for disjoint supports.
    Returns ``nan`` when there are no bins or either side's counts are all zero.

    >>> total_variation([1, 3], [3, 1])
    0.5
    """
    props = _proportions(ref_counts, cur_counts)
    if props is None:
        return NAN
    p, q = props
    return float(np.clip(np.sum(np.abs(p - q)) / 2.0, 0.0, 1.0))


def linf(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """L-infinity distance ``max_i |p_i - q_i|`` between the bins' proportions.

    The largest change of any single bin (as in TFDV / Vertex AI skew checks).
    Range ``[0, 1]`` and never above ``total_variation``: 0 for identical
    proportions, 1 when each side puts everything in a different single bin.
    Disjoint supports give ``max_i max(p_i, q_i)``, which is 1 only for such
    point masses (e.g. [1, 1, 0, 0] vs [0, 0, 1, 1] gives 0.5).
    Returns ``nan`` when there are no bins or either side's counts are all zero.
    """
    props = _proportions(ref_counts, cur_counts)
    if props is None:
        return NAN
    p, q = props
    return float(np.max(np.abs(p - q)))


MIN_EXPECTED = 5.0  # Cochran's rule: sparse bins are pooled before a chi-square p-value is read


def pool_sparse_bins(ref: np.ndarray, cur: np.ndarray, min_expected: float = MIN_EXPECTED,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent bins merged (in order) until each has at least ``min_expected`` expected rows on the
    smaller side; a short remainder joins the last group. Pearson's chi-square is far from its chi-square
    distribution on bins expecting a row or less (a reference's tail or out-of-range bins compared with a
    small window): one value beyond the reference's maximum used to add about 7 to X^2."""
    n1, n2 = ref.sum(), cur.sum()
    if n1 <= 0 or n2 <= 0:
        return ref, cur
    share = min(n1, n2) / (n1 + n2)
    groups_r, groups_c, acc_r, acc_c = [], [], 0.0, 0.0
    for a, b in zip(ref, cur, strict=True):
        acc_r, acc_c = acc_r + a, acc_c + b
        if (acc_r + acc_c) * share >= min_expected:
            groups_r.append(acc_r)
            groups_c.append(acc_c)
            acc_r = acc_c = 0.0
    if acc_r + acc_c > 0:
        if groups_r:
            groups_r[-1] += acc_r
            groups_c[-1] += acc_c
        else:
            groups_r, groups_c = [acc_r], [acc_c]
    return np.asarray(groups_r), np.asarray(groups_c)


def chi_square(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[float, float]:
    """Chi-square two-sample test of homogeneity on the bins: ``(statistic, p_value)``.

    Builds the 2 x K contingency table ``[ref_counts, cur_counts]``, drops the bins
    that are empty on both sides, and computes Pearson's statistic
    ``sum (O - E)^2 / E`` with ``E = row_total * column_total / N`` and ``K - 1``
    degrees of freedom, without continuity correction. Matches
    ``scipy.stats.chi2_contingency(table, correction=False)``.

    The statistic grows with sample size; decide drift on the p-value
    (drift when ``p < threshold``). Identical proportions give ``(0.0, 1.0)``.
    Fewer than 2 non-empty bins leave nothing to compare and give ``(0.0, 1.0)``.
    No bins, or either side's counts all zero, give ``(nan, nan)``.
    """
    ref, cur = _counts(ref_counts, cur_counts)
    ref_total, cur_total = ref.sum(), cur.sum()
    if ref_total <= 0 or cur_total <= 0:
        return NAN, NAN
    keep = (ref + cur) > 0
    if np.count_nonzero(keep) < 2:
        return 0.0, 1.0
    observed = np.vstack([ref[keep], cur[keep]])
    column_totals = observed.sum(axis=0)
    expected = np.outer([ref_total, cur_total], column_totals) / (ref_total + cur_total)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    p_value = float(chi2.sf(statistic, observed.shape[1] - 1))
    return statistic, p_value


def wasserstein_from_quantiles(
    ref_q: ArrayLike, cur_q: ArrayLike, *, scale: float | None = None
) -> float:
    """Wasserstein-1 (earth mover's) distance from quantile functions.

    ``ref_q[i]`` and ``cur_q[i]`` are both sides' quantiles at the same
    probability ``u_i = i / (k - 1)``, ``i = 0 .. k-1`` (a uniform grid including
    0 = minimum and 1 = maximum, k >= 2). ``W1 = integral_0^1 |Q_ref(u) - Q_cur(u)| du``
    is computed with the trapezoid rule, i.e. the mean of ``|Q_ref - Q_cur|`` with
    the two end points weighted 1/2. With a fine grid (~1000 points) this is within
    a fraction of a percent of ``scipy.stats.wasserstein_distance`` on the samples.

    Normalisation: with ``scale=None`` the raw W1 is returned, in the column's
    units. With ``scale`` (the reference's standard deviation) the result is
    ``W1 / scale``, comparable across columns (Evidently's "normalised" distance,
    default threshold 0.1). When ``scale`` is 0 or NaN (a one-value reference, or
    a std that could not be computed; values below ``1e-12 * max(|ref mean|, 1)``
    count as 0, to absorb floating-point noise in Spark's stddev), the divisor
    falls back to ``max(|ref mean|, 1)``, with the
    reference mean taken as the trapezoid integral of ``ref_q``: a shift of the
    whole column by d from a constant c then scores ``d / max(|c|, 1)``.

    Range ``[0, inf)``, 0 for identical quantiles. Returns ``nan`` for empty
    arrays or when either side contains NaN (what Spark's percentile gives for an
    all-null column). Raises ``ValueError`` for mismatched lengths, a single
    grid point, infinite or decreasing quantiles, or a negative ``scale``.
    """
    ref = _vector(ref_q, "ref_q")
    cur = _vector(cur_q, "cur_q")
    _same_length(ref, cur, "quantiles")
    if scale is not None and float(scale) < 0:
        raise ValueError(f"scale must be >= 0, NaN or None, got {scale!r}")
    if ref.size == 0 or np.isnan(ref).any() or np.isnan(cur).any():
        return NAN
    if ref.size < 2:
        raise ValueError("need quantiles on at least 2 probabilities (0 and 1)")
    for name, arr in (("ref_q", ref), ("cur_q", cur)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains infinite quantiles")
        if np.any(np.diff(arr) < 0):
            raise ValueError(f"{name} must be non-decreasing (quantiles in probability order)")
    return _normalised(_trapezoid_mean(np.abs(ref - cur)), _trapezoid_mean(ref), scale)


def _normalised(distance: float, ref_mean: float, scale: float | None) -> float:
    """``distance / scale``, falling back to ``max(|ref_mean|, 1)`` for a zero or NaN scale."""
    if scale is None:
        return distance
    ref_mean_size = max(abs(ref_mean), 1.0)
    if float(scale) > 1e-12 * ref_mean_size:  # False for 0 and NaN
        return distance / float(scale)
    return distance / ref_mean_size


def _cdf_gaps(edges: ArrayLike, ref_counts: ArrayLike, cur_counts: ArrayLike):
    """``(edges, ref counts, n_ref, n_cur, F_r - F_c just below each edge)`` of counts on the bins
    ``(-inf, e_1), [e_1, e_2), ..., [e_K, inf)``; None when a side is empty or there are no edges."""
    e = _vector(edges, "edges")
    ref, cur = _counts(ref_counts, cur_counts)
    if ref.size != e.size + 1:
        raise ValueError(f"{e.size} edges need {e.size + 1} counts, got {ref.size}")
    n1, n2 = ref.sum(), cur.sum()
    if n1 <= 0 or n2 <= 0 or e.size == 0:
        return None
    return e, ref, n1, n2, np.cumsum(ref)[:-1] / n1 - np.cumsum(cur)[:-1] / n2


def wasserstein_from_bins(
    edges: ArrayLike, ref_counts: ArrayLike, cur_counts: ArrayLike,
    ref_tails: tuple[float, float], cur_tails: tuple[float, float], *, scale: float | None = None,
    ref_quantile=None,
) -> float:
    """Wasserstein-1 from exact counts on shared bins plus exact tail sums: ``integral |F_r - F_c| dx``.

    ``edges`` e_1 < ... < e_K; ``counts`` has K+1 bins ((-inf, e_1), [e_1, e_2), ...,
    [e_K, inf)). Between two edges the CDF difference is taken as linear between its
    values at the edges (exact where it is), integrated exactly including a sign
    change; with ``ref_quantile`` (the reference's quantile function, e.g. from its
    sketch) the difference is instead interpolated linearly in the reference's *rank*
    within each bin, which follows the density's shape inside wide tail bins. Beyond
    the outer edges the tails' sums (``tails[0]`` = sum of (e_1 - x) over
    x < e_1, ``tails[1]`` = sum of (x - e_K) over x >= e_K) give ``integral F dx`` below
    e_1 and ``integral (1 - F) dx`` above e_K exactly; their difference is the tails'
    part (a lower bound where the two CDFs cross in a tail). No sketch is involved, so
    the value has no sketch error at any n. ``scale`` normalises as in
    :func:`wasserstein_from_quantiles`, with the reference mean estimated from the bins.
    """
    binned = _cdf_gaps(edges, ref_counts, cur_counts)
    if binned is None:
        return NAN
    e, ref, n1, n2, d = binned
    widths = np.diff(e)
    a, b = d[:-1], d[1:]
    if ref_quantile is None:
        same = a * b >= 0
        inner = np.where(same, (np.abs(a) + np.abs(b)) / 2,
                         (a * a + b * b) / (2 * np.maximum(np.abs(a) + np.abs(b), 1e-300)))
        distance = float(np.sum(widths * inner))
    else:
        u = np.cumsum(ref)[:-1] / n1  # the reference's CDF just below each edge
        steps = 16
        t = np.linspace(0.0, 1.0, steps + 1)
        us = u[:-1, None] + (u[1:] - u[:-1])[:, None] * t[None, :]
        xs = np.asarray(ref_quantile(us.ravel().tolist()), dtype=float).reshape(us.shape)
        xs = np.clip(np.maximum.accumulate(xs, axis=1), e[:-1, None], e[1:, None])
        xs[:, 0], xs[:, -1] = e[:-1], e[1:]
        diff = a[:, None] + (b - a)[:, None] * t[None, :]
        mid = (np.abs(diff[:, 1:]) + np.abs(diff[:, :-1])) / 2
        distance = float(np.sum(mid * np.diff(xs, axis=1)))
    distance += abs(ref_tails[0] / n1 - cur_tails[0] / n2) + abs(ref_tails[1] / n1 - cur_tails[1] / n2)
    mids = np.concatenate([[e[0]], (e[:-1] + e[1:]) / 2, [e[-1]]])
    return _normalised(distance, float(np.dot(mids, ref) / n1), scale)


def wasserstein_weighted(
    ref_values: ArrayLike, ref_weights: ArrayLike, cur_values: ArrayLike, cur_weights: ArrayLike,
    *, scale: float | None = None,
) -> float:
    """Wasserstein-1 distance between two weighted samples, such as the items a KLL sketch keeps.

    Exact for the two weighted empirical distributions
    (``scipy.stats.wasserstein_distance`` with weights), so the whole range counts:
    drift confined to the top 0.2 % (sentinels, outliers) is seen, which a quantile
    grid without the end points misses. ``scale`` normalises as in
    :func:`wasserstein_from_quantiles`. Empty or all-zero-weight input gives NaN.
    """
    rv, rw = _vector(ref_values, "ref_values"), _vector(ref_weights, "ref_weights")
    cv, cw = _vector(cur_values, "cur_values"), _vector(cur_weights, "cur_weights")
    _same_length(rv, rw, "values and weights")
    _same_length(cv, cw, "values and weights")
    if rv.size == 0 or cv.size == 0 or rw.sum() <= 0 or cw.sum() <= 0:
        return NAN
    if scale is not None and float(scale) < 0:
        raise ValueError(f"scale must be >= 0, NaN or None, got {scale!r}")
    distance = float(wasserstein_distance(rv, cv, rw, cw))
    return _normalised(distance, float(np.average(rv, weights=rw)), scale)


def _trapezoid_mean(values: np.ndarray) -> float:
    """Integral over [0, 1] of values on a uniform grid with both end points."""
    return float((values.sum() - (values[0] + values[-1]) / 2.0) / (values.size - 1))


def energy_from_bins(
    edges: ArrayLike, ref_counts: ArrayLike, cur_counts: ArrayLike,
    ref_tails: tuple[float, float], cur_tails: tuple[float, float], *, scale: float | None = None,
) -> float:
    """The energy distance of two 1-D samples from exact counts on shared bins plus tail sums.

    In one dimension the energy distance is ``sqrt(2 * integral (F_r - F_c)^2 dx)`` (Szekely;
    ``scipy.stats.energy_distance``). Between edges the CDF difference is taken as linear, whose
    square integrates exactly (``w (a^2 + ab + b^2) / 3``); beyond the outer edges the difference
    at the edge times the tails' difference (``tails`` as in :func:`wasserstein_from_bins`), which
    is exact when the values beyond an edge sit at one point (a sentinel). ``scale`` normalises as
    in :func:`wasserstein_from_quantiles` (Evidently's "ed" is the raw distance; normalised by the
    reference's std it reads on every column alike: a mean shift of d standard deviations of a
    normal scores about 0.75 d).
    """
    binned = _cdf_gaps(edges, ref_counts, cur_counts)
    if binned is None:
        return NAN
    e, ref, n1, n2, d = binned
    a, b = d[:-1], d[1:]
    squared = float(np.sum(np.diff(e) * (a * a + a * b + b * b) / 3.0))
    squared += abs(d[0]) * abs(ref_tails[0] / n1 - cur_tails[0] / n2)
    squared += abs(d[-1]) * abs(ref_tails[1] / n1 - cur_tails[1] / n2)
    mids = np.concatenate([[e[0]], (e[:-1] + e[1:]) / 2, [e[-1]]])
    return _normalised(math.sqrt(2.0 * squared), float(np.dot(mids, ref) / n1), scale)
