"""Label-free performance estimation (CBPE-like): calibration and Spark aggregates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spark_audit.decay.estimate import (
    Calibration,
    estimated_exprs,
    estimated_from_row,
    fit_calibration,
)
from spark_audit.decay.metrics import QualitySpec, quality_exprs, quality_from_row
from spark_audit.errors import DataError


def test_fit_calibration_keeps_monotone_rates_and_pools_violators():
    # already increasing rates are returned as they are
    cal = fit_calibration([1, 2, 6, 9], [9, 8, 4, 1])
    assert cal.probs == pytest.approx((0.1, 0.2, 0.6, 0.9))
    assert cal.counts == (10, 10, 10, 10)
    # bins 1 and 2 violate monotonicity: pooled with weights 10 and 30
    cal = fit_calibration([1, 5, 9, 9], [9, 5, 21, 1])
    pooled = (5 + 9) / (10 + 30)
    assert cal.probs == pytest.approx((0.1, pooled, pooled, 0.9))
    assert all(np.diff(cal.probs) >= 0)


def test_fit_calibration_fills_empty_bins_monotonically():
    cal = fit_calibration([0, 0, 2, 0, 8, 0], [0, 0, 8, 0, 2, 0])
    # flat before the first and after the last non-empty bin, linear between
    assert cal.probs == pytest.approx((0.2, 0.2, 0.2, 0.5, 0.8, 0.8))
    assert cal.counts[3] == 0
    with pytest.raises(DataError, match="no labelled"):
        fit_calibration([0, 0], [0, 0])


def test_calibration_json_roundtrip_and_predict():
    cal = fit_calibration([1, 3, 7, 9], [9, 7, 3, 1])
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    assert cal.predict([0.0, 0.3, 0.74, 1.0]) == pytest.approx([0.1, 0.3, 0.7, 0.9])
    with pytest.raises(DataError):
        Calibration.from_dict({"bins": 4, "probs": [0.1, 0.2]})


def test_estimated_from_row_hand_worked_and_nan_safe():
    row = {"e__tp": 30.0, "e__fp": 10.0, "e__tn": 50.0, "e__fn": 10.0, "e__n": 100}
    est = estimated_from_row(row)
    assert est["accuracy"] == pytest.approx(0.8)
    assert est["precision"] == pytest.approx(0.75)
    assert est["recall"] == pytest.approx(0.75)
    assert est["f1"] == pytest.approx(0.75)
    empty = estimated_from_row({"e__tp": None, "e__fp": None, "e__tn": None, "e__fn": None, "e__n": 0})
    assert all(math.isnan(empty[k]) for k in ("accuracy", "precision", "recall", "f1"))
    # roc_auc needs the calibration and the bin counts
    assert math.isnan(est["roc_auc"])
    cal = Calibration((0.2, 0.8), (10.0, 10.0))
    assert math.isnan(estimated_from_row(row, calibration=cal)["roc_auc"])  # no bin_n (older state)


def test_estimated_roc_auc_hand_worked():
    # bin 0: 10 rows at p = 0.2 -> 2 expected positives, 8 negatives
    # bin 1: 5 rows at p = 0.8 -> 4 positives, 1 negative
    cal = Calibration((0.2, 0.8), (1.0, 1.0))
    row = {"e__tp": 4.0, "e__fp": 1.0, "e__tn": 8.0, "e__fn": 2.0, "e__n": 15, "e__bin_n": [10, 5]}
    est = estimated_from_row(row, calibration=cal)
    # positives in bin 1 beat the 8 negatives of bin 0 and tie the 1 of bin 1;
    # positives in bin 0 tie the 8 negatives of bin 0: (4 * (8 + 0.5) + 2 * 4) / (6 * 9)
    assert est["roc_auc"] == pytest.approx((4 * 8.5 + 2 * 4) / 54)
    assert (est["n_pos"], est["n_neg"]) == pytest.approx((6.0, 9.0))
    assert est["expected_bin_pos"] == pytest.approx([2.0, 4.0])
    with pytest.raises(DataError, match="bins"):
        estimated_from_row(row, calibration=Calibration((0.1, 0.5, 0.9), (1.0, 1.0, 1.0)))


def _sample(rng, a, b, n, truth):
    s = rng.beta(a, b, n)
    y = (rng.random(n) < truth(s)).astype(int)
    return [(int(v), float(x)) for v, x in zip(y, s, strict=True)]


@pytest.mark.parametrize(
    "truth",
    [pytest.param(lambda s: s, id="calibrated"), pytest.param(lambda s: s**2, id="overconfident")],
)
def test_estimated_accuracy_tracks_realised_on_shifted_window(spark, truth):
    rng = np.random.default_rng(7)
    spec = QualitySpec(task="binary", label="y", score="s")
    reference = spark.createDataFrame(_sample(rng, 2, 2, 6000, truth), "y int, s double")
    ref_row = reference.agg(*quality_exprs(spec)).collect()[0]
    cal = fit_calibration(ref_row["q__bin_pos"], ref_row["q__bin_neg"])

    # scores shift towards 0 (covariate shift), P(y | score) stays the same
    window = spark.createDataFrame(_sample(rng, 2, 5, 6000, truth), "y int, s double")
    naive = Calibration(tuple((np.arange(100) + 0.5) / 100), (1.0,) * 100)  # trusts raw scores
    row = window.agg(
        *quality_exprs(spec),
        *estimated_exprs(cal, "s", 0.5),
        *estimated_exprs(naive, "s", 0.5, prefix="naive__"),
    ).collect()[0]
    realised = quality_from_row(spec, row)
    est = estimated_from_row(row)
    assert est["n"] == 6000
    assert est["tp"] + est["fp"] + est["tn"] + est["fn"] == pytest.approx(6000)
    assert realised["accuracy"] != pytest.approx(quality_from_row(spec, ref_row)["accuracy"], abs=0.02)
    assert est["accuracy"] == pytest.approx(realised["accuracy"], abs=0.02)
    # precision and recall rest on the few predicted / actual positives: looser
    assert est["precision"] == pytest.approx(realised["precision"], abs=0.08)
    assert est["recall"] == pytest.approx(realised["recall"], abs=0.08)
    if truth(0.5) != 0.5:
        # an uncalibrated model fools the naive estimate but not the calibrated one
        naive_acc = estimated_from_row(row, prefix="naive__")["accuracy"]
        assert abs(naive_acc - realised["accuracy"]) > 0.05
    # estimated ROC AUC from the expected positives / negatives per score bin
    est_auc = estimated_from_row(row, calibration=cal)
    assert sum(row["e__bin_n"]) == 6000
    # a 6000-row reference leaves calibration noise (sd about 0.012 in AUC) on top of
    # the window's label noise (about 0.01); test_decay_uncertainty checks the bias
    # (< 0.002) with a large reference
    assert est_auc["roc_auc"] == pytest.approx(realised["roc_auc"], abs=0.035)
    # realised positives ~ sum of Bernoulli(p): sd below sqrt(n_pos)
    assert est_auc["n_pos"] == pytest.approx(realised["tp"] + realised["fn"], abs=4 * math.sqrt(est_auc["n_pos"]))


def test_prediction_column_drives_the_estimate(spark):
    # the deployed rule predicts positive from 0.3, not from the 0.5 threshold
    rng = np.random.default_rng(21)
    s = rng.random(2000)
    pred = (s >= 0.3).astype(int)
    rows = [(int(p), float(x)) for p, x in zip(pred, s, strict=True)]
    rows += [(None, 0.9), (1, None)]  # no prediction / no score: outside the confusion matrix
    df = spark.createDataFrame(rows, "p int, s double")
    cal = Calibration(tuple((np.arange(10) + 0.5) / 10), (1.0,) * 10)
    row = df.agg(
        *estimated_exprs(cal, "s", 0.5, prediction_col="p", positive=1),
        *estimated_exprs(cal, "s", 0.5, prefix="t__"),
    ).collect()[0]
    by_pred = estimated_from_row(row, calibration=cal)
    by_threshold = estimated_from_row(row, prefix="t__")
    assert by_pred["n"] == 2000 and by_threshold["n"] == 2001
    assert sum(row["e__bin_n"]) == 2001  # every scored row, prediction or not

    p = cal.predict(s)
    on = pred == 1
    assert by_pred["tp"] == pytest.approx(p[on].sum())
    assert by_pred["fn"] == pytest.approx(p[~on].sum())
    assert by_pred["recall"] == pytest.approx(p[on].sum() / p.sum())
    assert by_threshold["recall"] < by_pred["recall"] - 0.15
    # the realised recall of the prediction column, labels ~ Bernoulli(p), averages to it
    y = rng.random((4000, s.size)) < p
    realised = (y & on).sum(1) / y.sum(1)
    assert realised.mean() == pytest.approx(by_pred["recall"], abs=0.003)
    assert abs(realised.mean() - by_threshold["recall"]) > 0.15
