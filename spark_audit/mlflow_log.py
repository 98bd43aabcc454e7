"""The audit as an MLflow run that reads like a report, and the audited model version's tags.

One run per audit (:func:`log_audit_run`):

- its **name** says what was audited and how it went: ``churn-demo · model 2 · 01-08→01-14 · CRITICAL``;
- its **description** (``mlflow.note.content``) is the console summary (:func:`spark_audit.report.summary`);
- its **parameters** are the spec's thresholds and statistics; the reference, the source, its Delta version and
  the spec hash are tags;
- its **metrics** are one series per thing a person watches, per window, stamped with the window's start (MLflow's
  "Time (wall)" axis shows dates) and stepped by the window's ordinal in the audit: ``drift.<feature>`` and
  ``skew.<feature>`` (the deciding statistic), ``missing_share.<column>`` (null + NaN + inf), ``drift.share``,
  ``rows``, ``quality.<metric>``, ``quality_estimated.<metric>``; and once per run what runs are sorted by
  (:func:`summary_metrics`: status, incidents, findings per severity, drifted features);
- its **artifacts**: the findings as an MLflow table (``log_table``), ``spark_audit/incidents.json``,
  ``spark_audit/findings.md`` (worst first), ``spark_audit/findings.json`` and the charts
  ``spark_audit/drift_over_windows.png`` and ``spark_audit/quality_over_windows.png``.

The registered model version audited gets the tags ``audit_status``, ``audit_summary``, ``audit_run`` (a
link to the run) and ``ml_test_score.*``, a description block linking the run, and the run names the
version's logged model (MLflow 3) as an input.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from mlflow.entities import LoggedModelInput, Metric, Param
from mlflow.exceptions import MlflowException

from spark_audit import chart
from spark_audit.drift.noise import missing_count
from spark_audit.errors import ReferenceError_
from spark_audit.findings import SEVERITIES
from spark_audit.mlflow_text import (
    FINDINGS_JSON,
    FINDINGS_MD,
    FINDINGS_TABLE,
    INCIDENTS_JSON,
    MAX_PARAM_CHARS,
    SEP,
    Tag,
    audit_summary,
    description,
    findings_markdown,
    incidents_summary,
    metric_key,
    run_link,
    run_name,
    severity_counts,
    status,
    version_description,
)
from spark_audit.reference import ensure_experiment, resolve_model_version
from spark_audit.report import summary
from spark_audit.report_json import incident_json
from spark_audit.result import AuditResult
from spark_audit.rows import finite
from spark_audit.rubric import score_text
from spark_audit.spec import AuditSpec
from spark_audit.timeutil import iso_utc, parse_iso
from spark_audit.tracking import lost_server, mlflow_run, ui_url


def _param_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        v = ",".join(str(x) for x in v)
    text = str(v)
    return text if len(text) <= MAX_PARAM_CHARS else text[:MAX_PARAM_CHARS - 1] + "…"


# --------------------------------------------------------------------------- what the run holds


def window_range(result: AuditResult) -> tuple[datetime | None, datetime | None]:
    """The first window's start and the last window's end of the audit."""
    starts = [g.key.window_start for g in result.groups if g.key.window_start]
    ends = [g.key.window_end for g in result.groups if g.key.window_end]
    return (parse_iso(min(starts)) if starts else None), (parse_iso(max(ends)) if ends else None)


def audit_params(spec: AuditSpec, result: AuditResult, reference_uri: str, source_version: int) -> dict[str, str]:
    """The spec's thresholds and statistics, the reference, the source and its Delta version."""
    d = spec.drift
    p: dict[str, Any] = {
        "window.size": spec.window.size or "whole range",
        "drift.statistics": d.statistics,
        "drift.bins": d.bins,
        "drift.share_threshold": d.share_threshold,
        "drift.critical_factor": d.critical_factor,
        "drift.consecutive": d.consecutive,
        "findings.fdr": spec.findings.fdr,
        "findings.min_rows": spec.findings.min_rows,
        "incidents.resolve_after": spec.incidents.resolve_after,
        "features": [f.name for f in spec.features],
    }
    # the reference, the source and the spec's hash are tags (spark_audit.*): as parameters they filled MLflow's
    # run comparison, whose parallel-coordinates plot opens on parameters that differ
    if spec.slices:
        p["slices"] = spec.slices
    if spec.model.name:
        p["model.name"] = spec.model.name
    # each feature's deciding statistic: the one its drift.<feature> metric is
    for row in result.drift:
        if row["drift_type"] == "reference" and row["slice"] is None and row["is_default"]:
            p.setdefault(metric_key("drift", row["column"], "statistic"), row["statistic"])
    q = spec.quality
    if q is not None:
        p.update({"quality.task": q.measure.task, "quality.threshold": q.measure.threshold,
                  "quality.metrics": q.watched(), "quality.max_degradation": q.max_degradation,
                  "quality.critical_degradation": q.critical_degradation})
    return {k: _param_value(v) for k, v in p.items() if v is not None}


