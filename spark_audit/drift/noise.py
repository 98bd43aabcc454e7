"""The reference's own window-to-window noise, learned once when the reference is built.

A reference profiled per window (the same windows an audit uses) says how much a window of
*undrifted* data differs from the rest of the reference. Every reference window is compared with the
merge of the other windows (of the same phase, when the reference has a calendar cycle:
``spark_audit.drift.cycle``), and per column two things are kept:

* **A between-window variance component** per test family: windows of real tables differ by more than
  their rows' sampling noise (batches, weather, a campaign), and that part of the difference does not
  shrink with the window's size. With ``v = 1/n + 1/m`` (the sampling scale of a window of n rows
  against a reference of m), a test statistic's variance is ``v + tau2`` instead of ``v``, so its
  overdispersion at those sizes is ``phi(n, m) = 1 + tau2 / v``. ``tau2`` is the moment estimate
  ``mean((r_i - 1) v_i)`` over the windows, floored at 0, where ``r_i`` is the window's statistic over
  its value under independence: ``X^2 / df`` of the exact-count homogeneity test (``tau2``), the KS
  statistic's ``n_eff D^2`` over the Kolmogorov distribution's mean square pi^2 / 12 (``tau2_ks``: a
  location change spread over many bins moves KS more than X^2), and the missing share's squared
  two-proportion z (``tau2_missing``). A test then reads its statistic divided by ``phi(n, m)``
  (quasi-likelihood). Unlike one multiplicative factor, this holds for a window of another size than
  the reference's: a ten times larger window gets a ten times larger ``phi``, as it should, since its
  own sampling noise is smaller and the windows' differences are not.
* **The statistics' own null values:** every drift statistic of "window vs rest", with the window's
  ``v``. Rescaled to an audited window's sizes (``sqrt((v + tau2) / (v_i + tau2))`` for distances,
  linearly for PSI) their 95 % quantile is the statistic's **noise band** at that size, sketch error
  included; a drift value inside it is never a finding.

Everything is plain numpy over profiles (no Spark). The result is JSON-able and is stored in the
reference profile's ``extras["noise"]``. References built before format 3 keep one multiplicative
factor per family (``phi``, ``phi_ks``, ``missing_phi``) and values normalised by ``v``; they are read
as they were written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.stats import gamma as gamma_dist

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


BAND_QUANTILE = 0.95
FAMILIES = ("chi2", "ks", "missing")


def sampling_scale(n: float, m: float) -> float:
    """``1/n + 1/m``: how the variance of a comparison of n rows with m rows shrinks with the sizes."""
    return 1.0 / n + 1.0 / m if n > 0 and m > 0 else math.nan


@dataclass(frozen=True)
class ColumnNoise:
    """One column's window-to-window noise in one slice of the reference.

    ``tau2``: the between-window variance component per test family (``FAMILIES``), None for a reference
    built before it was kept; ``values``: per statistic, ``[value, v]`` of each window against the rest.
    ``phi``/``phi_ks``/``missing_phi`` and ``normalised`` are what older references kept.

    >>> n = ColumnNoise(windows=28, tau2={"chi2": 0.0004, "ks": 0.0004, "missing": 0.0})
    >>> round(n.overdispersion("chi2", 5000, 140000), 2)  # at the reference's own window size
    3.0
    >>> round(n.overdispersion("chi2", 50000, 1400000), 2)  # ten times larger windows: ten times the excess
    21.0
    >>> n.overdispersion("missing", 5000, 140000)
    1.0
    """

    windows: int = 0
    phi: float = 1.0
    missing_phi: float = 1.0
    phi_ks: float = 1.0
    normalised: dict[str, list[float]] = field(default_factory=dict)
    tau2: dict[str, float] | None = None
    values: dict[str, list[list[float]]] = field(default_factory=dict)
    # per statistic, its square (a divergence: itself) over v for independent rows from the reference's own
    # counts (``iid_scales``): what of a window's value is sampling noise, at any size
    iid: dict[str, float] = field(default_factory=dict)
    # windows merged into the baseline a window is compared with (the reference, or its phase)
    baseline_windows: int = 0

    def overdispersion(self, family: str, n: float, m: float) -> float:
        """``phi(n, m) = 1 + tau2 (1 + 1/W) / v`` for a window of n rows against a baseline of m rows merged
        from W reference windows (its own between-window effect weighs 1/W); the stored factor for an
        older reference."""
        if self.tau2 is None:
            return {"chi2": self.phi, "ks": self.phi_ks, "missing": self.missing_phi}[family]
        v = sampling_scale(n, m)
        if not math.isfinite(v):
            return 1.0
        w = self.baseline_windows or self.windows
        return 1.0 + self.tau2.get(family, 0.0) * (1.0 + (1.0 / w if w else 0.0)) / v

    def null_values(self, statistic: str, n: float, m: float) -> np.ndarray | None:
        """The reference windows' own values of ``statistic`` against the rest, each rescaled from its sizes
        to (n, m) with the between-window variance: what the statistic is without drift at these sizes.
        None when the reference kept none."""
        info = stats.STATISTICS.get(statistic)
        if info is None or info.null_scale is None:
            return None
        if self.tau2 is None:  # an older reference: values normalised by their scale
            values = np.asarray([v for v in self.normalised.get(statistic, []) if math.isfinite(v)])
            scale = info.noise_scale(n, m)
            return values * scale if values.size and math.isfinite(scale) else None
        pairs = [(x, vi) for x, vi in self.values.get(statistic, []) if math.isfinite(x) and vi > 0]
        v = sampling_scale(n, m)
        if not pairs or not math.isfinite(v):
            return None
        x, vs = np.asarray([a for a, _ in pairs]), np.asarray([b for _, b in pairs])
        power = 2.0 if info.null_scale == "sqrt" else 1.0  # a distance's square, a divergence itself
        c = self.iid.get(statistic)
        if c is None:  # no sampling scale kept: the test family's between-window variance says it
            t = self.tau2.get("ks" if info.overdispersion == "ks" else "chi2", 0.0)
            ratio = (v + t) / (vs + t)
        else:  # value^power = c v + b: sampling noise and the windows' own differences, b >= 0
            b = max(0.0, float(np.mean(x**power - c * vs)))
            ratio = (c * v + b) / np.maximum(c * vs + b, 1e-300)
        return x * ratio ** (1.0 / power)

    def band(self, statistic: str, n: float, m: float, *, quantile: float = BAND_QUANTILE) -> float | None:
        """The statistic's noise band at sizes (n, m): the ``quantile`` of its null values (``null_values``).
        None when the reference kept none."""
        values = self.null_values(statistic, n, m)
        return None if values is None else float(np.quantile(values, quantile))

    def tail_p(self, statistic: str, value: float, n: float, m: float) -> float:
        """How often the statistic's null values at (n, m) reach ``value``, from a Gamma law fitted (by its
        first two moments) to their squares: the empirical evidence beyond the band, with a tail. A
        distance's square is about Gamma whatever makes the windows differ: a multiple of chi-square with
        many degrees of freedom for independent rows, of one degree (a folded normal: the heaviest tail
        the fit allows) when one between-window effect dominates. NaN without null values.

        >>> band = ColumnNoise(windows=28, tau2={"chi2": 0.0}, values={"js": [[0.02, 1e-3]] * 14 + [[0.03, 1e-3]] * 14})
        >>> band.tail_p("js", 0.025, 1000, 1e9) > 0.3, band.tail_p("js", 0.12, 1000, 1e9) < 1e-6
        (True, True)
        """
        values = self.null_values(statistic, n, m)
        if values is None or values.size < MIN_WINDOWS or not math.isfinite(value):
            return math.nan
        sq = values**2
        mean, var = float(sq.mean()), float(sq.var(ddof=1))
        if mean <= 0:
            return 0.0 if value > 0 else 1.0
        shape = max(mean * mean / var, 0.5) if var > 0 else 50.0
        return float(gamma_dist.sf(value * value, shape, scale=mean / shape))

    def for_baseline(self, windows: int) -> ColumnNoise:
        """This noise, for a baseline merged from ``windows`` reference windows (a phase of the cycle)."""
        return replace(self, baseline_windows=windows)

    def to_dict(self) -> dict[str, Any]:
        return {"windows": self.windows, "phi": self.phi, "missing_phi": self.missing_phi, "phi_ks": self.phi_ks,
                "normalised": self.normalised, "tau2": self.tau2, "values": self.values, "iid": self.iid}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnNoise:
        tau2 = d.get("tau2")
        return cls(windows=int(d.get("windows", 0)), phi=float(d.get("phi", 1.0)),
                   missing_phi=float(d.get("missing_phi", 1.0)), phi_ks=float(d.get("phi_ks", 1.0)),
                   normalised={k: [float(x) for x in v] for k, v in (d.get("normalised") or {}).items()},
                   tau2=None if tau2 is None else {k: float(v) for k, v in tau2.items()},
                   values={k: [[float(a), float(b)] for a, b in v] for k, v in (d.get("values") or {}).items()},
                   iid={k: float(v) for k, v in (d.get("iid") or {}).items()})


def _rest(windows: Sequence[ColumnProfile]) -> list[ColumnProfile | None]:
    """For each window, the merge of all the others (prefix and suffix merges: O(W) merges); None for a
    window that has no other."""
    w = len(windows)
    prefix: list[ColumnProfile | None] = [None] * (w + 1)
    suffix: list[ColumnProfile | None] = [None] * (w + 1)
    for i in range(w):
        prefix[i + 1] = windows[i] if prefix[i] is None else prefix[i].merge(windows[i])
    for i in range(w - 1, -1, -1):
        suffix[i] = windows[i] if suffix[i + 1] is None else windows[i].merge(suffix[i + 1])
    out: list[ColumnProfile | None] = []
    for i in range(w):
        a, b = prefix[i], suffix[i + 1]
        out.append(b if a is None else a if b is None else a.merge(b))
    return out


def rests(windows: Sequence[ColumnProfile], groups: Sequence[Any] | None = None) -> list[ColumnProfile | None]:
    """For each window, the merge of the other windows of its group (all windows: one group)."""
    if groups is None:
        return _rest(windows)
    out: list[ColumnProfile | None] = [None] * len(windows)
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        for i, r in zip(idx, _rest([windows[i] for i in idx]), strict=True):
            out[i] = r
    return out


def _tau2(ratios: list[tuple[float, float, int]]) -> float:
    """The moment estimate of the between-window variance component from ``(r_i, v_i, W_i)``: ``r_i`` the
    window's statistic over its independent-rows value, ``v_i`` its sampling scale, ``W_i`` the windows
    in its rest (whose own between-window effect adds ``tau2 / W_i``)."""
    if not ratios:
        return 0.0
    est = [(r - 1.0) * v / (1.0 + 1.0 / w) for r, v, w in ratios]
    return max(0.0, float(np.mean(est)))


IID_DRAWS = 64


def _with_counts(whole: ColumnProfile, counts: np.ndarray) -> ColumnProfile:
    """``whole`` with other counts on its bins (its tail sums scaled with its outer bins): a window drawn
    from it, for ``iid_scales``."""
    n = int(counts.sum())
    if whole.kind == "boolean":
        return replace(whole, count=n, n_false=int(counts[0]), n_true=int(counts[1]), nulls=0)
    b = whole.bins
    tails = None
    if b.tails is not None:
        lo, hi = b.counts[0], b.counts[-1]
        tails = (b.tails[0] * counts[0] / lo if lo else 0.0, b.tails[1] * counts[-1] / hi if hi else 0.0)
    return replace(whole, count=n, nulls=0, nan=0, pos_inf=0, neg_inf=0, n_finite=n,
                   bins=replace(b, counts=tuple(int(c) for c in counts), tails=tails))


def iid_scales(windows: Sequence[ColumnProfile], statistics: Sequence[str], compute, *,
               draws: int = IID_DRAWS, seed: int = 0) -> dict[str, float]:
    """Per statistic, its mean square (a divergence: its mean) over ``v`` when a window and the rest hold
    independent rows of the reference's pooled distribution, at the reference's own sizes: a multinomial
    bootstrap of its exact counts. With it, a window's value splits into sampling noise, which shrinks with
    the size, and the windows' own differences, which do not (``ColumnNoise.null_values``)."""
    windows = [w for w in windows if w.sample_size > 0]
    if len(windows) < 2:
        return {}
    whole = windows[0]
    for w in windows[1:]:
        whole = whole.merge(w)
    if whole.kind == "boolean":
        counts = np.asarray([whole.n_false, whole.n_true], dtype=float)
    elif whole.bins is not None and whole.kind in ("numeric", "categorical"):
        counts = np.asarray(whole.bins.counts, dtype=float)
    else:
        return {}
    if counts.sum() <= 0:
        return {}
    p = counts / counts.sum()
    n = int(np.median([w.sample_size for w in windows]))
    m = int(counts.sum()) - n
    if n <= 0 or m <= 0:
        return {}
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {s: [] for s in statistics}
    for _ in range(draws):
        win, rest = _with_counts(whole, rng.multinomial(n, p)), _with_counts(whole, rng.multinomial(m, p))
        for s in statistics:
            value, _ = compute(s, rest, win)
            if math.isfinite(value):
                values[s].append(value)
    v = sampling_scale(n, m)
    out = {}
    for s, xs in values.items():
        info = stats.STATISTICS[s]
        if xs and info.null_scale is not None:
            x = np.asarray(xs)
            out[s] = float(np.mean(x**2 if info.null_scale == "sqrt" else x) / v)
    return out


