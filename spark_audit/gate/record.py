"""A gate's decision recorded: ``gate_results`` rows in Delta (between a running and a complete run row),
and in MLflow a run with its evidence, tags on the candidate version, and the alias move.

The run (experiment of the spec, tag ``spark_audit.kind = gate``) is named like the audit runs
(``churn-demo gate · model 2 vs 1 · PASS``), carries the summary as its description, the overall
differences and their interval bounds as metrics, and ``spark_audit/gate.json`` (every slice and metric)
and ``spark_audit/gate.md`` as artifacts. The candidate version gets ``gate_status``, ``gate_champion``,
``gate_summary`` and ``gate_run``. With ``--promote ALIAS`` the alias moves to the candidate only when
the gate passed, after everything else is recorded; the version then also gets ``gate_promoted``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from mlflow.entities import Metric, Param
from pyspark.sql import SparkSession

from spark_audit import store
from spark_audit.errors import ReferenceError_
from spark_audit.gate.result import GateResult, summary
from spark_audit.mlflow_text import Tag, description, metric_key, run_link, version_description
from spark_audit.reference import ensure_experiment, resolve_model_version
from spark_audit.rows import finite
from spark_audit.spec import AuditSpec
from spark_audit.tracking import mlflow_run, tracking_calls, ui_url

GATE_JSON = "spark_audit/gate.json"
GATE_MD = "spark_audit/gate.md"


def gate_summary(result: GateResult) -> str:
    """One line for the version's tag, the failing reason first (the registry's list cuts long values):
    ``fail vs 1: country=MX: roc_auc is 0.081 worse ... · roc_auc +0.031 better``."""
    head = f"{'pass' if result.passed else 'fail'} vs {result.champion}"
    if result.reasons:
        head += f": {result.reasons[0]}" + (f" (+{len(result.reasons) - 1} more)" if len(result.reasons) > 1 else "")
    overall = [r for r in result.overall() if r.protected]
    parts = [f"{r.metric} {r.difference:+.3f} {r.verdict}" for r in overall if r.difference == r.difference]
    return (head + (" · " + ", ".join(parts) if parts else ""))[:4900]


def log_gate_run(client, spec: AuditSpec, result: GateResult, promote: str | None = None) -> str:
    """Log the gate as a run, tag the candidate version, move ``promote`` on a pass; returns the run id."""
    with tracking_calls(client, "recording the gate in MLflow"):
        exp_id = ensure_experiment(client, spec.mlflow)
        verdict = "PASS" if result.passed else "FAIL"
        name = f"{spec.name} gate · model {result.candidate} vs {result.champion} · {verdict}"
        tags = {Tag.KIND: "gate", Tag.AUDIT: spec.name, Tag.GATE_KEY: result.gate_key,
                Tag.SOURCE: spec.source.display, Tag.SOURCE_VERSION: str(result.source_version),
                Tag.MODEL_NAME: spec.model.name, Tag.MODEL_VERSION: result.candidate,
                Tag.CHAMPION: result.champion, Tag.GATE: verdict.lower(), Tag.RUN_NAME: name}
        with mlflow_run(client, exp_id, tags) as rid:
            result.mlflow_run_id = rid
            client.set_tag(rid, Tag.NOTE, description(summary(result, slices=False), name))
            cfg = spec.gate
            params = {"candidate": result.candidate, "champion": result.champion_label,
                      "confidence": result.confidence, "replicates": result.replicates,
                      "protected_metrics": ",".join(sorted({r.metric for r in result.rows if r.protected})),
                      "must_improve": ",".join(cfg.must_improve), "max_drop": cfg.max_drop,
                      "slices_protected": cfg.slices.protect, "slice_max_drop": cfg.slices.max_drop,
                      "slice_min_rows": cfg.slices.min_rows, "paired_rows": result.paired_rows}
            client.log_batch(rid, params=[Param(k, str(v)) for k, v in params.items()])
            ts = int(result.started.timestamp() * 1000)
            metrics = []
            for r in result.overall():
                for stat, value in (("difference", r.difference), ("low", r.interval.low),
                                    ("high", r.interval.high), ("champion", r.champion_value),
                                    ("candidate", r.candidate_value)):
                    if value == value and value is not None:
                        metrics.append(Metric(metric_key("gate", r.metric, stat), float(value), ts, 0))
            metrics.append(Metric("gate.passed", 1.0 if result.passed else 0.0, ts, 0))
            client.log_batch(rid, metrics=metrics)
            client.log_dict(rid, result.to_json(), GATE_JSON)
            client.log_text(rid, "```\n" + summary(result) + "\n```\n", GATE_MD)
            _tag_candidate(client, spec, result, exp_id, rid, promote)
    return rid


def _tag_candidate(client, spec: AuditSpec, result: GateResult, exp_id: str, run_id: str,
                   promote: str | None) -> None:
    try:
        mv = resolve_model_version(client, spec.model.name, result.candidate, None)
    except ReferenceError_:
        if promote:
            raise ReferenceError_(f"model version {result.candidate} of {spec.model.name!r} is not registered: "
                                  f"@{promote} cannot move to it") from None
        return
    link = run_link(ui_url(client, spec.mlflow.ui_url), exp_id, run_id)
    text = gate_summary(result)
    for key, value in ((Tag.GATE_STATUS, "pass" if result.passed else "fail"),
                       (Tag.GATE_CHAMPION, result.champion), (Tag.GATE_SUMMARY, text), (Tag.GATE_RUN, link)):
        client.set_model_version_tag(mv.name, mv.version, key, value)
    client.update_model_version(mv.name, mv.version, description=version_description(
        mv.description, "latest gate", text, link))
    if promote and result.passed:
        alias = promote.lstrip("@")
        client.set_registered_model_alias(mv.name, alias, mv.version)
        client.set_model_version_tag(mv.name, mv.version, Tag.GATE_PROMOTED, alias)
        client.set_tag(run_id, Tag.PROMOTED, alias)
        result.promoted = alias


def write(spark: SparkSession, spec: AuditSpec, result: GateResult) -> None:
    """The ``gate_results`` rows, between a running and a complete ``audit_runs`` row (audit name
    ``<name>:gate``, model version = the candidate), so a killed gate never looks complete."""
    cfg = spec.gate
    key = result.gate_key
    common = dict(audit_key=key, audit_run_id=result.gate_run_id, audit_name=spec.name + store.GATE_SUFFIX,
                  source=spec.source.display, source_version=result.source_version)
    run = dict(**common, spec_hash=spec.published_hash(), model_name=spec.model.name, model_version=result.candidate,
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