class _Clock:
    """Each window's metric timestamp (its start, epoch ms: MLflow's "Time (wall)" axis then shows the
    windows' dates, and runs overlay) and step (its ordinal in the audit: 0, 1, 2 ...)."""

    def __init__(self, spec: AuditSpec, result: AuditResult):
        self.ordinal = {w: i for i, w in enumerate(sorted({g.key.window_start for g in result.groups
                                                           if g.key.window_start}))}
        self.now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)

    def at(self, window_start: Any) -> tuple[int, int]:
        w = iso_utc(window_start) if window_start is not None else None
        if not w:
            return self.now_ms, 0
        return int(parse_iso(w).timestamp() * 1000), self.ordinal.get(w, 0)


def audit_metrics(spec: AuditSpec, result: AuditResult) -> list:
    """The run's metrics (``mlflow.entities.Metric``), each window's stamped with its start."""
    clock = _Clock(spec, result)
    out: list[Metric] = []

    def add(key: str, value: Any, window_start: Any) -> None:
        v = finite(value)
        if v is not None:
            ts, step = clock.at(window_start)
            out.append(Metric(key, v, ts, step))

    # one series per thing a person watches: each feature's drift and skew (its deciding statistic), its
    # missing share, each watched quality metric realised and estimated, the rows
    for row in result.drift:
        if row["slice"] is None and row["is_default"] and row["drift_type"] in ("reference", "skew"):
            add(metric_key("drift" if row["drift_type"] == "reference" else "skew", row["column"]), row["value"],
                row["window_start"])
    for row in result.dataset:
        if row["slice"] is None and row["drift_type"] == "reference":
            add("drift.share", row["drift_share"], row["window_start"])
    watched = set(spec.quality.watched()) if spec.quality else set()
    for row in result.performance:
        if row["slice"] is None and row["metric"] in watched:
            add(metric_key("quality", row["metric"]), row["value"], row["window_start"])
            add(metric_key("quality_estimated", row["metric"]), row["estimated_value"], row["window_start"])
    for g in result.groups:
        if g.key.slice is not None:
            continue
        add("rows", g.profile.row_count, g.key.window_start)
        for name, col in g.profile.columns.items():
            if col.count:
                add(metric_key("missing_share", name), missing_count(col) / col.count, g.key.window_start)
    # once per run, at the last window: what a person sorts runs by
    last = max((g.key.window_start for g in result.groups if g.key.window_start), default=None)
    for key, value in summary_metrics(result).items():
        add(key, value, last)
    return out


