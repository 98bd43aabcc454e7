"""Standard errors of quality metrics, tested as statistics (pure numpy, no Spark).

Each simulation draws W windows of N rows from a known model, builds the states
``quality_exprs`` would give by hand, and compares the spread of the metric across
windows with the standard error ``metric_se`` reports for each window.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from spark_audit.decay.estimate import estimated_from_row, fit_calibration
from spark_audit.decay.metrics import (
    QualitySpec,
    merge_states,
    quality_from_row,
    quality_state_names,
    roc_auc_from_bins,
)
from spark_audit.decay.uncertainty import (
    SE_METRICS,
    delong_se_from_bins,
    estimated_se,
    f1_se,
    hanley_mcneil_se,
    mean_se,
    metric_se,
)

W, N, BINS = 2000, 2000, 100
BINARY = QualitySpec(task="binary", label="y", score="s", score_bins=BINS)
REGRESSION = QualitySpec(task="regression", label="y", prediction="p")


def _binned(s: np.ndarray, mask: np.ndarray, bins: int = BINS, weights=None) -> np.ndarray:
    """Per-window counts (or sums of ``weights``) per score bin: shape (windows, bins)."""
    w = s.shape[0]
    idx = np.minimum(np.floor(np.clip(s, 0, 1) * bins), bins - 1).astype(int) + bins * np.arange(w)[:, None]
    if weights is None:
        return np.bincount(idx[mask], minlength=w * bins).reshape(w, bins)
    return np.bincount(idx[mask], weights=weights[mask], minlength=w * bins).reshape(w, bins)


def binary_rows(s: np.ndarray, y: np.ndarray, pred: np.ndarray, prefix: str = "q__") -> list[dict]:
    """The states quality_exprs(BINARY) gives, one dict per window (row of s)."""
    p = np.clip(s, 1e-15, 1 - 1e-15)
    loss = np.where(y, -np.log(p), -np.log1p(-p))
    everything = np.ones_like(y)
    cols = {
        "unlabelled": np.zeros(s.shape[0]),
        "unpredicted": np.zeros(s.shape[0]),
        "tp": (y & pred).sum(1),
        "fp": (~y & pred).sum(1),
        "tn": (~y & ~pred).sum(1),
        "fn": (y & ~pred).sum(1),
        "n_scored": np.full(s.shape[0], s.shape[1]),
        "logloss_sum": loss.sum(1),
        "bin_pos": _binned(s, y),
        "bin_neg": _binned(s, ~y),
        "bin_score_sum": _binned(s, everything, weights=s),
        "logloss_sq": (loss**2).sum(1),
    }
    assert set(cols) == set(quality_state_names(BINARY))
    return [
        {prefix + k: (v[i].tolist() if v.ndim == 2 else v[i].item()) for k, v in cols.items()}
        for i in range(s.shape[0])
    ]


def regression_rows(y: np.ndarray, p: np.ndarray) -> list[dict]:
    e = p - y
    nz = y != 0
    ape = np.where(nz, np.abs(e) / np.where(nz, np.abs(y), 1.0), 0.0)
    cols = {
        "unlabelled": 0 * y.sum(1),
        "unpredicted": 0 * y.sum(1),
        "n": np.full(y.shape[0], y.shape[1]),
        "sse": (e**2).sum(1),
        "sae": np.abs(e).sum(1),
        "sape": ape.sum(1),
        "n_nonzero": nz.sum(1),
        "sum_y": y.sum(1),
        "sum_y2": (y**2).sum(1),
        "sse2": (e**4).sum(1),
        "sape2": (ape**2).sum(1),
        "sum_y3": (y**3).sum(1),
        "sum_y4": (y**4).sum(1),
        "sum_e2y": (e**2 * y).sum(1),
        "sum_e2y2": (e**2 * y**2).sum(1),
    }
    assert list(cols) == quality_state_names(REGRESSION)
    return [{"q__" + k: v[i].item() for k, v in cols.items()} for i in range(y.shape[0])]


def _pooled(rows: list[dict]) -> dict:
    """All windows merged: the metric on W x N rows stands for the true value."""
    out: dict = {}
    for r in rows:
        out = merge_states(out, r)
    return out


def _spread(spec, rows, metric, truth):
    values = np.array([quality_from_row(spec, r)[metric] for r in rows])
    ses = np.array([metric_se(spec, metric, r) for r in rows])
    assert np.all(np.isfinite(ses)) and np.all(ses > 0), metric
    sd = float(values.std(ddof=1))
    rejected = float(np.mean(np.abs(values - truth) / ses > 1.96))
    return sd, float(np.median(ses)), rejected


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def binary_windows():
    """Calibrated scores ~ Beta(2, 2), labels ~ Bernoulli(score), predicted s >= 0.5."""
    rng = np.random.default_rng(20240601)
    s = rng.beta(2, 2, size=(W, N))
    y = rng.random((W, N)) < s
    rows = binary_rows(s, y, s >= 0.5)
    return rows, quality_from_row(BINARY, _pooled(rows))


def _regression_windows(seed: int, hetero: bool):
    rng = np.random.default_rng(seed)
    y = rng.normal(10.0, 2.0, size=(W, N))
    if hetero:  # heavy-ish tails, error growing with |y - 10|: e^2 correlates with y
        e = rng.laplace(0.0, 0.3 + 0.2 * np.abs(y - 10.0))
    else:
        e = rng.normal(0.0, 1.0, size=(W, N))
    rows = regression_rows(y, y + e)
    return rows, quality_from_row(REGRESSION, _pooled(rows))


@pytest.fixture(scope="module")
def regression_normal():
    return _regression_windows(7, hetero=False)


@pytest.fixture(scope="module")
def regression_hetero():
    return _regression_windows(8, hetero=True)


# ----------------------------------------------------------------------------- simulations


# every binary metric with a standard error (ece has none; the disagreement share has its own test)
BINARY_METRICS = [m for m in SE_METRICS["binary"] if m not in ("ece", "prediction_threshold_disagreement")]


@pytest.mark.parametrize("metric", BINARY_METRICS)
def test_binary_se_matches_simulated_spread(binary_windows, metric):
    rows, truth = binary_windows
    sd, se, rejected = _spread(BINARY, rows, metric, truth[metric])
    # sd across 2000 windows is itself known to about 1.6%
    assert sd / se == pytest.approx(1.0, abs=0.10), (sd, se)
    # a z-test at 1.96 built from the se rejects about 5% of null windows
    assert 0.025 <= rejected <= 0.10, rejected


@pytest.mark.parametrize("metric", ["mse", "rmse", "mae", "mape", "r2"])
def test_regression_se_matches_simulated_spread(regression_normal, regression_hetero, metric):
    for (rows, truth), tol in ((regression_normal, 0.10), (regression_hetero, 0.15)):
        sd, se, rejected = _spread(REGRESSION, rows, metric, truth[metric])
        assert sd / se == pytest.approx(1.0, abs=tol), (metric, sd, se)
        assert 0.025 <= rejected <= 0.10, (metric, rejected)


def test_r2_se_accounts_for_the_estimated_variance_of_y(regression_normal):
    # The shorter delta approximation se(mse) / var(y) treats var(y) as known. With
    # normal errors independent of y that is sqrt(2) too small: the z-test built on it
    # rejects about 16% of null windows. The full delta method does not.
    rows, truth = regression_normal
    values = np.array([quality_from_row(REGRESSION, r)["r2"] for r in rows])
    full = np.array([metric_se(REGRESSION, "r2", r) for r in rows])
    short = np.array(
        [
            metric_se(REGRESSION, "mse", r) / (r["q__sum_y2"] / N - (r["q__sum_y"] / N) ** 2)
            for r in rows
        ]
    )
    sd = values.std(ddof=1)
    assert sd / np.median(short) == pytest.approx(math.sqrt(2), rel=0.08)
    assert sd / np.median(full) == pytest.approx(1.0, abs=0.08)
    assert np.mean(np.abs(values - truth["r2"]) / short > 1.96) > 0.12


@pytest.mark.parametrize(
    ("a", "b", "power"),
    [(2, 2, 1), (0.5, 0.5, 1), (2, 5, 1), (1, 1, 3)],
    ids=["beta22", "beta-u-shaped", "beta25-skewed", "uniform-cubed"],
)
def test_roc_auc_se_matches_simulation_across_score_shapes(a, b, power):
    # P(y | s) = s ** power; 1000 windows of 2000 rows per shape
    rng = np.random.default_rng(int(100 + 10 * a + power))
    w = 1000
    s = rng.beta(a, b, size=(w, N))
    y = rng.random((w, N)) < s**power
    pos, neg = _binned(s, y), _binned(s, ~y)
    auc = np.array([roc_auc_from_bins(pos[i], neg[i]) for i in range(w)])
    delong = np.array([delong_se_from_bins(pos[i], neg[i]) for i in range(w)])
    hm = np.array([hanley_mcneil_se(auc[i], pos[i].sum(), neg[i].sum()) for i in range(w)])
    sd = auc.std(ddof=1)
    assert sd / np.median(delong) == pytest.approx(1.0, abs=0.08)
    # Hanley-McNeil never understates here, and overstates by at most a third
    assert 0.70 <= sd / np.median(hm) <= 1.08


# ----------------------------------------------------------------------------- formulas


def test_hand_worked_binomial_and_mean_se():
    spec = QualitySpec(task="binary", label="y", prediction="p")
    row = {"q__tp": 30, "q__fp": 10, "q__tn": 50, "q__fn": 10}
    assert metric_se(spec, "accuracy", row) == pytest.approx(math.sqrt(0.8 * 0.2 / 100))
    assert metric_se(spec, "precision", row) == pytest.approx(math.sqrt(0.75 * 0.25 / 40))
    assert metric_se(spec, "recall", row) == pytest.approx(math.sqrt(0.75 * 0.25 / 40))
    assert metric_se(spec, "positive_rate", row) == pytest.approx(math.sqrt(0.4 * 0.6 / 100))
    assert metric_se(spec, "predicted_positive_rate", row) == pytest.approx(math.sqrt(0.4 * 0.6 / 100))
    values = np.array([0.3, 1.2, 0.7, 2.5, 0.1])
    expected = values.std(ddof=1) / math.sqrt(values.size)
    assert mean_se(values.sum(), (values**2).sum(), values.size) == pytest.approx(expected)
    assert math.isnan(mean_se(1.0, 1.0, 1))


def test_f1_se_equals_numeric_delta_method():
    counts = np.array([120.0, 35.0, 50.0, 795.0])  # tp, fp, fn, tn
    n = counts.sum()
    pi = counts / n

    def f1(q):
        return 2 * q[0] / (2 * q[0] + q[1] + q[2])

    grad = np.array([(f1(pi + h) - f1(pi - h)) / 2e-7 for h in np.eye(4) * 1e-7])
    cov = (np.diag(pi) - np.outer(pi, pi)) / n
    assert f1_se(*counts[:3]) == pytest.approx(math.sqrt(grad @ cov @ grad), rel=1e-6)
    spec = QualitySpec(task="binary", label="y", prediction="p")
    row = {"q__tp": 120, "q__fp": 35, "q__fn": 50, "q__tn": 795}
    assert metric_se(spec, "f1", row) == pytest.approx(f1_se(120, 35, 50))
    assert math.isnan(f1_se(0, 0, 0))


def test_r2_se_equals_the_per_row_influence_formula():
    rng = np.random.default_rng(4)
    y = rng.normal(3.0, 1.5, 500)
    p = y + rng.normal(0, 0.5 + 0.3 * np.abs(y), 500)
    row = regression_rows(y[None, :], p[None, :])[0]
    e, yc = p - y, y - y.mean()
    a, b = np.mean(e**2), np.mean(yc**2)
    c = e**2 - (a / b) * yc**2
    expected = math.sqrt(np.mean(c**2) / (y.size - 1)) / b
    assert metric_se(REGRESSION, "r2", row) == pytest.approx(expected, rel=1e-6)
    # rmse: delta method from mse
    mse_se = np.std(e**2, ddof=1) / math.sqrt(y.size)
    assert metric_se(REGRESSION, "mse", row) == pytest.approx(mse_se, rel=1e-9)
    assert metric_se(REGRESSION, "rmse", row) == pytest.approx(mse_se / (2 * math.sqrt(a)), rel=1e-9)
    assert metric_se(REGRESSION, "mae", row) == pytest.approx(np.std(np.abs(e), ddof=1) / math.sqrt(y.size))


def test_delong_from_bins_equals_pairwise_delong_on_distinct_scores():
    rng = np.random.default_rng(12)
    bins = rng.choice(1000, size=300, replace=False)  # one row per bin: no ties
    s = (bins + 0.5) / 1000
    y = rng.random(300) < s
    sp, sn = s[y], s[~y]
    psi = (sp[:, None] > sn[None, :]).astype(float)
    v10, v01 = psi.mean(1), psi.mean(0)
    expected = math.sqrt(v10.var(ddof=1) / sp.size + v01.var(ddof=1) / sn.size)
    pos, neg = _binned(s[None, :], y[None, :], 1000)[0], _binned(s[None, :], ~y[None, :], 1000)[0]
    assert delong_se_from_bins(pos, neg) == pytest.approx(expected, rel=1e-9)
    # Hanley-McNeil on a hand-worked AUC: A = 0.8, 50 positives, 100 negatives
    q1, q2 = 0.8 / 1.2, 2 * 0.64 / 1.8
    var = (0.8 * 0.2 + 49 * (q1 - 0.64) + 99 * (q2 - 0.64)) / 5000
    assert hanley_mcneil_se(0.8, 50, 100) == pytest.approx(math.sqrt(var))
    assert math.isnan(delong_se_from_bins([1, 0], [0, 5]))  # one positive
    assert math.isnan(hanley_mcneil_se(float("nan"), 10, 10))


def test_undefined_and_missing_states_give_nan_not_errors():
    # a row aggregated before the se states existed (an old reference)
    old_binary = {
        "q__unlabelled": 0, "q__unpredicted": 0, "q__tp": 5, "q__fp": 3, "q__tn": 9, "q__fn": 2,
        "q__n_scored": 19, "q__logloss_sum": 9.5, "q__bin_pos": [1, 6], "q__bin_neg": [10, 2],
        "q__bin_score_sum": [2.0, 8.0],
    }
    spec = QualitySpec(task="binary", label="y", prediction="p", score="s", score_bins=2)
    assert math.isnan(metric_se(spec, "log_loss", old_binary))
    assert math.isnan(metric_se(spec, "prediction_threshold_disagreement", old_binary))
    assert math.isnan(quality_from_row(spec, old_binary)["prediction_threshold_disagreement"])
    assert metric_se(spec, "accuracy", old_binary) > 0  # what needs only old states still works
    assert metric_se(spec, "roc_auc", old_binary) > 0
    assert math.isnan(metric_se(spec, "ece", old_binary))
    assert math.isnan(metric_se(spec, "tp", old_binary))
    assert math.isnan(metric_se(spec, "accuracy", {"q__unlabelled": 3}))
    old_reg = {
        "q__unlabelled": 0, "q__unpredicted": 0, "q__n": 4, "q__sse": 1.0, "q__sae": 2.0,
        "q__sape": 0.4, "q__n_nonzero": 4, "q__sum_y": 10.0, "q__sum_y2": 30.0,
    }
    for metric in ("mse", "rmse", "mape", "r2"):
        assert math.isnan(metric_se(REGRESSION, metric, old_reg)), metric
    assert metric_se(REGRESSION, "mae", old_reg) == pytest.approx(0.0)  # |e| all equal to 0.5
    # empty and one-class windows
    empty = {f"q__{k}": 0 for k in quality_state_names(spec)}
    empty.update({"q__bin_pos": [0, 0], "q__bin_neg": [0, 0], "q__bin_score_sum": [0.0, 0.0]})
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert math.isnan(metric_se(spec, metric, empty)), metric
    with pytest.raises(ValueError, match="rocauc"):
        metric_se(spec, "rocauc", old_binary)
    with pytest.raises(ValueError):
        metric_se(REGRESSION, "accuracy", old_reg)


def test_merging_an_old_state_with_a_new_one_drops_the_partial_se_states():
    spec = QualitySpec(task="regression", label="y", prediction="p")
    rng = np.random.default_rng(1)
    y = rng.normal(5, 1, size=(2, 50))
    new_a, new_b = regression_rows(y, y + rng.normal(0, 1, size=(2, 50)))
    old = {k: v for k, v in new_a.items() if k.removeprefix("q__") not in ("sse2", "sape2", "sum_y3", "sum_y4",
                                                                           "sum_e2y", "sum_e2y2")}
    mixed = merge_states(old, new_b)
    assert "q__sse2" not in mixed and "q__sum_e2y2" not in mixed
    assert math.isnan(metric_se(spec, "mse", mixed))
    both = merge_states(new_a, new_b)
    assert both["q__sse2"] == pytest.approx(new_a["q__sse2"] + new_b["q__sse2"])
    assert metric_se(spec, "mse", both) > 0
    # the empty state is neutral: a new state is kept whole
    assert merge_states({}, new_b) == new_b


# ----------------------------------------------------------------------------- estimate


@pytest.fixture(scope="module")
def estimate_windows():
    """A calibrated model: reference scores ~ Beta(2, 2), windows shifted to Beta(2, 4);
    labels ~ Bernoulli(score) everywhere (covariate shift only)."""
    rng = np.random.default_rng(99)
    s_ref = rng.beta(2, 2, size=(1, 50_000))
    y_ref = rng.random(s_ref.shape) < s_ref
    cal = fit_calibration(_binned(s_ref, y_ref)[0], _binned(s_ref, ~y_ref)[0])
    w = 1000
    s = rng.beta(2, 4, size=(w, N))
    y = rng.random((w, N)) < s
    pred = s >= 0.5
    p = cal.predict(s.ravel()).reshape(s.shape)
    est = []
    for i in range(w):
        row = {
            "e__tp": float(p[i][pred[i]].sum()),
            "e__fp": float((1 - p[i][pred[i]]).sum()),
            "e__tn": float((1 - p[i][~pred[i]]).sum()),
            "e__fn": float(p[i][~pred[i]].sum()),
            "e__n": N,
            "e__bin_n": _binned(s[i : i + 1], np.ones((1, N), dtype=bool))[0].tolist(),
        }
        est.append(estimated_from_row(row, calibration=cal))
    return binary_rows(s, y, pred), est


def test_estimated_roc_auc_tracks_realised_and_its_se_matches_simulation(estimate_windows):
    rows, est = estimate_windows
    realised = np.array([quality_from_row(BINARY, r)["roc_auc"] for r in rows])
    estimated = np.array([e["roc_auc"] for e in est])
    # unbiased across windows, and every window within ~0.01 up to label noise
    assert abs(np.mean(estimated - realised)) < 0.002
    assert np.median(np.abs(estimated - realised)) < 0.01
    assert np.quantile(np.abs(estimated - realised), 0.95) < 0.025
    n_pos = np.array([e["n_pos"] for e in est])
    assert np.mean(n_pos) == pytest.approx(np.mean([sum(r["q__bin_pos"]) for r in rows]), rel=0.01)
    sd = realised.std(ddof=1)
    delong = np.array([estimated_se("roc_auc", e) for e in est])
    hm = np.array(
        [estimated_se("roc_auc", {k: v for k, v in e.items() if not k.startswith("expected_bin")}) for e in est]
    )
    assert sd / np.median(delong) == pytest.approx(1.0, abs=0.10)
    assert sd / np.median(hm) == pytest.approx(1.0, abs=0.15)
    # z-test of realised against estimated with the estimated se. Given the window's
    # scores the estimate is fixed and only label noise separates the two, a little
    # less than the unconditional se: at most 5%, a little below (2.9% here)
    assert 0.01 <= np.mean(np.abs(realised - estimated) / delong > 1.96) <= 0.06


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1"])
def test_estimated_se_matches_the_realised_spread(estimate_windows, metric):
    rows, est = estimate_windows
    realised = np.array([quality_from_row(BINARY, r)[metric] for r in rows])
    ses = np.array([estimated_se(metric, e) for e in est])
    assert realised.std(ddof=1) / np.median(ses) == pytest.approx(1.0, abs=0.12)


def test_estimated_se_missing_and_unknown():
    assert math.isnan(estimated_se("roc_auc", {"roc_auc": float("nan"), "n_pos": 3.0, "n_neg": 4.0}))
    assert math.isnan(estimated_se("roc_auc", {"roc_auc": 0.7}))
    assert math.isnan(estimated_se("recall", {"tp": 0.0, "fp": 1.0, "tn": 1.0, "fn": 0.0}))
    assert estimated_se("accuracy", {"tp": 30.0, "fp": 10.0, "tn": 50.0, "fn": 10.0}) == pytest.approx(0.04)
    with pytest.raises(ValueError):
        estimated_se("log_loss", {})
