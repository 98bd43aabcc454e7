"""Standard errors of the quality metrics, from the same state row they are computed from.

A quality finding needs a material degradation *and* evidence: the change must exceed
what sampling noise gives at this window's size. ``metric_se`` is that noise: the
standard error of the metric ``quality_from_row`` returns, computed from the same
single-window sums (no Spark, no rescans). ``estimated_se`` does the same for the
label-free estimate (``estimated_from_row``), applying the formulas to the expected
confusion counts: it is the sampling error the realised metric would have around the
estimate once the labels arrive (NannyML's "sampling error" for CBPE).

Formulas (n rows, plug-in estimates, NaN whenever undefined):

* accuracy, positive_rate, predicted_positive_rate: binomial, sqrt(m (1 - m) / n).
* precision: binomial over the predicted positives tp + fp; recall: over the actual
  positives tp + fn; prediction_threshold_disagreement: over n_both.
* f1 = 2tp / (2tp + fp + fn): delta method over the multinomial counts. F1 is
  homogeneous of degree 0 in the counts, which leaves
  var = 4 tp (fp + fn) (tp + fp + fn) / (2tp + fp + fn)^4 (tn drops out).
* roc_auc: DeLong et al. (1988), exact from the per-bin counts (ties in a bin count
  one half, as in ``roc_auc_from_bins``): each positive's placement
  V10 = (negatives below + half the negatives in its bin) / n_neg, each negative's
  V01 = (positives above + half the positives in its bin) / n_pos, and
  var = var(V10) / n_pos + var(V01) / n_neg (sample variances over the rows).
  It is nonparametric and needs no new state. ``hanley_mcneil_se`` (Hanley & McNeil
  1982: from the AUC, n_pos and n_neg alone, Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A),
  var = (A (1 - A) + (n_pos - 1)(Q1 - A^2) + (n_neg - 1)(Q2 - A^2)) / (n_pos n_neg))
  assumes exponential-like score distributions; for calibrated models it matched
  simulation for symmetric score distributions but overstated the se by 10-33% for
  skewed ones, so it is only the fallback when per-bin counts are not at hand.
* log_loss, mse, mae, mape: se of a mean of per-row values, sqrt(s^2 / n) with the
  sample variance s^2 from the sum and the sum of squares of those values
  (logloss_sum / logloss_sq; sse / sse2; sae / sse since |e|^2 = e^2; sape / sape2).
* rmse: delta method, se(mse) / (2 rmse).
* r2 = 1 - A/B with A = mean(e^2), B = mean((y - ybar)^2): delta method through the
  per-row influence c_i = e_i^2 - (A/B)(y_i - ybar)^2, var = mean(c^2) / ((n - 1) B^2).
  It needs sse2, sum_y3, sum_y4, sum_e2y and sum_e2y2. The shorter se(mse) / B
  ignores that B is estimated too; when the errors are independent of y and both
  are normal that understates the se by a factor sqrt(2), so it is not used.
  Raw power sums lose precision when |mean(y)| is much larger than sd(y).
* ece: NaN. The binned ECE is a biased estimator (its expectation is positive for a
  perfectly calibrated model and shrinks with n) and has no simple standard error.

Binomial standard errors are plug-in: a rate of exactly 0 or 1 has se 0, so a
window with very few rows needs a minimum-count rule (or the se evaluated at the
reference's value) before a z-test means anything.

States added after the first release (logloss_sq, sse2, sape2, sum_y3, sum_y4,
sum_e2y, sum_e2y2, the estimate's bin_n) may be missing from rows aggregated
earlier, e.g. an old reference: the se that needs them is NaN, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from spark_audit.catalog import TASKS, estimable_metrics, task_metrics
from spark_audit.decay.metrics import QualitySpec, _as_dict

__all__ = [
    "SE_METRICS",
    "binomial_se",
    "delong_se_from_bins",
    "f1_se",
    "hanley_mcneil_se",
    "mean_se",
    "metric_se",
    "estimated_se",
]

NAN = float("nan")

SE_METRICS = {task: task_metrics(task) for task in TASKS}  # every metric of the catalog has a sampling error
_COUNTS = ("tp", "fp", "tn", "fn", "n", "unlabelled")
ESTIMATED = estimable_metrics()


# --------------------------------------------------------------------------- formulas


def binomial_se(p: float, n: float) -> float:
    """sqrt(p (1 - p) / n); NaN when n <= 0 or p is not a finite rate."""
    if not (n > 0) or not math.isfinite(p):
        return NAN
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def f1_se(tp: float, fp: float, fn: float) -> float:
    """Delta-method se of F1 = 2tp / (2tp + fp + fn) under multinomial sampling.

    var = 4 tp (fp + fn) (tp + fp + fn) / (2tp + fp + fn)^4. NaN when 2tp + fp + fn = 0.
    """
    d = 2.0 * tp + fp + fn
    if not d > 0:
        return NAN
    return math.sqrt(max(4.0 * tp * (fp + fn) * (tp + fp + fn), 0.0)) / (d * d)


def hanley_mcneil_se(auc: float, n_pos: float, n_neg: float) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from n_pos positives and n_neg
    negatives (counts may be expected, non-integer). NaN when undefined.
    """
    if not (math.isfinite(auc) and n_pos > 0 and n_neg > 0):
        return NAN
    a = min(max(auc, 0.0), 1.0)
    q1 = a / (2.0 - a)
    q2 = 2.0 * a * a / (1.0 + a)
    var = (a * (1.0 - a) + (n_pos - 1.0) * (q1 - a * a) + (n_neg - 1.0) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def delong_se_from_bins(pos: Any, neg: Any) -> float:
    """DeLong standard error of ``roc_auc_from_bins(pos, neg)`` from per-bin counts of
    positives and negatives (bins in increasing score; counts may be expected,
    non-integer). NaN with fewer than 2 positives or 2 negatives.
    """
    p = np.asarray(pos, dtype=float)
    n = np.asarray(neg, dtype=float)
    if p.shape != n.shape or p.ndim != 1:
        raise ValueError(f"pos and neg must be 1-d of equal length, got {p.shape} and {n.shape}")
    n1, n0 = float(p.sum()), float(n.sum())
    if not (n1 > 1 and n0 > 1):
        return NAN
    neg_below = np.cumsum(n) - n
    pos_above = p[::-1].cumsum()[::-1] - p
    v10 = (neg_below + 0.5 * n) / n0  # placement of a positive in each bin
    v01 = (pos_above + 0.5 * p) / n1  # of a negative
    auc = float(np.sum(p * v10) / n1)
    s10 = float(np.sum(p * (v10 - auc) ** 2)) / (n1 - 1.0)
    s01 = float(np.sum(n * (v01 - auc) ** 2)) / (n0 - 1.0)
    return math.sqrt(max(s10 / n1 + s01 / n0, 0.0))


def mean_se(total: float | None, total_sq: float | None, n: float | None) -> float:
    """se of the mean of n values whose sum is ``total`` and sum of squares ``total_sq``:
    sqrt(s^2 / n) with the sample variance s^2 (ddof 1). NaN when n < 2 or a sum is missing.
    """
    if total is None or total_sq is None or n is None or not n >= 2:
        return NAN
    ss = total_sq - total * total / n
    ss = max(ss, 0.0)  # round-off of a (near) constant value
    return math.sqrt(ss / (n * (n - 1.0)))


def _confusion_se(metric: str, tp: float, fp: float, tn: float, fn: float) -> float:
    n = tp + fp + tn + fn

    def rate(a: float, b: float) -> float:
        return a / b if b > 0 else NAN

    if metric == "accuracy":
        return binomial_se(rate(tp + tn, n), n)
    if metric == "precision":
        return binomial_se(rate(tp, tp + fp), tp + fp)
    if metric == "recall":
        return binomial_se(rate(tp, tp + fn), tp + fn)
    if metric == "positive_rate":
        return binomial_se(rate(tp + fn, n), n)
    if metric == "predicted_positive_rate":
        return binomial_se(rate(tp + fp, n), n)
    if metric == "f1":
        return f1_se(tp, fp, fn)
    raise AssertionError(metric)


# --------------------------------------------------------------------------- rows


def _opt(row: Mapping[str, Any], key: str) -> float | None:
    """A numeric state: None when the row lacks it (older state), 0 for a null sum."""
    if key not in row:
        return None
    value = row[key]
    return 0.0 if value is None else float(value)


def _opt_arr(row: Mapping[str, Any], key: str) -> np.ndarray | None:
    if key not in row:
        return None
    value = row[key]
    if value is None:
        return np.zeros(0)
    return np.array([0.0 if v is None else float(v) for v in value], dtype=float)


def _check_metric(task: str, metric: str) -> None:
    if metric not in SE_METRICS[task] and metric not in _COUNTS:
        raise ValueError(f"no standard error for {metric!r}; {task} metrics are {list(SE_METRICS[task])}")


def metric_se(spec: QualitySpec, metric: str, row: Mapping[str, Any], prefix: str = "q__") -> float:
    """Standard error of ``quality_from_row(spec, row, prefix)[metric]``.

    ``row`` is one window's aggregated states (a dict or a pyspark Row) from
    ``quality_exprs(spec, prefix)``; the formulas are in this module's docstring.
    Returns NaN when the se is undefined (too few rows, a one-class window, ece, the
    counts tp/fp/tn/fn/n/unlabelled) or when a state it needs is missing from the row.
    Raises ValueError for a name that is not a metric of ``spec.task``.

    >>> spec = QualitySpec(task="binary", label="y", prediction="p")
    >>> round(metric_se(spec, "accuracy", {"q__tp": 40, "q__fp": 10, "q__tn": 40, "q__fn": 10}), 4)
    0.04
    """
    _check_metric(spec.task, metric)
    if metric in _COUNTS or metric == "ece":
        return NAN
    r = _as_dict(row)
    k = lambda name: _opt(r, prefix + name)  # noqa: E731
    if spec.task == "regression":
        return _regression_se(metric, k)

    if metric == "prediction_threshold_disagreement":
        both, dis = k("n_both"), k("disagree")
        if both is None or dis is None or not both > 0:
            return NAN
        return binomial_se(dis / both, both)
    if metric == "roc_auc":
        if spec.score is None:
            return NAN
        pos, neg = _opt_arr(r, prefix + "bin_pos"), _opt_arr(r, prefix + "bin_neg")
        if pos is None or neg is None or pos.size == 0 or pos.shape != neg.shape:
            return NAN
        return delong_se_from_bins(pos, neg)
    if metric == "log_loss":
        if spec.score is None:
            return NAN
        return mean_se(k("logloss_sum"), k("logloss_sq"), k("n_scored"))
    counts = [k(name) for name in ("tp", "fp", "tn", "fn")]
    if any(c is None for c in counts):
        return NAN
    return _confusion_se(metric, *counts)  # type: ignore[arg-type]


def _regression_se(metric: str, k) -> float:
    n, sse, sse2 = k("n"), k("sse"), k("sse2")
    if metric == "mae":
        return mean_se(k("sae"), sse, n)
    if metric == "mape":
        return mean_se(k("sape"), k("sape2"), k("n_nonzero"))
    se_mse = mean_se(sse, sse2, n)
    if metric == "mse":
        return se_mse
    if metric == "rmse":
        if math.isnan(se_mse):
            return NAN
        rmse = math.sqrt(sse / n)
        if rmse == 0:
            return 0.0 if se_mse == 0 else NAN
        return se_mse / (2.0 * rmse)
    assert metric == "r2"
    sums = [k(name) for name in ("sum_y", "sum_y2", "sum_y3", "sum_y4", "sum_e2y", "sum_e2y2")]
    if sse2 is None or n is None or not n >= 3 or any(s is None for s in sums):
        return NAN
    sy, sy2, sy3, sy4, se2y, se2y2 = sums  # type: ignore[misc]
    ybar = sy / n
    b = sy2 / n - ybar * ybar  # mean (y - ybar)^2
    if not b > 1e-12 * max(1.0, sy2 / n):  # same zero-variance rule as quality_from_row
        return NAN
    a = sse / n
    ratio = a / b
    m_e4 = sse2 / n
    m_e2yc2 = (se2y2 - 2.0 * ybar * se2y + ybar * ybar * sse) / n
    m_yc4 = sy4 / n - 4.0 * ybar * sy3 / n + 6.0 * ybar**2 * sy2 / n - 3.0 * ybar**4
    mean_c2 = m_e4 - 2.0 * ratio * m_e2yc2 + ratio * ratio * m_yc4
    return math.sqrt(max(mean_c2, 0.0) / (n - 1.0)) / b


def estimated_se(metric: str, est: Mapping[str, Any]) -> float:
    """Standard error of an estimated (label-free) metric from ``estimated_from_row``.

    The realised-metric formulas applied to the expected confusion counts tp, fp, tn,
    fn. roc_auc uses DeLong on the expected per-bin counts (``expected_bin_pos`` =
    rows x calibrated p, ``expected_bin_neg`` = rows x (1 - p)) when ``est`` has them,
    else Hanley & McNeil with the expected numbers of positives (``n_pos`` = sum of
    calibrated p over the scored rows) and negatives (``n_neg``). NaN when undefined
    or when a needed key is missing (e.g. no ``roc_auc`` because no calibration was
    passed to ``estimated_from_row``). Raises ValueError for a metric the estimate
    does not give.

    >>> round(estimated_se("recall", {"tp": 30.0, "fp": 10.0, "tn": 50.0, "fn": 10.0}), 4)
    0.0685
    """
    if metric not in ESTIMATED:
        raise ValueError(f"no estimated standard error for {metric!r}; estimated metrics are {list(ESTIMATED)}")

    def get(key: str) -> float | None:
        value = est.get(key)
        return None if value is None else float(value)

    if metric == "roc_auc":
        auc = get("roc_auc")
        if auc is None or not math.isfinite(auc):
            return NAN
        pos, neg = est.get("expected_bin_pos"), est.get("expected_bin_neg")
        if pos is not None and neg is not None:
            return delong_se_from_bins(pos, neg)
        n_pos, n_neg = get("n_pos"), get("n_neg")
        if n_pos is None or n_neg is None:
            return NAN
        return hanley_mcneil_se(auc, n_pos, n_neg)
    counts = [get(name) for name in ("tp", "fp", "tn", "fn")]
    if any(c is None or not math.isfinite(c) for c in counts):
        return NAN
    return _confusion_se(metric, *counts)  # type: ignore[arg-type]
