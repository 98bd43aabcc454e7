"""An audit's result as rows of the Delta result tables, and their writes.

Every row is built with :func:`spark_audit.store.row` (the tables' one schema registry). The writes
follow the store's visibility rule: the run row first as ``running``, then every other table (each
replaced by ``audit_key``, so a re-run never duplicates), then the run row as ``complete``; a run
killed half way never reads as complete.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import SparkSession

from spark_audit import store
from spark_audit.drift.compare import DriftResult
from spark_audit.profile.profiler import GroupResult
from spark_audit.profile.state import ColumnProfile, GroupKey
from spark_audit.result import AuditResult, AuditWindow
from spark_audit.rows import finite, group_fields
from spark_audit.rubric import RubricRow
from spark_audit.spec import AuditSpec
from spark_audit.timeutil import iso_utc, parse_iso


def common_fields(result: AuditResult, spec: AuditSpec) -> dict[str, Any]:
    """The columns every result row of a run carries."""
    return dict(audit_key=result.audit_key, audit_run_id=result.audit_run_id, audit_name=spec.name,
                source=spec.source.display, source_version=result.source_version)


def drift_rows(results: list[DriftResult], group: GroupResult, drift_type: str, baseline: str,
               common: dict[str, Any]) -> list[dict[str, Any]]:
    """``drift_metrics`` rows of one group's comparisons (``drift_type``: reference, skew, consecutive)."""
    k = group.key
    return [
        store.row(
            "drift_metrics", **common, **group_fields(k), drift_type=drift_type, baseline=baseline, column=r.column,
            kind=r.kind, statistic=r.statistic, value=finite(r.value), p_value=finite(r.p_value),
            threshold=r.threshold, drifted=r.drifted, critical=r.critical, is_default=r.is_default,
            n_reference=r.n_reference, n_current=r.n_current, material=r.material, q_value=None,
            noise=finite(r.noise),
        )
        for r in results
    ]


def profile_rows(group: GroupResult, common: dict[str, Any]) -> list[dict[str, Any]]:
    """``profile_metrics`` rows of one group: each column's summary, its sketches and its whole state."""
    k = group.key
    rows = []
    for name, col in group.profile.columns.items():
        s = col.summary()
        fixed = dict(**common, **group_fields(k), column=name, kind=col.kind, dtype=col.dtype,
                     row_count=group.profile.row_count, kll=col.kll, hll=col.hll, state=_state_json(col))
        # the summary's statistics; those that do not apply to this kind (a categorical's mean) are None
        stats = {key: (finite(float(v)) if isinstance(v := s.get(key), float) else v)
                 for key in store.columns("profile_metrics") if key not in fixed}
        rows.append(store.row("profile_metrics", **fixed, **stats))
    return rows


def _state_json(col: ColumnProfile) -> str:
    d = col.to_dict()
    d.pop("kll", None)
    d.pop("hll", None)  # binary columns beside it hold the sketches
    return json.dumps(d, sort_keys=True)


def finding_rows(result: AuditResult, common: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per finding; its key hashes what identifies it, so a re-run replaces it."""
    rows = []
    for f in result.findings:
        key = GroupKey(window_start=f.window_start, slice=f.slice, model_version=f.model_version)
        ident = "|".join(str(x) for x in (f.kind, f.column, f.window_start, f.slice, f.model_version, f.statistic,
                                          f.message))
        rows.append(store.row("findings", **common, **group_fields(key),
                              finding_key=hashlib.sha256(ident.encode()).hexdigest()[:24],
                              kind=f.kind, column=f.column, severity=f.severity, message=f.message,
                              statistic=f.statistic, value=finite(f.value), threshold=finite(f.threshold),
                              q_value=finite(f.q_value), mlflow_run_id=result.mlflow_run_id,
                              band_low=finite(f.band[0]) if f.band and f.band[0] is not None else None,
                              band_high=finite(f.band[1]) if f.band and f.band[1] is not None else None))
    return rows


def rubric_rows(rows: list[RubricRow], common: dict[str, Any], model_version: str | None,
                window_start: str | None, window_end: str | None) -> list[dict[str, Any]]:
    """``rubric`` rows: one per ML Test Score test of one audit of one model version."""
    return [store.row("rubric", **common, model_version=model_version,
                      window_start=parse_iso(window_start) if window_start else None,
                      window_end=parse_iso(window_end) if window_end else None, test_id=r.test.id, test=r.test.title,
                      status=r.status, points=r.points, in_score=r.test.in_score, evidence=r.evidence,
                      findings=r.findings) for r in rows]


def write(spark: SparkSession, spec: AuditSpec, result: AuditResult, reference_uri: str,
          window: AuditWindow) -> None:
    """Every result table of the audit; the run reads complete only once all of them are written."""
    out = spec.output
    windows = [g.key.window_start for g in result.groups if g.key.window_start]
    ends = [g.key.window_end for g in result.groups if g.key.window_end]
    run = dict(
        audit_key=result.audit_key, audit_run_id=result.audit_run_id, audit_name=spec.name,
        source=spec.source.display, source_version=result.source_version, spec_hash=spec.published_hash(),
        model_name=spec.model.name, model_version=result.model_version, reference_uri=reference_uri,
        window_start=parse_iso(min(windows)) if windows else window.start,
        window_end=parse_iso(max(ends)) if ends else window.end,
        started_at=datetime.now(timezone.utc), groups=len(result.groups), mlflow_run_id=result.mlflow_run_id,
        newest_row_at=result.newest_row_at, source_committed_at=result.source_committed_at,
    )
    store.write_rows(spark, out, "audit_runs", [store.row(
        "audit_runs", **run, status="running", finished_at=None, findings=None, worst_severity=None, exit_code=None,
        message=None)], audit_key=result.audit_key)
    common = common_fields(result, spec)
    # every result table but the run row, from a few threads (each is its own small Delta commit)
    tables: dict[str, list[dict[str, Any]]] = {
        "profile_metrics": [r for g in result.groups for r in profile_rows(g, common)],
        "drift_metrics": result.drift, "dataset_drift": result.dataset,
        "findings": finding_rows(result, common)}
    if spec.quality is not None:
        tables["performance_metrics"] = result.performance
    if spec.contract is not None:
        tables["contract_violations"] = result.violations
        tables["contract_bad_rows"] = result.bad_rows
    if result.rubric:
        tables["rubric"] = rubric_rows(result.rubric, common, result.model_version,
                                       iso_utc(run["window_start"]), iso_utc(run["window_end"]))
    store.write_tables(spark, out, tables, audit_key=result.audit_key)
    store.write_rows(spark, out, "audit_runs", [store.row(
        "audit_runs", **run, status="complete", finished_at=datetime.now(timezone.utc), findings=len(result.findings),
        worst_severity=result.status_severity, exit_code=result.exit_code,
        message=f"{len(result.findings)} finding(s)",
    )], audit_key=result.audit_key)