def findings_table(result: AuditResult) -> dict[str, list]:
    """The findings as columns (``log_table``), worst first, each with its incident."""
    by_finding = {id(f): i.incident_id for i in result.incidents or [] for f in i.findings}
    rows = sorted(result.findings, key=lambda f: (-SEVERITIES.index(f.severity), f.window_start or "", f.kind))
    cols = ("severity", "kind", "window_start", "slice", "column", "model_version", "value", "threshold", "message")
    out: dict[str, list] = {c: [] for c in ("incident", *cols)}
    for f in rows:
        out["incident"].append(by_finding.get(id(f), ""))
        for c in cols:
            v = getattr(f, c)
            out[c].append(finite(v) if c in ("value", "threshold") else ("" if v is None else str(v)))
    return out


def summary_metrics(result: AuditResult) -> dict[str, float]:
    """The run's sortable summary: ``status`` (0 ok, 1 info, 2 warning, 3 error, 4 critical: of its active
    incidents), open incidents (and per severity), suppressed ones, findings per severity, drifted features."""
    counts = severity_counts(result.findings)
    out: dict[str, float] = {"status": float(SEVERITIES.index(result.status_severity) + 1
                                             if result.status_severity else 0),
                             "findings": len(result.findings), **{f"findings.{s}": counts[s] for s in SEVERITIES}}
    if result.incidents is not None:
        live = result.active
        out["incidents.open"] = sum(i.status == "open" for i in live)
        out.update({f"incidents.{s}": sum(i.severity == s for i in live) for s in SEVERITIES if s != "info"})
        out["incidents.suppressed"] = sum(bool(i.suppressed) for i in result.incidents)
    out["drifted_features"] = len({f.column for f in result.findings if f.kind == "drift" and f.slice is None})
    return out


# --------------------------------------------------------------------------- logging


def log_audit_run(client, spec: AuditSpec, result: AuditResult, reference_uri: str, source_version: int) -> str:
    """Log the audit as an MLflow run and tag the audited model version; returns the run id.

    The run is left FAILED (if the server still answers) when logging fails half way; the error is raised.
    """
    exp_id = ensure_experiment(client, spec.mlflow)
    start, end = window_range(result)
    name = run_name(spec.name, result.model_version, start, end, result.status_severity)
    tags = {
        Tag.KIND: "audit", Tag.AUDIT: spec.name, Tag.AUDIT_KEY: result.audit_key,
        Tag.SOURCE: spec.source.display, Tag.SOURCE_VERSION: str(source_version),
        Tag.REFERENCE: reference_uri, Tag.WINDOW_START: iso_utc(start) or "", Tag.WINDOW_END: iso_utc(end) or "",
        Tag.SPEC_HASH: spec.published_hash(),
        Tag.STATUS: result.status_severity or "ok", Tag.RUN_NAME: name,
    }
    if spec.model.name:
        tags[Tag.MODEL_NAME] = spec.model.name
        tags[Tag.MODEL_VERSION] = str(result.model_version or "")
        if spec.model.alias:
            tags[Tag.MODEL_ALIAS] = spec.model.alias
    with mlflow_run(client, exp_id, tags) as rid:
        client.set_tag(rid, Tag.NOTE, description(summary(replace(result, mlflow_run_id=rid)), name))
        params = [Param(k, v) for k, v in audit_params(spec, result, reference_uri, source_version).items()]
        for i in range(0, len(params), 100):
            client.log_batch(rid, params=params[i:i + 100])
        metrics = audit_metrics(spec, result)
        for i in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[i:i + 1000])
        client.log_text(rid, findings_markdown(result.findings), FINDINGS_MD)
        client.log_dict(rid, {"findings": [f.__dict__ for f in result.findings]}, FINDINGS_JSON)
        # the findings as an MLflow table (the run's artifact view shows it as one, sortable and searchable)
        client.log_table(rid, data=findings_table(result), artifact_file=FINDINGS_TABLE)
        if result.incidents is not None:
            client.log_dict(rid, {"incidents": [incident_json(i) for i in result.incidents]}, INCIDENTS_JSON)
        _log_plot(client, rid, result, spec.quality.watched() if spec.quality else ())
        if spec.model.name and result.model_version:
            _tag_model_version(client, spec, result, rid, exp_id, start, end)
    return rid


