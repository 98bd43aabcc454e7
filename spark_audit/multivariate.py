"""Multivariate drift: PCA reconstruction error (NannyML's method), in the same scan, no UDF.

Joint drift keeps every marginal and changes how features move together (income
decorrelated from age): no column-by-column statistic sees it. Here:

* **Reference.** The numeric features (at most ``MAX_FEATURES``, the most important
  first) are standardised by the reference's means and standard deviations (a missing
  value counts as the mean: 0). The reference's one windowed aggregation adds their
  mergeable cross-moment sums ``sum z_i z_j``; their merge over all windows is the
  correlation matrix, whose leading principal components covering ``VARIANCE_SHARE`` of
  the variance are kept. Each reference window's mean reconstruction error follows from
  its own cross-moments, ``tr((I - P P^T) S_w) / n_w``, with no second pass: that is
  the reference's own window-to-window band.
* **Audit.** Each row's reconstruction error ``sum_j z_j^2 - sum_k (p_k . z)^2`` is a
  plain column expression; its sum and sum of squares join the audit's aggregation. A
  window's mean error is material when it leaves the reference windows' band (mean +
  3 sd, NannyML's rule) and has evidence when it is beyond sampling error too.

The cost is bounded: p (p + 1) / 2 sums at reference time only, and two sums of one
expression with p + k p multiplications per row in an audit, p <= 20.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy.linalg import null_space
from scipy.stats import norm

from spark_audit.findings import Candidate, Finding
from spark_audit.names import col as _c
from spark_audit.profile.arrow_scan import Extra
from spark_audit.profile.profiler import GroupResult
from spark_audit.profile.state import TableProfile
from spark_audit.scan import ScanPart

MAX_FEATURES = 20
VARIANCE_SHARE = 0.9
BAND_SDS = 3.0
M, R = "m__", "r__"


def pca_features(features: Sequence[Any], ref: TableProfile) -> list[str]:
    """Numeric features with a usable spread, the most important first, at most MAX_FEATURES."""
    usable = [f for f in features if f.name in ref.columns and ref.columns[f.name].kind == "numeric"
              and (ref.columns[f.name].std or 0) > 0 and ref.columns[f.name].mean is not None]
    usable.sort(key=lambda f: -f.importance)
    return [f.name for f in usable[:MAX_FEATURES]]


def _z(name: str, mean: float, std: float) -> Column:
    x = _c(name).cast("double")
    ok = x.isNotNull() & ~F.isnan(x) & (F.abs(x) != F.lit(float("inf")))
    return F.when(ok, (x - F.lit(mean)) / F.lit(std)).otherwise(F.lit(0.0))


def cross_moment_exprs(names: Sequence[str], means: Sequence[float], stds: Sequence[float]) -> list[Column]:
    """``sum z_i z_j`` for i <= j, mergeable by adding."""
    z = [_z(n, m, s) for n, m, s in zip(names, means, stds, strict=True)]
    return [F.sum(z[i] * z[j]).alias(f"{M}{i}_{j}") for i in range(len(z)) for j in range(i, len(z))]


def moments_of(group: GroupResult, p: int) -> np.ndarray:
    """The group's p x p cross-moment matrix (its finest rows' sums added)."""
    s = np.zeros((p, p))
    state = group.states["m"]
    for i in range(p):
        for j in range(i, p):
            s[i, j] = float(state.get(f"{M}{i}_{j}") or 0.0)
    return np.triu(s) + np.triu(s, 1).T


def fit(s: np.ndarray, n: int, share: float = VARIANCE_SHARE) -> np.ndarray:
    """Principal components (rows) of the standardised features covering ``share`` of the variance."""
    cov = s / max(n, 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0, None), vectors[:, order]
    total = values.sum()
    if total <= 0:
        return np.zeros((0, s.shape[0]))
    k = int(np.searchsorted(np.cumsum(values) / total, share - 1e-12) + 1)
    return vectors[:, :k].T


def window_error(s: np.ndarray, n: int, components: np.ndarray) -> float:
    """Mean reconstruction error of a window from its cross-moments: tr((I - P^T P) S) / n."""
    if n <= 0:
        return math.nan
    kept = float(np.sum((components @ s) * components))  # sum_k p_k^T S p_k
    return (float(np.trace(s)) - kept) / n


def reference_extras(names: list[str], means: list[float], stds: list[float],
                     windows: Sequence[GroupResult], total: GroupResult,
                     phases: Sequence[int] | None = None) -> dict[str, Any]:
    """What a reference keeps for the multivariate check: the components, its windows' errors (and their
    phases, with a cycle) and the pooled spread of those errors; ``{"pca": {"skipped": reason}}`` when
    the check would be degenerate (no component left out, or no reconstruction error to compare)."""
    p = len(names)
    if p < 2:
        return {}
    s, n = moments_of(total, p), total.profile.row_count
    components = fit(s, n)
    k = components.shape[0]
    if k >= p:
        return {"pca": {"skipped": f"{k} components of {p} features keep {VARIANCE_SHARE:.0%} of their variance: "
                                   "no direction is left out, so there is no reconstruction error to watch"}}
    total_error = window_error(s, n, components)
    if not total_error > 1e-9:
        return {"pca": {"skipped": f"the reference's rows lie in the {k}-dimensional subspace of its components "
                                   f"(reconstruction error {total_error:.2g}): nothing to compare with"}}
    pca = {"features": names, "means": means, "stds": stds, "components": components.tolist(),
           "total_error": total_error, "corr": correlation(s, np.zeros(p), n).tolist()}
    return {"pca": {**pca, **_window_band(pca, windows, phases)}}


def _window_band(pca: dict[str, Any], windows: Sequence[GroupResult], phases: Sequence[int] | None) -> dict[str, Any]:
    """The windows' reconstruction errors, their phases (with a cycle), and their spread pooled within phases."""
    p = len(pca["features"])
    components = np.asarray(pca["components"], dtype=float).reshape(-1, p)
    errors = [window_error(moments_of(w, p), w.profile.row_count, components) for w in windows]
    keep = [i for i, e in enumerate(errors) if math.isfinite(e)]
    out: dict[str, Any] = {"window_errors": [errors[i] for i in keep]}
    groups = [phases[i] for i in keep] if phases is not None else [0] * len(keep)
    if phases is not None:
        out["window_phases"] = groups
    dev, df = 0.0, 0
    for g in set(groups):
        e = np.asarray([errors[i] for i, x in zip(keep, groups, strict=True) if x == g])
        if len(e) >= 2:
            dev += float(np.sum((e - e.mean()) ** 2))
            df += len(e) - 1
    out["pooled_sd"] = math.sqrt(dev / df) if df else None
    return out


