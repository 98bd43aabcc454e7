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
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

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
from spark_audit.findings import Finding
from spark_audit.profile.profiler import GroupResult
from spark_audit.rows import finite, group_fields
from spark_audit.spec import LOWER_IS_BETTER, AuditSpec, QualityConfig
from spark_audit.timeutil import iso_utc

Q, E = "q__", "e__"
ESTIMATED = ("accuracy", "precision", "recall", "f1")


def with_labels(spark: SparkSession, df: DataFrame, spec: AuditSpec) -> DataFrame:
    """The predictions with the label column joined from the labels table, when there is one."""
    cfg = spec.quality
    if cfg is None or cfg.labels is None:
        return df
    from spark_audit.source import read_source

    labels, _ = read_source(spark, cfg.labels.source)
    return join_labels(
        df, labels, list(cfg.labels.keys), label_col=cfg.measure.label, label_time_col=cfg.labels.label_time_column,
        prediction_time_col=spec.source.timestamp_column if cfg.labels.max_delay else None,
        max_delay=cfg.labels.max_delay,
    )


def exprs(cfg: QualityConfig, calibration: Calibration | None) -> list[Column]:
    out = quality_exprs(cfg.measure, prefix=Q)
    m = cfg.measure
    if calibration is not None and m.score:
        out += estimated_exprs(calibration, m.score, m.threshold, prefix=E)
    return out


def state(group: GroupResult) -> dict[str, Any]:
    """The group's quality state; a merged group adds its children's states."""
    rows: Iterable[dict[str, Any]] = [c.row for c in group.children] if group.children else [group.row]
    acc: dict[str, Any] = {}
    for row in rows:
        acc = merge_states(acc, {k: v for k, v in row.items() if k.startswith((Q, E))})
    return acc


def reference_extras(cfg: QualityConfig, ref_state: dict[str, Any]) -> dict[str, Any]:
    """What a reference keeps: its quality metrics, its state and (binary + score) a calibration."""
    metrics = quality_from_row(cfg.measure, ref_state, prefix=Q)
    out: dict[str, Any] = {"quality": {"task": cfg.measure.task, "metrics": {k: finite(v) for k, v in metrics.items()},
                                       "state": {k: v for k, v in ref_state.items() if k.startswith(Q)}}}
    if cfg.measure.task == "binary" and cfg.measure.score and cfg.estimate and metrics.get("n"):
        out["quality"]["calibration"] = fit_calibration(ref_state[Q + "bin_pos"], ref_state[Q + "bin_neg"]).to_dict()
    return out


def reference_calibration(extras: dict[str, Any]) -> Calibration | None:
    cal = (extras.get("quality") or {}).get("calibration")
    return Calibration.from_dict(cal) if cal else None


def _degradation(metric: str, value: float, ref: float | None) -> float | None:
    """Relative loss of quality versus the reference (positive = worse)."""
    if ref is None or not math.isfinite(value) or ref == 0:
        return None
    change = (value - ref) / abs(ref)
    return change if metric in LOWER_IS_BETTER else -change


