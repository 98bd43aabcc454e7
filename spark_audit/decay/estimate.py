"""Performance without labels for binary classifiers (confidence-based, like NannyML CBPE).

On the reference (where labels exist) the binned scores are calibrated with isotonic
regression: each score bin gets the probability that a row in it is positive. On a
window without labels every row then contributes its calibrated probability ``p`` to
the expected confusion matrix: a predicted positive adds ``p`` to tp and ``1 - p`` to
fp, a predicted negative adds ``p`` to fn and ``1 - p`` to tn. A row is predicted
positive by the prediction column when one is given (the rule of
``spark_audit.decay.metrics``), else by ``score >= threshold``. The estimated ROC AUC
ranks the expected positives (count x p) against the expected negatives
(count x (1 - p)) per score bin. The estimate holds under covariate shift (scores
move, P(y | score) does not), not under concept drift.

Bins are the same as ``spark_audit.decay.metrics.score_bin``, so the reference's
``q__bin_pos`` / ``q__bin_neg`` states feed ``fit_calibration`` directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F
from scipy.optimize import isotonic_regression

from spark_audit.decay.metrics import _as_dict, _equals_positive, _num, roc_auc_from_bins, score_bin
from spark_audit.errors import DataError
from spark_audit.names import col as _col

__all__ = ["Calibration", "fit_calibration", "estimated_exprs", "estimated_from_row"]


@dataclass(frozen=True)
class Calibration:
    """Calibrated probability of the positive class per uniform score bin on [0, 1].

    probs[i] applies to scores in bin i; counts[i] is the number of reference rows the
    bin had (0 for bins filled by interpolation).
    """

    probs: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def bins(self) -> int:
        return len(self.probs)

    def __post_init__(self) -> None:
        if len(self.probs) < 2 or len(self.probs) != len(self.counts):
            raise ValueError("probs and counts must have the same length, at least 2")
        if any(not (0.0 <= p <= 1.0) for p in self.probs):
            raise ValueError("calibrated probabilities must lie in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "isotonic_binned",
            "bins": self.bins,
            "probs": list(self.probs),
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        try:
            probs = tuple(float(p) for p in data["probs"])
            counts = tuple(float(c) for c in data["counts"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a calibration dict: {exc}") from None
        if "bins" in data and int(data["bins"]) != len(probs):
            raise DataError(f"calibration says {data['bins']} bins but has {len(probs)} probs")
        return cls(probs, counts)

    def predict(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores (numpy; same binning as Spark)."""
        s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
        idx = np.minimum(np.floor(s * self.bins), self.bins - 1).astype(int)
        return np.asarray(self.probs)[idx]


def fit_calibration(
    score_bin_pos: Sequence[float], score_bin_neg: Sequence[float]
) -> Calibration:
    """Isotonic (monotone increasing) calibration of the reference's binned scores.

    The observed positive rate of each non-empty bin is fitted with
    ``scipy.optimize.isotonic_regression`` weighted by the bin's count; empty bins get
    the linear interpolation of their neighbours (flat beyond the ends), which keeps
    the result monotone. Raises DataError if the reference has no scored rows.
    """
    pos = np.asarray(score_bin_pos, dtype=float)
    neg = np.asarray(score_bin_neg, dtype=float)
    if pos.shape != neg.shape or pos.ndim != 1 or pos.size < 2:
        raise ValueError("score_bin_pos and score_bin_neg must be 1-d, equal length >= 2")
    pos = np.nan_to_num(pos)
    neg = np.nan_to_num(neg)
    count = pos + neg
    mask = count > 0
    if not mask.any():
        raise DataError("cannot fit a calibration: the reference has no labelled, scored rows")
    rates = pos[mask] / count[mask]
    fitted = isotonic_regression(rates, weights=count[mask], increasing=True).x
    centers = (np.arange(pos.size) + 0.5) / pos.size
    probs = np.interp(centers, centers[mask], fitted)
    probs = np.clip(probs, 0.0, 1.0)
    return Calibration(tuple(float(p) for p in probs), tuple(float(c) for c in count))


