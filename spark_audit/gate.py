"""Before release: a candidate model version against the champion, on the same labelled rows.

One scan. Every evaluation row is repeated once per bootstrap replicate (replicate 0 is the data as it
is) with a Poisson(1) weight, and the quality states of both versions (``spark_audit.decay.metrics``,
weighted) are aggregated per (slice, replicate) in one ``groupBy(...).agg(...)``: no UDF, no second
read. The weight of a row in a replicate is a function of its key (``gate.key``) and the replicate, so
the champion's row and the candidate's row of the same example carry the same weight: the bootstrap is
paired, which is what makes the difference of two correlated metrics precise. Without a key (each
version in its own columns of one row) the weight is ``rand(seed)`` per row and replicate.

The rest is numpy: per slice (and all rows, the merge of the slices) and metric, the point difference
candidate - champion, its bootstrap standard error and a normal interval; a verdict (better, worse, no
evidence); the spec's rules (``gate`` section) turn those into pass or fail. Slices are many tests, so a
slice fails the gate only when its drop is material (beyond ``gate.slices.max_drop``) and its evidence
survives Benjamini-Hochberg across every protected slice and metric.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.stats import norm

from spark_audit import store
from spark_audit.catalog import lower_is_better, metric, task_metrics
from spark_audit.decay.metrics import merge_states, quality_exprs, quality_from_row
from spark_audit.drift.stats import benjamini_hochberg
from spark_audit.errors import EXIT_FINDINGS, EXIT_OK, DataError, SpecError
from spark_audit.names import col as _col
from spark_audit.progress import QUIET, Progress
from spark_audit.rows import finite
from spark_audit.session import codegen_fields
from spark_audit.spec import AuditSpec, GateConfig, QualitySpec

REP, WEIGHT = "__gate_rep", "__gate_w"
GATE_SUFFIX = ":gate"  # a gate's run rows carry the audit name ``<audit>:gate``
CHAMPION, CANDIDATE = "a__", "b__"
PAIRING = "k__"
VERDICTS = ("better", "worse", "no evidence", "not judged")
# Poisson(1) cumulative probabilities P(X <= k), k = 0..12 (P(X > 12) < 1e-10)
POISSON_CDF = tuple(float(sum(math.exp(-1.0) / math.factorial(j) for j in range(k + 1))) for k in range(13))
ROUNDING = 1e-12  # differences this small are floating-point round-off, not a difference
MIN_FINITE_SHARE = 0.8  # replicates where a metric is defined: fewer, and there is no interval


# --------------------------------------------------------------------------- the scan


def poisson_weight(u: Column) -> Column:
    """A Poisson(1) draw from a uniform ``u`` in [0, 1), by the inverse CDF: the number of k with
    P(X <= k) <= u. A plain expression (thirteen comparisons), code-generated, Spark Connect safe."""
    return sum((F.when(u >= F.lit(c), F.lit(1)).otherwise(F.lit(0)) for c in POISSON_CDF), F.lit(0))


def uniform_from_hash(columns: list[Column]) -> Column:
    """A uniform in [0, 1) from the 64-bit xxhash of ``columns`` (53 bits: exact in a double)."""
    return F.pmod(F.xxhash64(*columns), F.lit(2**53)).cast("double") / F.lit(float(2**53))


def replicated(df: DataFrame, key: tuple[str, ...], replicates: int, seed: int) -> DataFrame:
    """``df`` with every row repeated for replicates 0..``replicates`` (``REP``) and its weight (``WEIGHT``):
    1 in replicate 0, Poisson(1) in the others, the same for every row of the same ``key``."""
    out = df.select("*", F.explode(F.sequence(F.lit(0), F.lit(int(replicates)))).alias(REP))
    if key:
        u = uniform_from_hash([*(_col(k) for k in key), F.col(REP), F.lit(int(seed))])
    else:
        u = F.rand(int(seed))
    return out.withColumn(WEIGHT, F.when(F.col(REP) == 0, F.lit(1)).otherwise(poisson_weight(u)))


@dataclass(frozen=True)
class Side:
    """One version in the scan: its quality columns, its rows (``rows``: a condition, None = every row)."""

    version: str
    measure: QualitySpec
    prefix: str
    rows: Column | None = None

    def weight(self) -> Column:
        w = F.col(WEIGHT)
        return w if self.rows is None else F.when(self.rows, w).otherwise(F.lit(0))


def sides(spec: AuditSpec, candidate: str, champion: str) -> tuple[Side, Side]:
    """The champion's and the candidate's side: a row per version (``model.version_column``), or each
    version's own columns (``gate.columns``) on shared rows."""
    cfg, q = spec.gate, spec.quality
    assert cfg is not None and q is not None
    out = []
    for version, prefix in ((champion, CHAMPION), (candidate, CANDIDATE)):
        if cfg.columns:
            vc = cfg.version_columns(version)
            if vc is None:
                raise SpecError(f"gate.columns names no columns for model version {version}; it has "
                                f"{[c.version for c in cfg.columns]}", file=spec.file, key="gate.columns")
            measure = QualitySpec(task=q.measure.task, label=q.measure.label, prediction=vc.prediction,
                                  score=vc.score, positive=q.measure.positive, threshold=q.measure.threshold,
                                  score_bins=q.measure.score_bins)
            out.append(Side(version, measure, prefix))
        else:
            rows = _col(spec.model.version_column).cast("string") == F.lit(str(version))
            out.append(Side(version, q.measure, prefix, rows))
    return out[0], out[1]


