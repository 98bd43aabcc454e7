"""PCA reconstruction error: merge of the cross-moments, the error of rows in the kept subspace, the
moments' window error against the per-row expression on Spark, and a decorrelated pair found."""

from __future__ import annotations

import numpy as np
import pytest

from spark_audit import multivariate as mv
from spark_audit.profile.profiler import GroupResult, merged_group
from spark_audit.profile.state import GroupKey, TableProfile
from spark_audit.scan import States


def group(z: np.ndarray, children=()) -> GroupResult:
    p = z.shape[1] if len(z) else 0
    row = {f"{mv.M}{i}_{j}": float(np.sum(z[:, i] * z[:, j])) for i in range(p) for j in range(i, p)}
    key = GroupKey()
    return GroupResult(key, TableProfile(key, len(z), {}), states=States(values={"m": row}), children=list(children))


def correlated(rng, n: int, rho: float = 0.8) -> np.ndarray:
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(size=n)
    c = rng.normal(size=n)
    return np.column_stack([a, b, c])


def test_cross_moment_merge_equals_the_union():
    rng = np.random.default_rng(1)
    parts = [correlated(rng, n) for n in (100, 250, 40)]
    merged = merged_group(GroupKey(), [group(p) for p in parts])
    assert np.allclose(mv.moments_of(merged, 3), mv.moments_of(group(np.vstack(parts)), 3))
    # any order
    other = merged_group(GroupKey(), [group(p) for p in parts[::-1]])
    assert np.allclose(mv.moments_of(other, 3), mv.moments_of(merged, 3))


def test_rows_in_the_kept_subspace_have_zero_error():
    rng = np.random.default_rng(2)
    z = correlated(rng, 5000, rho=0.95)
    comps = mv.fit(mv.moments_of(group(z), 3), len(z), share=0.5)
    inside = rng.normal(size=(10, comps.shape[0])) @ comps  # combinations of the kept components
    assert mv.window_error(mv.moments_of(group(inside), 3), len(inside), comps) == pytest.approx(0.0, abs=1e-12)
    assert mv.window_error(mv.moments_of(group(z), 3), len(z), comps) > 0.1


def test_window_error_from_moments_equals_the_mean_row_error():
    rng = np.random.default_rng(3)
    z = correlated(rng, 2000)
    comps = mv.fit(mv.moments_of(group(z), 3), len(z))
    rows = np.sum(z * z, axis=1) - np.sum((z @ comps.T) ** 2, axis=1)
    assert mv.window_error(mv.moments_of(group(z), 3), len(z), comps) == pytest.approx(rows.mean(), rel=1e-9)


def test_a_decorrelated_pair_leaves_the_band_and_stable_windows_do_not():
    rng = np.random.default_rng(4)
    windows = [group(correlated(rng, 4000)) for _ in range(7)]
    total = merged_group(GroupKey(), windows)
    assert total.profile.row_count == 28000
    pca = mv.reference_extras(["a", "b", "c"], [0.0] * 3, [1.0] * 3, windows, total)["pca"]
    comps = np.asarray(pca["components"])

    def audited(z):
        err = np.sum(z * z, axis=1) - np.sum((z @ comps.T) ** 2, axis=1)
        g = group(z)
        g.states.values["r"] = {mv.R + "sum": float(err.sum()), mv.R + "sq": float((err * err).sum())}
        return mv.candidate(pca, g, judged=True)

    stable = [audited(correlated(rng, 4000)) for _ in range(20)]
    assert sum(c.material and c.p_value < 0.01 for c in stable) <= 1
    broken = audited(correlated(rng, 4000, rho=0.0))  # the pair decorrelated, marginals kept
    assert broken.material and broken.p_value < 1e-6


def test_the_row_expression_on_spark_matches_numpy(spark):
    rng = np.random.default_rng(5)
    z = correlated(rng, 500) * [2.0, 3.0, 1.0] + [10.0, -5.0, 0.0]
    means, stds = z.mean(axis=0).tolist(), z.std(axis=0, ddof=1).tolist()
    zs = (z - means) / stds
    comps = mv.fit(mv.moments_of(group(zs), 3), len(zs))
    pca = {"features": ["a", "b", "c"], "means": means, "stds": stds, "components": comps.tolist()}
    df = spark.createDataFrame([tuple(map(float, r)) for r in z], "a double, b double, c double")
    row = df.agg(*mv.error_exprs(pca), *mv.cross_moment_exprs(["a", "b", "c"], means, stds)).first().asDict()
    rows = np.sum(zs * zs, axis=1) - np.sum((zs @ comps.T) ** 2, axis=1)
    assert row[mv.R + "sum"] == pytest.approx(rows.sum(), rel=1e-9)
    assert row[f"{mv.M}0_1"] == pytest.approx(float(np.sum(zs[:, 0] * zs[:, 1])), rel=1e-9)