def slice_extras(pca: dict[str, Any], windows: Sequence[GroupResult],
                 phases: Sequence[int] | None = None) -> dict[str, Any]:
    """A slice's reference: the overall PCA, with the band of the slice's own windows (a slice may sit
    further from the overall subspace than the whole table does, and steadily so)."""
    return {"pca": {**pca, **_window_band(pca, windows, phases)}}


def correlation(s: np.ndarray, sums: np.ndarray, n: int) -> np.ndarray:
    """Pearson correlations of the standardised features from their cross-moment sums ``s`` and sums."""
    if n < 2:
        return np.full(s.shape, np.nan)
    mean = sums / n
    cov = s / n - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / np.outer(sd, sd)


def window_correlation(df: DataFrame, pca: dict[str, Any]) -> np.ndarray:
    """The correlations of the PCA features in ``df`` (one window's rows): one small aggregation, run only
    for a window whose multivariate drift is a finding, to name the pair that changed."""
    names, means, stds = pca["features"], pca["means"], pca["stds"]
    z = [_z(n, m, s) for n, m, s in zip(names, means, stds, strict=True)]
    row = df.agg(F.count(F.lit(1)).alias("n"), *[F.sum(zi).alias(f"s{i}") for i, zi in enumerate(z)],
                 *cross_moment_exprs(names, means, stds)).first()
    p = len(names)
    s = np.zeros((p, p))
    for i in range(p):
        for j in range(i, p):
            s[i, j] = s[j, i] = float(row[f"{M}{i}_{j}"] or 0.0)
    return correlation(s, np.array([float(row[f"s{i}"] or 0.0) for i in range(p)]), int(row["n"] or 0))


def largest_change(pca: dict[str, Any], corr: np.ndarray) -> tuple[str, str, float, float] | None:
    """The pair of features whose correlation changed most from the reference's: (a, b, before, after)."""
    ref = np.asarray(pca.get("corr") or [], dtype=float)
    if ref.shape != corr.shape or ref.ndim != 2:
        return None
    delta = np.abs(np.nan_to_num(corr - ref, nan=0.0))
    np.fill_diagonal(delta, 0.0)
    i, j = np.unravel_index(int(np.argmax(delta)), delta.shape)
    if delta[i, j] <= 0:
        return None
    names = pca["features"]
    return names[min(i, j)], names[max(i, j)], float(ref[i, j]), float(corr[i, j])