def gate_exprs(champion: Side, candidate: Side, key: tuple[str, ...]) -> list[Column]:
    """Both versions' weighted quality states and, for a row per version, each version's row count and a
    fingerprint of its keys in replicate 0 (the pairing check)."""
    exprs = [*quality_exprs(champion.measure, champion.prefix, champion.weight()),
             *quality_exprs(candidate.measure, candidate.prefix, candidate.weight())]
    if champion.rows is not None and key:
        first = F.col(REP) == 0
        fingerprint = F.pmod(F.xxhash64(*(_col(k) for k in key)), F.lit(2147483647))
        for side in (champion, candidate):
            exprs.append(F.sum(F.when(first & side.rows, F.lit(1)).otherwise(F.lit(0))).cast("long")
                         .alias(f"{PAIRING}{side.prefix}rows"))
            exprs.append(F.sum(F.when(first & side.rows, fingerprint).otherwise(F.lit(0))).cast("long")
                         .alias(f"{PAIRING}{side.prefix}keys"))
    return exprs


def _slice_label(slices: tuple[str, ...], row: dict[str, Any]) -> str:
    return ",".join(f"{s}={row[s]}" for s in slices)


def scan(df: DataFrame, spec: AuditSpec, champion: Side, candidate: Side) -> dict[tuple[str | None, int], dict]:
    """The one aggregation: per (slice label, replicate) the aggregated row (both versions' states).
    All rows (slice None) are the merge of the slices, per replicate: no second scan."""
    cfg = spec.gate
    assert cfg is not None
    needed = {spec.quality.measure.label, *spec.slices, *cfg.key}
    for side in (champion, candidate):
        needed |= {c for c in (side.measure.prediction, side.measure.score) if c}
    if spec.model.version_column and not cfg.columns:
        needed.add(spec.model.version_column)
    missing = sorted(c for c in needed if c not in df.columns)
    if missing:
        raise DataError(f"the evaluation rows of {spec.source.display!r} lack column(s) {missing}; "
                        f"they have {df.columns}")
    rows = df.select(*(_col(c) for c in sorted(needed)))
    if champion.rows is not None:
        rows = rows.where(champion.rows | candidate.rows)
    else:  # one row, both versions: compare them where both predicted, so both see the same rows
        for side in (champion, candidate):
            for c in (side.measure.prediction, side.measure.score):
                if c:
                    rows = rows.where(_col(c).isNotNull())
    reps = replicated(rows, cfg.key, cfg.replicates, cfg.seed)
    exprs = gate_exprs(champion, candidate, cfg.key)
    grouped = reps.groupBy(*(_col(s) for s in spec.slices), F.col(REP)).agg(*exprs)
    with codegen_fields(df.sparkSession, len(exprs) + len(spec.slices) + 1):
        collected = grouped.collect()
    out: dict[tuple[str | None, int], dict] = {}
    for r in collected:
        d = r.asDict()
        label = _slice_label(spec.slices, d) if spec.slices else None
        state = {k: v for k, v in d.items() if k not in spec.slices and k != REP}
        out[(label, int(d[REP]))] = state
        if spec.slices:
            out[(None, int(d[REP]))] = merge_states(out.get((None, int(d[REP])), {}), state)
    return out


