"""Running a gate: read the evaluation rows, scan both versions once, decide, record."""

from __future__ import annotations

import hashlib
import json
import uuid

from pyspark.sql import SparkSession

from spark_audit.errors import DataError, SpecError
from spark_audit.gate.decide import check_evidence, decide, evaluate, gate_metrics
from spark_audit.gate.record import log_gate_run, write
from spark_audit.gate.result import GateResult
from spark_audit.gate.scan import check_pairing, scan, sides
from spark_audit.progress import QUIET, Progress
from spark_audit.quality import with_labels
from spark_audit.reference import mlflow_client, resolve_model_version
from spark_audit.source import read_source
from spark_audit.spec import AuditSpec


def resolve_champion(client, spec: AuditSpec, champion: str) -> tuple[str, str]:
    """The champion's version and its label: a version number as is, an alias through the registry."""
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
            log_gate_run(client, spec, result, promote)
    with progress.phase("writing gate results"):
        write(spark, spec, result)
    return result
