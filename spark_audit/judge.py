"""Deciding an audit: every group of the scan against its baselines, then one decision across the audit.

Pure Python over the scan's groups and the reference profile (no Spark): what the audit read from its
own earlier results (the volume's and the metrics' history) comes in as :class:`Context`. Each check
gives candidate findings with their evidence; :func:`spark_audit.findings.decide` raises the material
ones whose q-value (Benjamini-Hochberg across the whole audit) is within the false discovery rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from spark_audit import fairness, multivariate, quality, store, table_checks
from spark_audit.baseline import Baseline, baseline, phase_of
from spark_audit.drift import noise
from spark_audit.drift.compare import compare_profiles, dataset_verdict
from spark_audit.drift.decide import (
    drift_candidates,
    explained_skew,
    missing_candidates,
    schema_changes,
)
from spark_audit.findings import Candidate, Finding, decide
from spark_audit.profile import GroupResult, TableProfile
from spark_audit.profile.exprs import ColumnSpec
from spark_audit.profile.state import GroupKey
from spark_audit.record import drift_rows
from spark_audit.reference import LoadedReference
from spark_audit.result import AuditWindow
from spark_audit.rows import group_fields
from spark_audit.spec import AuditSpec
from spark_audit.timeutil import parse_duration


@dataclass(frozen=True)
class Context:
    """What a decision needs beyond the scan: the time, the source's freshness, and the history of
    earlier complete audits (``volume``: per (slice, model version) the (window start, rows) pairs;
    ``quality``: per (slice, model version, metric) the (window start, value) pairs)."""

    now: datetime
    newest_row: datetime | None = None
    committed: datetime | None = None
    volume: dict[tuple, list[tuple[str, int]]] = field(default_factory=dict)
    quality: dict[tuple, list[tuple[str, float]]] = field(default_factory=dict)


@dataclass
class Verdict:
    """The decision phase's output: the raised findings and the rows that record every test."""

    findings: list[Finding] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    dataset: list[dict[str, Any]] = field(default_factory=list)
    performance: list[dict[str, Any]] = field(default_factory=list)


def judge(spec: AuditSpec, ref: LoadedReference, groups: list[GroupResult], columns: list[ColumnSpec],
          window: AuditWindow, common: dict[str, Any], ctx: Context) -> Verdict:
    """Every check of every group, decided together."""
    out = Verdict()
    profile = ref.profile
    use_cycle = spec.reference.cycle != "off"
    judged = {id(g): g.profile.row_count >= spec.findings.min_rows for g in groups}
    candidates: list[Candidate] = []
    out.findings += _reference_notes(profile, ref.uri, spec)
    out.findings += schema_changes(profile, groups, columns)
    versions = sorted({g.key.model_version for g in groups}, key=str)
    out.findings += table_checks.missing_windows(window.size, window.start, window.end, groups, versions)
    if window.reaches(ctx.now):
        default = 2 * (window.seconds or 0)
        f = spec.findings
        out.findings += table_checks.freshness(
            ctx.now, ctx.newest_row, ctx.committed,
            max_row_age=parse_duration(f.max_row_age).total_seconds() if f.max_row_age else default,
            max_commit_age=parse_duration(f.max_commit_age).total_seconds() if f.max_commit_age else default)
    per_group: list[tuple[GroupResult, tuple, list[dict[str, Any]]]] = []
    previous: dict[tuple, GroupResult] = {}
    training = _training_profile(profile)
    volume_hist = {k: list(v) for k, v in ctx.volume.items()}
    for g in sorted(groups, key=lambda g: g.key.window_start or ""):
        k = g.key
        ok = judged[id(g)]
        b = baseline(profile, k, cycle=use_cycle)
        # a slice compares with the same slice of the reference, without the slicing columns themselves
        features = tuple(f for f in spec.features if not (k.slice and f.name in spec.slices))
        candidates += missing_candidates(b.profile, g, columns, b.noise, judged=ok)
        candidates += _table_candidates(profile, b, g, volume_hist, ok, use_cycle)
        drift = compare_profiles(b.profile, g.profile, features, spec.drift, b.noise, scale=b.scale)
        rows = drift_rows(drift, g, "reference", ref.uri, common)
        out.drift += rows
        per_group.append((g, features, [row for r, row in zip(drift, rows, strict=True) if r.is_default]))
        candidates += drift_candidates(drift, rows, k, judged=ok, phase=b.phase)
        if training is not None and not k.slice:
            skew = compare_profiles(training, g.profile, tuple(f for f in features if f.name in training.columns),
                                    spec.drift, b.noise)
            skew_rows = drift_rows(skew, g, "skew", "training", common)
            out.drift += skew_rows
            candidates += drift_candidates(skew, skew_rows, k, judged=ok, skew=True)
        series = (k.slice, k.model_version)
        prev = previous.get(series)
        if spec.drift.consecutive and prev is not None:
            cons = compare_profiles(prev.profile, g.profile, features, spec.drift, b.noise)
            out.drift += drift_rows(cons, g, "consecutive", str(prev.key.window_start), common)
        previous[series] = g
    if spec.quality is not None:
        out.performance, found = quality.evaluate(spec, groups, profile, ctx.quality, common, judged,
                                                  cycle=use_cycle)
        candidates += found
        out.findings += quality.disagreement(spec, groups)
        if spec.quality.fairness is not None:
            rows, fair = fairness.fairness(spec, groups, common)
            out.performance += rows
            candidates += fair
    out.findings += explained_skew(decide(candidates, spec.findings.fdr))
    out.findings += _dataset_drift(spec, ref.uri, per_group, judged, common, out)
    out.findings += [Finding("info", "small_group", f"{g.profile.row_count} rows, fewer than findings.min_rows="
                             f"{spec.findings.min_rows}: recorded, not judged", None, g.key.window_start,
                             g.key.slice, g.key.model_version)
                     for g in groups if not judged[id(g)] and g.key.slice is None]
    return out


