"""Performance without labels for binary classifiers (confidence-based, like NannyML CBPE).

On the reference (where labels exist) the binned scores are calibrated with isotonic
regression: each score bin gets the probability that a row in it is positive. On a
window without labels every row then contributes its calibrated probability ``p`` to
the expected confusion matrix: a predicted positive adds ``p`` to tp and ``1 - p`` to
fp, a predicted negative adds ``p`` to fn and ``1 - p`` to tn. The estimate holds
under covariate shift (scores move, P(y | score) does not), not under concept drift.

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

from spark_audit.decay.metrics import _as_dict, _num, score_bin
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
    calibration: Calibration, score_col: str, threshold: float = 0.5, prefix: str = "e__"
) -> list[Column]:
    """Aggregates of the expected confusion matrix: ``prefix`` + tp, fp, tn, fn (double)
    and n (long, rows with a score). Predicted positive means score >= threshold.
    """
    score = _col(score_col).cast("double")
    scored = score.isNotNull()
    probs = F.array(*[F.lit(float(p)) for p in calibration.probs])
    p = F.element_at(probs, score_bin(score, calibration.bins) + F.lit(1))
    q = F.lit(1.0) - p
    pred_pos = scored & (score >= F.lit(float(threshold)))
    pred_neg = scored & (score < F.lit(float(threshold)))

    def _sum(cond: Column, value: Column) -> Column:
        return F.sum(F.when(cond, value).otherwise(F.lit(0.0)))

    return [
        _sum(pred_pos, p).alias(prefix + "tp"),
        _sum(pred_pos, q).alias(prefix + "fp"),
        _sum(pred_neg, q).alias(prefix + "tn"),
        _sum(pred_neg, p).alias(prefix + "fn"),
        F.sum(F.when(scored, F.lit(1)).otherwise(F.lit(0))).cast("long").alias(prefix + "n"),
    ]


def estimated_from_row(row: Mapping[str, Any], prefix: str = "e__") -> dict[str, float]:
    """Estimated accuracy, precision, recall, f1, positive_rate, the expected tp, fp,
    tn, fn and n from one aggregated row. Undefined values are NaN.
    """
    r = _as_dict(row)
    tp, fp, tn, fn = (_num(r, prefix + k) for k in ("tp", "fp", "tn", "fn"))
    n = _num(r, prefix + "n")
    total = tp + fp + tn + fn

    def div(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    return {
        "accuracy": div(tp + tn, total),
        "precision": div(tp, tp + fp),
        "recall": div(tp, tp + fn),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "positive_rate": div(tp + fn, total),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n": n,
    }
