"""The gate's math (numpy, no Spark): per slice and metric the paired difference, its bootstrap interval
and verdict, and the spec's rules that turn them into pass or fail.

Slices are many tests, so a slice fails the gate only when its drop is material (beyond
``gate.slices.max_drop``) and its evidence survives Benjamini-Hochberg across every protected slice and
metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from spark_audit.catalog import lower_is_better, metric, task_metrics
from spark_audit.decay.metrics import quality_from_row
from spark_audit.drift.stats import benjamini_hochberg
from spark_audit.errors import DataError
from spark_audit.gate.scan import Side
from spark_audit.spec import GateConfig, QualitySpec

VERDICTS = ("better", "worse", "no evidence", "not judged")
ROUNDING = 1e-12  # differences this small are floating-point round-off, not a difference
MIN_FINITE_SHARE = 0.8  # replicates where a metric is defined: fewer, and there is no interval


@dataclass(frozen=True)
class Interval:
    """A paired bootstrap interval for the difference candidate - champion."""

    difference: float
    low: float
    high: float
    standard_error: float
    p_value: float  # two-sided: no difference


def paired_interval(point: float, replicates: np.ndarray, confidence: float) -> Interval:
    """Normal bootstrap interval: ``point`` ± z · sd(replicates). NaN when the point or fewer than
    ``MIN_FINITE_SHARE`` of the replicates are defined. A difference that never varies (identical
    predictions) has se 0 and p 1: no evidence either way."""
    nan = math.nan
    reps = np.asarray(replicates, dtype=float)
    ok = reps[np.isfinite(reps)]
    if not math.isfinite(point) or len(reps) == 0 or len(ok) < MIN_FINITE_SHARE * len(reps) or len(ok) < 2:
        return Interval(point, nan, nan, nan, nan)
    se = float(np.std(ok, ddof=1))
    z = float(norm.ppf(0.5 + confidence / 2))
    if se <= ROUNDING and abs(point) <= ROUNDING:  # the same predictions, summed in another order
        return Interval(point, point, point, 0.0, 1.0)
    if se <= ROUNDING:
        return Interval(point, point, point, 0.0, nan)
    return Interval(point, point - z * se, point + z * se, se, float(2 * norm.sf(abs(point) / se)))


def verdict(interval: Interval, higher_is_better: bool, confidence: float) -> str:
    """better / worse when the interval excludes no difference, else no evidence."""
    if not (math.isfinite(interval.p_value) and interval.p_value < 1 - confidence):
        return "no evidence"
    improved = interval.difference > 0 if higher_is_better else interval.difference < 0
    return "better" if improved else "worse"


def gate_metrics(task: str, champion: QualitySpec, candidate: QualitySpec) -> tuple[str, ...]:
    """The metrics both versions define: the task's selectable ones, those needing a score only when
    both have one."""
    both_scores = champion.score is not None and candidate.score is not None
    return tuple(m for m in task_metrics(task, selectable=True) if both_scores or not metric(task, m).needs_score)


@dataclass
class GateRow:
    slice: str | None
    metric: str
    n: int
    champion_value: float
    candidate_value: float
    interval: Interval
    verdict: str
    protected: bool = False
    drop: float = math.nan  # how much worse the candidate is (positive = worse), in the metric's units
    q_value: float | None = None
    failed: bool = False
    reason: str | None = None

    @property
    def difference(self) -> float:
        return self.interval.difference


def evaluate(states: dict[tuple[str | None, int], dict], champion: Side, candidate: Side, cfg: GateConfig,
             metrics: tuple[str, ...], protected: tuple[str, ...]) -> list[GateRow]:
    """Per slice (None = all rows, first) and metric: both values, the paired interval and the verdict.
    A slice with fewer than ``gate.slices.min_rows`` paired, labelled rows is ``not judged``."""
    labels = sorted({s for s, _ in states}, key=lambda s: (s is not None, s or ""))
    out: list[GateRow] = []
    for label in labels:
        per_rep = sorted(r for s, r in states if s == label)
        values = {r: (quality_from_row(champion.measure, states[(label, r)], champion.prefix),
                      quality_from_row(candidate.measure, states[(label, r)], candidate.prefix))
                  for r in per_rep}
        if 0 not in values:
            continue
        a0, b0 = values[0]
        n = int(min(a0.get("n", 0), b0.get("n", 0)))
        for m in metrics:
            diffs = np.array([b[m] - a[m] for r, (a, b) in values.items() if r > 0], dtype=float)
            iv = paired_interval(b0[m] - a0[m], diffs, cfg.confidence)
            higher = not lower_is_better(m)
            minimum = cfg.min_rows if label is None else cfg.slices.min_rows
            v = verdict(iv, higher, cfg.confidence) if n >= minimum else "not judged"
            drop = -iv.difference if higher else iv.difference
            out.append(GateRow(label, m, n, a0[m], b0[m], iv, v, protected=m in protected, drop=drop))
    return out


def check_evidence(rows: list[GateRow], cfg: GateConfig) -> None:
    """A ``DataError`` when fewer than ``gate.min_rows`` labelled rows carry both versions' predictions:
    the gate cannot decide, which is not the same as a pass or a fail."""
    labelled = next((r.n for r in rows if r.slice is None), 0)
    if labelled < cfg.min_rows:
        raise DataError(f"only {labelled} labelled evaluation rows carry both versions' predictions; the gate needs "
                        f"at least gate.min_rows = {cfg.min_rows} to decide")


def decide(rows: list[GateRow], cfg: GateConfig) -> list[str]:
    """The reasons the gate fails (none: it passes); marks the failing rows and the slices' q-values.

    * all rows, a protected metric: worse (the interval excludes no difference) by more than ``max_drop``;
    * all rows, a ``must_improve`` metric: not better;
    * with ``slices.protect``, a judged slice's protected metric: a drop beyond ``slices.max_drop`` whose
      one-sided evidence (p of "not worse") survives Benjamini-Hochberg at 1 - confidence across every
      protected slice and metric.
    """
    alpha = 1 - cfg.confidence
    reasons: list[str] = []
    for r in rows:
        if r.slice is not None:
            continue
        if r.protected and r.verdict == "worse" and r.drop > cfg.max_drop:
            r.failed, r.reason = True, f"{r.metric} is worse overall: {_diff_text(r)}"
        elif r.metric in cfg.must_improve and r.verdict != "better":
            r.failed, r.reason = True, f"{r.metric} must improve overall and is {r.verdict}: {_diff_text(r)}"
        if r.failed:
            reasons.append(r.reason)
    family = [r for r in rows if r.slice is not None and r.protected and r.verdict != "not judged"]
    p = np.array([float(norm.sf(r.drop / r.interval.standard_error))
                  if math.isfinite(r.interval.standard_error) and r.interval.standard_error > 0 and
                  math.isfinite(r.drop) else np.nan for r in family], dtype=float)
    q = benjamini_hochberg(p) if len(p) else p
    for r, qv in zip(family, q, strict=True):
        r.q_value = float(qv) if math.isfinite(qv) else None
        if cfg.slices.protect and r.q_value is not None and r.q_value <= alpha and r.drop > cfg.slices.max_drop:
            r.failed = True
            r.reason = (f"{r.slice}: {r.metric} is {r.drop:.3f} worse (more than {cfg.slices.max_drop:g}): "
                        f"{_diff_text(r)}, q={r.q_value:.2g}")
            reasons.append(r.reason)
    return reasons


def _diff_text(r: GateRow) -> str:
    iv = r.interval
    return (f"{r.candidate_value:.4f} vs {r.champion_value:.4f}, difference {iv.difference:+.4f} "
            f"[{iv.low:+.4f}, {iv.high:+.4f}] at n={r.n}")