def column_noise(windows: Sequence[ColumnProfile], statistics: Sequence[str], compute,
                 groups: Sequence[Any] | None = None, scales: dict[str, float] | None = None) -> ColumnNoise:
    """The noise of one column from its per-window profiles (exact bins on the reference's bins).

    ``compute(statistic, rest, window)`` gives ``(value, p)`` of a statistic; the caller passes the same
    function the audit uses (``spark_audit.drift.compare``). ``groups`` (one per window, e.g. its phase)
    compares each window only with the other windows of its group. ``scales``: the statistics' sampling
    scales (``iid_scales``), when the caller has them already (a slice reuses its column's).
    """
    keep = [i for i, w in enumerate(windows) if w.count > 0][-MAX_WINDOWS:]
    windows = [windows[i] for i in keep]
    groups = None if groups is None else [groups[i] for i in keep]
    if len(windows) < MIN_WINDOWS:
        return ColumnNoise(windows=len(windows), tau2={f: 0.0 for f in FAMILIES})
    sizes = [len(windows) if groups is None else groups.count(g) for g in (groups or [None] * len(windows))]
    x2, k2, z2 = [], [], []
    values: dict[str, list[list[float]]] = {s: [] for s in statistics}
    for win, rest, size in zip(windows, rests(windows, groups), sizes, strict=True):
        if rest is None or rest.count == 0:
            continue
        others = size - 1
        if win.bins is not None and rest.bins is not None and win.kind in ("numeric", "categorical"):
            ref_h, cur_h = np.asarray(rest.bins.counts, float), np.asarray(win.bins.counts, float)
        elif win.kind == "boolean":
            ref_h, cur_h = np.asarray([rest.n_false, rest.n_true], float), np.asarray([win.n_false, win.n_true], float)
        else:
            ref_h = cur_h = None
        if ref_h is not None and ref_h.sum() > 0 and cur_h.sum() > 0:
            v = sampling_scale(cur_h.sum(), ref_h.sum())
            pooled = stats.pool_sparse_bins(ref_h, cur_h)  # the same bins the evidence test reads
            x2_stat, _ = stats.chi_square(*pooled)
            df = int(np.count_nonzero((pooled[0] + pooled[1]) > 0)) - 1
            if df > 0 and math.isfinite(x2_stat):
                x2.append((x2_stat / df, v, others))
            if win.kind == "numeric":
                d, _ = stats.ks_from_counts(ref_h, cur_h)
                k2.append((d * d / v / _KOLMOGOROV_MEAN_SQUARE, v, others))
        z = two_proportion_z(missing_count(rest), rest.count, missing_count(win), win.count)
        if math.isfinite(z):
            z2.append((z * z, sampling_scale(win.count, rest.count), others))
        n, m = win.sample_size, rest.sample_size
        for s in statistics:
            info = stats.STATISTICS[s]
            if info.null_scale is None or n <= 0 or m <= 0:
                continue
            value, _ = compute(s, rest, win)
            if math.isfinite(value):
                values[s].append([float(value), sampling_scale(n, m)])
    return ColumnNoise(
        windows=len(windows),
        phi=max(1.0, float(np.mean([r for r, _, _ in x2]))) if x2 else 1.0,
        missing_phi=max(1.0, float(np.mean([r for r, _, _ in z2]))) if z2 else 1.0,
        phi_ks=max(1.0, float(np.mean([r for r, _, _ in k2]))) if k2 else 1.0,
        tau2={"chi2": _tau2(x2), "ks": _tau2(k2), "missing": _tau2(z2)},
        values={s: v for s, v in values.items() if v},
        iid=dict(scales) if scales is not None else iid_scales(windows, statistics, compute),
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

