"""The audit as an MLflow run that reads like a report, and the audited model version's tags.

One run per audit (:func:`log_audit_run`):

- its **name** says what was audited and how it went: ``churn-demo · model 2 · 01-08→01-14 · CRITICAL``;
- its **description** (``mlflow.note.content``) is the console summary (:func:`spark_audit.report.summary`);
- its **parameters** are the spec's thresholds and statistics, the reference, the source and its Delta version;
- its **metrics** are per window, stamped with the window's start and stepped by the window's index since the
  epoch, so one day has the same step and time in every audit and charts overlay across runs:
  ``drift.<feature>`` (the feature's deciding statistic), ``drift.<feature>.threshold``,
  ``drift.<feature>.drifted`` (0/1), ``drift.share``, ``rows``, ``profile.missing_share.<column>``
  (null + NaN + inf), ``quality.<metric>``, ``quality_estimated.<metric>``; and once per run
  ``findings`` and ``findings.<severity>``;
- its **artifacts**: ``spark_audit/findings.md`` (a table, worst first), ``spark_audit/findings.json`` and the
  charts ``spark_audit/drift_over_windows.png`` and ``spark_audit/quality_over_windows.png``.

The registered model version audited gets the tags ``audit_status``, ``audit_summary`` and ``audit_run`` (a
link to the run), and the run names the version's logged model (MLflow 3) as an input.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from mlflow.entities import LoggedModelInput, Metric, Param
from mlflow.exceptions import MlflowException

from spark_audit.drift.noise import missing_count
from spark_audit.errors import ReferenceError_
from spark_audit.findings import SEVERITIES
from spark_audit.mlflow_text import (
    FINDINGS_JSON,
    FINDINGS_MD,
    MAX_PARAM_CHARS,
    Tag,
    audit_summary,
    description,
    findings_markdown,
    metric_key,
    run_link,
    run_name,
    severity_counts,
    status,
)
from spark_audit.reference import ensure_experiment, resolve_model_version
from spark_audit.report import summary
from spark_audit.result import AuditResult
from spark_audit.rows import finite
from spark_audit.rubric import score_text
from spark_audit.spec import AuditSpec
from spark_audit.timeutil import interval_seconds, iso_utc, parse_iso
from spark_audit.tracking import lost_server, mlflow_run, tracking_uri


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
        "reference.uri": reference_uri,
        "source": spec.source.display,
        "source.version": source_version,
        "spec_hash": spec.spec_hash(),
        "features": [f.name for f in spec.features],
    }
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
    """Each window's metric timestamp (its start, epoch ms) and step (its index since the epoch, or its
    ordinal without a window size): the same window gets the same step and time in every audit."""

    def __init__(self, spec: AuditSpec, result: AuditResult):
        self.size = interval_seconds(spec.window.size) if spec.window.size else None
        self.ordinal = {w: i for i, w in enumerate(sorted({g.key.window_start for g in result.groups
                                                           if g.key.window_start}))}
        self.now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)

    def at(self, window_start: Any) -> tuple[int, int]:
        w = iso_utc(window_start) if window_start is not None else None
        if not w:
            return self.now_ms, 0
        seconds = parse_iso(w).timestamp()
        step = int(seconds // self.size) if self.size else self.ordinal.get(w, 0)
        return int(seconds * 1000), step


def audit_metrics(spec: AuditSpec, result: AuditResult) -> list:
    """The run's metrics (``mlflow.entities.Metric``), each window's stamped with its start."""
    clock = _Clock(spec, result)
    out: list[Metric] = []

    def add(key: str, value: Any, window_start: Any) -> None:
        v = finite(value)
        if v is not None:
            ts, step = clock.at(window_start)
            out.append(Metric(key, v, ts, step))

    for row in result.drift:
        if row["drift_type"] != "reference" or row["slice"] is not None or not row["is_default"]:
            continue
        key = metric_key("drift", row["column"])
        add(key, row["value"], row["window_start"])
        add(f"{key}.threshold", row["threshold"], row["window_start"])
        if row["drifted"] is not None:
            add(f"{key}.drifted", 1.0 if row["drifted"] else 0.0, row["window_start"])
    for row in result.dataset:
        if row["slice"] is None and row["drift_type"] == "reference":
            add("drift.share", row["drift_share"], row["window_start"])
    for row in result.performance:
        if row["slice"] is None:
            add(metric_key("quality", row["metric"]), row["value"], row["window_start"])
            add(metric_key("quality_estimated", row["metric"]), row["estimated_value"], row["window_start"])
    for g in result.groups:
        if g.key.slice is not None:
            continue
        add("rows", g.profile.row_count, g.key.window_start)
        for name, col in g.profile.columns.items():
            if col.count:
                add(metric_key("profile.missing_share", name), missing_count(col) / col.count, g.key.window_start)
    # once per run, at the last window
    last = max((g.key.window_start for g in result.groups if g.key.window_start), default=None)
    counts = severity_counts(result.findings)
    add("findings", len(result.findings), last)
    for s in SEVERITIES:
        add(f"findings.{s}", counts[s], last)
    return out


# --------------------------------------------------------------------------- logging


def log_audit_run(client, spec: AuditSpec, result: AuditResult, reference_uri: str, source_version: int) -> str:
    """Log the audit as an MLflow run and tag the audited model version; returns the run id.

    The run is left FAILED (if the server still answers) when logging fails half way; the error is raised.
    """
    exp_id = ensure_experiment(client, spec.mlflow)
    start, end = window_range(result)
    name = run_name(spec.name, result.model_version, start, end, result.worst_severity)
    tags = {
        Tag.KIND: "audit", Tag.AUDIT: spec.name, Tag.AUDIT_KEY: result.audit_key,
        Tag.SOURCE: spec.source.display, Tag.SOURCE_VERSION: str(source_version),
        Tag.REFERENCE: reference_uri, Tag.WINDOW_START: iso_utc(start) or "", Tag.WINDOW_END: iso_utc(end) or "",
        Tag.STATUS: result.worst_severity or "ok", Tag.RUN_NAME: name,
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
    tags = [(Tag.AUDIT_STATUS, status(result.worst_severity)),
            (Tag.AUDIT_SUMMARY, audit_summary(result.findings, start, end)),
            (Tag.AUDIT_RUN, run_link(tracking_uri(client), exp_id, run_id))]
    if result.rubric:  # the ML Test Score's monitoring tests: the score, then each test's status
        tags.append((Tag.RUBRIC, score_text(result.rubric)))
        tags += [(f"{Tag.RUBRIC}.{r.test.id}", r.status) for r in result.rubric]
    for key, value in tags:
        client.set_model_version_tag(mv.name, mv.version, key, value)
    model_id = logged_model_id(mv)
    if model_id:
        _link_logged_model(client, run_id, model_id)


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
    """Charts over windows, as PNG artifacts: each feature's deciding drift statistic, and the model's
    quality (realised, and the label-free estimate dotted) when the audit measures it."""
    import matplotlib  # deferred: about half a second to import, and only the charts need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred with matplotlib (above)

    def chart(rows, key, label, title, ylabel, name, estimated=None):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for series in sorted({r[key] for r in rows}):
            mine = [r for r in rows if r[key] == series]
            color = None  # a metric's estimate is drawn in its realised line's colour
            for column, style in (("value", "-"), (estimated, ":")):
                pts = sorted((r["window_start"], r[column]) for r in mine if column and r.get(column) is not None)
                if pts:
                    tag = label(mine[0]) + (" (estimated)" if column == estimated else "")
                    [line] = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=tag,
                                     color=color)
                    color = line.get_color()
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, loc="upper left")
        fig.autofmt_xdate()
        fig.tight_layout()
        client.log_figure(run_id, fig, f"spark_audit/{name}.png")
        plt.close(fig)

    drift = [r for r in result.drift if r["drift_type"] == "reference" and r["slice"] is None and r["is_default"]]
    if drift:
        chart(drift, "column", lambda r: f"{r['column']} ({r['statistic']})", "Drift against the reference, "
              "per window", "statistic value", "drift_over_windows")
    perf = [r for r in result.performance if r["slice"] is None and not r["metric"].startswith("fairness.")
            and r["metric"] in watched]
    if perf:
        chart(perf, "metric", lambda r: r["metric"], "Model quality per window", "metric value",
              "quality_over_windows", estimated="estimated_value")
