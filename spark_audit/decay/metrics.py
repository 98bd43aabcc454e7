"""Model quality per window as Spark aggregate expressions, and the metrics they give.

``quality_exprs`` returns aggregate expressions that go into the same
``groupBy(window, slice, model_version).agg(...)`` as the profile. Every state is a
sum or a count (or an array of sums), so the states of two windows merge by adding
them (``merge_states``) without rescanning data. ``quality_from_row`` turns one
aggregated row into the final metrics with plain Python/numpy.

Only built-in Spark SQL functions are used (Spark Connect safe).

Score bins are uniform on [0, 1]: a score ``s`` falls in bin
``min(floor(clip(s, 0, 1) * score_bins), score_bins - 1)``, so 1.0 is in the last bin.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_audit.errors import DataError, SpecError
from spark_audit.names import col as _col
from spark_audit.names import quote_name as _quote
from spark_audit.spec import QualitySpec
from spark_audit.timeutil import parse_duration

EPS = 1e-15

# States added for standard errors (spark_audit.decay.uncertainty) and the
# prediction/threshold disagreement. They are plain sums like the others, but rows
# aggregated before they existed lack them: every reader treats them as optional.
REGRESSION_SE_STATES = ("sse2", "sape2", "sum_y3", "sum_y4", "sum_e2y", "sum_e2y2")
BINARY_SE_STATES = ("logloss_sq", "disagree", "n_both")
OPTIONAL_STATES = frozenset(REGRESSION_SE_STATES + BINARY_SE_STATES + ("bin_n",))

__all__ = [
    "QualitySpec",
    "quality_exprs",
    "quality_from_row",
    "quality_state_names",
    "merge_states",
    "roc_auc_from_bins",
    "ece_from_bins",
    "score_bin",
    "join_labels",
]




def score_bin(score: Column, bins: int) -> Column:
    """0-based bin index of a score column (null when the score is null)."""
    clipped = F.least(F.greatest(score.cast("double"), F.lit(0.0)), F.lit(1.0))
    return F.least(F.floor(clipped * F.lit(float(bins))), F.lit(bins - 1)).cast("int")


def quality_state_names(spec: QualitySpec) -> list[str]:
    """State names (without prefix) that ``quality_exprs`` produces for ``spec``, in order."""
    if spec.task == "regression":
        return [
            "unlabelled", "unpredicted", "n", "sse", "sae", "sape", "n_nonzero", "sum_y", "sum_y2",
            *REGRESSION_SE_STATES,
        ]
    names = ["unlabelled", "unpredicted", "tp", "fp", "tn", "fn"]
    if spec.score is not None:
        names += ["n_scored", "logloss_sum", "bin_pos", "bin_neg", "bin_score_sum", "logloss_sq"]
    if spec.prediction is not None and spec.score is not None:
        names += ["disagree", "n_both"]
    return names


def _equals_positive(column: Column, positive: Any) -> Column:
    """``column == positive``; a numeric or boolean ``positive`` compares as a double,
    so 1 matches true, 1 and 1.0 in boolean, integer, decimal or double columns."""
    if isinstance(positive, (bool, int, float)):
        return column.cast("double") == F.lit(float(positive))
    return column == F.lit(positive)


def _count(cond: Column) -> Column:
    return F.sum(F.when(cond, F.lit(1)).otherwise(F.lit(0))).cast("long")


def _sum(cond: Column, value: Column) -> Column:
    return F.sum(F.when(cond, value).otherwise(F.lit(0.0)))


def quality_exprs(spec: QualitySpec, prefix: str = "q__", weight: Column | None = None) -> list[Column]:
    """Aggregate expressions for the quality states of ``spec``, aliased ``prefix + name``.

    ``weight``: an integer weight per row (default 1). Every count becomes a sum of weights and
    every sum a weighted sum, so a Poisson bootstrap replicate (``spark_audit.gate``) is the same
    expressions over the same rows; a row of weight 0 counts nowhere.

    Binary: unlabelled, unpredicted, tp, fp, tn, fn and, with a score column, n_scored,
    logloss_sum, the arrays bin_pos, bin_neg (counts, long) and bin_score_sum (double)
    of length ``score_bins``, and logloss_sq (sum of squared per-row log loss). With
    both a prediction and a score column also disagree and n_both: over every row
    that has both (labelled or not), n_both counts them and disagree counts those
    whose predicted class differs from ``score >= threshold``.

    Regression: unlabelled, unpredicted, n, sse, sae, sape, n_nonzero, sum_y, sum_y2,
    then sse2 (sum of e^4), sape2 (sum of squared |e / y| over y != 0), sum_y3,
    sum_y4, sum_e2y (sum of e^2 y) and sum_e2y2 (sum of e^2 y^2), with e = prediction - y.

    ``unpredicted`` counts labelled rows without a prediction (or score); they are
    left out of every other state except disagree / n_both.
    """
    if weight is None:
        _count_if, _sum_if = _count, _sum
    else:
        def _count_if(cond: Column) -> Column:
            return F.sum(F.when(cond, weight).otherwise(F.lit(0))).cast("long")

        def _sum_if(cond: Column, value: Column) -> Column:
            return F.sum(F.when(cond, value * weight).otherwise(F.lit(0.0)))

    label = _col(spec.label)
    labelled = label.isNotNull()
    out: list[tuple[str, Column]] = [("unlabelled", _count_if(label.isNull()))]

    if spec.task == "regression":
        assert spec.prediction is not None
        y = label.cast("double")
        pred = _col(spec.prediction).cast("double")
        ok = labelled & pred.isNotNull()
        err = pred - y
        nonzero = ok & (y != F.lit(0.0))
        out += [
            ("unpredicted", _count_if(labelled & pred.isNull())),
            ("n", _count_if(ok)),
            ("sse", _sum_if(ok, err * err)),
            ("sae", _sum_if(ok, F.abs(err))),
            ("sape", _sum_if(nonzero, F.abs(err / y))),
            ("n_nonzero", _count_if(nonzero)),
            ("sum_y", _sum_if(ok, y)),
            ("sum_y2", _sum_if(ok, y * y)),
            ("sse2", _sum_if(ok, err * err * err * err)),
            ("sape2", _sum_if(nonzero, (err / y) * (err / y))),
            ("sum_y3", _sum_if(ok, y * y * y)),
            ("sum_y4", _sum_if(ok, y * y * y * y)),
            ("sum_e2y", _sum_if(ok, err * err * y)),
            ("sum_e2y2", _sum_if(ok, err * err * y * y)),
        ]
        return [expr.alias(prefix + name) for name, expr in out]

    is_pos = _equals_positive(label, spec.positive)
    score = _col(spec.score).cast("double") if spec.score is not None else None
    if spec.prediction is not None:
        pred_raw = _col(spec.prediction)
        has_pred = pred_raw.isNotNull()
        pred_pos = _equals_positive(pred_raw, spec.positive)
    else:
        assert score is not None
        has_pred = score.isNotNull()
        pred_pos = score >= F.lit(float(spec.threshold))
    ok = labelled & has_pred
    out += [
        ("unpredicted", _count_if(labelled & ~has_pred)),
        ("tp", _count_if(ok & is_pos & pred_pos)),
        ("fp", _count_if(ok & ~is_pos & pred_pos)),
        ("tn", _count_if(ok & ~is_pos & ~pred_pos)),
        ("fn", _count_if(ok & is_pos & ~pred_pos)),
    ]
    if score is not None:
        scored = labelled & score.isNotNull()
        p = F.least(F.greatest(score, F.lit(EPS)), F.lit(1.0 - EPS))
        loss = F.when(is_pos, -F.log(p)).otherwise(-F.log(F.lit(1.0) - p))
        b = score_bin(score, spec.score_bins)
        bins = range(spec.score_bins)
        out += [
            ("n_scored", _count_if(scored)),
            ("logloss_sum", _sum_if(scored, loss)),
            ("bin_pos", F.array(*[_count_if(scored & is_pos & (b == i)) for i in bins])),
            ("bin_neg", F.array(*[_count_if(scored & ~is_pos & (b == i)) for i in bins])),
            (
                "bin_score_sum",
                F.array(*[_sum_if(scored & (b == i), score) for i in bins]),
            ),
            ("logloss_sq", _sum_if(scored, loss * loss)),
        ]
    if spec.prediction is not None and score is not None:
        both = has_pred & score.isNotNull()
        by_threshold = score >= F.lit(float(spec.threshold))
        # a prediction that is neither null nor comparable with ``positive`` (say "abc"
        # against 1) leaves pred_pos null: such a row counts in n_both, never in disagree
        out += [
            ("disagree", _count_if(both & (pred_pos != by_threshold))),
            ("n_both", _count_if(both)),
        ]
    return [expr.alias(prefix + name) for name, expr in out]


# --------------------------------------------------------------------------- pure math


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def roc_auc_from_bins(pos: Sequence[float], neg: Sequence[float]) -> float:
    """ROC AUC from per-bin counts of positives and negatives (bins in increasing score).

    Trapezoid rule over the ROC curve whose points are the bin edges, which equals the
    Mann-Whitney probability P(score_pos > score_neg) with pairs in the same bin
    counting one half. NaN when there are no positives or no negatives.
    """
    p = np.asarray(pos, dtype=float)
    n = np.asarray(neg, dtype=float)
    if p.shape != n.shape or p.ndim != 1:
        raise ValueError(f"pos and neg must be 1-d of equal length, got {p.shape} and {n.shape}")
    total_p, total_n = p.sum(), n.sum()
    if not (total_p > 0 and total_n > 0):
        return float("nan")
    neg_below = np.cumsum(n) - n  # negatives in strictly lower bins
    wins = float(np.sum(p * (neg_below + 0.5 * n)))
    return float(wins / (total_p * total_n))


def ece_from_bins(count: Sequence[float], score_sum: Sequence[float], pos: Sequence[float]) -> float:
    """Expected calibration error: sum_b count_b/N * |mean score_b - positive rate_b|.

    Equals sum_b |score_sum_b - pos_b| / N. NaN when there are no rows.
    """
    c = np.asarray(count, dtype=float)
    s = np.asarray(score_sum, dtype=float)
    p = np.asarray(pos, dtype=float)
    if not (c.shape == s.shape == p.shape) or c.ndim != 1:
        raise ValueError("count, score_sum and pos must be 1-d of equal length")
    total = c.sum()
    if not total > 0:
        return float("nan")
    return float(np.sum(np.abs(s - p)) / total)


def _as_dict(row: Any) -> Mapping[str, Any]:
    if hasattr(row, "asDict"):
        return row.asDict()
    return row


def _get(row: Mapping[str, Any], key: str) -> Any:
    try:
        return row[key]
    except KeyError:
        raise DataError(
            f"quality state {key!r} is missing from the aggregated row; "
            "did the aggregation include quality_exprs(spec) with the same prefix?"
        ) from None


def _num(row: Mapping[str, Any], key: str) -> float:
    value = _get(row, key)
    return 0.0 if value is None else float(value)


def _arr(row: Mapping[str, Any], key: str, bins: int) -> np.ndarray:
    value = _get(row, key)
    if value is None:
        return np.zeros(bins)
    return np.array([0.0 if v is None else float(v) for v in value], dtype=float)


def quality_from_row(
    spec: QualitySpec, row: Mapping[str, Any], prefix: str = "q__"
) -> dict[str, float]:
    """Final metrics from one aggregated row (a dict or a pyspark Row).

    Binary: accuracy, precision, recall, f1, tp, fp, tn, fn, roc_auc, log_loss, ece,
    positive_rate (share of positive labels), predicted_positive_rate, n, unlabelled and
    prediction_threshold_disagreement (disagree / n_both: the share of rows, labelled
    or not, whose prediction column differs from ``score >= threshold``; NaN without
    both columns, without such rows, or for a row aggregated before that state existed).
    Regression: mse, rmse, mae, mape (over y != 0), r2, n, unlabelled.
    Undefined values are NaN; this never raises on empty or one-class data.
    """
    r = _as_dict(row)
    nan = float("nan")
    unlabelled = _num(r, prefix + "unlabelled")
    if spec.task == "regression":
        n = _num(r, prefix + "n")
        sse = _num(r, prefix + "sse")
        sum_y = _num(r, prefix + "sum_y")
        sst = _num(r, prefix + "sum_y2") - (sum_y * sum_y / n if n else 0.0)
        mse = _div(sse, n)
        # sst is a difference of sums: treat relative round-off as zero variance
        sst_ok = n > 1 and sst > 1e-12 * max(1.0, _num(r, prefix + "sum_y2"))
        return {
            "mse": mse,
            "rmse": math.sqrt(mse) if not math.isnan(mse) else nan,
            "mae": _div(_num(r, prefix + "sae"), n),
            "mape": _div(_num(r, prefix + "sape"), _num(r, prefix + "n_nonzero")),
            "r2": 1.0 - sse / sst if sst_ok else nan,
            "n": n,
            "unlabelled": unlabelled,
        }

    tp, fp, tn, fn = (_num(r, prefix + k) for k in ("tp", "fp", "tn", "fn"))
    n = tp + fp + tn + fn
    out = {
        "accuracy": _div(tp + tn, n),
        "precision": _div(tp, tp + fp),
        "recall": _div(tp, tp + fn),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "roc_auc": nan,
        "log_loss": nan,
        "ece": nan,
        "positive_rate": _div(tp + fn, n),
        "predicted_positive_rate": _div(tp + fp, n),
        "n": n,
        "unlabelled": unlabelled,
        "prediction_threshold_disagreement": nan,
    }
    if r.get(prefix + "n_both") is not None and r.get(prefix + "disagree") is not None:
        out["prediction_threshold_disagreement"] = _div(
            _num(r, prefix + "disagree"), _num(r, prefix + "n_both")
        )
    if spec.score is not None:
        pos = _arr(r, prefix + "bin_pos", spec.score_bins)
        neg = _arr(r, prefix + "bin_neg", spec.score_bins)
        ssum = _arr(r, prefix + "bin_score_sum", spec.score_bins)
        out["roc_auc"] = roc_auc_from_bins(pos, neg)
        out["log_loss"] = _div(_num(r, prefix + "logloss_sum"), _num(r, prefix + "n_scored"))
        out["ece"] = ece_from_bins(pos + neg, ssum, pos)
    return out


def _is_optional(key: str) -> bool:
    """Whether a (prefixed) state name is one of ``OPTIONAL_STATES``."""
    return any(key.endswith(name) for name in OPTIONAL_STATES)


def merge_states(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two aggregated quality rows (same spec and prefix): every state adds.

    Numbers add, arrays add element-wise, None stands for an empty state. An empty
    mapping is the neutral element. Keys present in only one row are kept as they are,
    except the optional states (``OPTIONAL_STATES``: the sums behind standard errors,
    disagreement and the estimate's ``bin_n``): when only one of two non-empty rows has
    one, it was aggregated before that state existed, a sum over part of the rows would
    be wrong, so the key is dropped and whatever needs it becomes NaN.
    """
    a, b = _as_dict(a), _as_dict(b)
    out: dict[str, Any] = {}
    for key in list(a) + [k for k in b if k not in a]:
        if a and b and (key not in a or key not in b) and _is_optional(key):
            continue
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            out[key] = y if x is None else x
        elif isinstance(x, (list, tuple)):
            if len(x) != len(y):
                raise ValueError(f"cannot merge {key!r}: arrays of length {len(x)} and {len(y)}")
            out[key] = [
                (u if v is None else v if u is None else u + v) for u, v in zip(x, y, strict=True)
            ]
        else:
            out[key] = x + y
    return out