def check_pairing(states: dict[tuple[str | None, int], dict], champion: Side, candidate: Side) -> int:
    """The rows each version has (replicate 0, all rows); a ``DataError`` when the versions were not scored
    on the same rows (different counts, or different keys by the fingerprint)."""
    whole = states.get((None, 0), {})
    a_rows, b_rows = whole.get(f"{PAIRING}{CHAMPION}rows"), whole.get(f"{PAIRING}{CANDIDATE}rows")
    if a_rows is None:
        return -1
    if not a_rows or not b_rows:
        missing = [s.version for s, n in ((champion, a_rows), (candidate, b_rows)) if not n]
        raise DataError(f"no evaluation rows of model version(s) {missing}: the gate needs both versions' "
                        "predictions on the same rows")
    if a_rows != b_rows or whole.get(f"{PAIRING}{CHAMPION}keys") != whole.get(f"{PAIRING}{CANDIDATE}keys"):
        raise DataError(f"the candidate ({candidate.version}: {b_rows} rows) and the champion "
                        f"({champion.version}: {a_rows} rows) were not scored on the same rows (their keys "
                        "differ): a paired comparison needs the same evaluation rows for both")
    return int(a_rows)


# --------------------------------------------------------------------------- the math (no Spark)


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


# --------------------------------------------------------------------------- running it


@dataclass
class GateResult:
    spec_name: str
    model: str
    candidate: str
    champion: str
    champion_label: str  # "1" or "1 (@champion)"
    confidence: float
    replicates: int
    source_version: int
    rows: list[GateRow]
    reasons: list[str]
    gate_key: str = ""
    gate_run_id: str = ""
    mlflow_run_id: str | None = None
    promoted: str | None = None  # the alias moved to the candidate
    paired_rows: int = -1
    slices_protected: bool = True
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_FINDINGS

    def overall(self) -> list[GateRow]:
        return [r for r in self.rows if r.slice is None]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes None): what ``spark-audit gate --format json`` prints."""
        return {
            "audit": self.spec_name, "model": self.model, "candidate": self.candidate, "champion": self.champion,
            "passed": self.passed, "exit_code": self.exit_code, "reasons": self.reasons,
            "confidence": self.confidence, "replicates": self.replicates, "source_version": self.source_version,
            "gate_key": self.gate_key, "mlflow_run_id": self.mlflow_run_id, "promoted": self.promoted,
            "rows": [{"slice": r.slice, "metric": r.metric, "n": r.n, "champion": finite(r.champion_value),
                      "candidate": finite(r.candidate_value), "difference": finite(r.difference),
                      "low": finite(r.interval.low), "high": finite(r.interval.high),
                      "standard_error": finite(r.interval.standard_error), "p_value": finite(r.interval.p_value),
                      "q_value": finite(r.q_value), "verdict": r.verdict, "protected": r.protected,
                      "failed": r.failed} for r in self.rows],
        }


def resolve_champion(client, spec: AuditSpec, champion: str) -> tuple[str, str]:
    """The champion's version and its label: a version number as is, an alias through the registry."""
    from spark_audit.reference import resolve_model_version

    if str(champion).isdigit():
        return str(champion), str(champion)
    mv = resolve_model_version(client, spec.model.name, None, str(champion).lstrip("@"))
    return str(mv.version), f"{mv.version} (@{str(champion).lstrip('@')})"


