"""The reference's own window-to-window noise, learned once when the reference is built.

A reference profiled per window (the same windows an audit uses) says how much a
window of *undrifted* data differs from the rest of the reference. For every
column (overall and per slice) each reference window is compared with the merge of
all the other windows, and three things are kept:

* ``phi``, the overdispersion of the exact-count homogeneity test: the mean of
  ``X^2 / df`` over the windows (1 under independence), floored at 1 (the moment
  estimate of quasi-likelihood; a mean, not a median, so the tails count).
  Independent rows give about 1; days that differ more than sampling alone would
  (weekday effects, batches) give more, and every drift test of that column then
  divides its chi-square statistic by ``phi`` (quasi-likelihood), so its p-value
  accounts for the variation the reference itself shows;
* ``phi_ks``, the same for the KS statistic of numbers on those counts (``n_eff D^2``
  over the Kolmogorov distribution's mean square, pi^2 / 12): a location change spread over
  many bins hardly moves ``X^2 / df`` but moves KS, so each test has its own factor;
* ``missing_phi``, the same for the missing share (null + NaN + inf): the mean of
  the two-proportion ``z^2``, floored at 1;
* per statistic, the values of "window vs rest" normalised by the statistic's
  no-drift scale (``StatisticInfo.noise_scale``): multiplied by the scale at an
  audited window's sizes they give the statistic's noise band at that size,
  sketch error included (the statistics of the quantile family are read from KLL
  sketches here as in the audit).

Everything is plain numpy over profiles (no Spark). The result is JSON-able and is
stored in the reference profile's ``extras["noise"]`` (profile format 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spark_audit.drift import stats
from spark_audit.profile.state import ColumnProfile

MAX_WINDOWS = 60  # newest reference windows used for the noise (the cost is linear in this)
MIN_WINDOWS = 3  # fewer windows than this: no noise is learned (independent rows are assumed)
_KOLMOGOROV_MEAN_SQUARE = math.pi**2 / 12  # E[K^2] of the Kolmogorov distribution


def missing_count(col: ColumnProfile) -> int:
    """Rows whose value is missing: null, NaN or +/-inf."""
    return col.nulls + col.nan + col.pos_inf + col.neg_inf


def two_proportion_z(x1: float, n1: float, x2: float, n2: float) -> float:
    """Pooled two-proportion z of x2/n2 against x1/n1 (positive when the second is higher).

    >>> round(two_proportion_z(10, 100, 20, 100), 4)
    1.9803
    >>> two_proportion_z(0, 100, 5, 100) > 0
    True
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan
    p = (x1 + x2) / (n1 + n2)
    var = p * (1 - p) * (1 / n1 + 1 / n2)
    diff = x2 / n2 - x1 / n1
    if var <= 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


@dataclass(frozen=True)
class ColumnNoise:
    """One column's window-to-window noise in one slice of the reference."""

    windows: int = 0
    phi: float = 1.0
    missing_phi: float = 1.0
    phi_ks: float = 1.0
    # statistic -> values of "window vs rest" divided by the statistic's noise scale at (n_i, m_i)
    normalised: dict[str, list[float]] = field(default_factory=dict)

    def band(self, statistic: str, n: float, m: float, *, quantile: float = 0.95) -> float | None:
        """The statistic's noise band at sample sizes (n, m): the reference windows' normalised values'
        ``quantile``, scaled to (n, m). None when the reference kept none."""
        values = [v for v in self.normalised.get(statistic, []) if math.isfinite(v)]
        info = stats.STATISTICS.get(statistic)
        if not values or info is None or info.null_scale is None:
            return None
        scale = info.noise_scale(n, m)
        return float(np.quantile(values, quantile) * scale) if math.isfinite(scale) else None

    def to_dict(self) -> dict[str, Any]:
        return {"windows": self.windows, "phi": self.phi, "missing_phi": self.missing_phi, "phi_ks": self.phi_ks,
                "normalised": self.normalised}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnNoise:
        return cls(windows=int(d.get("windows", 0)), phi=float(d.get("phi", 1.0)),
                   missing_phi=float(d.get("missing_phi", 1.0)), phi_ks=float(d.get("phi_ks", 1.0)),
                   normalised={k: [float(x) for x in v] for k, v in (d.get("normalised") or {}).items()})


