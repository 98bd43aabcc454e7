"""Model quality inside an audit: labels, the shared scan, decay and anomaly findings.

Quality states (sums and binned counts from ``spark_audit.decay.metrics``) and
the label-free estimate's expected confusion counts join the profile's one
aggregation. A window is compared with the reference's quality (kept in the
reference profile's ``extras``), with its own metric history (earlier windows of
this run and earlier complete audits), and its trend says how many windows are
left before the critical level is crossed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.stats import norm

from spark_audit import store
from spark_audit.catalog import lower_is_better
from spark_audit.decay import (
    Calibration,
    estimated_exprs,
    estimated_from_row,
    fit_calibration,
    join_labels,
    merge_states,
    quality_exprs,
    quality_from_row,
    rate_of_change,
    trend,
    windows_until,
    zscore,
)
from spark_audit.decay.uncertainty import ESTIMATED, SE_METRICS, estimated_se, metric_se
from spark_audit.drift.noise import MAX_WINDOWS
from spark_audit.findings import Candidate, Finding
from spark_audit.profile.profiler import GroupResult
from spark_audit.profile.state import TableProfile
from spark_audit.rows import finite, group_fields
from spark_audit.scan import ScanPart
from spark_audit.source import read_source
from spark_audit.spec import AuditSpec, QualityConfig, QualitySpec

Q, E = "q__", "e__"


def with_labels(spark: SparkSession, df: DataFrame, spec: AuditSpec) -> DataFrame:
    """The predictions with the label column joined from the labels table, when there is one."""
    cfg = spec.quality
    if cfg is None or cfg.labels is None:
        return df
    labels, _ = read_source(spark, cfg.labels.source)
    return join_labels(
        df, labels, list(cfg.labels.keys), label_col=cfg.measure.label, label_time_col=cfg.labels.label_time_column,
        prediction_time_col=spec.source.timestamp_column if cfg.labels.max_delay else None,
        max_delay=cfg.labels.max_delay,
    )


def parts(cfg: QualityConfig, calibration: Calibration | None) -> list[ScanPart]:
    """The quality scan part (realised metrics' sums) and, with a calibration, the estimate's."""
    out = [ScanPart("q", tuple(quality_exprs(cfg.measure, prefix=Q)), merge=merge_states)]
    m = cfg.measure
    if calibration is not None and m.score:
        # the estimate calls a row positive as the realised metrics do: by the prediction column when
        # the spec has one, else by score >= threshold
        out.append(ScanPart("e", tuple(estimated_exprs(calibration, m.score, m.threshold, prefix=E,
                                                       prediction_col=m.prediction, positive=m.positive)),
                            merge=merge_states))
    return out


def state(group: GroupResult) -> dict[str, Any]:
    """The group's quality state (realised and estimated sums, merged over its finest groups)."""
    return {**group.states["q"], **group.states["e"]}


def reference_extras(cfg: QualityConfig, ref_state: dict[str, Any],
                     window_states: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """What a reference keeps: its quality metrics, its state, the overdispersion of each metric
    between its own windows (``phi``) and (binary + score) a calibration."""
    metrics = quality_from_row(cfg.measure, ref_state, prefix=Q)
    out: dict[str, Any] = {"quality": {"task": cfg.measure.task, "metrics": {k: finite(v) for k, v in metrics.items()},
                                       "state": {k: v for k, v in ref_state.items() if k.startswith(Q)},
                                       "phi": window_phi(cfg.measure, list(window_states))}}
    if cfg.measure.task == "binary" and cfg.measure.score and cfg.estimate and metrics.get("n"):
        out["quality"]["calibration"] = fit_calibration(ref_state[Q + "bin_pos"], ref_state[Q + "bin_neg"]).to_dict()
    return out


def window_phi(qspec: QualitySpec, states: list[dict[str, Any]], min_windows: int = 3) -> dict[str, float]:
    """Per metric, how much the reference's windows vary beyond their sampling error: the mean of z^2
    over the windows (each window against the merge of the others), floored at 1, like the drift
    tests' factors (``spark_audit.drift.noise``). Independent rows give about 1; NannyML learns its
    bands from the reference's own chunks the same way."""
    states = [st for st in states if st][-MAX_WINDOWS:]  # the newest windows, as for the drift noise
    if len(states) < min_windows:
        return {}
    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {}
    for i, st in enumerate(states):
        rest: dict[str, Any] = {}
        for j, other in enumerate(states):
            if j != i:
                rest = merge_states(rest, other)
        mine, theirs = quality_from_row(qspec, st, prefix=Q), quality_from_row(qspec, rest, prefix=Q)
        for metric in SE_METRICS[qspec.task]:
            a, b = mine.get(metric, math.nan), theirs.get(metric, math.nan)
            se = math.hypot(metric_se(qspec, metric, st, Q), metric_se(qspec, metric, rest, Q))
            if math.isfinite(a) and math.isfinite(b) and math.isfinite(se) and se > 0:
                per_metric.setdefault(metric, []).append(((a - b) / se) ** 2)
    for metric, z2 in per_metric.items():
        out[metric] = max(1.0, float(np.mean(z2)))
    return out


def reference_calibration(extras: dict[str, Any]) -> Calibration | None:
    cal = (extras.get("quality") or {}).get("calibration")
    return Calibration.from_dict(cal) if cal else None


def _degradation(metric: str, value: float, ref: float | None) -> float | None:
    """Relative loss of quality versus the reference (positive = worse)."""
    if ref is None or not math.isfinite(value) or ref == 0:
        return None
    change = (value - ref) / abs(ref)
    return change if lower_is_better(metric) else -change


def _worse_p(metric: str, value: float, ref: float, se: float) -> float:
    """One-sided p-value that ``value`` is worse than ``ref`` beyond a standard error ``se``."""
    if not (math.isfinite(se) and se > 0):
        return math.nan
    worse = (value - ref) if lower_is_better(metric) else (ref - value)
    return float(norm.sf(worse / se))


def evaluate(
    spec: AuditSpec,
    groups: list[GroupResult],
    ref_profile: TableProfile,
    history: dict[tuple, list[tuple[str, float]]],
    common: dict[str, Any],
    judged: dict[int, bool] | None = None,
) -> tuple[list[dict[str, Any]], list[Candidate]]:
    """Rows for ``performance_metrics`` and the candidate findings, for every group in window order.

    A slice is compared with the same slice of the reference (its own quality and
    noise), the whole window with the whole reference. A degradation is material at
    ``max_degradation`` (critical at ``critical_degradation``), and its evidence is a
    z-test whose standard error adds the window's and the reference's sampling errors,
    times the reference's window-to-window overdispersion. An undefined metric (no
    positives, one class) gives no candidate. The label-free estimate is judged only
    on windows without labels. ``history`` maps (slice, model_version, metric) to
    earlier (window_start, value) pairs from complete audits; windows of this run are
    appended as they are seen; the history rule floors the history's std at the
    window's sampling error.
    """
    cfg = spec.quality
    assert cfg is not None
    qspec = cfg.measure
    rows: list[dict[str, Any]] = []
    candidates: list[Candidate] = []
    watched = cfg.watched()
    hist = {k: list(v) for k, v in history.items()}
    for g in groups:
        k = g.key
        st = state(g)
        if not st:
            continue
        base = ref_profile.slices.get(k.slice, ref_profile) if k.slice else ref_profile
        ref_q = (base.extras.get("quality") or (ref_profile.extras.get("quality") or {}))
        ref_metrics, ref_state, phis = ref_q.get("metrics") or {}, ref_q.get("state") or {}, ref_q.get("phi") or {}
        ok = True if judged is None else judged[id(g)]
        realised = quality_from_row(qspec, st, prefix=Q)
        calibration = reference_calibration(ref_profile.extras)
        estimated = estimated_from_row(st, prefix=E, calibration=calibration) if E + "n" in st else {}
        labelled = (realised.get("n") or 0) > 0
        where = dict(window_start=k.window_start, slice=k.slice, model_version=k.model_version)
        for metric in (m for m in realised if m not in ("tp", "fp", "tn", "fn", "n", "unlabelled")):
            value = realised[metric]
            est = estimated.get(metric)
            ref = ref_metrics.get(metric)
            phi = float(phis.get(metric, 1.0))
            se = metric_se(qspec, metric, st, Q) if metric in SE_METRICS[qspec.task] else math.nan
            se_ref = metric_se(qspec, metric, ref_state, Q) if ref_state and metric in SE_METRICS[qspec.task] \
                else math.nan
            se_total = math.sqrt(phi) * math.hypot(se, se_ref if math.isfinite(se_ref) else 0.0)
            series = hist.setdefault((k.slice, k.model_version, metric), [])
            past = [v for w, v in series if w < (k.window_start or "")]
            deg = _degradation(metric, value, ref)
            est_deg = _degradation(metric, est, ref) if est is not None and not labelled else None
            direction = "up" if lower_is_better(metric) else "down"
            z = zscore(past[-cfg.history:], value, k=cfg.k, min_history=cfg.min_history, direction=direction,
                       min_std=se if math.isfinite(se) else 0.0)
            roc = rate_of_change(past, value, max_rel_change=cfg.max_rel_change, direction=direction)
            anomaly = z if z.is_anomaly else roc if roc.is_anomaly else None
            values = [*past, value]
            critical_level = None if ref is None else (
                ref * (1 + cfg.critical_degradation) if lower_is_better(metric)
                else ref * (1 - cfg.critical_degradation))
            left = None if critical_level is None else windows_until(
                values, critical_level, higher_is_better=not lower_is_better(metric))
            p = _worse_p(metric, value, ref, se_total) if deg is not None else math.nan
            est_se = estimated_se(metric, estimated) if est is not None and metric in ESTIMATED else math.nan
            row = store.row(
                "performance_metrics", **common, **group_fields(k), metric=metric, value=finite(value),
                reference_value=finite(ref),
                degradation=finite(deg), estimated_value=finite(est), estimated_degradation=finite(est_deg),
                n=int(realised.get("n") or 0), unlabelled=int(realised.get("unlabelled") or 0),
                anomaly=anomaly is not None, anomaly_reason=anomaly.reason if anomaly else None,
                trend=finite(trend(values)), windows_until_critical=finite(left), sampling_error=finite(se),
                p_value=finite(p), q_value=None, estimated_sampling_error=finite(est_se),
            )
            rows.append(row)
            if math.isfinite(value) and ok:  # a group too small to judge does not become history either
                series.append((k.window_start or "", value))
            if metric not in watched:
                continue
            if deg is not None and math.isfinite(value):
                sev = "critical" if deg >= cfg.critical_degradation else "warning"
                f = Finding(sev, "quality", f"{metric} {value:.3f} vs {ref:.3f} in the reference ({deg:.1%} worse; "
                            f"sampling error {se_total:.3f} at n={int(realised.get('n') or 0)})", metric, **where,
                            statistic=metric, value=finite(value), threshold=finite(ref))
                candidates.append(Candidate(f, p, deg >= cfg.max_degradation, ok, [row]))
            elif est_deg is not None and est is not None and math.isfinite(est):
                band = math.sqrt(phi) * math.hypot(est_se, se_ref if math.isfinite(se_ref) else 0.0)
                f = Finding("warning", "quality_estimate", f"no labels yet; estimated {metric} {est:.3f} vs "
                            f"{ref:.3f} in the reference ({est_deg:.1%} worse; sampling error {band:.3f})",
                            metric, **where, statistic=metric, value=finite(est), threshold=finite(ref))
                candidates.append(Candidate(f, _worse_p(metric, est, ref, band), est_deg >= cfg.max_degradation,
                                            ok, [row]))
            if anomaly is not None:
                score = z.score if anomaly is z else (value - past[-1]) / (math.sqrt(2) * se) if se > 0 else math.nan
                p_anomaly = float(norm.sf(abs(score))) if math.isfinite(score) else math.nan
                candidates.append(Candidate(Finding("warning", "anomaly", f"{metric}: {anomaly.reason}", metric,
                                                    **where, statistic=metric, value=finite(value)),
                                            p_anomaly, True, ok, []))
    return rows, candidates


DISAGREEMENT_WARN = 0.01


def disagreement(spec: AuditSpec, groups: list[GroupResult]) -> list[Finding]:
    """One finding per audit when the prediction column and ``score >= threshold`` disagree on more
    than 1 % of the rows that have both (the spec's threshold is then not the model's cut-off)."""
    cfg = spec.quality
    if cfg is None or not (cfg.measure.prediction and cfg.measure.score):
        return []
    acc: dict[str, Any] = {}
    for g in groups:
        if g.key.slice is None:
            acc = merge_states(acc, state(g))
    share = quality_from_row(cfg.measure, acc, prefix=Q).get("prediction_threshold_disagreement", math.nan)
    if not (math.isfinite(share) and share > DISAGREEMENT_WARN):
        return []
    return [Finding("warning", "prediction_threshold", f"{cfg.measure.prediction!r} and {cfg.measure.score!r} >= "
                    f"{cfg.measure.threshold:g} disagree on {share:.1%} of the rows; realised metrics and the "
                    f"label-free estimate use {cfg.measure.prediction!r}: set quality.threshold to the model's "
                    "cut-off", cfg.measure.prediction, statistic="prediction_threshold_disagreement", value=share,
                    threshold=DISAGREEMENT_WARN)]


FAIRNESS_RATES = {  # fairness notion -> the per-group rate it compares
    "predictive_parity": "precision",
    "equal_opportunity": "recall",
    "statistical_parity": "predicted_positive_rate",
}


def _attribute_value(slice_label: str, attribute: str) -> str | None:
    for part in slice_label.split(","):
        name, _, value = part.partition("=")
        if name == attribute:
            return value
    return None


def fairness(
    spec: AuditSpec, groups: list[GroupResult], common: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[Candidate]]:
    """Gaps between the groups of the protected attribute, per window and model version, as candidates:
    material past ``max_gap`` (or below ``min_ratio``), with a z-test of the two groups' rates as evidence.

    For each notion the per-group rate (precision, recall, rate of positive
    predictions) is computed from the groups' merged quality states; the row's
    value is the largest minus the smallest rate, and ``disparate_impact`` is the
    smallest positive-prediction rate over the largest.
    """
    cfg = spec.quality
    assert cfg is not None and cfg.fairness is not None
    attr = cfg.fairness.attribute
    by_window: dict[tuple, dict[str, dict[str, Any]]] = {}
    keys: dict[tuple, Any] = {}
    for g in groups:
        if g.key.slice is None:
            continue
        value = _attribute_value(g.key.slice, attr)
        window = (g.key.window_start, g.key.model_version)
        keys.setdefault(window, replace(g.key, slice=None))
        states = by_window.setdefault(window, {})
        states[value] = merge_states(states.get(value, {}), state(g))
    rows: list[dict[str, Any]] = []
    findings: list[Candidate] = []
    for window, states in sorted(by_window.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        key = keys[window]
        metrics = {v: quality_from_row(cfg.measure, st, prefix=Q) for v, st in states.items()}
        where = dict(window_start=key.window_start, slice=None, model_version=key.model_version)
        for notion, rate in FAIRNESS_RATES.items():
            rates = {v: m[rate] for v, m in metrics.items() if math.isfinite(m[rate])}
            if len(rates) < 2:
                continue
            lo, hi = min(rates, key=rates.get), max(rates, key=rates.get)
            gap = rates[hi] - rates[lo]
            detail = f"{rate} {rates[hi]:.3f} for {attr}={hi} vs {rates[lo]:.3f} for {attr}={lo}"
            # evidence: the two groups' rates differ beyond their binomial sampling errors
            se = math.hypot(metric_se(cfg.measure, rate, states[hi], Q), metric_se(cfg.measure, rate, states[lo], Q))
            p = float(norm.sf(gap / se)) if math.isfinite(se) and se > 0 else math.nan
            row = _fairness_row(common, key, f"fairness.{attr}.{notion}_gap", gap, detail)
            rows.append(row)
            findings.append(Candidate(Finding("warning", "fairness", f"{notion}: {detail} (gap {gap:.3f} > "
                                              f"{cfg.fairness.max_gap:g})", attr, **where, statistic=f"{notion}_gap",
                                              value=gap, threshold=cfg.fairness.max_gap),
                                      p, gap > cfg.fairness.max_gap, True, [row]))
            if notion == "statistical_parity" and rates[hi] > 0:
                ratio = rates[lo] / rates[hi]
                row = _fairness_row(common, key, f"fairness.{attr}.disparate_impact", ratio, detail)
                rows.append(row)
                findings.append(Candidate(Finding("warning", "fairness", f"disparate impact {ratio:.2f} < "
                                                  f"{cfg.fairness.min_ratio:g}: {detail}", attr, **where,
                                                  statistic="disparate_impact", value=ratio,
                                                  threshold=cfg.fairness.min_ratio),
                                          p, ratio < cfg.fairness.min_ratio, True, [row]))
    return rows, findings


def _fairness_row(common: dict[str, Any], key, metric: str, value: float, detail: str) -> dict[str, Any]:
    return store.row("performance_metrics", **common, **group_fields(key), metric=metric, value=finite(value),
                     anomaly=False, anomaly_reason=detail, reference_value=None, degradation=None,
                     estimated_value=None, estimated_degradation=None, n=None, unlabelled=None, trend=None,
                     windows_until_critical=None, sampling_error=None, p_value=None, q_value=None,
                     estimated_sampling_error=None)


def history_from_table(spark: SparkSession, spec: AuditSpec, audit_key: str) -> dict[tuple, list[tuple[str, float]]]:
    """Earlier windows' realised metrics from complete audits of the same audit name."""
    found = store.window_history(spark, spec.output, "performance_metrics", spec.name, audit_key,
                                 ("slice", "model_version", "metric"), "value",
                                 F.col("value").isNotNull() & (F.col("n") >= F.lit(spec.findings.min_rows)))
    return {k: [(w, float(v)) for w, v in series] for k, series in found.items()}