def gate_key(spec: AuditSpec, source_version: int, candidate: str, champion: str) -> str:
    cfg = spec.gate
    ident = json.dumps([spec.name, spec.spec_hash(), spec.source.display, source_version, candidate, champion,
                        str(cfg.start), str(cfg.end)])
    return "gate-" + hashlib.sha256(ident.encode()).hexdigest()[:24]


def run_gate(spark: SparkSession, spec: AuditSpec, candidate: str, *, champion: str | None = None,
             promote: str | None = None, progress: Progress = QUIET, log_to_mlflow: bool = True) -> GateResult:
    """Gate ``candidate`` against ``champion`` (an alias or a version; default ``gate.champion``) on the
    spec's evaluation rows; record the outcome (Delta, MLflow) and, with ``promote``, move that alias to
    the candidate when the gate passes. Raises ``SpecError`` for a spec without a gate, ``DataError`` when
    the rows cannot decide (missing, unpaired, fewer than ``gate.min_rows``)."""
    from spark_audit.quality import with_labels
    from spark_audit.reference import mlflow_client
    from spark_audit.source import read_source

    cfg = spec.gate
    if cfg is None or spec.quality is None:
        raise SpecError("the spec has no gate section (and a quality section): nothing to gate", file=spec.file,
                        key="gate")
    candidate = str(candidate)
    client = mlflow_client(spec.mlflow)
    champion_version, champion_label = resolve_champion(client, spec, champion or cfg.champion)
    if champion_version == candidate:
        raise SpecError(f"the candidate is the champion (model version {candidate}): nothing to compare",
                        file=spec.file, key="gate.champion")
    champ, cand = sides(spec, candidate, champion_version)
    with progress.phase(f"reading {spec.source.display}"):
        df, source_version = read_source(spark, spec.source, start=cfg.start, end=cfg.end, where=cfg.where)
        df = with_labels(spark, df, spec)
    with progress.phase(f"evaluating model {candidate} and model {champion_version} "
                        f"({cfg.replicates} bootstrap replicates, one scan)"):
        states = scan(df, spec, champ, cand)
    if not states:
        raise DataError(f"no evaluation rows in {spec.source.display!r} at version {source_version}"
                        + (f" between {cfg.start} and {cfg.end}" if cfg.start or cfg.end else ""))
    paired = check_pairing(states, champ, cand)
    protected = cfg.metrics or spec.quality.watched()
    rows = evaluate(states, champ, cand, cfg, gate_metrics(spec.quality.measure.task, champ.measure, cand.measure),
                    protected)
    check_evidence(rows, cfg)
    result = GateResult(spec.name, spec.model.name, candidate, champion_version, champion_label, cfg.confidence,
                        cfg.replicates, source_version, rows, decide(rows, cfg), paired_rows=paired,
                        slices_protected=cfg.slices.protect)
    result.gate_key = gate_key(spec, source_version, candidate, champion_version)
    result.gate_run_id = uuid.uuid4().hex
    if log_to_mlflow:
        with progress.phase("recording the decision in MLflow"):
            from spark_audit.gate_record import log_gate_run

            log_gate_run(client, spec, result, promote)
    with progress.phase("writing gate results"):
        write(spark, spec, result)
    return result


