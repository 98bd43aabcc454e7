"""Anomalies and trends in one metric's history (pure numpy, no Spark).

A history is a sequence of floats, oldest first, one per window. Non-finite values
(NaN, inf: a window where the metric was undefined) are ignored, never raised on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AnomalyResult", "rate_of_change", "zscore", "trend", "windows_until"]

DIRECTIONS = ("both", "up", "down")


@dataclass(frozen=True)
class AnomalyResult:
    """Outcome of one check.

    is_anomaly: whether ``value`` lies outside ``bounds``.
    score:      the check's statistic (relative change, or z-score); NaN if not computed.
    bounds:     (lower, upper) accepted range for the value; (-inf, inf) when open.
    reason:     one human sentence saying why.
    """

    is_anomaly: bool
    score: float
    bounds: tuple[float, float]
    reason: str


def _finite(history: Sequence[float]) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else v for v in history], dtype=float)
    return arr[np.isfinite(arr)]


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def _outside(value: float, lower: float, upper: float, direction: str) -> bool:
    low = value < lower and direction in ("both", "down")
    high = value > upper and direction in ("both", "up")
    return bool(low or high)


def _not_finite(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def rate_of_change(
    history: Sequence[float],
    value: float,
    *,
    max_rel_change: float,
    direction: str = "both",
) -> AnomalyResult:
    """Flag ``value`` when it differs from the last finite history value by more than
    ``max_rel_change`` times that value's magnitude.

    score = (value - previous) / |previous|. A previous value of 0 makes any change
    infinite. ``direction`` ("both", "up", "down") limits which side counts.
    """
    _check_direction(direction)
    if not max_rel_change >= 0:
        raise ValueError(f"max_rel_change must be >= 0, got {max_rel_change!r}")
    nan = float("nan")
    if _not_finite(value):
        return AnomalyResult(False, nan, (-math.inf, math.inf), f"value is {value}: not checked")
    hist = _finite(history)
    if hist.size == 0:
        return AnomalyResult(False, nan, (-math.inf, math.inf), "no finite history to compare with")
    prev = float(hist[-1])
    spread = abs(prev) * max_rel_change
    lower, upper = prev - spread, prev + spread
    diff = float(value) - prev
    if prev != 0:
        score = diff / abs(prev)
    else:
        score = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    flagged = _outside(float(value), lower, upper, direction)
    reason = (
        f"value {value:.6g} changed by {score:+.2%} from previous {prev:.6g} "
        f"({'beyond' if flagged else 'within'} ±{max_rel_change:.2%})"
    )
    return AnomalyResult(flagged, score, (lower, upper), reason)


def zscore(
    history: Sequence[float],
    value: float,
    *,
    k: float = 3.0,
    min_history: int = 3,
    window: int | None = None,
    direction: str = "both",
    min_std: float | None = 0.0,
) -> AnomalyResult:
    """Flag ``value`` outside mean ± k·std of the trailing history.

    The trailing history is the last ``window`` finite values (all when None); std is
    the larger of their sample standard deviation (ddof=1) and ``min_std``. A few
    windows can agree closely by chance; a floor such as the metric's sampling error
    at this n (``spark_audit.decay.uncertainty``) keeps sampling noise from being
    flagged. A NaN or None ``min_std`` (an undefined se) means no floor. With fewer
    than ``min_history`` finite values nothing is flagged. A constant history with
    no floor accepts only (numerically) the same value.
    """
    _check_direction(direction)
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k!r}")
    if min_std is None or (isinstance(min_std, float) and math.isnan(min_std)):
        min_std = 0.0
    if not (min_std >= 0 and math.isfinite(min_std)):
        raise ValueError(f"min_std must be a finite number >= 0 (or NaN for none), got {min_std!r}")
    if window is not None and window < 2:
        raise ValueError(f"window must be >= 2 or None, got {window!r}")
    nan = float("nan")
    if _not_finite(value):
        return AnomalyResult(False, nan, (-math.inf, math.inf), f"value is {value}: not checked")
    hist = _finite(history)
    if window is not None:
        hist = hist[-window:]
    if hist.size < max(min_history, 2):
        return AnomalyResult(
            False,
            nan,
            (-math.inf, math.inf),
            f"only {hist.size} finite history values, need {max(min_history, 2)}",
        )
    mean = float(hist.mean())
    std = max(float(hist.std(ddof=1)), float(min_std))
    tol = 1e-12 * max(1.0, abs(mean))
    half = max(k * std, tol)
    lower, upper = mean - half, mean + half
    diff = float(value) - mean
    if std > 0:
        score = diff / std
    else:
        score = 0.0 if abs(diff) <= tol else math.copysign(math.inf, diff)
    flagged = _outside(float(value), lower, upper, direction)
    reason = (
        f"value {value:.6g} is {score:+.2f} std from the mean {mean:.6g} of "
        f"{hist.size} windows ({'outside' if flagged else 'inside'} ±{k:g} std)"
    )
    return AnomalyResult(flagged, score, (lower, upper), reason)


def _fit(values: Sequence[float]) -> tuple[float, float, float] | None:
    """Least-squares line over the finite values: (slope, intercept, last index)."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    x = np.arange(arr.size, dtype=float)
    mask = np.isfinite(arr)
    if mask.sum() < 2:
        return None
    x, y = x[mask], arr[mask]
    xm, ym = x.mean(), y.mean()
    slope = float(np.sum((x - xm) * (y - ym)) / np.sum((x - xm) ** 2))
    return slope, float(ym - slope * xm), float(x[-1])


def trend(values: Sequence[float]) -> float:
    """Least-squares slope per window over the finite values (their positions kept).

    NaN with fewer than two finite values.
    """
    fit = _fit(values)
    return float("nan") if fit is None else fit[0]


def windows_until(
    values: Sequence[float], threshold: float, *, higher_is_better: bool = True
) -> float:
    """Windows left, after the last one, until the linear trend crosses ``threshold``.

    0 if the last finite value has already crossed it (below for higher_is_better,
    above otherwise); inf if the trend never reaches it (flat or moving away); NaN if
    there is no finite value, or only one that has not crossed. The projection starts
    from the fitted line at the last window, and is never negative.
    """
    arr = _finite(values)
    if arr.size == 0:
        return float("nan")
    last = float(arr[-1])
    crossed = last <= threshold if higher_is_better else last >= threshold
    if crossed:
        return 0.0
    fit = _fit(values)
    if fit is None:
        return float("nan")
    slope, intercept, x_last = fit
    if (higher_is_better and not slope < 0) or (not higher_is_better and not slope > 0):
        return math.inf
    x_cross = (threshold - intercept) / slope
    return max(0.0, float(x_cross - x_last))
