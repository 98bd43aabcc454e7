"""Evidence that a window's quality metric is worse than its baseline's, valid at small counts.

A rare positive class leaves precision, recall and F1 resting on a handful of rows per window: a window
with no true positive has F1 0, and its plug-in standard error is 0 as well, so a z-test calls any such
window "infinitely" worse. Here:

* **Rates** (accuracy, precision, recall, the positive and predicted-positive rates, and the fairness
  rates) are counts ``x`` of a denominator ``d``. Under "no change", the window's true rate is the
  baseline's, known up to the baseline's own sampling error (its Jeffreys posterior,
  ``Beta(x_b + 1/2, d_b - x_b + 1/2)``) and the reference's window-to-window variation ``tau2`` (the
  between-window variance of the rate, in its own units). The Beta with that mean and variance is the
  rate's predictive distribution, and the window's count is then beta-binomial: its exact mid-p value
  and its 95 % interval are the evidence and the band, at any count, zero included.
* **F1** is not a rate. Given the window's actual positives ``P`` and negatives ``N``, its true
  positives are beta-binomial with the baseline's recall and its false positives with the baseline's
  false-positive rate (each with its own ``tau2``); F1 follows by simulation (a fixed seed per window,
  so a re-run gives the same value).
* **Other metrics** (ROC AUC, log loss, regression errors) are smooth in large samples: a z-test on the
  window's and the baseline's standard errors plus ``tau2``.

Below a minimum denominator (``quality.min_count``: positives for recall, predicted positives for
precision, both for F1, the smaller class for ROC AUC) a metric gives no finding at all, and the stored
row says why (:func:`too_small`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import betabinom, norm

from spark_audit.catalog import MetricInfo

BAND = 0.95  # the noise band: the central 95 % of what the window's metric would be without a change
DRAWS = 20_000  # simulated windows for F1
Z_BAND = float(norm.ppf(0.5 + BAND / 2))


@dataclass(frozen=True)
class Evidence:
    """One metric's evidence: ``p`` (one-sided, "worse than the baseline"; NaN when none could be had) and
    ``band`` (low, high), the values the window's metric takes without a change (None: no band)."""

    p: float
    band: tuple[float, float] | None = None


NONE = Evidence(math.nan)


def predictive_beta(x: float, d: float, tau2: float = 0.0) -> tuple[float, float]:
    """``(a, b)`` of the Beta distribution of a window's true rate when it has not changed from a baseline
    of ``x`` out of ``d``: mean and variance of the baseline's Jeffreys posterior, plus ``tau2``.

    >>> a, b = predictive_beta(30, 1000)
    >>> round(a / (a + b), 4)
    0.0305
    >>> a2, b2 = predictive_beta(30, 1000, tau2=0.0001)
    >>> a2 + b2 < a + b  # between-window variation widens it
    True
    """
    p = (x + 0.5) / (d + 1.0)
    var = p * (1 - p) / (d + 2.0) + max(tau2, 0.0)
    c = max(p * (1 - p) / var - 1.0, 1e-6)
    return c * p, c * (1 - p)


def _seed(*values: float) -> int:
    return zlib.crc32(repr(tuple(round(float(v), 6) for v in values)).encode())


def rate_evidence(x: float, d: float, x_base: float, d_base: float, tau2: float = 0.0, *,
                  higher_is_better: bool = True) -> Evidence:
    """Exact mid-p evidence that ``x`` of ``d`` is a worse rate than the baseline's ``x_base`` of ``d_base``
    would give, and the 95 % band of the window's rate.

    >>> e = rate_evidence(0, 100, 30, 1000)   # no success where 3 % were expected: P(0) is 5 %, mid-p half
    >>> round(e.p, 3), e.band[0] == 0.0
    (0.026, True)
    >>> rate_evidence(60, 100, 900, 1000).p < 1e-12   # 60 % where 90 % were: worse beyond doubt
    True
    """
    if not (d >= 1 and d_base >= 1):
        return NONE
    n = int(round(d))
    a, b = predictive_beta(x_base, d_base, tau2)
    k = int(round(x))
    below, at = float(betabinom.cdf(k - 1, n, a, b)) if k > 0 else 0.0, float(betabinom.pmf(k, n, a, b))
    p = below + 0.5 * at if higher_is_better else 1.0 - below - 0.5 * at
    lo, hi = betabinom.ppf([(1 - BAND) / 2, (1 + BAND) / 2], n, a, b)
    return Evidence(min(max(p, 0.0), 1.0), (float(lo) / n, float(hi) / n))