def estimated_exprs(
    calibration: Calibration,
    score_col: str,
    threshold: float = 0.5,
    prefix: str = "e__",
    *,
    prediction_col: str | None = None,
    positive: Any = 1,
) -> list[Column]:
    """Aggregates of the label-free estimate, aliased ``prefix + name``.

    tp, fp, tn, fn (double): the expected confusion matrix; n (long): the rows in it.
    Without ``prediction_col`` those are the rows with a score and predicted positive
    means ``score >= threshold``. With it, they are the rows with a score and a
    prediction, and predicted positive means prediction == ``positive`` (numbers and
    booleans compare as doubles, as in ``quality_exprs``).
    bin_n (array of long, ``calibration.bins`` long): rows with a score per uniform
    score bin (the bins of ``score_bin``), for the estimated ROC AUC.
    Every state is a sum, so estimates merge with ``merge_states``.
    """
    score = _col(score_col).cast("double")
    scored = score.isNotNull()
    probs = F.array(*[F.lit(float(p)) for p in calibration.probs])
    b = score_bin(score, calibration.bins)
    p = F.element_at(probs, b + F.lit(1))
    q = F.lit(1.0) - p
    if prediction_col is None:
        pred_pos = scored & (score >= F.lit(float(threshold)))
        pred_neg = scored & (score < F.lit(float(threshold)))
    else:
        pred = _col(prediction_col)
        is_pos = _equals_positive(pred, positive)
        # a prediction not comparable with ``positive`` leaves is_pos null: in neither
        pred_pos = scored & pred.isNotNull() & is_pos
        pred_neg = scored & pred.isNotNull() & ~is_pos

    def _sum(cond: Column, value: Column) -> Column:
        return F.sum(F.when(cond, value).otherwise(F.lit(0.0)))

    def _count(cond: Column) -> Column:
        return F.sum(F.when(cond, F.lit(1)).otherwise(F.lit(0))).cast("long")

    return [
        _sum(pred_pos, p).alias(prefix + "tp"),
        _sum(pred_pos, q).alias(prefix + "fp"),
        _sum(pred_neg, q).alias(prefix + "tn"),
        _sum(pred_neg, p).alias(prefix + "fn"),
        _count(pred_pos | pred_neg).alias(prefix + "n"),
        F.array(*[_count(scored & (b == i)) for i in range(calibration.bins)]).alias(prefix + "bin_n"),
    ]


def estimated_from_row(
    row: Mapping[str, Any], prefix: str = "e__", calibration: Calibration | None = None
) -> dict[str, Any]:
    """Estimated accuracy, precision, recall, f1, positive_rate, the expected tp, fp,
    tn, fn and n from one aggregated row; and roc_auc with n_pos, n_neg (the expected
    numbers of positives and negatives among the scored rows) and the lists
    expected_bin_pos, expected_bin_neg (per score bin: rows x p, rows x (1 - p)) that
    ``spark_audit.decay.uncertainty.estimated_se`` uses.

    roc_auc needs ``calibration`` (the one the row was aggregated with) and the
    ``bin_n`` state; without either it is NaN, as are n_pos and n_neg, and the lists
    are absent. Undefined values are NaN. Raises DataError when bin_n and the
    calibration differ in bins.
    """
    r = _as_dict(row)
    tp, fp, tn, fn = (_num(r, prefix + k) for k in ("tp", "fp", "tn", "fn"))
    n = _num(r, prefix + "n")
    total = tp + fp + tn + fn

    def div(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    out: dict[str, Any] = {
        "accuracy": div(tp + tn, total),
        "precision": div(tp, tp + fp),
        "recall": div(tp, tp + fn),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "positive_rate": div(tp + fn, total),
        "roc_auc": math.nan,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n": n,
        "n_pos": math.nan,
        "n_neg": math.nan,
    }
    counts = r.get(prefix + "bin_n")
    if calibration is not None and counts is not None:
        c = np.array([0.0 if v is None else float(v) for v in counts], dtype=float)
        if c.size != calibration.bins:
            raise DataError(
                f"{prefix}bin_n has {c.size} bins but the calibration has {calibration.bins}; "
                "estimate with the calibration the row was aggregated with"
            )
        probs = np.asarray(calibration.probs, dtype=float)
        pos, neg = c * probs, c * (1.0 - probs)
        out["roc_auc"] = roc_auc_from_bins(pos, neg)
        out["n_pos"], out["n_neg"] = float(pos.sum()), float(neg.sum())
        out["expected_bin_pos"], out["expected_bin_neg"] = pos.tolist(), neg.tolist()
    return out
