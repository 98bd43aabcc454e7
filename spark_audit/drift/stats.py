"""The drift statistics' registry, defaults and decisions, on small summaries Spark has already computed
(no Spark here).

The formulas live beside their kin: distances in ``spark_audit.drift.distances`` (which also
describes the three summaries they take and their conventions on empty and bad input), the
two-sample tests and the Benjamini-Hochberg adjustment in ``spark_audit.drift.pvalues``; they are
exported from here too, as the statistics' one public face.

The registry ``STATISTICS`` (filled by ``register_statistic``, one call per statistic)
says, per statistic, which column kinds it applies to, which input it needs, its
default threshold and in which direction it signals drift; ``default_statistic``
picks the statistic per column like Evidently does, ``is_drifted`` applies a
threshold and ``dataset_drift`` aggregates columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import energy_distance

__all__ = [
    "STATISTICS",
    "Pair",
    "StatisticInfo",
    "register_statistic",
    "chi_square",
    "energy_from_bins",
    "dataset_drift",
    "default_statistic",
    "hellinger",
    "is_drifted",
    "benjamini_hochberg",
    "chi_square_pvalue",
    "pool_sparse_bins",
    "jensen_shannon",
    "ks_from_cdfs",
    "ks_from_counts",
    "linf",
    "psi",
    "total_variation",
    "wasserstein_from_bins",
    "wasserstein_from_quantiles",
    "wasserstein_weighted",
]

from spark_audit.drift.distances import (
    NAN,
    _normalised,
    chi_square,
    energy_from_bins,
    hellinger,
    jensen_shannon,
    linf,
    pool_sparse_bins,
    psi,
    total_variation,
    wasserstein_from_bins,
    wasserstein_from_quantiles,
    wasserstein_weighted,
)
from spark_audit.drift.pvalues import benjamini_hochberg, chi_square_pvalue, ks_from_cdfs, ks_from_counts

Kind = Literal["numeric", "categorical"]
Input = Literal["bins", "pair"]


# ---------------------------------------------------------------------------
# Registry, defaults and decisions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """What a statistic compares: the reference and the current side on the reference's bins.

    ``ref_counts``/``cur_counts`` are exact counts on the same bins (numeric quantile bins with
    tail bins, or categories plus an "other" bucket); ``edges`` are the numeric bins' inner edges
    and ``ref_tails``/``cur_tails`` the exact tail sums beyond the outer edges; ``ref_std`` is the
    reference's standard deviation (for normalised distances) and ``ref_quantile`` its quantile
    function (from its sketch). Without exact bins, ``ref_items``/``cur_items`` are the weighted
    ``(values, weights)`` two sketches keep. Any of these may be None when the profiles lack it.
    """

    ref_counts: np.ndarray | None = None
    cur_counts: np.ndarray | None = None
    edges: tuple[float, ...] | None = None
    ref_tails: tuple[float, float] | None = None
    cur_tails: tuple[float, float] | None = None
    ref_std: float | None = None
    ref_quantile: Callable[[list[float]], Any] | None = None
    ref_items: tuple[np.ndarray, np.ndarray] | None = None
    cur_items: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class StatisticInfo:
    """What a drift statistic needs and how its value is read.

    ``threshold`` is the default threshold. ``higher_is_drift`` is True for
    distances (drift when ``value >= threshold``) and False for tests decided on
    their p-value (drift when ``p < threshold``).
    ``needs`` says how ``fn`` is called: ``"bins"`` as ``fn(ref_counts, cur_counts)``
    on exact aligned counts; ``"pair"`` as ``fn(pair)`` with the whole :class:`Pair`.
    ``fn`` returns the value, or ``(value, p_value)`` for a test.
    """

    name: str
    kinds: frozenset[Kind]
    higher_is_drift: bool
    threshold: float
    needs: Input
    # how the statistic's value under no drift shrinks with the sample sizes n and m:
    # "sqrt" ~ sqrt(1/n + 1/m) (distances), "linear" ~ (1/n + 1/m) (PSI, a divergence),
    # None for tests decided on a p-value
    null_scale: Literal["sqrt", "linear"] | None = None
    fn: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    # a test's p-value is read with its statistic divided by the reference's window-to-window
    # overdispersion: the chi-square one ("chi2", for tests on counts) or the KS one ("ks"); a distance's
    # noise band is rescaled with the same family's between-window variance (``spark_audit.drift.noise``)
    overdispersion: Literal["chi2", "ks"] = "chi2"

    @property
    def is_test(self) -> bool:
        """A test decided on its p-value (its value is not a distance)."""
        return not self.higher_is_drift

    def applies(self, kind: str) -> bool:
        """Whether the statistic compares columns of ``kind`` (a boolean is a two-category column)."""
        return kind in self.kinds or (kind == "boolean" and "categorical" in self.kinds)

    def noise_scale(self, n: float, m: float) -> float:
        """The factor by which this statistic's no-drift value scales at sample sizes n and m."""
        if self.null_scale is None or n <= 0 or m <= 0:
            return NAN
        v = 1.0 / n + 1.0 / m
        return math.sqrt(v) if self.null_scale == "sqrt" else v

    def evaluate(self, pair: Pair, phi: float = 1.0) -> tuple[float, float | None]:
        """``(value, p_value)`` on ``pair``; NaN when the pair lacks what it needs. A test gets the
        overdispersion ``phi`` (>= 1) as a keyword."""
        extra = {"phi": phi} if self.is_test else {}
        if self.needs == "bins":
            if pair.ref_counts is None or pair.cur_counts is None:
                return NAN, (NAN if self.is_test else None)
            out = self.fn(pair.ref_counts, pair.cur_counts, **extra)
        else:
            out = self.fn(pair, **extra)
        if isinstance(out, tuple):
            return float(out[0]), float(out[1])
        return float(out), None


