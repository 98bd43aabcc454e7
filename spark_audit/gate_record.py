"""A gate's decision in MLflow: a run with its evidence, tags on the candidate version, and the alias move.

The run (experiment of the spec, tag ``spark_audit.kind = gate``) is named like the audit runs
(``churn-demo gate · model 2 vs 1 · PASS``), carries the summary as its description, the overall
differences and their interval bounds as metrics, and ``spark_audit/gate.json`` (every slice and metric)
and ``spark_audit/gate.md`` as artifacts. The candidate version gets ``gate_status``, ``gate_champion``,
``gate_summary`` and ``gate_run``. With ``--promote ALIAS`` the alias moves to the candidate only when
the gate passed, after everything else is recorded; the version then also gets ``gate_promoted``.
"""

from __future__ import annotations

from spark_audit.errors import ReferenceError_
from spark_audit.gate import GateResult, summary
from spark_audit.mlflow_log import description, metric_key, run_link
from spark_audit.reference import ensure_experiment, resolve_model_version
from spark_audit.spec import AuditSpec
from spark_audit.tracking import end_run_failed, tracking_calls, tracking_uri

GATE_JSON = "spark_audit/gate.json"
GATE_MD = "spark_audit/gate.md"
TAG_GATE_STATUS, TAG_GATE_CHAMPION, TAG_GATE_SUMMARY, TAG_GATE_RUN, TAG_GATE_PROMOTED = (
    "gate_status", "gate_champion", "gate_summary", "gate_run", "gate_promoted")


def gate_summary(result: GateResult) -> str:
    """One line for the version's tag: ``pass vs 1 · roc_auc +0.031 [+0.020, +0.042] better``."""
    head = f"{'pass' if result.passed else 'fail'} vs {result.champion}"
    overall = [r for r in result.overall() if r.protected]
    parts = [f"{r.metric} {r.difference:+.3f} {r.verdict}" for r in overall if r.difference == r.difference]
    tail = f" · {len(result.reasons)} reason(s): {result.reasons[0]}" if result.reasons else ""
    return (head + " · " + ", ".join(parts) + tail)[:4900]


def log_gate_run(client, spec: AuditSpec, result: GateResult, promote: str | None = None) -> str:
    """Log the gate as a run, tag the candidate version, move ``promote`` on a pass; returns the run id."""
    from mlflow.entities import Metric, Param

    with tracking_calls(client, "recording the gate in MLflow"):
        exp_id = ensure_experiment(client, spec.mlflow)
        verdict = "PASS" if result.passed else "FAIL"
        name = f"{spec.name} gate · model {result.candidate} vs {result.champion} · {verdict}"
        tags = {"spark_audit.kind": "gate", "spark_audit.audit": spec.name, "spark_audit.gate_key": result.gate_key,
                "spark_audit.source": spec.source.display, "spark_audit.source_version": str(result.source_version),
                "model_name": spec.model.name, "model_version": result.candidate,
                "spark_audit.champion": result.champion, "spark_audit.gate": verdict.lower(), "mlflow.runName": name}
        run = client.create_run(exp_id, tags=tags)
        rid = run.info.run_id
        result.mlflow_run_id = rid
        try:
            client.set_tag(rid, "mlflow.note.content", description(summary(result, slices=False), name))
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
        except Exception as e:
            end_run_failed(client, rid, e)
            raise
        client.set_terminated(rid, "FINISHED")
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
    for key, value in ((TAG_GATE_STATUS, "pass" if result.passed else "fail"),
                       (TAG_GATE_CHAMPION, result.champion), (TAG_GATE_SUMMARY, gate_summary(result)),
                       (TAG_GATE_RUN, run_link(tracking_uri(client), exp_id, run_id))):
        client.set_model_version_tag(mv.name, mv.version, key, value)
    if promote and result.passed:
        alias = promote.lstrip("@")
        client.set_registered_model_alias(mv.name, alias, mv.version)
        client.set_model_version_tag(mv.name, mv.version, TAG_GATE_PROMOTED, alias)
        client.set_tag(run_id, "spark_audit.promoted", alias)
        result.promoted = alias
