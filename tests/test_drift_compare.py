"""Profile comparison without Spark: profiles built from numpy with the same sketches Spark uses."""

import math

import numpy as np
import pytest

from spark_audit.drift.compare import compare_column, dataset_verdict, reference_bins
from spark_audit.profile.state import Bins, ColumnProfile
from spark_audit.spec import DriftOverride, DriftSpec, FeatureSpec
from tests.test_profile_state import numeric_profile


def with_exact_bins(col: ColumnProfile, values: np.ndarray, bins: Bins) -> ColumnProfile:
    fin = values[np.isfinite(values)]
    counts = np.histogram(fin, [-np.inf, *bins.edges, np.inf])[0]
    return ColumnProfile(**{**col.__dict__, "bins": Bins(tuple(int(c) for c in counts), edges=bins.edges)})


def numeric_pair(ref_values, cur_values):
    ref = numeric_profile(np.asarray(ref_values, dtype=float))
    bins = reference_bins(ref, 10)
    return (with_exact_bins(ref, np.asarray(ref_values, dtype=float), bins),
            with_exact_bins(numeric_profile(np.asarray(cur_values, dtype=float)), np.asarray(cur_values, float), bins))


def by_stat(results):
    return {r.statistic: r for r in results}


RNG = np.random.default_rng(11)
DRIFT = DriftSpec(statistics=("psi", "js", "ks", "wasserstein", "hellinger"))


def test_identical_numeric_samples_do_not_drift():
    x = RNG.normal(0, 1, 5000)
    ref, cur = numeric_pair(x, x)
    res = by_stat(compare_column(ref, cur, FeatureSpec("x"), DRIFT))
    # the two KLL sketches compact at random, so quantile-based statistics are zero within sketch error
    assert res["wasserstein"].is_default and res["wasserstein"].value == pytest.approx(0.0, abs=0.05)
    assert res["psi"].value == pytest.approx(0.0, abs=1e-12) and not any(r.drifted for r in res.values())


def test_shifted_numeric_sample_drifts_and_is_critical():
    ref, cur = numeric_pair(RNG.normal(0, 1, 5000), RNG.normal(1.0, 1, 5000))
    res = by_stat(compare_column(ref, cur, FeatureSpec("x"), DRIFT))
    w = res["wasserstein"]
    assert w.value == pytest.approx(1.0, abs=0.1)  # W1 of a unit shift, in reference std units
    assert w.drifted and w.critical and w.n_reference == 5000
    assert res["psi"].drifted and res["ks"].p_value < 1e-6


def test_small_samples_use_ks_and_a_per_feature_override_wins():
    ref, cur = numeric_pair(RNG.normal(0, 1, 300), RNG.normal(0, 1, 300))
    [main, *_] = compare_column(ref, cur, FeatureSpec("x"), DriftSpec(statistics=()))
    assert main.statistic == "ks" and main.threshold == 0.05 and 0.0 <= main.p_value <= 1.0
    feat = FeatureSpec("x", drift=DriftOverride("psi", 0.3))
    [main] = compare_column(ref, cur, feat, DriftSpec(statistics=()))
    assert (main.statistic, main.threshold, main.is_default) == ("psi", 0.3, True)


def test_all_null_window_is_not_drift():
    ref, _ = numeric_pair(RNG.normal(0, 1, 2000), [0.0])
    empty = ColumnProfile(name="x", kind="numeric", dtype="double", count=100, nulls=100)
    res = compare_column(ref, empty, FeatureSpec("x"), DRIFT)
    assert res and all(not r.drifted for r in res)
    assert all(r.n_current == 0 for r in res)


def test_one_value_reference_column():
    ref, cur = numeric_pair(np.full(2000, 5.0), np.full(2000, 6.0))
    res = by_stat(compare_column(ref, cur, FeatureSpec("x"), DRIFT))
    assert res["wasserstein"].value == pytest.approx(0.2)  # |6 - 5| / max(|mean|, 1)
    assert res["wasserstein"].drifted


