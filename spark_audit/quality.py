"""Model quality inside an audit: labels, the shared scan, decay and anomaly findings.

Quality states (sums and binned counts from ``spark_audit.decay.metrics``) and the label-free
estimate's expected confusion counts join the profile's one aggregation. A window is compared with
its baseline's quality (the reference's, of the window's slice and, with a calendar cycle, of its
phase: ``spark_audit.baseline``), with its own metric history (earlier windows of this run and earlier
complete audits, seasonally adjusted with a cycle), and its trend says how many windows are left
before the critical level is crossed.

Evidence holds at small counts (``spark_audit.decay.evidence``): rates get exact beta-binomial tests,
F1 a simulation, the rest z-tests; every one adds the reference's own window-to-window variance of
the metric (``tau2``, learned when the reference is built) to the sampling errors. A metric whose
denominator is below ``quality.min_count`` gives no finding, and its row says why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.stats import norm

from spark_audit import store
from spark_audit.baseline import baseline
from spark_audit.catalog import MetricInfo, lower_is_better, metric
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
from spark_audit.decay import evidence as ev
from spark_audit.decay.uncertainty import ESTIMATED, SE_METRICS, binomial_se, estimated_se, metric_se
from spark_audit.drift.noise import MAX_WINDOWS
from spark_audit.findings import Candidate, Finding
from spark_audit.profile.profiler import GroupResult
from spark_audit.profile.state import GroupKey, TableProfile
from spark_audit.rows import finite, group_fields
from spark_audit.scan import ScanPart
from spark_audit.source import read_source
from spark_audit.spec import AuditSpec, QualityConfig, QualitySpec

Q, E = "q__", "e__"
COUNTS = ("tp", "fp", "tn", "fn", "n", "unlabelled")


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


# --------------------------------------------------------------------------- the reference


def reference_extras(cfg: QualityConfig, ref_state: dict[str, Any], window_states: list[dict[str, Any]] = (),
                     groups: list[Any] | None = None, *, calibrate: bool = True) -> dict[str, Any]:
    """What a reference (or one phase of it) keeps: its quality metrics, its state, each metric's
    window-to-window variance (``tau2``, and the older factor ``phi``) from its windows compared within
    ``groups`` (the phases of a cycle), and (binary + score) a calibration."""
    metrics = quality_from_row(cfg.measure, ref_state, prefix=Q)
    phi, tau2 = window_noise(cfg.measure, list(window_states), groups)
    out: dict[str, Any] = {"quality": {"task": cfg.measure.task, "metrics": {k: finite(v) for k, v in metrics.items()},
                                       "state": {k: v for k, v in ref_state.items() if k.startswith(Q)},
                                       "phi": phi, "tau2": tau2}}
    if calibrate and cfg.measure.task == "binary" and cfg.measure.score and cfg.estimate and metrics.get("n"):
        out["quality"]["calibration"] = fit_calibration(ref_state[Q + "bin_pos"], ref_state[Q + "bin_neg"]).to_dict()
    return out


def _window_metrics(qspec: QualitySpec, st: dict[str, Any]) -> dict[str, tuple[float, float, float | None]]:
    """Per metric (and the false-positive rate ``fpr``, which F1's evidence needs): value, standard error
    (for a rate: at the value itself, later replaced by the pooled rate's) and denominator."""
    values = quality_from_row(qspec, st, prefix=Q)
    out: dict[str, tuple[float, float, float | None]] = {}
    c = ev.cells(st, Q)
    for m in SE_METRICS[qspec.task]:
        info = metric(qspec.task, m)
        xd = ev.count_of(info, c)
        out[m] = (values.get(m, math.nan), metric_se(qspec, m, st, Q), None if xd is None else xd[1])
    if qspec.task == "binary":
        neg = c["fp"] + c["tn"]
        out["fpr"] = (c["fp"] / neg if neg else math.nan, math.nan, neg)
    return out


def window_noise(qspec: QualitySpec, states: list[dict[str, Any]], groups: list[Any] | None = None,
                 min_windows: int = 3) -> tuple[dict[str, float], dict[str, float]]:
    """Per metric, how much the reference's windows vary beyond their sampling error, each window against
    the merge of the other windows (of its group): ``phi``, the mean of z^2 floored at 1 (kept for older
    readers), and ``tau2``, the between-window variance in the metric's units, the moment estimate
    ``mean(d^2 - se_window^2 - se_rest^2)`` floored at 0 (a rate's errors at the two windows' pooled
    rate, so a window without a success does not pretend to be exact). NannyML learns its bands from
    the reference's own chunks the same way."""
    keep = [i for i, st in enumerate(states) if st][-MAX_WINDOWS:]  # the newest windows, as for the drift noise
    states = [states[i] for i in keep]
    groups = [None] * len(states) if groups is None else [groups[i] for i in keep]
    if len(states) < min_windows:
        return {}, {}
    z2: dict[str, list[float]] = {}
    excess: dict[str, list[float]] = {}
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        if len(idx) < 2:
            continue
        for i in idx:
            rest: dict[str, Any] = {}
            for j in idx:
                if j != i:
                    rest = merge_states(rest, states[j])
            mine, theirs = _window_metrics(qspec, states[i]), _window_metrics(qspec, rest)
            for m, (a, se_a, da) in mine.items():
                b, se_b, db = theirs[m]
                if da is not None and db and da:  # a rate: both errors at the pooled rate
                    pooled = (a * da + b * db) / (da + db)
                    se_a, se_b = binomial_se(pooled, da), binomial_se(pooled, db)
                if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(se_a) and math.isfinite(se_b)):
                    continue
                excess.setdefault(m, []).append(((a - b) ** 2 - se_a ** 2 - se_b ** 2) / (1 + 1 / (len(idx) - 1)))
                if se_a > 0 or se_b > 0:
                    z2.setdefault(m, []).append((a - b) ** 2 / (se_a ** 2 + se_b ** 2))
    return ({m: max(1.0, float(np.mean(v))) for m, v in z2.items()},
            {m: max(0.0, float(np.mean(v))) for m, v in excess.items()})


def reference_calibration(extras: dict[str, Any]) -> Calibration | None:
    cal = (extras.get("quality") or {}).get("calibration")
    return Calibration.from_dict(cal) if cal else None


# --------------------------------------------------------------------------- decisions


def _degradation(metric_name: str, value: float, ref: float | None) -> float | None:
    """Relative loss of quality versus the reference (positive = worse)."""
    if ref is None or not math.isfinite(value) or ref == 0:
        return None
    change = (value - ref) / abs(ref)
    return change if lower_is_better(metric_name) else -change


def _tau2(ref_q: dict[str, Any], m: str, se: float, se_ref: float) -> float:
    """The metric's between-window variance: learned by the reference, or (an older reference, which kept
    only the factor phi) what phi says at these errors."""
    if ref_q.get("tau2") is not None:
        return float(ref_q["tau2"].get(m, 0.0))
    phi = float((ref_q.get("phi") or {}).get(m, 1.0))
    return (phi - 1.0) * (np.nan_to_num(se) ** 2 + np.nan_to_num(se_ref) ** 2)


def evidence(info: MetricInfo, value: float, base_value: float, counts: dict[str, float],
             base_counts: dict[str, float], se: float, se_base: float, tau2: float | dict[str, float]) -> ev.Evidence:
    """The metric's evidence against its baseline: exact for rates and F1, a z-test otherwise."""
    higher = info.higher_is_better
    t = tau2 if isinstance(tau2, dict) else {info.name: tau2}
    xd, base_xd = ev.count_of(info, counts), ev.count_of(info, base_counts)
    if xd is not None and base_xd is not None:
        return ev.rate_evidence(*xd, *base_xd, t.get(info.name, 0.0), higher_is_better=higher)
    if info.name == "f1":
        return ev.f1_evidence(counts["tp"], counts["fp"], counts["fn"], counts["tn"], base_counts, t)
    return ev.z_evidence(value, base_value, se, se_base, t.get(info.name, 0.0), higher_is_better=higher)


def _band_text(band: tuple[float, float] | None, n: float) -> str:
    return f"expected {band[0]:.3f} to {band[1]:.3f} at n={int(n)}" if band else f"n={int(n)}"


def evaluate(
    spec: AuditSpec,
    groups: list[GroupResult],
    ref_profile: TableProfile,
    history: dict[tuple, list[tuple]],
    common: dict[str, Any],
    judged: dict[int, bool] | None = None,
    *,
    cycle: bool = True,
) -> tuple[list[dict[str, Any]], list[Candidate]]:
    """Rows for ``performance_metrics`` and the candidate findings, for every group in window order.

    Each group is compared with its baseline (``spark_audit.baseline``: its slice and, with a cycle, its
    phase). A degradation is material at ``max_degradation`` (critical at ``critical_degradation``) and
    needs evidence (``evidence``) and a value outside its noise band. The label-free estimate is judged
    only on windows without labels. ``history`` maps (slice, model_version, metric) to earlier
    ``(window_start, value[, denominator, sampling error])`` from complete audits; windows of this run
    are appended as they are seen. With a cycle, history values are seasonally adjusted (each minus its
    phase's offset from the whole reference) before the history rules compare them.
    """
    cfg = spec.quality
    assert cfg is not None
    qspec = cfg.measure
    rows: list[dict[str, Any]] = []
    candidates: list[Candidate] = []
    watched = cfg.watched()
    hist = {k: [tuple(x) + (None,) * (4 - len(x)) for x in v] for k, v in history.items()}
    calibration = reference_calibration(ref_profile.extras)
    offsets: dict[tuple, float] = {}

    def offset(key: GroupKey, m: str) -> float:
        """The phase's metric minus the whole reference's (0 without a cycle)."""
        b = baseline(ref_profile, key, cycle=cycle)
        if b.phase is None:
            return 0.0
        cache = (key.slice, b.phase, m)
        if cache not in offsets:
            a = ((b.extras.get("quality") or {}).get("metrics") or {}).get(m)
            w = ((b.scale.extras.get("quality") or {}).get("metrics") or {}).get(m)
            offsets[cache] = float(a - w) if a is not None and w is not None else 0.0
        return offsets[cache]

    for g in sorted(groups, key=lambda g: g.key.window_start or ""):
        k = g.key
        st = state(g)
        if not st:
            continue
        b = baseline(ref_profile, k, cycle=cycle)
        ref_q = b.extras.get("quality") or ref_profile.extras.get("quality") or {}
        ref_metrics, ref_state = ref_q.get("metrics") or {}, ref_q.get("state") or {}
        ok = True if judged is None else judged[id(g)]
        realised = quality_from_row(qspec, st, prefix=Q)
        estimated = estimated_from_row(st, prefix=E, calibration=calibration) if E + "n" in st else {}
        labelled = (realised.get("n") or 0) > 0
        counts, base_counts = ev.cells(st, Q), ev.cells(ref_state, Q)
        n = float(realised.get("n") or 0)
        n_ref = float(quality_from_row(qspec, ref_state, prefix=Q).get("n") or 0) if ref_state else 0.0
        where = dict(window_start=k.window_start, slice=k.slice, model_version=k.model_version)
        phase_note = f" ({b.phase})" if b.phase else ""
        for m in (x for x in realised if x not in COUNTS):
            info = metric(qspec.task, m)
            value, ref = realised[m], ref_metrics.get(m)
            has_se = m in SE_METRICS[qspec.task]
            se = metric_se(qspec, m, st, Q) if has_se else math.nan
            se_ref = metric_se(qspec, m, ref_state, Q) if ref_state and has_se else math.nan
            tau2 = _tau2(ref_q, m, se, se_ref)
            small = ev.too_small(info, counts, n, cfg.min_count)
            if small is None and ref_state:
                thin = ev.too_small(info, base_counts, n_ref, cfg.min_count)
                small = f"the reference has {thin}" if thin else None
            xd = ev.count_of(info, counts)
            denominator = xd[1] if xd is not None else n
            series = hist.setdefault((k.slice, k.model_version, m), [])
            past = [x for x in series if x[0] < (k.window_start or "")]
            deg = _degradation(m, value, ref)
            est = estimated.get(m)
            est_deg = _degradation(m, est, ref) if est is not None and not labelled else None
            e = evidence(info, value, ref, counts, base_counts, se, se_ref,
                         {**(ref_q.get("tau2") or {}), m: tau2}) if deg is not None and not small else ev.NONE
            anomaly, p_anomaly = (None, math.nan) if small else _history_rule(
                cfg, info, k, value, se, denominator, past, tau2, offset)
            values = [x[1] for x in past] + [value]
            critical_level = None if ref is None else (
                ref * (1 + cfg.critical_degradation) if lower_is_better(m) else ref * (1 - cfg.critical_degradation))
            left = None if critical_level is None else windows_until(
                values, critical_level, higher_is_better=not lower_is_better(m))
            est_se = estimated_se(m, estimated) if est is not None and m in ESTIMATED else math.nan
            row = store.row(
                "performance_metrics", **common, **group_fields(k), metric=m, value=finite(value),
                reference_value=finite(ref),
                degradation=finite(deg), estimated_value=finite(est), estimated_degradation=finite(est_deg),
                n=int(n), unlabelled=int(realised.get("unlabelled") or 0),
                anomaly=anomaly is not None, anomaly_reason=anomaly.reason if anomaly else None,
                trend=finite(trend(values)), windows_until_critical=finite(left), sampling_error=finite(se),
                p_value=finite(e.p), q_value=None, estimated_sampling_error=finite(est_se),
                denominator=finite(float(denominator)), band_low=finite(e.band[0]) if e.band else None,
                band_high=finite(e.band[1]) if e.band else None,
                note=f"not judged: {small}" if small else None,
            )
            rows.append(row)
            if math.isfinite(value) and ok and not small:  # a group too small to judge does not become history
                series.append((k.window_start or "", value, float(denominator), se))
            if m not in watched or small:
                continue
            if deg is not None and math.isfinite(value):
                sev = "critical" if deg >= cfg.critical_degradation else "warning"
                f = Finding(sev, "quality", f"{m} {value:.3f} vs {ref:.3f} in the reference{phase_note} ({deg:.1%} "
                            f"worse; {_band_text(e.band, denominator)})", m, **where, statistic=m,
                            value=finite(value), threshold=finite(ref), band=e.band)
                candidates.append(Candidate(f, e.p, deg >= cfg.max_degradation, ok, [row]))
            elif est_deg is not None and est is not None and math.isfinite(est):
                est_counts = {c: float(estimated.get(c) or 0.0) for c in ("tp", "fp", "tn", "fn")}
                if not ev.too_small(info, est_counts, float(estimated.get("n") or 0), cfg.min_count):
                    e_est = ev.z_evidence(est, ref, est_se, se_ref, tau2, higher_is_better=info.higher_is_better)
                    f = Finding("warning", "quality_estimate", f"no labels yet; estimated {m} {est:.3f} vs {ref:.3f} "
                                f"in the reference{phase_note} ({est_deg:.1%} worse; {_band_text(e_est.band, n)})",
                                m, **where, statistic=m, value=finite(est), threshold=finite(ref), band=e_est.band)
                    candidates.append(Candidate(f, e_est.p, est_deg >= cfg.max_degradation, ok, [row]))
            if anomaly is not None:
                candidates.append(Candidate(Finding("warning", "anomaly", f"{m}: {anomaly.reason}", m, **where,
                                                    statistic=m, value=finite(value)), p_anomaly, True, ok, []))
    return rows, candidates


def _history_rule(cfg: QualityConfig, info: MetricInfo, key: GroupKey, value: float, se: float,
                  denominator: float, past: list[tuple], tau2: float, offset) -> tuple[Any, float]:
    """The history rules on seasonally adjusted values: ``zscore`` (mean ± k std of the trailing windows,
    the std floored at the window's sampling error at the history's level) and ``rate_of_change`` (from
    the previous window, with evidence beyond both windows' sampling errors and the between-window
    variance, exact for rates). Returns the anomaly (None) and its p-value."""
    m = info.name
    if not math.isfinite(value):
        return None, math.nan
    here = offset(key, m)
    adjusted = [(w, v - offset(GroupKey(window_start=w, slice=key.slice, model_version=key.model_version), m), d, s)
                for w, v, d, s in past if v is not None]
    level = value - here
    direction = "up" if lower_is_better(m) else "down"
    trailing = [v for _, v, _, _ in adjusted][-cfg.history:]
    floor = se
    if info.rate is not None and trailing and denominator:
        floor = binomial_se(float(np.clip(np.mean(trailing), 0, 1)), denominator)
    floor = math.sqrt(np.nan_to_num(floor) ** 2 + max(tau2, 0.0))
    z = zscore(trailing, level, k=cfg.k, min_history=cfg.min_history, direction=direction, min_std=floor)
    if z.is_anomaly:
        return z, float(norm.sf(abs(z.score))) if math.isfinite(z.score) else math.nan
    if not adjusted:
        return None, math.nan
    roc = rate_of_change([v for _, v, _, _ in adjusted], level, max_rel_change=cfg.max_rel_change,
                         direction=direction)
    if not roc.is_anomaly:
        return None, math.nan
    _, prev, prev_d, prev_se = adjusted[-1]
    if info.rate is not None and prev_d:
        expected = float(np.clip(prev + here, 0.0, 1.0))  # the previous window's rate, moved to this phase
        e = ev.rate_evidence(value * denominator, denominator, expected * prev_d, prev_d, tau2,
                             higher_is_better=info.higher_is_better)
    else:
        e = ev.z_evidence(level, prev, se, prev_se if prev_se is not None else se, tau2,
                          higher_is_better=info.higher_is_better)
    return (roc, e.p) if math.isfinite(e.p) else (None, math.nan)


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


def history_from_table(spark: SparkSession, spec: AuditSpec, audit_key: str) -> dict[tuple, list[tuple]]:
    """Earlier windows' realised metrics from complete audits of the same audit name: per (slice, model
    version, metric), ``(window_start, value, denominator, sampling error)`` oldest first."""
    found = store.window_history(spark, spec.output, "performance_metrics", spec.name, audit_key,
                                 ("slice", "model_version", "metric"), ("value", "denominator", "sampling_error"),
                                 F.col("value").isNotNull() & (F.col("n") >= F.lit(spec.findings.min_rows))
                                 & F.col("note").isNull())
    return {k: [(w, float(v[0]), v[1], v[2]) for w, v in series] for k, series in found.items()}