STATISTICS: dict[str, StatisticInfo] = {}
"""The one registry of drift statistics: the spec's allowed names, dispatch and defaults come from it."""


def register_statistic(name: str, fn: Callable[..., Any], *, kinds: Iterable[Kind], higher_is_drift: bool,
                       threshold: float, needs: Input = "bins",
                       null_scale: Literal["sqrt", "linear"] | None = None,
                       overdispersion: Literal["chi2", "ks"] = "chi2") -> StatisticInfo:
    """Add a drift statistic (Evidently's ``register_stattest``): the spec accepts its name at once,
    and the audit computes it for every column of a kind it applies to. ``fn`` is called as
    :class:`StatisticInfo` says for ``needs``; a test (``higher_is_drift=False``) returns
    ``(statistic, p_value)`` and takes the keyword ``phi``."""
    if name in STATISTICS:
        raise ValueError(f"drift statistic {name!r} is already registered")
    info = StatisticInfo(name, frozenset(kinds), higher_is_drift, float(threshold), needs, null_scale, fn,
                         overdispersion)
    STATISTICS[name] = info
    return info


def _wasserstein_pair(pair: Pair) -> float:
    """W1 normalised by the reference std: from the exact counts on the reference's bins and the
    exact tail sums when both sides have them (no sketch error); else between the weighted items
    two KLL sketches keep. Either way the whole range counts, tails included."""
    if pair.edges and pair.ref_tails and pair.cur_tails and pair.ref_counts is not None:
        return wasserstein_from_bins(pair.edges, pair.ref_counts, pair.cur_counts, pair.ref_tails,
                                     pair.cur_tails, scale=pair.ref_std or 0.0, ref_quantile=pair.ref_quantile)
    if pair.ref_items is None or pair.cur_items is None:
        return NAN
    return wasserstein_weighted(*pair.ref_items, *pair.cur_items, scale=pair.ref_std or 0.0)


_BOTH: frozenset[Kind] = frozenset({"numeric", "categorical"})
_NUMERIC: frozenset[Kind] = frozenset({"numeric"})

