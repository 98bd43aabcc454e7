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
    assert comps.shape[0] == 2  # 2 kept of 3: the expression projects on the 1 residual direction
    rows = np.sum(zs * zs, axis=1) - np.sum((zs @ comps.T) ** 2, axis=1)
    assert row[mv.R + "sum"] == pytest.approx(rows.sum(), rel=1e-9)
    assert row[mv.R + "sq"] == pytest.approx(float(np.sum(rows * rows)), rel=1e-9)
    assert row[f"{mv.M}0_1"] == pytest.approx(float(np.sum(zs[:, 0] * zs[:, 1])), rel=1e-9)
    # 1 kept of 3: the expression subtracts the kept projection from |z|^2 instead; the same error
    one = {**pca, "components": comps[:1].tolist()}
    got = df.agg(*mv.error_exprs(one)).first()[mv.R + "sum"]
    assert got == pytest.approx(float(np.sum(np.sum(zs * zs, axis=1) - (zs @ comps[:1].T)[:, 0] ** 2)), rel=1e-9)


def test_correlation_from_moments_matches_numpy_and_names_the_changed_pair():
    rng = np.random.default_rng(5)
    z = correlated(rng, 5000, rho=0.8)
    s = z.T @ z
    corr = mv.correlation(s, z.sum(axis=0), len(z))
    assert np.allclose(corr, np.corrcoef(z.T), atol=1e-9)
    pca = {"features": ["a", "b", "c"], "corr": corr.tolist()}
    broken = correlated(rng, 5000, rho=0.0)
    after = mv.correlation(broken.T @ broken, broken.sum(axis=0), len(broken))
    a, b, before, now = mv.largest_change(pca, after)
    assert (a, b) == ("a", "b") and before == pytest.approx(0.8, abs=0.03) and abs(now) < 0.05
    assert mv.largest_change({"features": ["a"], "corr": []}, after) is None  # an old reference: no summary


def test_a_slice_is_judged_against_its_own_band():
    """A slice that sits steadily further from the overall subspace (its own correlation) is not drift;
    the same slice decorrelated is."""
    rng = np.random.default_rng(6)
    overall = [group(correlated(rng, 4000, rho=0.8)) for _ in range(7)]
    total = merged_group(GroupKey(), overall)
    pca = mv.reference_extras(["a", "b", "c"], [0.0] * 3, [1.0] * 3, overall, total)["pca"]
    slice_windows = [group(correlated(rng, 1000, rho=0.5)) for _ in range(7)]
    own = mv.slice_extras(pca, slice_windows)["pca"]
    assert own["components"] == pca["components"] and np.mean(own["window_errors"]) > np.mean(pca["window_errors"])
    comps = np.asarray(pca["components"])

    def audited(z, band):
        err = np.sum(z * z, axis=1) - np.sum((z @ comps.T) ** 2, axis=1)
        g = group(z)
        g.states.values["r"] = {mv.R + "sum": float(err.sum()), mv.R + "sq": float((err * err).sum())}
        return mv.candidate(band, g, judged=True)

    steady = audited(correlated(rng, 1000, rho=0.5), own)
    assert not steady.material  # against its own band
    assert audited(correlated(rng, 1000, rho=0.5), pca).material  # the overall band would flag it
    assert audited(correlated(rng, 1000, rho=-0.5), own).material


def test_an_audit_names_the_pair_whose_correlation_changed(spark, tmp_path):
    """End to end: income decorrelated from age on one day (both marginals kept) is a multivariate finding
    that names the pair; the stable day and its slices stay quiet; the reference keeps each slice's band."""
    from datetime import datetime, timedelta, timezone

    from spark_audit.audit import run_audit
    from spark_audit.reference_build import build_reference
    from spark_audit.spec import parse_spec

    t0 = datetime(2026, 2, 1, tzinfo=timezone.utc)
    rng = np.random.default_rng(12)
    rows = []
    for day in range(9):
        n = 2000
        age = rng.normal(40, 10, n)
        noise = rng.normal(0, 1, n)
        income = 1000 + 30 * age + 150 * noise if day != 8 else 1000 + 30 * rng.permutation(age) + 150 * noise
        other = rng.normal(0, 1, n)
        for i in range(n):
            rows.append((t0 + timedelta(days=day, seconds=i * 40), "ab"[i % 2], float(age[i]), float(income[i]),
                         float(other[i])))
    spark.createDataFrame(rows, "ts timestamp, g string, age double, income double, other double") \
        .write.format("delta").save(str(tmp_path / "t"))
    raw = {"name": "mv", "source": {"path": str(tmp_path / "t"), "timestamp_column": "ts"},
           "window": {"size": "1 day", "start": (t0 + timedelta(days=7)).isoformat(),
                      "end": (t0 + timedelta(days=9)).isoformat()},
           "features": ["age", "income", "other"], "slices": ["g"],
           "reference": {"start": t0.isoformat(), "end": (t0 + timedelta(days=7)).isoformat()},
           "output": {"path": str(tmp_path / "out")}, "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'ml.db'}"}}
    run_id, ref = build_reference(spark, parse_spec(raw))
    assert len(ref.extras["pca"]["corr"]) == 3 and ref.extras["pca"]["corr"][0][1] > 0.8
    assert len(ref.slices["g=a"].extras["pca"]["window_errors"]) == 7
    spec = parse_spec({**raw, "reference": {**raw["reference"], "uri": f"runs:/{run_id}"}})
    result = run_audit(spark, spec, log_to_mlflow=False)
    found = [f for f in result.findings if f.kind == "multivariate_drift"]
    day8 = (t0 + timedelta(days=8)).isoformat().replace("+00:00", "Z")
    assert {f.window_start for f in found} == {day8}
    [overall] = [f for f in found if f.slice is None]
    import re

    assert re.search(r"the largest change in correlation: age ~ income \+0\.8\d -> [+-]0\.0\d", overall.message), \
        overall.message
