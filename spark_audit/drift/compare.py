"""Compare two profiles column by column: the drift statistics of each feature.

Inputs are profiles, not data: histograms on the reference's bins (exact when
the window was profiled on those bins), CDFs and quantile functions read from
the KLL sketches. Nothing here touches Spark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spark_audit.catalog import DRIFT_KINDS  # noqa: F401  (re-exported: the one list is spark_audit.catalog)
from spark_audit.drift import stats
from spark_audit.drift.noise import ColumnNoise
from spark_audit.profile.state import Bins, ColumnProfile, TableProfile
from spark_audit.spec import DriftSpec, FeatureSpec

# extra reference-quantile edges in the tails: a flood of out-of-range values (sentinels) moves the
# exact counts of these narrow bins, which the evidence tests see at any sample size
TAIL_PROBS = (0.001, 0.01, 0.99, 0.999)


@dataclass(frozen=True)
class DriftResult:
    """One statistic of one column in one group.

    ``material``: the effect reaches the threshold (a distance >= threshold, or a
    test's p-value < threshold). ``p_value``: the evidence that the two samples
    differ beyond sampling noise at these sizes (for distances, the exact-count
    tests of ``evidence_p``; for chi2 / ks their own p-value), after the
    reference's overdispersion. ``q_value``: Benjamini-Hochberg across the audit,
    set by the audit. ``drifted`` = material and q <= the false discovery rate.
    ``noise``: the statistic's noise band at these sizes from the reference's own
    windows, when the reference kept them.
    """

    column: str
    kind: str
    statistic: str
    value: float
    p_value: float | None
    threshold: float
    drifted: bool
    critical: bool
    is_default: bool
    n_reference: int
    n_current: int
    material: bool = False
    q_value: float | None = None
    noise: float | None = None


def reference_bins(col: ColumnProfile, n_bins: int) -> Bins | None:
    """The bins a reference column defines: quantile edges (plus tail edges), or its top categories."""
    if col.kind == "numeric":
        probs = sorted({*(i / n_bins for i in range(1, n_bins)), *TAIL_PROBS})
        qs = col.quantiles(probs)
        if qs is None:
            return None
        edges = {float(q) for q in qs if math.isfinite(q)}
        # values below the reference's minimum or above its maximum get bins of their own, so a
        # change outside the reference's range (a constant that moves, a new extreme) is counted
        if col.min is not None and col.max is not None and math.isfinite(col.min) and math.isfinite(col.max):
            edges |= {float(col.min), float(np.nextafter(col.max, math.inf))}
        return Bins(counts=(), edges=tuple(sorted(edges)))
    if col.kind == "categorical":
        if not col.top:
            return None
        cats = sorted(col.top, key=lambda v: (-col.top[v], v))
        return Bins(counts=(), categories=tuple(cats))
    return None


def _boolean_counts(col: ColumnProfile) -> np.ndarray:
    return np.asarray([col.n_false, col.n_true], dtype=float)


def pair(ref: ColumnProfile, cur: ColumnProfile, scale: ColumnProfile | None = None) -> stats.Pair:
    """Everything a statistic may compare, read once from the two profiles: exact counts on the
    reference's bins (booleans as false/true counts), edges and tail sums, the reference's std and
    quantile function, and the sketches' weighted items. ``scale`` (default ``ref``) is the profile whose
    std normalises the distances and whose sketch shapes the counts within a bin: the whole reference
    when ``ref`` is one phase of it, so a threshold means the same on every day of the week."""
    if ref.kind == "boolean":
        return stats.Pair(_boolean_counts(ref), _boolean_counts(cur))
    scale = scale or ref
    rb, cb = ref.bins, cur.bins
    counts = (ref.histogram(rb), cur.histogram(rb)) if rb is not None else (None, None)
    exact = rb is not None and cb is not None and rb.same_bins(cb) and bool(rb.edges) and rb.tails and cb.tails
    sketch = scale.kll_sketch() if ref.kind == "numeric" else None
    items = (ref.kll_items(), cur.kll_items()) if ref.kind == "numeric" and not exact else (None, None)
    return stats.Pair(
        *counts, edges=tuple(rb.edges) if exact else None, ref_tails=rb.tails if exact else None,
        cur_tails=cb.tails if exact else None, ref_std=scale.std,
        ref_quantile=None if sketch is None else sketch.get_quantiles, ref_items=items[0], cur_items=items[1])


def _phi(info: stats.StatisticInfo, noise: ColumnNoise | None, n: float, m: float) -> float:
    if noise is None:
        return 1.0
    return noise.overdispersion("ks" if info.overdispersion == "ks" else "chi2", n, m)


def compute(statistic: str, ref: ColumnProfile, cur: ColumnProfile) -> tuple[float, float | None]:
    """``(value, p_value)`` of one statistic of ``cur`` against ``ref`` (independent rows)."""
    return stats.STATISTICS[statistic].evaluate(pair(ref, cur))


def evidence_p(ref: ColumnProfile, cur: ColumnProfile, phi: float = 1.0, phi_ks: float = 1.0) -> float:
    """The p-value that ``cur`` differs from ``ref`` beyond sampling noise, from exact counts.

    Chi-square homogeneity on the reference's bins (categories, or quantile bins with
    tail bins) and, for numbers, KS on the same counts; the smaller p-value, doubled
    (Bonferroni over the two tests). ``phi`` is the reference's overdispersion
    (``spark_audit.drift.noise``) for chi-square, ``phi_ks`` for KS. NaN when there are no
    exact counts to test.
    """
    return _evidence(pair(ref, cur), ref.kind, phi, phi_ks)


def _evidence(data: stats.Pair, kind: str, phi: float, phi_ks: float) -> float:
    ref, cur = data.ref_counts, data.cur_counts
    if ref is None or cur is None or ref.sum() <= 0 or cur.sum() <= 0:
        return math.nan
    p = stats.chi_square_pvalue(ref, cur, phi=phi)
    if kind == "numeric":
        _, p_ks = stats.ks_from_counts(ref, cur, phi=phi_ks)
        p = min(1.0, 2 * min(p, p_ks))
    return float(p)


def _applies(stat: str, kind: str) -> bool:
    return stats.STATISTICS[stat].applies(kind)


def compare_column(
    ref: ColumnProfile, cur: ColumnProfile, feature: FeatureSpec, drift: DriftSpec, noise: ColumnNoise | None = None,
    *, fdr: float = 0.05, scale: ColumnProfile | None = None,
) -> list[DriftResult]:
    """Every statistic asked for this column; the deciding one has ``is_default``.

    A statistic drifted when its effect is material (the threshold), its value lies beyond the noise band
    the reference's own windows give at these sizes (``noise``), and the exact-count evidence, its
    statistic divided by the reference's overdispersion at these sizes, is within ``fdr``. ``drifted``
    here is decided on the unadjusted p-value; an audit replaces it with the decision on the
    Benjamini-Hochberg q-value across all its tests. ``scale``: see :func:`pair`.
    """
    kind = ref.kind
    if kind not in DRIFT_KINDS or cur.kind != kind:
        return []  # a column whose kind changed is a schema finding, not a distribution to compare
    n_ref, n_cur = ref.sample_size, cur.sample_size
    dkind = "categorical" if kind == "boolean" else kind
    default_stat, default_thr = stats.default_statistic(dkind, n_ref, n_cur)
    main = feature.drift.statistic or default_stat
    if not _applies(main, kind):  # the spec refuses this before any scan (spark_audit.spec)
        raise ValueError(f"statistic {main!r} does not apply to {kind} column {ref.name!r}")
    main_thr = feature.drift.threshold
    if main_thr is None:
        main_thr = default_thr if main == default_stat else stats.STATISTICS[main].threshold
    wanted = [(main, main_thr, True)] + [
        (s, stats.STATISTICS[s].threshold, False) for s in drift.statistics if s != main and _applies(s, kind)
    ]
    phi = noise.overdispersion("chi2", n_cur, n_ref) if noise is not None else 1.0
    phi_ks = noise.overdispersion("ks", n_cur, n_ref) if noise is not None else 1.0
    data = pair(ref, cur, scale)
    evidence = _evidence(data, ref.kind, phi, phi_ks) if n_ref > 0 and n_cur > 0 else math.nan
    out = []
    for name, thr, is_default in wanted:
        info = stats.STATISTICS[name]
        value, p = info.evaluate(data, _phi(info, noise, n_cur, n_ref))
        alive = n_cur > 0 and n_ref > 0
        material = bool(alive and stats.is_drifted(name, value, p, thr))
        p_evidence = p if info.is_test else evidence
        if not info.is_test and noise is not None and math.isfinite(value):
            # and beyond what the reference's own windows give at these sizes (a fitted tail, not just a band)
            tail = noise.tail_p(name, value, n_cur, n_ref)
            if math.isfinite(tail) and p_evidence is not None and math.isfinite(p_evidence):
                p_evidence = max(p_evidence, tail)
        if info.higher_is_drift:
            critical = material and value >= thr * drift.critical_factor
        else:
            # p-values shrink with sample size, not only with effect: critical takes orders of magnitude
            critical = material and p is not None and p < thr / 10**drift.critical_factor
        band = noise.band(name, n_cur, n_ref) if noise is not None else None
        beyond = band is None or not math.isfinite(value) or value > band
        drifted = material and beyond and p_evidence is not None and math.isfinite(p_evidence) and p_evidence <= fdr
        out.append(DriftResult(ref.name, kind, name, value, p_evidence, thr, bool(drifted), bool(critical and drifted),
                               is_default, n_ref, n_cur, material=material, noise=band))
    return out


def compare_profiles(
    ref: TableProfile, cur: TableProfile, features: tuple[FeatureSpec, ...], drift: DriftSpec,
    noise: dict[str, ColumnNoise] | None = None, scale: TableProfile | None = None,
) -> list[DriftResult]:
    """``compare_column`` for every feature both profiles have; ``scale`` (default ``ref``) normalises."""
    out: list[DriftResult] = []
    for f in features:
        if f.name in ref.columns and f.name in cur.columns:
            by = scale.columns.get(f.name) if scale is not None else None
            out += compare_column(ref.columns[f.name], cur.columns[f.name], f, drift, (noise or {}).get(f.name),
                                  scale=by)
    return out


def dataset_verdict(
    decided: dict[str, bool], features: tuple[FeatureSpec, ...], share_threshold: float
) -> tuple[int, int, float, bool]:
    """(columns, drifted columns, importance-weighted drifted share, dataset drifted) from each column's
    decision (``{column: drifted}``, the deciding statistic's)."""
    weights = {f.name: f.importance for f in features if f.name in decided}
    share, drifted = stats.dataset_drift(decided, weights=weights, share_threshold=share_threshold)
    return len(decided), sum(decided.values()), float(share), bool(drifted)