def evaluate(
    spec: AuditSpec,
    groups: list[GroupResult],
    ref_extras: dict[str, Any],
    history: dict[tuple, list[tuple[str, float]]],
    common: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Rows for ``performance_metrics`` and the findings, for every group in window order.

    ``history`` maps (slice, model_version, metric) to earlier (window_start, value)
    pairs from complete audits; windows of this run are appended as they are seen.
    """
    cfg = spec.quality
    assert cfg is not None
    qspec = cfg.measure
    ref_metrics = (ref_extras.get("quality") or {}).get("metrics") or {}
    rows: list[dict[str, Any]] = []
    findings: list[Finding] = []
    watched = cfg.watched()
    hist = {k: list(v) for k, v in history.items()}
    for g in groups:
        k = g.key
        st = state(g)
        if not st:
            continue
        realised = quality_from_row(qspec, st, prefix=Q)
        estimated = estimated_from_row(st, prefix=E) if E + "n" in st else {}
        where = dict(window_start=k.window_start, slice=k.slice, model_version=k.model_version)
        for metric in (m for m in realised if m not in ("tp", "fp", "tn", "fn", "n", "unlabelled")):
            value = realised[metric]
            est = estimated.get(metric)
            ref = ref_metrics.get(metric)
            series = hist.setdefault((k.slice, k.model_version, metric), [])
            past = [v for w, v in series if w < (k.window_start or "")]
            deg = _degradation(metric, value, ref)
            est_deg = _degradation(metric, est, ref) if est is not None else None
            direction = "up" if metric in LOWER_IS_BETTER else "down"
            z = zscore(past[-cfg.history:], value, k=cfg.k, min_history=cfg.min_history, direction=direction)
            roc = rate_of_change(past, value, max_rel_change=cfg.max_rel_change, direction=direction)
            anomaly = z if z.is_anomaly else roc if roc.is_anomaly else None
            values = [*past, value]
            critical_level = None if ref is None else (
                ref * (1 + 2 * cfg.max_degradation) if metric in LOWER_IS_BETTER
                else ref * (1 - 2 * cfg.max_degradation))
            left = None if critical_level is None else windows_until(
                values, critical_level, higher_is_better=metric not in LOWER_IS_BETTER)
            rows.append(dict(
                common, **group_fields(k), metric=metric, value=finite(value), reference_value=finite(ref),
                degradation=finite(deg), estimated_value=finite(est), estimated_degradation=finite(est_deg),
                n=int(realised.get("n") or 0), unlabelled=int(realised.get("unlabelled") or 0),
                anomaly=anomaly is not None, anomaly_reason=anomaly.reason if anomaly else None,
                trend=finite(trend(values)), windows_until_critical=finite(left),
            ))
            if math.isfinite(value):
                series.append((k.window_start or "", value))
            if metric not in watched:
                continue
            if deg is not None and deg >= cfg.max_degradation:
                sev = "critical" if deg >= 2 * cfg.max_degradation else "warning"
                findings.append(Finding(sev, "quality", f"{metric} {value:.3f} vs {ref:.3f} in the reference "
                                        f"({deg:.1%} worse)", metric, **where))
            elif est_deg is not None and not math.isfinite(value) and est_deg >= cfg.max_degradation:
                findings.append(Finding("warning", "quality_estimate", f"no labels yet; estimated {metric} "
                                        f"{est:.3f} vs {ref:.3f} in the reference ({est_deg:.1%} worse)",
                                        metric, **where))
            if anomaly is not None:
                findings.append(Finding("warning", "anomaly", f"{metric}: {anomaly.reason}", metric, **where))
    return rows, findings


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
) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Gaps between the groups of the protected attribute, per window and model version.

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
    findings: list[Finding] = []
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
            rows.append(_fairness_row(common, key, f"fairness.{attr}.{notion}_gap", gap, detail))
            if gap > cfg.fairness.max_gap:
                findings.append(Finding("warning", "fairness", f"{notion}: {detail} (gap {gap:.3f} > "
                                        f"{cfg.fairness.max_gap:g})", attr, **where))
            if notion == "statistical_parity" and rates[hi] > 0:
                ratio = rates[lo] / rates[hi]
                rows.append(_fairness_row(common, key, f"fairness.{attr}.disparate_impact", ratio, detail))
                if ratio < cfg.fairness.min_ratio:
                    findings.append(Finding("warning", "fairness", f"disparate impact {ratio:.2f} < "
                                            f"{cfg.fairness.min_ratio:g}: {detail}", attr, **where))
    return rows, findings


def _fairness_row(common: dict[str, Any], key, metric: str, value: float, detail: str) -> dict[str, Any]:
    return dict(common, **group_fields(key), metric=metric, value=finite(value), anomaly=False,
                anomaly_reason=detail)


def history_from_table(spark: SparkSession, spec: AuditSpec, audit_key: str) -> dict[tuple, list[tuple[str, float]]]:
    """Earlier windows' realised metrics from complete audits of the same audit name."""
    from spark_audit import store

    df = store.complete(spark, spec.output, "performance_metrics")
    if df is None:
        return {}
    rows = (df.where((F.col("audit_name") == spec.name) & (F.col("audit_key") != audit_key)
                     & F.col("value").isNotNull())
            .select(F.unix_micros("window_start").alias("ws"), "slice", "model_version", "metric", "value")
            .collect())
    out: dict[tuple, dict[str, float]] = {}
    for r in rows:
        w = iso_utc(r.ws)
        if w is None:
            continue
        out.setdefault((r.slice, r.model_version, r.metric), {})[w] = float(r.value)
    return {k: sorted(v.items()) for k, v in out.items()}