def residual_basis(components: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning what the kept components leave out: the reconstruction error of z is
    ``|C z|^2`` for these rows C, the same as ``|z|^2 - |P z|^2``."""
    p = components.shape[1]
    if components.shape[0] == 0:
        return np.eye(p)
    return null_space(components).T


def error_exprs(pca: dict[str, Any]) -> list[Column]:
    """Sum and sum of squares of each row's reconstruction error, for an audit's aggregation.

    The error is the squared length of the row's projection on the discarded directions, computed
    with whichever basis needs fewer projections per row: the kept components (``|z|^2 - |P z|^2``,
    k + 1 terms) or the residual ones (``|C z|^2``, p - k terms). With 20 features and 18 kept
    components that is 2 projections instead of 19.
    """
    z = [_z(n, m, s) for n, m, s in zip(pca["features"], pca["means"], pca["stds"], strict=True)]
    kept = np.asarray(pca["components"], dtype=float).reshape(-1, len(z))

    def squared_projections(rows: np.ndarray) -> Column:
        out = F.lit(0.0)
        for comp in rows:
            proj = sum((F.lit(float(w)) * zj for w, zj in zip(comp, z, strict=True) if w != 0.0), F.lit(0.0))
            out = out + proj * proj
        return out

    if len(z) - kept.shape[0] < kept.shape[0] + 1:
        err = squared_projections(residual_basis(kept))
    else:
        err = sum((zj * zj for zj in z), F.lit(0.0)) - squared_projections(kept)
    return [F.sum(err).alias(R + "sum"), F.sum(err * err).alias(R + "sq")]


def moments_part(names: Sequence[str], means: Sequence[float], stds: Sequence[float]) -> ScanPart:
    """The reference's scan part: cross-moments of the standardised features (sums); on the Arrow
    engine a matrix product per batch in the Arrow pass, else ``cross_moment_exprs``."""
    p = len(names)
    extra = Extra("moments", tuple(f"{M}{i}_{j}" for i in range(p) for j in range(i, p)), tuple(names),
                  means=tuple(float(m) for m in means), stds=tuple(float(s) for s in stds))
    return ScanPart("m", (), arrow=(extra,), spark_twin=lambda: cross_moment_exprs(names, means, stds))


def error_part(pca: dict[str, Any]) -> ScanPart:
    """The audit's scan part: sum and sum of squares of each row's reconstruction error; on the Arrow
    engine computed in the Arrow pass, else ``error_exprs``."""
    p = len(pca["features"])
    extra = Extra("pca_error", (R + "sum", R + "sq"), tuple(pca["features"]),
                  means=tuple(float(m) for m in pca["means"]), stds=tuple(float(s) for s in pca["stds"]),
                  components=tuple(tuple(float(w) for w in c) for c in
                                   np.asarray(pca["components"], dtype=float).reshape(-1, p)))
    return ScanPart("r", (), arrow=(extra,), spark_twin=lambda: error_exprs(pca))


def _sums(group: GroupResult) -> tuple[float, float]:
    state = group.states["r"]
    return float(state.get(R + "sum") or 0.0), float(state.get(R + "sq") or 0.0)


def candidate(pca: dict[str, Any] | None, group: GroupResult, *, judged: bool,
              phase: int | None = None) -> Candidate | None:
    """A multivariate drift candidate of a window: its mean error against the reference windows' band
    (those of the window's phase, with a cycle: their mean, and the spread pooled within phases)."""
    errors = list((pca or {}).get("window_errors") or [])
    phases = (pca or {}).get("window_phases")
    if phase is not None and phases is not None:
        errors = [e for e, x in zip(errors, phases, strict=True) if x == phase]
    n = group.profile.row_count
    if not pca or pca.get("skipped") or len(errors) < (2 if phase is not None else 3) or n < 2:
        return None
    total, sq = _sums(group)
    mean = total / n
    se = math.sqrt(max(sq / n - mean * mean, 0.0) / n)
    mu = float(np.mean(errors))
    sd = pca.get("pooled_sd") if pca.get("pooled_sd") is not None else float(np.std(errors, ddof=1))
    upper = mu + BAND_SDS * sd
    z = (mean - mu) / math.sqrt(sd * sd + se * se) if sd > 0 or se > 0 else 0.0
    k = group.key
    f = Finding("warning", "multivariate_drift", f"PCA reconstruction error {mean:.3f} vs {mu:.3f} ± {sd:.3f} over "
                f"the reference's windows (band up to {upper:.3f}; {len(pca['components'])} components of "
                f"{len(pca['features'])} features)", None, k.window_start, k.slice, k.model_version,
                "pca_reconstruction_error", mean, upper, band=(None, upper))
    return Candidate(f, float(norm.sf(z)) if math.isfinite(z) else math.nan, mean > upper and sd > 0, judged)