# Default thresholds, the *material* effect size (a finding also needs evidence beyond
# sampling noise, see spark_audit.drift.compare): Evidently's defaults for psi and
# hellinger (0.1), chi2 and ks (p-value 0.05) and normalised wasserstein (0.1).
# JS: ours is the Jensen-Shannon *distance* in base 2 (range [0, 1]); Evidently's 0.1 is
# the distance in natural log (scipy's default base), and d_2 = d_e / sqrt(ln 2), so
# Evidently's 0.1 is 0.1 / sqrt(ln 2) = 0.120 here. tv and linf have no common default
# and use 0.1 like the other bounded distances.
JS_THRESHOLD = 0.1 / math.sqrt(math.log(2.0))
register_statistic("psi", psi, kinds=_BOTH, higher_is_drift=True, threshold=0.1, null_scale="linear")
register_statistic("js", jensen_shannon, kinds=_BOTH, higher_is_drift=True, threshold=round(JS_THRESHOLD, 3),
                   null_scale="sqrt")
register_statistic("hellinger", hellinger, kinds=_BOTH, higher_is_drift=True, threshold=0.1, null_scale="sqrt")
register_statistic("tv", total_variation, kinds=_BOTH, higher_is_drift=True, threshold=0.1, null_scale="sqrt")
register_statistic("linf", linf, kinds=_BOTH, higher_is_drift=True, threshold=0.1, null_scale="sqrt")


def _energy_pair(pair: Pair) -> float:
    """Normalised energy distance on the exact bins and tail sums; without them, between the weighted
    items two KLL sketches keep (``scipy.stats.energy_distance`` with weights), like wasserstein."""
    if not (pair.edges and pair.ref_tails and pair.cur_tails and pair.ref_counts is not None):
        if pair.ref_items is None or pair.cur_items is None or pair.ref_items[1].sum() <= 0 \
                or pair.cur_items[1].sum() <= 0:
            return NAN
        (rv, rw), (cv, cw) = pair.ref_items, pair.cur_items
        return _normalised(float(energy_distance(rv, cv, rw, cw)), float(np.average(rv, weights=rw)),
                           pair.ref_std or 0.0)
    return energy_from_bins(pair.edges, pair.ref_counts, pair.cur_counts, pair.ref_tails, pair.cur_tails,
                            scale=pair.ref_std or 0.0)


def _chi2_test(ref_counts: ArrayLike, cur_counts: ArrayLike, *, phi: float = 1.0) -> tuple[float, float]:
    """Pearson's statistic, with the p-value read on pooled sparse bins and divided by ``phi``."""
    return chi_square(ref_counts, cur_counts)[0], chi_square_pvalue(ref_counts, cur_counts, phi=phi)


register_statistic("chi2", _chi2_test, kinds=_BOTH, higher_is_drift=False, threshold=0.05)
# KS on the exact counts of the reference's bins (not on two KLL sketches, whose rank error
# does not shrink with n and made every large window "drift")
register_statistic("ks", ks_from_counts, kinds=_NUMERIC, higher_is_drift=False, threshold=0.05,
                   overdispersion="ks")
# the CDF distances' noise follows KS's between-window variance (``spark_audit.drift.noise``)
register_statistic("wasserstein", _wasserstein_pair, kinds=_NUMERIC, higher_is_drift=True, threshold=0.1,
                   needs="pair", null_scale="sqrt", overdispersion="ks")
# Evidently's "ed" (threshold 0.1), normalised by the reference std like wasserstein
register_statistic("energy", _energy_pair, kinds=_NUMERIC, higher_is_drift=True, threshold=0.1, needs="pair",
                   null_scale="sqrt", overdispersion="ks")

SMALL_SAMPLE = 1000
"""Sample size up to which the default is a p-value test (Evidently's cut-off)."""