def categorical(top, count, bins=None):
    return ColumnProfile(name="c", kind="categorical", dtype="string", count=count, top=top, top_k=10, bins=bins)


def test_unseen_categories_land_in_the_other_bucket():
    ref = categorical({"a": 1500, "b": 1500}, 3000)
    bins = reference_bins(ref, 10)
    assert bins.categories == ("a", "b")
    ref = categorical({"a": 1500, "b": 1500}, 3000, Bins((1500, 1500, 0), categories=bins.categories))
    cur = categorical({}, 3000, Bins((0, 0, 3000), categories=bins.categories))  # all new values
    res = by_stat(compare_column(ref, cur, FeatureSpec("c"), DriftSpec(statistics=("psi", "tv", "linf"))))
    assert res["js"].is_default and res["js"].value == pytest.approx(1.0)
    assert res["tv"].value == pytest.approx(1.0) and res["linf"].value == pytest.approx(1.0)
    assert res["psi"].value > 10 and math.isfinite(res["psi"].value)


def test_boolean_columns_compare_true_false_counts():
    ref = ColumnProfile(name="b", kind="boolean", dtype="boolean", count=2000, n_true=1000, n_false=1000)
    cur = ColumnProfile(name="b", kind="boolean", dtype="boolean", count=2000, n_true=1900, n_false=100)
    res = compare_column(ref, cur, FeatureSpec("b"), DriftSpec(statistics=()))
    assert res[0].statistic == "js" and res[0].drifted


def test_a_numeric_only_statistic_on_a_categorical_column_is_refused():
    ref = categorical({"a": 10}, 10, Bins((10, 0), categories=("a",)))
    with pytest.raises(ValueError, match="'ks' does not apply to categorical column 'c'"):
        compare_column(ref, ref, FeatureSpec("c", drift=DriftOverride("ks")), DriftSpec())


def test_dataset_share_is_weighted_by_importance():
    ref, same = numeric_pair(RNG.normal(0, 1, 3000), RNG.normal(0, 1, 3000))
    _, moved = numeric_pair(RNG.normal(0, 1, 3000), RNG.normal(2, 1, 3000))
    res = (compare_column(ref, same, FeatureSpec("x"), DriftSpec(statistics=()))
           + [r.__class__(**{**r.__dict__, "column": "y"})
              for r in compare_column(ref, moved, FeatureSpec("x"), DriftSpec(statistics=()))])
    feats = (FeatureSpec("x", importance=1.0), FeatureSpec("y", importance=3.0))
    n, nd, share, drifted = dataset_verdict({r.column: r.drifted for r in res if r.is_default}, feats, 0.5)
    assert (n, nd, share, drifted) == (2, 1, 0.75, True)
    decided = {r.column: r.drifted for r in res if r.is_default}
    n, nd, share, drifted = dataset_verdict(decided, (FeatureSpec("x"), FeatureSpec("y")), 0.6)
    assert (share, drifted) == (0.5, False)


def test_a_column_whose_kind_changed_is_not_compared():
    """After a type change (double -> string) a window compared with the previous one used to crash in
    chi_square_pvalue; the schema finding covers it, the drift comparison is skipped."""
    from spark_audit.drift.noise import ColumnNoise

    ref, _ = numeric_pair(RNG.normal(0, 1, 2000), RNG.normal(0, 1, 2000))
    as_text = ColumnProfile(name="x", kind="categorical", dtype="string", count=2000, top={"1.0": 2000})
    noisy = ColumnNoise(windows=7, phi=2.0, phi_ks=2.0)
    assert compare_column(ref, as_text, FeatureSpec("x"), DriftSpec(statistics=("chi2", "ks")), noisy) == []
    assert compare_column(as_text, ref, FeatureSpec("x"), DriftSpec(statistics=("chi2",)), noisy) == []