def _rest(windows: Sequence[ColumnProfile]) -> list[ColumnProfile]:
    """For each window, the merge of all the others (prefix and suffix merges: O(W) merges)."""
    w = len(windows)
    prefix: list[ColumnProfile | None] = [None] * (w + 1)
    suffix: list[ColumnProfile | None] = [None] * (w + 1)
    for i in range(w):
        prefix[i + 1] = windows[i] if prefix[i] is None else prefix[i].merge(windows[i])
    for i in range(w - 1, -1, -1):
        suffix[i] = windows[i] if suffix[i + 1] is None else windows[i].merge(suffix[i + 1])
    out = []
    for i in range(w):
        a, b = prefix[i], suffix[i + 1]
        assert a is not None or b is not None
        out.append(b if a is None else a if b is None else a.merge(b))
    return out


def column_noise(windows: Sequence[ColumnProfile], statistics: Sequence[str], compute) -> ColumnNoise:
    """The noise of one column from its per-window profiles (exact bins on the reference's bins).

    ``compute(statistic, rest, window)`` gives ``(value, p)`` of a statistic; the
    caller passes the same function the audit uses (``spark_audit.drift.compare``).
    """
    windows = [w for w in windows if w.count > 0][-MAX_WINDOWS:]
    if len(windows) < MIN_WINDOWS:
        return ColumnNoise(windows=len(windows))
    rests = _rest(windows)
    x2_ratios, z2, k2, normalised = [], [], [], {s: [] for s in statistics}
    for win, rest in zip(windows, rests, strict=True):
        if win.bins is not None and rest.bins is not None and win.kind in ("numeric", "categorical"):
            ref_h, cur_h = np.asarray(rest.bins.counts, float), np.asarray(win.bins.counts, float)
        elif win.kind == "boolean":
            ref_h, cur_h = np.asarray([rest.n_false, rest.n_true], float), np.asarray([win.n_false, win.n_true], float)
        else:
            ref_h = cur_h = None
        if ref_h is not None and ref_h.sum() > 0 and cur_h.sum() > 0:
            pooled = stats.pool_sparse_bins(ref_h, cur_h)  # the same bins the evidence test reads
            x2, _ = stats.chi_square(*pooled)
            df = int(np.count_nonzero((pooled[0] + pooled[1]) > 0)) - 1
            if df > 0 and math.isfinite(x2):
                x2_ratios.append(x2 / df)
            if win.kind == "numeric":
                d, _ = stats.ks_from_counts(ref_h, cur_h)
                n_eff = ref_h.sum() * cur_h.sum() / (ref_h.sum() + cur_h.sum())
                k2.append(d * d * n_eff / _KOLMOGOROV_MEAN_SQUARE)
        z = two_proportion_z(missing_count(rest), rest.count, missing_count(win), win.count)
        if math.isfinite(z):
            z2.append(z * z)
        n, m = win.sample_size, rest.sample_size
        for s in statistics:
            info = stats.STATISTICS[s]
            if info.null_scale is None or n <= 0 or m <= 0:
                continue
            value, _ = compute(s, rest, win)
            if math.isfinite(value):
                normalised[s].append(float(value / info.noise_scale(n, m)))
    return ColumnNoise(
        windows=len(windows),
        phi=max(1.0, float(np.mean(x2_ratios))) if x2_ratios else 1.0,
        missing_phi=max(1.0, float(np.mean(z2))) if z2 else 1.0,
        phi_ks=max(1.0, float(np.mean(k2))) if k2 else 1.0,
        normalised={s: v for s, v in normalised.items() if v},
    )


def noise_from_extras(extras: dict[str, Any]) -> dict[str, ColumnNoise] | None:
    """The per-column noise a reference profile (or one of its slices) keeps; None for an older reference."""
    raw = extras.get("noise")
    if not raw:
        return None
    return {name: ColumnNoise.from_dict(d) for name, d in (raw.get("columns") or {}).items()}


def noise_extras(noise: dict[str, ColumnNoise], windows: int, window_size: str | None) -> dict[str, Any]:
    return {"noise": {"windows": windows, "window_size": window_size,
                      "columns": {name: n.to_dict() for name, n in noise.items()}}}