def default_statistic(kind: str, n_ref: int, n_cur: int) -> tuple[str, float]:
    """Default ``(statistic, threshold)`` for a column, after Evidently's scheme.

    Evidently's default drift method (docs "Data drift algorithm"):

    * small data: a two-sample test decided on its p-value at 0.05 -
      numeric -> ``("ks", 0.05)``, categorical -> ``("chi2", 0.05)``;
    * larger data: a distance with threshold 0.1 -
      numeric -> ``("wasserstein", 0.1)`` (W1 normalised by the reference std),
      categorical -> ``("js", 0.1)`` (Jensen-Shannon distance).

    Data is "small" here when both ``n_ref`` and ``n_cur`` are <= 1000.
    Differences from Evidently: Evidently keys on the reference size alone
    (``len(reference) <= 1000``), so a small reference with a current batch over
    1000 gets ks/chi2 there and wasserstein/js here; a numeric column with <= 5
    distinct values is treated by Evidently as categorical - callers that want
    that pass ``kind="categorical"``; for binary categoricals Evidently uses a
    two-proportion z-test, which is the same test as the 2-bin chi2 here
    (z^2 = chi2).

    Raises ``ValueError`` for an unknown ``kind`` or negative sample sizes.
    """
    if kind not in _BOTH:
        raise ValueError(f"kind must be 'numeric' or 'categorical', got {kind!r}")
    if n_ref < 0 or n_cur < 0:
        raise ValueError(f"sample sizes must be >= 0, got n_ref={n_ref}, n_cur={n_cur}")
    if n_ref <= SMALL_SAMPLE and n_cur <= SMALL_SAMPLE:
        name = "ks" if kind == "numeric" else "chi2"
    else:
        name = "wasserstein" if kind == "numeric" else "js"
    return name, STATISTICS[name].threshold


def is_drifted(stat_name: str, value: float, p_value: float | None, threshold: float) -> bool:
    """Whether a column drifted by one statistic.

    Distances (``higher_is_drift``) drift when ``value >= threshold``; p-value
    tests (chi2, ks) drift when ``p_value < threshold`` (as in Evidently).
    A NaN ``value`` (empty input) or NaN ``p_value`` is never drift.
    Raises ``ValueError`` for an unknown statistic, a NaN threshold, or a
    p-value test given ``p_value=None``.
    """
    info = STATISTICS.get(stat_name)
    if info is None:
        raise ValueError(f"unknown drift statistic {stat_name!r}; known: {sorted(STATISTICS)}")
    if math.isnan(threshold):
        raise ValueError(f"threshold for {stat_name!r} is NaN")
    if math.isnan(value):
        return False
    if info.higher_is_drift:
        return value >= threshold
    if p_value is None:
        raise ValueError(f"{stat_name!r} is decided on its p-value, but p_value is None")
    return not math.isnan(p_value) and p_value < threshold


def dataset_drift(
    drifted: dict[str, bool],
    *,
    weights: dict[str, float] | None = None,
    share_threshold: float = 0.5,
) -> tuple[float, bool]:
    """Share of drifted columns and whether the dataset drifted: ``(share, drift)``.

    ``share = sum(w_c for drifted c) / sum(w_c)`` over the columns in ``drifted``,
    and the dataset drifted when ``share >= share_threshold`` (Evidently's
    ``drift_share``, default 0.5), allowing 1e-12 for rounding so that e.g. a
    weighted share that is exactly 0.5 on paper is not lost. Without ``weights``
    every column weighs 1. ``weights`` (e.g. feature importances) may be on any
    scale; a column missing from ``weights`` gets the mean of the weights given
    for the other columns (1 if none is given), so the share does not depend on
    how importances are normalised. Weights for columns not in ``drifted`` are
    ignored.

    No columns, or a total weight of 0, give ``(0.0, False)``. Raises
    ``ValueError`` for negative or non-finite weights or ``share_threshold``
    outside [0, 1].
    """
    if not 0.0 <= share_threshold <= 1.0:
        raise ValueError(f"share_threshold must be in [0, 1], got {share_threshold!r}")
    given = {c: float(w) for c, w in (weights or {}).items() if c in drifted}
    bad = {c: w for c, w in given.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"weights must be finite and >= 0, got {bad}")
    fill = sum(given.values()) / len(given) if given else 1.0
    column_weights = {c: given.get(c, fill) for c in drifted}
    total = sum(column_weights.values())
    if total <= 0:
        return 0.0, False
    share = sum(w for c, w in column_weights.items() if drifted[c]) / total
    return share, share >= share_threshold - 1e-12
