"""Compare two profiles column by column: the drift statistics of each feature.

Inputs are profiles, not data: histograms on the reference's bins (exact when
the window was profiled on those bins), CDFs and quantile functions read from
the KLL sketches. Nothing here touches Spark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spark_audit.drift import stats
from spark_audit.profile.state import Bins, ColumnProfile, TableProfile
from spark_audit.spec import DriftSpec, FeatureSpec

DRIFT_KINDS = ("numeric", "categorical", "boolean")
_QUANTILE_GRID = [(i + 0.5) / 200 for i in range(200)]
_CDF_PROBS = [i / 100 for i in range(1, 100)]


@dataclass(frozen=True)
class DriftResult:
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


def reference_bins(col: ColumnProfile, n_bins: int) -> Bins | None:
    """The bins a reference column defines: quantile edges, or its top categories."""
    if col.kind == "numeric":
        qs = col.quantiles([i / n_bins for i in range(1, n_bins)])
        if qs is None:
            return None
        edges = sorted({float(q) for q in qs if math.isfinite(q)})
        return Bins(counts=(), edges=tuple(edges))
    if col.kind == "categorical":
        if not col.top:
            return None
        cats = sorted(col.top, key=lambda v: (-col.top[v], v))
        return Bins(counts=(), categories=tuple(cats))
    return None


def _boolean_counts(col: ColumnProfile) -> np.ndarray:
    return np.asarray([col.n_false, col.n_true], dtype=float)


def _bins_input(ref: ColumnProfile, cur: ColumnProfile) -> tuple[np.ndarray, np.ndarray] | None:
    if ref.kind == "boolean":
        return _boolean_counts(ref), _boolean_counts(cur)
    bins = ref.bins
    if bins is None:
        return None
    return ref.histogram(bins), cur.histogram(bins)


def _cdf_input(ref: ColumnProfile, cur: ColumnProfile):
    rq, cq = ref.quantiles(_CDF_PROBS), cur.quantiles(_CDF_PROBS)
    if rq is None or cq is None:
        return None
    grid = sorted(set(rq) | set(cq))
    return np.asarray(ref.cdf(grid)), np.asarray(cur.cdf(grid))


def _bin_stat(fn: Callable) -> Callable:
    def run(ref: ColumnProfile, cur: ColumnProfile):
        data = _bins_input(ref, cur)
        if data is None:
            return math.nan, None
        out = fn(*data)
        return (float(out[0]), float(out[1])) if isinstance(out, tuple) else (float(out), None)

    return run


def _ks(ref: ColumnProfile, cur: ColumnProfile):
    data = _cdf_input(ref, cur)
    if data is None:
        return math.nan, math.nan
    stat, p = stats.ks_from_cdfs(data[0], data[1], ref.n_finite, cur.n_finite)
    return float(stat), float(p)


def _wasserstein(ref: ColumnProfile, cur: ColumnProfile):
    rq, cq = ref.quantiles(_QUANTILE_GRID), cur.quantiles(_QUANTILE_GRID)
    if rq is None or cq is None:
        return math.nan, None
    return float(stats.wasserstein_from_quantiles(np.asarray(rq), np.asarray(cq), scale=ref.std or 0.0)), None


COMPUTE: dict[str, Callable] = {
    "psi": _bin_stat(stats.psi),
    "js": _bin_stat(stats.jensen_shannon),
    "hellinger": _bin_stat(stats.hellinger),
    "tv": _bin_stat(stats.total_variation),
    "linf": _bin_stat(stats.linf),
    "chi2": _bin_stat(stats.chi_square),
    "ks": _ks,
    "wasserstein": _wasserstein,
}


def _applies(stat: str, kind: str) -> bool:
    kinds = stats.STATISTICS[stat].kinds
    return kind in kinds or (kind == "boolean" and "categorical" in kinds)


def _sample_size(col: ColumnProfile) -> int:
    if col.kind == "numeric":
        return col.n_finite
    return col.non_null


def compare_column(
    ref: ColumnProfile, cur: ColumnProfile, feature: FeatureSpec, drift: DriftSpec
) -> list[DriftResult]:
    """Every statistic asked for this column; the deciding one has ``is_default``."""
    kind = ref.kind
    if kind not in DRIFT_KINDS:
        return []
    n_ref, n_cur = _sample_size(ref), _sample_size(cur)
    dkind = "categorical" if kind == "boolean" else kind
    default_stat, default_thr = stats.default_statistic(dkind, n_ref, n_cur)
    main = feature.drift.statistic or default_stat
    if not _applies(main, kind):
        from spark_audit.errors import SpecError

        raise SpecError(f"statistic {main!r} does not apply to {kind} column {ref.name!r}",
                        key=f"features[{ref.name}].drift.statistic")
    main_thr = feature.drift.threshold
    if main_thr is None:
        main_thr = default_thr if main == default_stat else stats.STATISTICS[main].threshold
    wanted = [(main, main_thr, True)] + [
        (s, stats.STATISTICS[s].threshold, False) for s in drift.statistics if s != main and _applies(s, kind)
    ]
    out = []
    for name, thr, is_default in wanted:
        value, p = COMPUTE[name](ref, cur)
        drifted = bool(n_cur > 0 and n_ref > 0 and stats.is_drifted(name, value, p, thr))
        if stats.STATISTICS[name].higher_is_drift:
            critical = drifted and value >= thr * drift.critical_factor
        else:
            # p-values shrink with sample size, not only with effect: critical takes orders of magnitude
            critical = drifted and p is not None and p < thr / 10**drift.critical_factor
        out.append(DriftResult(ref.name, kind, name, value, p, thr, drifted, bool(critical), is_default, n_ref, n_cur))
    return out


def compare_profiles(
    ref: TableProfile, cur: TableProfile, features: tuple[FeatureSpec, ...], drift: DriftSpec
) -> list[DriftResult]:
    out: list[DriftResult] = []
    for f in features:
        if f.name in ref.columns and f.name in cur.columns:
            out += compare_column(ref.columns[f.name], cur.columns[f.name], f, drift)
    return out


def dataset_verdict(
    results: list[DriftResult], features: tuple[FeatureSpec, ...], share_threshold: float
) -> tuple[int, int, float, bool]:
    decided = {r.column: r.drifted for r in results if r.is_default}
    weights = {f.name: f.importance for f in features if f.name in decided}
    share, drifted = stats.dataset_drift(decided, weights=weights, share_threshold=share_threshold)
    return len(decided), sum(decided.values()), float(share), bool(drifted)
