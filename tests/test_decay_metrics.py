"""Quality metrics: pure bin helpers, Spark aggregates against numpy/scipy, label joins."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from pyspark.sql import functions as F
from scipy.stats import mannwhitneyu

from spark_audit.decay.metrics import (
    QualitySpec,
    ece_from_bins,
    join_labels,
    merge_states,
    quality_exprs,
    quality_from_row,
    quality_state_names,
    roc_auc_from_bins,
)
from spark_audit.errors import DataError, SpecError

# ----------------------------------------------------------------------------- pure helpers


def _bins(scores, labels, bins):
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    idx = np.minimum(np.floor(np.clip(s, 0, 1) * bins), bins - 1).astype(int)
    pos = np.bincount(idx[y], minlength=bins)
    neg = np.bincount(idx[~y], minlength=bins)
    ssum = np.bincount(idx, weights=s, minlength=bins)
    return pos, neg, ssum


def test_roc_auc_from_bins_hand_worked_with_ties():
    # pos in bins 1, 2; neg in bins 0, 1. Pairs: (1 vs 0) win, (1 vs 1) half,
    # (2 vs 0) win, (2 vs 1) win -> 3.5 / 4.
    assert roc_auc_from_bins([0, 1, 1], [1, 1, 0]) == pytest.approx(0.875)
    assert roc_auc_from_bins([0, 0, 3], [2, 0, 0]) == pytest.approx(1.0)
    assert roc_auc_from_bins([2, 0, 0], [0, 0, 3]) == pytest.approx(0.0)
    # everything in one bin: a coin toss
    assert roc_auc_from_bins([0, 5, 0], [0, 7, 0]) == pytest.approx(0.5)


def test_roc_auc_from_bins_equals_trapezoid_over_roc_curve():
    rng = np.random.default_rng(3)
    pos = rng.integers(0, 20, size=30)
    neg = rng.integers(0, 20, size=30)
    # ROC points by lowering the threshold bin by bin, from the highest score bin
    tpr = np.concatenate([[0.0], np.cumsum(pos[::-1]) / pos.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(neg[::-1]) / neg.sum()])
    expected = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert roc_auc_from_bins(pos, neg) == pytest.approx(expected, rel=1e-12)


def test_roc_auc_from_bins_matches_mann_whitney_on_binned_scores():
    rng = np.random.default_rng(11)
    scores = rng.beta(2, 2, size=400)
    labels = rng.random(400) < scores
    pos, neg, _ = _bins(scores, labels, 20)
    binned = np.minimum(np.floor(scores * 20), 19)
    u = mannwhitneyu(binned[labels], binned[~labels]).statistic  # ties count one half
    assert roc_auc_from_bins(pos, neg) == pytest.approx(u / (labels.sum() * (~labels).sum()))


def test_roc_auc_undefined_for_one_class():
    assert math.isnan(roc_auc_from_bins([0, 0, 0], [1, 2, 3]))
    assert math.isnan(roc_auc_from_bins([1, 2, 3], [0, 0, 0]))
    assert math.isnan(roc_auc_from_bins([0, 0], [0, 0]))
    with pytest.raises(ValueError):
        roc_auc_from_bins([1, 2], [1, 2, 3])


def test_ece_from_bins_hand_worked():
    # bin 0: 4 rows, mean score 0.1, 1 positive (rate .25) -> |0.4 - 1| = 0.6
    # bin 1: 6 rows, mean score 0.8, 6 positives (rate 1) -> |4.8 - 6| = 1.2
    assert ece_from_bins([4, 6], [0.4, 4.8], [1, 6]) == pytest.approx(1.8 / 10)
    # perfectly calibrated bins
    assert ece_from_bins([10, 10], [2.0, 7.0], [2, 7]) == pytest.approx(0.0)
    assert math.isnan(ece_from_bins([0, 0], [0.0, 0.0], [0, 0]))


def test_quality_spec_validation():
    with pytest.raises(SpecError, match="task"):
        QualitySpec(task="multiclass", label="y", prediction="p")
    with pytest.raises(SpecError, match="prediction"):
        QualitySpec(task="binary", label="y")
    with pytest.raises(SpecError, match="prediction"):
        QualitySpec(task="regression", label="y")
    with pytest.raises(SpecError, match="threshold"):
        QualitySpec(task="binary", label="y", score="s", threshold=1.5)
    with pytest.raises(SpecError, match="score_bins"):
        QualitySpec(task="binary", label="y", score="s", score_bins=1)


def test_quality_from_row_missing_state_is_a_clear_error():
    spec = QualitySpec(task="binary", label="y", prediction="p")
    with pytest.raises(DataError, match="q__tp"):
        quality_from_row(spec, {"q__unlabelled": 0})


def test_quality_from_row_all_zero_is_nan_not_error():
    spec = QualitySpec(task="binary", label="y", score="s", score_bins=4)
    row = {f"q__{k}": 0 for k in quality_state_names(spec)}
    row.update({"q__bin_pos": [0] * 4, "q__bin_neg": [0] * 4, "q__bin_score_sum": [0.0] * 4})
    m = quality_from_row(spec, row)
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "ece"):
        assert math.isnan(m[key]), key
    assert m["n"] == 0
    reg = QualitySpec(task="regression", label="y", prediction="p")
    r = quality_from_row(reg, {f"q__{k}": None for k in quality_state_names(reg)})
    assert all(math.isnan(r[k]) for k in ("mse", "rmse", "mae", "mape", "r2"))


# ----------------------------------------------------------------------------- spark


def _agg(df, spec, *extra):
    return df.agg(*quality_exprs(spec), *extra).collect()[0]


def test_binary_metrics_match_numpy_and_mann_whitney(spark):
    # scores sit at the centre of distinct bins of 100, so binning loses nothing
    rng = np.random.default_rng(5)
    bins = rng.choice(100, size=24, replace=False)
    scores = (bins + 0.5) / 100
    labels = (rng.random(24) < scores).astype(int)
    labels[:2] = [1, 0]  # both classes present
    rows = [(int(y), float(s)) for y, s in zip(labels, scores, strict=True)]
    rows += [(None, 0.9), (None, 0.1), (1, None)]  # 2 unlabelled, 1 unscored
    df = spark.createDataFrame(rows, "y int, s double")
    spec = QualitySpec(task="binary", label="y", score="s", score_bins=100)  # 100 bins, t = 0.5
    row = _agg(df, spec)
    m = quality_from_row(spec, row)

    y = labels.astype(bool)
    pred = scores >= 0.5
    tp, fp = int(np.sum(y & pred)), int(np.sum(~y & pred))
    tn, fn = int(np.sum(~y & ~pred)), int(np.sum(y & ~pred))
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["n"] == 24 and m["unlabelled"] == 2 and row["q__unpredicted"] == 1
    assert m["accuracy"] == pytest.approx((tp + tn) / 24)
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["positive_rate"] == pytest.approx(y.mean())
    assert m["predicted_positive_rate"] == pytest.approx(pred.mean())

    u = mannwhitneyu(scores[y], scores[~y]).statistic
    assert m["roc_auc"] == pytest.approx(u / (y.sum() * (~y).sum()))
    per_row_ll = -(y * np.log(scores) + (~y) * np.log(1 - scores))
    expected_ll = np.mean(per_row_ll)
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert row["q__logloss_sq"] == pytest.approx(np.sum(per_row_ll**2))
    # a score-only spec has no disagreement states
    assert "q__n_both" not in row and math.isnan(m["prediction_threshold_disagreement"])
    # one row per bin: ECE is the mean |score - label|
    assert m["ece"] == pytest.approx(np.mean(np.abs(scores - y)))
    assert len(row["q__bin_pos"]) == 100
    assert sum(row["q__bin_pos"]) == y.sum() and sum(row["q__bin_neg"]) == (~y).sum()


def test_binary_log_loss_clips_and_ece_with_shared_bins(spark):
    # 4 bins; 0.0 and 1.0 are clipped to 1e-15 / 1 - 1e-15 for log loss
    scores = np.array([0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 1.0, 1.0])
    labels = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    df = spark.createDataFrame(
        [(int(a), float(b)) for a, b in zip(labels, scores, strict=True)], "y long, s double"
    )
    spec = QualitySpec(task="binary", label="y", score="s", score_bins=4, threshold=0.65)
    m = quality_from_row(spec, _agg(df, spec))
    p = np.clip(scores, 1e-15, 1 - 1e-15)
    assert m["log_loss"] == pytest.approx(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    pos, neg, ssum = _bins(scores, labels, 4)
    # by hand: bin0 {0,.1,.2}: |0.3-1|, bin1 {.3}: |.3-1|, bin2 {.6,.7}: |1.3-1|, bin3 {1,1}: |2-1|
    assert m["ece"] == pytest.approx((0.7 + 0.7 + 0.3 + 1.0) / 8)
    assert m["roc_auc"] == pytest.approx(roc_auc_from_bins(pos, neg))
    # threshold 0.65 -> predicted positive: .7 (y 0), 1 (y 1), 1 (y 0);
    # predicted negative: 0 (0), .1 (1), .2 (0), .3 (1), .6 (1)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 2, 2, 3)


def test_binary_prediction_column_string_labels_and_groups(spark):
    rows = [
        ("a", "yes", "yes"),
        ("a", "yes", "no"),
        ("a", "no", "no"),
        ("a", "no", "yes"),
        ("a", "no", "no"),
        ("b", "no", "no"),
        ("b", "no", "no"),
        ("b", None, "yes"),
    ]
    df = spark.createDataFrame(rows, "g string, y string, p string")
    spec = QualitySpec(task="binary", label="y", prediction="p", positive="yes")
    out = {r["g"]: quality_from_row(spec, r) for r in df.groupBy("g").agg(*quality_exprs(spec)).collect()}
    a, b = out["a"], out["b"]
    assert (a["tp"], a["fp"], a["tn"], a["fn"]) == (1, 1, 2, 1)
    assert a["accuracy"] == pytest.approx(3 / 5)
    assert a["precision"] == pytest.approx(0.5) and a["recall"] == pytest.approx(0.5)
    assert math.isnan(a["roc_auc"])  # no score column
    # group b: only negatives, one unlabelled row
    assert b["n"] == 2 and b["unlabelled"] == 1 and b["accuracy"] == 1.0
    assert math.isnan(b["recall"]) and math.isnan(b["precision"]) and math.isnan(b["f1"])


def test_regression_metrics_match_numpy(spark):
    y = np.array([3.0, -0.5, 2.0, 7.0, 0.0, 4.5])
    p = np.array([2.5, 0.0, 2.0, 8.0, 0.3, 4.0])
    rows = [(float(a), float(b)) for a, b in zip(y, p, strict=True)]
    rows += [(None, 1.0), (5.0, None)]
    df = spark.createDataFrame(rows, "y double, p double")
    spec = QualitySpec(task="regression", label="y", prediction="p")
    row = _agg(df, spec)
    m = quality_from_row(spec, row)
    err = p - y
    assert m["n"] == 6 and m["unlabelled"] == 1 and row["q__unpredicted"] == 1
    assert m["mse"] == pytest.approx(np.mean(err**2))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)))
    nz = y != 0
    assert m["mape"] == pytest.approx(np.mean(np.abs(err[nz] / y[nz])))
    assert m["r2"] == pytest.approx(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2))
    # the sums behind the standard errors (spark_audit.decay.uncertainty)
    assert row["q__sse2"] == pytest.approx(np.sum(err**4))
    assert row["q__sape2"] == pytest.approx(np.sum((err[nz] / y[nz]) ** 2))
    assert row["q__sum_y3"] == pytest.approx(np.sum(y**3))
    assert row["q__sum_y4"] == pytest.approx(np.sum(y**4))
    assert row["q__sum_e2y"] == pytest.approx(np.sum(err**2 * y))
    assert row["q__sum_e2y2"] == pytest.approx(np.sum(err**2 * y**2))


def test_regression_constant_label_gives_nan_r2(spark):
    df = spark.createDataFrame([(2.0, 1.0), (2.0, 3.0)], "y double, p double")
    spec = QualitySpec(task="regression", label="y", prediction="p")
    m = quality_from_row(spec, _agg(df, spec))
    assert m["mse"] == pytest.approx(1.0)
    assert math.isnan(m["r2"])


def test_states_merge_like_the_union(spark):
    rng = np.random.default_rng(9)
    rows = [(int(rng.random() < 0.4), float(rng.random()), i % 2) for i in range(40)]
    df = spark.createDataFrame(rows, "y int, s double, half int")
    spec = QualitySpec(task="binary", label="y", score="s", score_bins=10)
    parts = {r["half"]: r.asDict() for r in df.groupBy("half").agg(*quality_exprs(spec)).collect()}
    merged = merge_states(
        {k: v for k, v in parts[0].items() if k != "half"},
        {k: v for k, v in parts[1].items() if k != "half"},
    )
    whole = _agg(df, spec).asDict()
    assert merged.keys() == whole.keys()
    for key, value in whole.items():
        assert merged[key] == pytest.approx(value), key
    assert quality_from_row(spec, merged)["roc_auc"] == pytest.approx(
        quality_from_row(spec, whole)["roc_auc"]
    )


def test_prediction_threshold_disagreement(spark):
    rows = [
        # y,    p,  s      prediction vs s >= 0.5
        (1, 1, 0.9),  # agree
        (0, 1, 0.2),  # disagree
        (1, 0, 0.7),  # disagree
        (0, 0, 0.1),  # agree
        (None, 1, 0.3),  # disagree, unlabelled: still counts
        (None, 0, 0.5),  # disagree at the threshold itself (0.5 >= 0.5 is positive)
        (1, None, 0.8),  # no prediction: not counted
        (0, 1, None),  # no score: not counted
    ]
    df = spark.createDataFrame(rows, "y int, p int, s double")
    spec = QualitySpec(task="binary", label="y", prediction="p", score="s", score_bins=4)
    row = df.agg(*quality_exprs(spec, prefix="m1__")).collect()[0]
    assert df.agg(*quality_exprs(spec, prefix="m1__")).columns == ["m1__" + n for n in quality_state_names(spec)]
    assert (row["m1__disagree"], row["m1__n_both"]) == (4, 6)
    m = quality_from_row(spec, row, prefix="m1__")
    assert m["prediction_threshold_disagreement"] == pytest.approx(4 / 6)
    # the confusion matrix still follows the prediction column
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 2, 1, 1)
    # a higher threshold moves two rows: (0.5, p=0) and (0.7, p=0) now agree
    spec_hi = QualitySpec(task="binary", label="y", prediction="p", score="s", score_bins=4, threshold=0.75)
    m_hi = quality_from_row(spec_hi, _agg(df, spec_hi))
    assert m_hi["prediction_threshold_disagreement"] == pytest.approx(2 / 6)
    # no rows with both: NaN, not an error
    none = quality_from_row(spec, df.where("s is null").agg(*quality_exprs(spec, prefix="m1__")).collect()[0],
                            prefix="m1__")
    assert math.isnan(none["prediction_threshold_disagreement"])


def test_alias_names_follow_prefix(spark):
    spec = QualitySpec(task="regression", label="y", prediction="p")
    df = spark.createDataFrame([(1.0, 1.0)], "y double, p double")
    cols = df.agg(*quality_exprs(spec, prefix="m1__")).columns
    assert cols == ["m1__" + n for n in quality_state_names(spec)]


# ----------------------------------------------------------------------------- labels


def test_join_labels_with_max_delay(spark):
    t0 = dt.datetime(2024, 1, 1)
    preds = spark.createDataFrame(
        [(1, "x", t0, 0.9), (2, "x", t0, 0.2), (3, "x", t0, 0.7), (1, "y", t0, 0.4)],
        "id int, site string, pred_time timestamp, s double",
    )
    labels = spark.createDataFrame(
        [
            (1, "x", 1, t0 + dt.timedelta(days=2)),  # on time
            (2, "x", 0, t0 + dt.timedelta(days=9)),  # too late
            (1, "y", 0, None),  # no arrival time: kept
        ],
        "id int, site string, y int, label_time timestamp",
    )
    out = join_labels(
        preds,
        labels,
        ["id", "site"],
        label_col="y",
        label_time_col="label_time",
        prediction_time_col="pred_time",
        max_delay="7 days",
    )
    got = {(r["id"], r["site"]): (r["y"], r["label_time"]) for r in out.collect()}
    assert set(out.columns) == {"id", "site", "pred_time", "s", "y", "label_time"}
    assert got[(1, "x")] == (1, t0 + dt.timedelta(days=2))
    assert got[(2, "x")] == (None, None)
    assert got[(3, "x")] == (None, None)
    assert got[(1, "y")] == (0, None)
    # without max_delay the late label is kept
    plain = join_labels(preds, labels, ["id", "site"], label_col="y")
    assert {(r["id"], r["site"]): r["y"] for r in plain.collect()}[(2, "x")] == 0


def test_join_labels_errors_name_the_column(spark):
    preds = spark.createDataFrame([(1, 0.5)], "id int, s double")
    labels = spark.createDataFrame([(1, 1)], "key int, y int")
    with pytest.raises(DataError, match=r"labels lack \['id'\]"):
        join_labels(preds, labels, ["id"], label_col="y")
    with pytest.raises(DataError, match="predictions lack.*'key'"):
        join_labels(preds, labels, ["key"], label_col="y")
    with pytest.raises(DataError, match="'label'"):
        join_labels(preds, labels.withColumnRenamed("key", "id"), ["id"], label_col="label")
    timed = spark.createDataFrame([(1, 1, dt.datetime(2024, 1, 2))], "id int, y int, lt timestamp")
    with pytest.raises(SpecError, match="max_delay"):
        join_labels(
            preds.withColumn("pt", F.current_timestamp()),
            timed,
            ["id"],
            label_col="y",
            label_time_col="lt",
            prediction_time_col="pt",
            max_delay="a fortnight",
        )


def test_boolean_labels_match_default_positive_and_empty_input_is_nan(spark):
    df = spark.createDataFrame(
        [(True, True, 0.8), (False, False, 0.3), (True, False, 0.2), (False, True, 0.6)],
        "y boolean, p boolean, s double",
    )
    spec = QualitySpec(task="binary", label="y", prediction="p", score="s", score_bins=10)
    m = quality_from_row(spec, _agg(df, spec))
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 1, 1)
    # pairs (pos .8, .2) x (neg .3, .6): .8 wins twice, .2 loses twice
    assert m["roc_auc"] == pytest.approx(0.5)
    assert isinstance(m["roc_auc"], float)
    empty = quality_from_row(spec, _agg(df.limit(0), spec))
    assert empty["n"] == 0
    assert all(math.isnan(empty[k]) for k in ("accuracy", "roc_auc", "log_loss", "ece"))