def write(spark: SparkSession, spec: AuditSpec, result: GateResult) -> None:
    """The ``gate_results`` rows, between a running and a complete ``audit_runs`` row (audit name
    ``<name>:gate``, model version = the candidate), so a killed gate never looks complete."""
    cfg = spec.gate
    key = result.gate_key
    common = dict(audit_key=key, audit_run_id=result.gate_run_id, audit_name=spec.name + GATE_SUFFIX,
                  source=spec.source.display, source_version=result.source_version)
    run = dict(**common, spec_hash=spec.spec_hash(), model_name=spec.model.name, model_version=result.candidate,
               reference_uri=f"models:/{spec.model.name}/{result.champion}", window_start=cfg.start,
               window_end=cfg.end, started_at=result.started, groups=len({r.slice for r in result.rows}),
               mlflow_run_id=result.mlflow_run_id, newest_row_at=None, source_committed_at=None)
    store.write_rows(spark, spec.output, "audit_runs", [store.row(
        "audit_runs", **run, status="running", finished_at=None, findings=None, worst_severity=None,
        exit_code=None, message=None)], audit_key=key)
    store.write_rows(spark, spec.output, "gate_results", [store.row(
        "gate_results", **common, candidate=result.candidate, champion=result.champion, slice=r.slice,
        metric=r.metric, n=r.n, champion_value=finite(r.champion_value), candidate_value=finite(r.candidate_value),
        difference=finite(r.difference), ci_low=finite(r.interval.low), ci_high=finite(r.interval.high),
        standard_error=finite(r.interval.standard_error), p_value=finite(r.interval.p_value),
        q_value=finite(r.q_value), verdict=r.verdict, protected=r.protected, failed=r.failed, reason=r.reason,
        gate_passed=result.passed, confidence=result.confidence, replicates=result.replicates)
        for r in result.rows], audit_key=key)
    store.write_rows(spark, spec.output, "audit_runs", [store.row(
        "audit_runs", **run, status="complete", finished_at=datetime.now(timezone.utc),
        findings=len(result.reasons), worst_severity=None if result.passed else "error", exit_code=result.exit_code,
        message=("gate passed" if result.passed else "gate failed: " + "; ".join(result.reasons))[:2000])],
        audit_key=key)


# --------------------------------------------------------------------------- text


def _num(v: float, sign: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:+.4f}" if sign else f"{v:.4f}"


def summary(result: GateResult, *, slices: bool = True) -> str:
    """The decision, then a table: all rows first, then each slice, one line per metric."""
    head = (f"gate {result.spec_name}: candidate model {result.candidate} vs champion model {result.champion_label} "
            f"on {result.overall()[0].n if result.overall() else 0:,} paired labelled rows, "
            f"{result.confidence:.0%} intervals from {result.replicates} Poisson bootstrap replicates")
    lines = [head, ""]
    hdr = f"{'slice':<16}{'metric':<11}{'n':>7}  {'champion':>9}{'candidate':>10}  {'difference':>10}  " \
          f"{'interval':<21} verdict"
    lines += [hdr, "-" * len(hdr)]
    for r in result.rows:
        if r.slice is not None and not slices:
            continue
        iv = r.interval
        ci = f"[{_num(iv.low, True)}, {_num(iv.high, True)}]" if math.isfinite(iv.low) else "-"
        mark = "  << fails the gate" if r.failed else ""
        lines.append(f"{(r.slice or '(all rows)'):<16}{r.metric:<11}{r.n:>7}  {_num(r.champion_value):>9}"
                     f"{_num(r.candidate_value):>10}  {_num(iv.difference, True):>10}  {ci:<21} {r.verdict}{mark}")
    lines.append("")
    if result.passed:
        lines.append(f"PASS: model {result.candidate} may replace model {result.champion_label}"
                     + ("" if result.slices_protected else " (slices not protected)"))
    else:
        lines.append(f"FAIL: model {result.candidate} may not replace model {result.champion_label}:")
        lines += [f"  - {reason}" for reason in result.reasons]
    if result.promoted:
        lines.append(f"promoted: @{result.promoted} now points to model {result.candidate}")
    return "\n".join(lines)
