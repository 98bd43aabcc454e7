"""The ML Test Score monitoring rubric per model version, from what an audit already measured.

Breck, Cai, Nielsen, Salib and Sculley, "The ML Test Score: A Rubric for ML Production Readiness and
Technical Debt Reduction" (IEEE Big Data 2017), section on monitoring tests. Each of the paper's seven
monitoring tests is, for one audit of one model version, *passed*, *failed* or *not measured*, with its
evidence (the findings behind it). The paper scores a test 0.5 when it is run by hand with its results
documented and 1 when a system runs it automatically and repeatedly; an audit that measures a test runs
it automatically, so a measured test scores 1 whether it passed or failed (the score is about having the
test, the status about the model), and a test spark-audit cannot measure scores 0. The monitoring
section's score is the sum over the seven tests. A last row, not in the paper's score, checks the
monitoring itself: audits keep up with the data, with no gap.

Rows go to the ``rubric`` Delta table (one per test and audit) and to the version's tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from spark_audit.findings import FAILS_TEST, SEVERITIES, Finding, kinds_failing
from spark_audit.timeutil import interval_seconds, iso_utc, parse_duration

PASSED, FAILED, NOT_MEASURED = "passed", "failed", "not measured"


@dataclass(frozen=True)
class RubricTest:
    id: str
    title: str  # the paper's wording
    kinds: tuple[str, ...] = ()  # the finding kinds that fail it
    in_score: bool = True
    short: str = ""  # a name that says what it checks (the registry's tag, ``ml_test_score.M3_skew``)


TESTS = (
    RubricTest("monitor_1", "Dependency changes result in notification", kinds_failing("monitor_1"),
               short="M1_dependency_changes"),
    RubricTest("monitor_2", "Data invariants hold in training and serving inputs", kinds_failing("monitor_2"),
               short="M2_data_invariants"),
    RubricTest("monitor_3", "Training and serving features compute the same values", kinds_failing("monitor_3"),
               short="M3_skew"),
    RubricTest("monitor_4", "Models are not too stale", short="M4_model_staleness"),
    RubricTest("monitor_5", "The model is numerically stable", short="M5_numerical_stability"),
    RubricTest("monitor_6", "The model has not experienced a dramatic or slow-leak regression in training speed, "
                            "serving latency, throughput, or RAM usage", short="M6_serving_performance"),
    RubricTest("monitor_7", "The model has not experienced a regression in prediction quality on served data",
               kinds_failing("monitor_7"), short="M7_prediction_quality"),
    RubricTest("monitoring_runs", "The monitoring itself runs: audits keep up with the data, with no gap",
               in_score=False, short="monitoring_keeps_up"),
)
BY_ID = {t.id: t for t in TESTS}


@dataclass
class RubricRow:
    test: RubricTest
    status: str
    evidence: str
    findings: int = 0

    @property
    def points(self) -> float:
        return 0.0 if self.status == NOT_MEASURED or not self.test.in_score else 1.0


def _failing(findings: list[Finding], kinds: tuple[str, ...]) -> list[Finding]:
    return [f for f in findings if f.kind in kinds and SEVERITIES.index(f.severity) >= SEVERITIES.index(FAILS_TEST)]


def _by_kind(found: list[Finding]) -> str:
    counts: dict[str, int] = {}
    for f in found:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def _from_findings(test: RubricTest, findings: list[Finding], measured: bool, what: str, why_not: str) -> RubricRow:
    if not measured:
        return RubricRow(test, NOT_MEASURED, why_not)
    bad = _failing(findings, test.kinds)
    if not bad:
        return RubricRow(test, PASSED, f"{what}: no finding")
    columns = sorted({f.column for f in bad if f.column})
    return RubricRow(test, FAILED, f"{what}: {_by_kind(bad)} finding(s)"
                     + (f" on {', '.join(columns[:6])}" if columns else ""), len(bad))


def numeric_stability(spec, groups) -> RubricRow:
    """Monitor 5 from the audited windows' profiles of the score and prediction columns: NaN or infinite
    values, and (binary) scores outside [0, 1]."""
    test = BY_ID["monitor_5"]
    q = spec.quality
    if q is None:
        return RubricRow(test, NOT_MEASURED, "no quality section: the audit does not know the model's outputs")
    outputs = [c for c in (q.measure.score, q.measure.prediction) if c]
    profiled = [c for c in outputs if any(c in g.profile.columns for g in groups)]
    if not profiled:
        return RubricRow(test, NOT_MEASURED, f"the model's outputs {outputs} are not among the features, so they "
                                             "are not profiled: list them under features")
    problems, notes = [], []
    for c in profiled:
        cols = [g.profile.columns[c] for g in groups if g.key.slice is None and c in g.profile.columns]
        nan = sum(int(x.nan or 0) for x in cols)
        inf = sum(int((x.pos_inf or 0) + (x.neg_inf or 0)) for x in cols)
        lo = min((x.min for x in cols if x.min is not None), default=None)
        hi = max((x.max for x in cols if x.max is not None), default=None)
        notes.append(f"{c}: {nan} NaN, {inf} inf" + ("" if lo is None else f", range [{lo:.4g}, {hi:.4g}]"))
        if nan or inf:
            problems.append(f"{c} has {nan} NaN and {inf} infinite values")
        if c == q.measure.score and q.measure.task == "binary" and lo is not None and (lo < 0 or hi > 1):
            problems.append(f"{c} leaves [0, 1]: [{lo:.4g}, {hi:.4g}]")
    if problems:
        return RubricRow(test, FAILED, "; ".join(problems), len(problems))
    return RubricRow(test, PASSED, "; ".join(notes))


def staleness(spec, audited_end: datetime | None, reference_end: datetime | None,
              training_end: datetime | None) -> RubricRow:
    """Monitor 4: the served window's end against the end of the training rows (else of the reference
    rows), at most ``rubric.max_model_age`` apart."""
    test = BY_ID["monitor_4"]
    since, what = (training_end, "training rows") if training_end else (reference_end, "reference rows")
    if since is None or audited_end is None:
        return RubricRow(test, NOT_MEASURED, "neither the training rows nor the reference rows have an end time "
                                             "(training.end, reference.end)")
    limit = parse_duration(spec.rubric.max_model_age)
    age = audited_end - since
    text = (f"{age.days} days from the end of the {what} ({iso_utc(since)[:10]}) to the last audited window's "
            f"end ({iso_utc(audited_end)[:10]}); limit {spec.rubric.max_model_age}")
    return RubricRow(test, FAILED if age > limit else PASSED, text, int(age > limit))


def keeping_up(spec, covered: list[tuple[datetime, datetime]], newest_row: datetime | None) -> RubricRow:
    """Audits keep up: the audited windows (this run's and earlier complete runs') leave no gap, and the
    last one ends within ``rubric.schedule`` (default: two windows) of the newest row of the table."""
    test = BY_ID["monitoring_runs"]
    if not spec.window.size or not covered:
        return RubricRow(test, NOT_MEASURED, "the audit has no windows (window.size)")
    spans = sorted(covered)
    gaps = []
    end = spans[0][1]
    for s, e in spans[1:]:
        if s > end:
            gaps.append(f"{iso_utc(end)[:16]}→{iso_utc(s)[:16]}")
        end = max(end, e)
    allowed = parse_duration(spec.rubric.schedule).total_seconds() if spec.rubric.schedule \
        else 2 * interval_seconds(spec.window.size)
    behind = (newest_row - end).total_seconds() if newest_row is not None else 0.0
    text = f"{len(spans)} audit run(s) cover {iso_utc(spans[0][0])[:10]} to {iso_utc(end)[:10]}"
    problems = []
    if gaps:
        problems.append(f"{len(gaps)} gap(s) between audited windows: {', '.join(gaps[:3])}")
    if behind > allowed:
        problems.append(f"the newest row ({iso_utc(newest_row)[:16]}) is {behind / 86400:.1f} days after the last "
                        "audited window")
    if problems:
        return RubricRow(test, FAILED, text + "; " + "; ".join(problems), len(problems))
    return RubricRow(test, PASSED, text + ", no gap, up to the newest row")


def evaluate(spec, findings: list[Finding], groups, *, has_training: bool, audited_end: datetime | None,
             reference_end: datetime | None, training_end: datetime | None,
             covered: list[tuple[datetime, datetime]], newest_row: datetime | None) -> list[RubricRow]:
    """The rubric of one audit of one model version, in the paper's order."""
    rows = [
        _from_findings(BY_ID["monitor_1"], findings, True,
                       "schema, missing values, freshness, missing windows, volume, duplicates", ""),
        _from_findings(BY_ID["monitor_2"], findings, spec.contract is not None,
                       "the data contract on serving rows (training rows are not checked against it)",
                       "no data contract in the spec (contract.path)"),
        _from_findings(BY_ID["monitor_3"], findings, has_training,
                       "each window's features against the training rows' profile",
                       "no training rows profiled: add a training section and rebuild the reference"),
        staleness(spec, audited_end, reference_end, training_end),
        numeric_stability(spec, groups),
        RubricRow(BY_ID["monitor_6"], NOT_MEASURED, "serving latency, throughput, RAM and training speed are not in "
                                                    "the rows spark-audit reads"),
        _from_findings(BY_ID["monitor_7"], findings, spec.quality is not None,
                       "quality against the reference, the label-free estimate and the metrics' history",
                       "no quality section (labels, predictions)"),
        keeping_up(spec, covered, newest_row),
    ]
    return rows


def score(rows: list[RubricRow]) -> tuple[float, int, int]:
    """(points, tests in the score, passed tests in the score)."""
    scored = [r for r in rows if r.test.in_score]
    return sum(r.points for r in scored), len(scored), sum(r.status == PASSED for r in scored)


def score_text(rows: list[RubricRow]) -> str:
    """``coverage 6/7 · 4 passed, 2 failed``: the paper's points measure how many monitoring tests run
    (coverage, not health); then how many of the measured ones passed."""
    points, n, passed = score(rows)
    failed = sum(r.status == FAILED for r in rows if r.test.in_score)
    return f"coverage {points:g}/{n} · {passed} passed, {failed} failed"


def text(rows: list[RubricRow]) -> str:
    lines = [f"ML Test Score, monitoring tests (Breck et al. 2017): {score_text(rows)}"]
    for r in rows:
        label = r.test.id.replace("monitor_", "M") if r.test.in_score else "runs"
        lines.append(f"  {label:<5} {r.status:<13} {r.test.title[:60]:<60}  {r.evidence[:110]}")
    return "\n".join(lines)