def _tag_model_version(client, spec: AuditSpec, result: AuditResult, run_id: str, exp_id: str,
                       start: datetime | None, end: datetime | None) -> None:
    """The audited version's tags (``audit_status``, ``audit_summary``, ``audit_run``), and the run's link to
    the version's logged model. A version that is not registered is skipped (its rows carry it, the
    registry does not know it)."""
    try:
        mv = resolve_model_version(client, spec.model.name, result.model_version, None)
    except ReferenceError_:
        return
    summary_text = audit_summary(result.findings, start, end) if result.incidents is None else \
        incidents_summary([i.severity for i in result.active], start, end)
    link = run_link(ui_url(client, spec.mlflow.ui_url), exp_id, run_id)
    tags = [(Tag.AUDIT_STATUS, status(result.status_severity)),  # health: the active incidents' worst
            (Tag.AUDIT_SUMMARY, summary_text),
            (Tag.AUDIT_RUN, link)]
    if result.rubric:  # the ML Test Score's monitoring tests: coverage, then each test's status by its name
        tags.append((Tag.RUBRIC, score_text(result.rubric)))
        tags += [(f"{Tag.RUBRIC}.{r.test.short or r.test.id}", r.status) for r in result.rubric]
    for key, value in tags:
        client.set_model_version_tag(mv.name, mv.version, key, value)
    # the same, with a link that opens, in the version's description (the registry shows tags as plain text)
    note = f"{status(result.status_severity)}{SEP}{summary_text}"
    client.update_model_version(mv.name, mv.version, description=version_description(
        mv.description, "latest audit", note, link))
    model_id = logged_model_id(mv)
    if model_id:
        _link_logged_model(client, run_id, model_id)


def audit_run_url(client, spec: AuditSpec, run_id: str) -> str:
    """The audit run's page (in the ML view) when there is a UI to link to, else ``runs:/<id>``."""
    return run_link(ui_url(client, spec.mlflow.ui_url), client.get_run(run_id).info.experiment_id, run_id)


def logged_model_id(mv) -> str | None:
    """The MLflow 3 logged model a registered version was made from: its ``model_id`` where the registry
    keeps it (Unity Catalog), else the id in a ``models:/<model_id>`` source (what ``mlflow.register_model``
    records in the open-source registry); None for a version registered from a path."""
    model_id = getattr(mv, "model_id", None)
    if model_id:
        return str(model_id)
    m = re.fullmatch(r"models:/([^/@]+)", str(getattr(mv, "source", None) or ""))
    return m.group(1) if m else None


def _link_logged_model(client, run_id: str, model_id: str) -> None:
    """Name the version's logged model as an input of the run (MLflow 3: the run's page lists the model,
    the model's page the run). Skipped when the logged model is gone or the store cannot keep the link."""
    try:
        client.get_logged_model(model_id)
        client.log_inputs(run_id, models=[LoggedModelInput(model_id)])
    except MlflowException as e:
        if lost_server(e):
            raise


def _log_plot(client, run_id: str, result: AuditResult, watched: tuple[str, ...]) -> None:
    """Charts over windows, as PNG artifacts (``spark_audit.chart``): each feature's deciding drift statistic
    with its material threshold and its noise band, and the model's quality, realised (solid) and estimated
    (dashed), against the reference's value; windows without rows are shaded and named."""
    missing = sorted({parse_iso(f.window_start) for f in result.findings
                      if f.kind in ("missing_window", "stale") and f.window_start})
    drift = [r for r in result.drift if r["drift_type"] == "reference" and r["slice"] is None and r["is_default"]]
    if drift:
        client.log_figure(run_id, chart.drift_figure(drift, missing), "spark_audit/drift_over_windows.png")
    perf = [r for r in result.performance if r["slice"] is None and r["metric"] in watched]
    if perf:
        client.log_figure(run_id, chart.quality_figure(perf, missing), "spark_audit/quality_over_windows.png")
    chart.close_all()