# --------------------------------------------------------------------------- labels

def _delay_seconds(max_delay: str | _dt.timedelta) -> float:
    try:
        return parse_duration(max_delay).total_seconds()
    except ValueError as e:
        raise SpecError(str(e), key="max_delay") from None


def join_labels(
    predictions: DataFrame,
    labels: DataFrame,
    keys: list[str],
    *,
    label_col: str,
    label_time_col: str | None = None,
    prediction_time_col: str | None = None,
    max_delay: str | _dt.timedelta | None = None,
) -> DataFrame:
    """Left-join ``predictions`` with ``labels`` on ``keys`` (equality, literal names).

    The result has every prediction column plus ``label_col`` (and ``label_time_col``
    when given). With ``max_delay`` and both time columns, a label whose time is later
    than ``prediction_time + max_delay`` is treated as missing (label and label time
    null); a label without a time is kept. Labels should be unique per key: duplicates duplicate the prediction row.

    Raises DataError naming any missing column or any label-side column that clashes
    with a prediction column; SpecError for an unreadable ``max_delay``.
    """
    if not keys:
        raise DataError("join_labels needs at least one key column")
    pred_cols, label_cols = predictions.columns, labels.columns
    missing_p = [k for k in keys if k not in pred_cols]
    if prediction_time_col is not None and prediction_time_col not in pred_cols:
        missing_p.append(prediction_time_col)
    needed_l = [*keys, label_col] + ([label_time_col] if label_time_col else [])
    missing_l = [c for c in needed_l if c not in label_cols]
    if missing_p or missing_l:
        parts = []
        if missing_p:
            parts.append(f"predictions lack {missing_p} (have {pred_cols})")
        if missing_l:
            parts.append(f"labels lack {missing_l} (have {label_cols})")
        raise DataError("join_labels: " + "; ".join(parts))
    carried = [label_col] + ([label_time_col] if label_time_col else [])
    clash = [c for c in carried if c in pred_cols]
    if clash:
        raise DataError(
            f"join_labels: predictions already have column(s) {clash}; "
            "drop or rename them before joining labels"
        )
    if max_delay is not None and (label_time_col is None or prediction_time_col is None):
        raise DataError("join_labels: max_delay needs both label_time_col and prediction_time_col")
    delay = _delay_seconds(max_delay) if max_delay is not None else None

    tmp = [f"__lbl_key_{i}" for i in range(len(keys))]
    right = labels.select(
        *[_col(k).alias(t) for k, t in zip(keys, tmp, strict=True)],
        *[_col(c) for c in carried],
    )
    cond = None
    for k, t in zip(keys, tmp, strict=True):
        c = predictions[_quote(k)] == right[t]
        cond = c if cond is None else cond & c
    joined = predictions.join(right, on=cond, how="left").drop(*tmp)
    if delay is None:
        return joined
    assert label_time_col is not None and prediction_time_col is not None
    lag_us = F.unix_micros(_col(label_time_col).cast("timestamp")) - F.unix_micros(
        _col(prediction_time_col).cast("timestamp")
    )
    late = lag_us > F.lit(int(round(delay * 1_000_000)))
    return joined.withColumns({c: F.when(late, F.lit(None)).otherwise(_col(c)) for c in carried})