def _reference_notes(profile: TableProfile, uri: str, spec: AuditSpec) -> list[Finding]:
    """What the reference cannot tell, once per audit: no window noise, too short for a cycle, a
    multivariate check it had to skip."""
    out = []
    if noise.noise_from_extras(profile.extras) is None:
        out.append(Finding("info", "reference", f"the reference {uri} keeps no window-to-window noise (built "
                           "without windows, or by an older spark-audit): drift evidence assumes independent "
                           "rows; rebuild it to calibrate"))
    cycle = profile.extras.get("cycle") or {}
    if cycle.get("status") == "too short" and spec.reference.cycle != "off":
        out.append(Finding("info", "reference", f"{cycle['reason']}; rebuild the reference over at least two "
                           "cycles to compare each window with the same phase (reference.cycle: off says "
                           "there is none)"))
    skipped = (profile.extras.get("pca") or {}).get("skipped")
    if skipped:
        out.append(Finding("info", "skipped", f"multivariate drift check skipped: {skipped}"))
    return out


def _training_profile(ref: TableProfile) -> TableProfile | None:
    """The training profile a reference keeps (``reference_build.profile_training``), None without one."""
    t = ref.extras.get("training")
    return TableProfile.from_dict(t["profile"]) if t else None


def _phase_factor(ref: TableProfile, key: GroupKey, use_cycle: bool) -> float:
    """A window's volume relative to its slice's whole reference: its phase's mean row count over all
    phases' (1 without a cycle); the model version's own counts where the reference kept them."""
    b = baseline(ref, key, cycle=use_cycle)
    if b.phase is None:
        return 1.0

    def mean_rows(extras: dict[str, Any]) -> float | None:
        t = extras.get("table") or {}
        rows = (t.get("rows_by_version") or {}).get(str(key.model_version)) if t.get("rows_by_version") \
            else t.get("rows")
        rows = [r for r in (rows or []) if r > 0]
        return float(np.mean(rows)) if rows else None

    here, whole = mean_rows(b.extras), mean_rows(b.scale.extras)
    return here / whole if here and whole else 1.0


def _table_candidates(ref: TableProfile, b: Baseline, g: GroupResult, volume_hist: dict[tuple, list],
                      judged: bool, use_cycle: bool) -> list[Candidate]:
    """Volume (against the reference, and against the audit's own history, seasonally adjusted with a
    cycle), duplicates, multivariate drift."""
    k = g.key
    # a slice the reference never saw has no volume of its own to compare with
    table = b.extras.get("table") if b.seen else None
    volume = table_checks.volume_candidate(table, g, b.phase)
    series_rows = volume_hist.setdefault((k.slice, k.model_version), [])
    past = [(w, n) for w, n in series_rows if w < (k.window_start or "")]
    if volume is None or not volume.material:  # a slow drift of volume the old reference cannot see
        adjusted = [n / _phase_factor(ref, replace(k, window_start=w), use_cycle) for w, n in past]
        volume = table_checks.volume_history_candidate(adjusted, g, _phase_factor(ref, k, use_cycle)) or volume
    if judged and k.window_start:
        series_rows.append((k.window_start, g.profile.row_count))
    # a slice is judged against the same slice's reference windows, with the overall components
    pca = b.scale.extras.get("pca") if b.seen else None
    phase = phase_of(ref, k.window_start) if b.phase is not None else None
    return [c for c in (volume, table_checks.duplicate_candidate(table, g, judged=judged),
                        multivariate.candidate(pca, g, judged=judged, phase=phase)) if c]


def _dataset_drift(spec: AuditSpec, uri: str, per_group: list[tuple[GroupResult, tuple, list[dict[str, Any]]]],
                   judged: dict[int, bool], common: dict[str, Any], out: Verdict) -> list[Finding]:
    """The dataset-drift row of every group (from its columns' decided drift), and a finding where the
    drifted share reaches the spec's threshold."""
    found = []
    for g, features, rows in per_group:
        k = g.key
        decided = {row["column"]: bool(row["drifted"]) for row in rows}
        n, nd, share, drifted = dataset_verdict(decided, features, spec.drift.share_threshold)
        out.dataset.append(store.row(
            "dataset_drift", **common, **group_fields(k), drift_type="reference", baseline=uri, columns=n,
            drifted_columns=nd, drift_share=float(share), share_threshold=spec.drift.share_threshold,
            drifted=bool(drifted and judged[id(g)]),
        ))
        if drifted and judged[id(g)]:
            found.append(Finding("critical", "dataset_drift", f"{nd} of {n} features drifted "
                                 f"(share {share:.2f} >= {spec.drift.share_threshold:g})", None,
                                 k.window_start, k.slice, k.model_version, "drift_share", float(share),
                                 spec.drift.share_threshold))
    return found