def f1_evidence(tp: float, fp: float, fn: float, tn: float, base: Mapping[str, float],
                tau2: Mapping[str, float] | None = None) -> Evidence:
    """Evidence that the window's F1 is worse than the baseline's recall and false-positive rate would give
    on the window's own positives (tp + fn) and negatives (fp + tn), by simulation; ``base`` holds the
    baseline's tp, fp, fn, tn.

    >>> base = {"tp": 60, "fp": 2000, "fn": 3000, "tn": 95000}   # a weak model on a rare class
    >>> round(f1_evidence(0, 80, 150, 4770, base).p, 2) > 0.01   # a window without true positive
    True
    >>> f1_evidence(0, 80, 400, 4520, {"tp": 300, "fp": 100, "fn": 100, "tn": 9500}).p < 1e-4
    True
    """
    pos, neg = int(round(tp + fn)), int(round(fp + tn))
    btp, bfp, bfn, btn = (float(base.get(k) or 0.0) for k in ("tp", "fp", "fn", "tn"))
    if pos < 1 or btp + bfn < 1 or bfp + btn < 1:
        return NONE
    t = tau2 or {}
    rng = np.random.default_rng(_seed(tp, fp, fn, tn, btp, bfp, bfn, btn))
    ar, br = predictive_beta(btp, btp + bfn, t.get("recall", 0.0))
    af, bf = predictive_beta(bfp, bfp + btn, t.get("fpr", 0.0))
    sim_tp = rng.binomial(pos, rng.beta(ar, br, DRAWS))
    sim_fp = rng.binomial(neg, rng.beta(af, bf, DRAWS)) if neg > 0 else np.zeros(DRAWS)
    denom = sim_tp + sim_fp + pos
    sim = np.divide(2.0 * sim_tp, denom, out=np.zeros(DRAWS), where=denom > 0)
    obs = 2.0 * tp / (tp + fp + pos) if tp + fp + pos > 0 else 0.0
    p = float(np.mean(sim < obs - 1e-12) + 0.5 * np.mean(np.abs(sim - obs) <= 1e-12))
    lo, hi = np.quantile(sim, [(1 - BAND) / 2, (1 + BAND) / 2])
    return Evidence(p, (float(lo), float(hi)))


def z_evidence(value: float, base: float, se: float, se_base: float, tau2: float = 0.0, *,
               higher_is_better: bool = True) -> Evidence:
    """A z-test of ``value`` against ``base`` with the window's and the baseline's standard errors and the
    between-window variance ``tau2``; the band is ``base`` ± 1.96 of that spread.

    >>> e = z_evidence(0.80, 0.85, 0.01, 0.005)
    >>> round(e.p, 6), [round(x, 4) for x in e.band]
    (4e-06, [0.8281, 0.8719])
    """
    parts = [x for x in (se, se_base) if math.isfinite(x)]
    if not (math.isfinite(value) and math.isfinite(base) and math.isfinite(se)):
        return NONE
    spread = math.sqrt(sum(x * x for x in parts) + max(tau2, 0.0))
    if spread <= 0:
        return NONE
    worse = (base - value) if higher_is_better else (value - base)
    return Evidence(float(norm.sf(worse / spread)), (base - Z_BAND * spread, base + Z_BAND * spread))


def cells(state: Mapping[str, Any], prefix: str = "q__") -> dict[str, float]:
    """The confusion counts (tp, fp, tn, fn) of a quality state; zeros where missing."""
    return {k: float(state.get(prefix + k) or 0.0) for k in ("tp", "fp", "tn", "fn")}


def count_of(info: MetricInfo, counts: Mapping[str, float]) -> tuple[float, float] | None:
    """``(x, d)`` of a rate metric from confusion counts; None for a metric that is not a rate."""
    if info.rate is None:
        return None
    num, den = info.rate
    return sum(counts[c] for c in num), sum(counts[c] for c in den)


def too_small(info: MetricInfo, counts: Mapping[str, float], n: float, minimum: int) -> str | None:
    """Why a metric gives no finding at these counts (its denominators below ``minimum``), else None.

    >>> from spark_audit.catalog import metric
    >>> too_small(metric("binary", "recall"), {"tp": 3, "fn": 9, "fp": 40, "tn": 900}, 952, 30)
    '12 actual positives, fewer than quality.min_count=30'
    >>> too_small(metric("binary", "accuracy"), {"tp": 3, "fn": 9, "fp": 40, "tn": 900}, 952, 30) is None
    True
    """
    for name, group in info.min_counts:
        have = n if group == ("n",) else sum(counts.get(c, 0.0) for c in group)
        if have < minimum:
            return f"{have:.0f} {name}, fewer than quality.min_count={minimum}"
    return None
