"""Running an audit: read → scan → decide → record.

``run_audit`` audits the windows of one model version against its reference: it reads the source at a
pinned Delta version (``read``), profiles every window × slice in one scan that every part shares
(``scan``), decides every check across the audit (``spark_audit.judge``), and records the result in
MLflow and Delta (``spark_audit.mlflow_log``, ``spark_audit.record``). ``run_audits`` fans out over the
model versions the rows carry. Building the reference is ``spark_audit.reference_build``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_audit import (
    incident_store,
    incidents,
    mlflow_log,
    multivariate,
    quality,
    record,
    rubric,
    store,
    table_checks,
)
from spark_audit.contract import ContractPlan, compile_contract, load_contract
from spark_audit.contract.scan import check_contract, contract_part
from spark_audit.errors import EmptyWindowError, ReferenceError_, SpecError
from spark_audit.findings import Finding
from spark_audit.judge import Context, judge
from spark_audit.names import col as _c
from spark_audit.notify import Target, send
from spark_audit.profile import Grouping, GroupResult, overall_groups, profile_groups, resolve_columns
from spark_audit.profile.exprs import ColumnSpec, Sketches
from spark_audit.profile.state import Bins
from spark_audit.progress import QUIET, Progress
from spark_audit.reference import LoadedReference, find_reference, mlflow_client
from spark_audit.result import AuditResult, AuditWindow, VersionAudit
from spark_audit.source import commit_time, group_rows, read_source
from spark_audit.spec import AuditSpec, check_feature_kinds
from spark_audit.timeutil import interval_seconds, iso_utc, parse_iso
from spark_audit.tracking import tracking_calls
from spark_audit.versions import model_version_label, version_rows, version_specs


def incremental_range(
    spark: SparkSession, spec: AuditSpec, *, now: datetime | None = None, end: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the windows not audited yet: after the last complete audit, up to the last whole window
    (or ``end``, when given, whichever is earlier).

    Windows are aligned as Spark's ``window()`` aligns them (to the epoch), so the
    end is ``now`` floored to the window size: the window still filling is left
    for the next run.
    """
    last_end, _ = store.last_audited(spark, spec.output, spec.name,
                                     spec.model.version if spec.model.version_column else None)
    start = max(d for d in (last_end, spec.window.start) if d is not None) if (last_end or spec.window.start) \
        else None
    end = end or spec.window.end
    if spec.window.size:
        step = interval_seconds(spec.window.size)
        now_s = int((now or datetime.now(timezone.utc)).timestamp())
        whole = datetime.fromtimestamp(now_s - now_s % step, tz=timezone.utc)
        end = min(end, whole) if end else whole
    return start, end


def audit_key(spec: AuditSpec, source_version: int, start: datetime | None, end: datetime | None,
              model_version: str | None = None) -> str:
    """What identifies an audit's result rows: a re-run with the same key replaces them. The model
    version is in it so that an alias moved to another version does not replace the first's rows."""
    parts = [spec.name, spec.spec_hash(), spec.source.display, str(source_version), str(start), str(end)]
    raw = "|".join(parts + ([str(model_version)] if model_version is not None else []))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Rows:
    """The audited rows: the source at its pinned version, narrowed to the range and the model version."""

    df: DataFrame
    version: int
    columns: list[ColumnSpec]
    model_version: str | None


@dataclass(frozen=True)
class Scanned:
    """The scan's output: every group (all rows per window first, then the slices) and the contract plan."""

    groups: list[GroupResult]
    grouping: Grouping
    plan: ContractPlan | None


def read(spark: SparkSession, spec: AuditSpec, window: AuditWindow, model_version: str | None) -> Rows:
    """The rows to audit (nothing is computed yet: the scan reads them once)."""
    df, version = read_source(spark, spec.source, start=window.start, end=window.end)
    columns = resolve_columns(df.schema, [(f.name, f.kind) for f in spec.features], source=spec.source.display)
    check_feature_kinds(spec, {c.name: c.kind for c in columns})  # before the scan
    df = version_rows(df, spec, model_version)
    return Rows(quality.with_labels(spark, df, spec), version, columns, model_version)


def scan(spec: AuditSpec, rows: Rows, ref: LoadedReference, plan: ContractPlan | None,
         window: AuditWindow) -> Scanned:
    """Every window × slice × model version profiled on the reference's bins, with every part's state
    (table checks, PCA error, contract, quality) from the same scan; coarser groups merged, not rescanned."""
    grouping = Grouping(
        timestamp_column=spec.source.timestamp_column, window=spec.window.size, slices=spec.slices,
        model_version_column=spec.model.version_column, model_version=rows.model_version,
    )
    bins: dict[str, Bins] = {n: c.bins for n, c in ref.profile.columns.items() if c.bins is not None}
    pca = ref.profile.extras.get("pca")
    parts = [table_checks.part(rows.df.columns, spec.source.timestamp_column)]
    parts += [multivariate.error_part(pca)] if pca and not pca.get("skipped") else []
    parts += [contract_part(plan)] if plan else []
    parts += quality.parts(spec.quality, quality.reference_calibration(ref.profile.extras)) if spec.quality else []
    finest = profile_groups(rows.df, rows.columns, grouping, bins=bins, top_k=spec.profile.top_k,
                            kll_k=spec.profile.kll_k, parts=parts, centers=ref.profile.centers(),
                            sketches=Sketches.of(spec.profile), engine=spec.profile.engine)
    if not finest:
        raise EmptyWindowError(
            f"no rows to audit in {spec.source.display!r} at version {rows.version}"
            + (f" of model version {rows.model_version}" if spec.model.version_column and rows.model_version else "")
            + window.text())
    groups = overall_groups(finest) + ([g for g in finest if g.key.slice is not None] if spec.slices else [])
    return Scanned(groups, grouping, plan)


def run_audit(
    spark: SparkSession,
    spec: AuditSpec,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Progress = QUIET,
    log_to_mlflow: bool = True,
) -> AuditResult:
    """Audit the windows in [start, end) (default: the spec's window range) against the reference."""
    window = AuditWindow.of(spec, start, end)
    if spec.audits_each_version:
        raise SpecError("the rows carry model versions and the spec names none: each version is audited against "
                        "its own reference by run_audits (the CLI's `audit`), or name one with model.version",
                        file=spec.file, key="model")
    contract = load_contract(spec.contract.path) if spec.contract else None  # validated before any Spark job
    client = mlflow_client(spec.mlflow)
    with progress.phase("loading reference"):
        ref: LoadedReference = find_reference(client, spec)
    # an alias is resolved once, here: rows, run tags and the registry tag all name the same version
    # even if the alias moves while the audit runs
    model_version = model_version_label(spec, client)
    with progress.phase(f"reading {spec.source.display}"):
        rows = read(spark, spec, window, model_version)
    now = datetime.now(timezone.utc)
    plan = compile_contract(contract, rows.df.schema, now=now, timestamp_column=spec.source.timestamp_column) \
        if contract is not None else None
    with progress.phase("profiling windows" + (" and checking the contract" if plan else "")):
        scanned = scan(spec, rows, ref, plan, window)
    # a named version is in the spec's hash already; an alias's version is not
    key = audit_key(spec, rows.version, window.start, window.end, model_version if spec.model.alias else None)
    result = AuditResult(key, uuid.uuid4().hex, rows.version, scanned.groups, model_version=model_version)
    common = record.common_fields(result, spec)
    result.newest_row_at = table_checks.newest_row(scanned.groups)
    result.source_committed_at = commit_time(spark, spec.source, rows.version)
    with progress.phase(f"comparing {len(scanned.groups)} group(s)"):
        ctx = Context(now, result.newest_row_at, result.source_committed_at,
                      volume=table_checks.volume_history(spark, spec.output, spec.name, key, spec.findings.min_rows)
                      if spec.window.size else {},
                      quality=quality.history_from_table(spark, spec, key) if spec.quality else {})
        verdict = judge(spec, ref, scanned.groups, rows.columns, window, common, ctx)
    result.findings, result.drift = verdict.findings, verdict.drift
    result.dataset, result.performance = verdict.dataset, verdict.performance
    result.findings = _name_changed_pairs(result.findings, rows.df, spec, ref.profile.extras.get("pca"),
                                          scanned.groups)
    if plan is not None:
        with progress.phase("evaluating the contract"):
            outcome = check_contract(rows.df, spec, plan, scanned.grouping, scanned.groups, common, now)
        result.violations, result.bad_rows = outcome.violations, outcome.bad_rows
        result.findings += outcome.findings
    with progress.phase("tracking incidents"):
        stored = incident_store.load(spark, spec, model_version)
        ends = [g.key.window_end for g in scanned.groups if g.key.window_end]
        result.incidents = incidents.track(
            spec.name, result.findings, stored.open, window_seconds=window.seconds,
            audited_end=max(ends) if ends else iso_utc(window.end), resolve_after=spec.incidents.resolve_after,
            score_columns=[c for c in (spec.quality.measure.score, spec.quality.measure.prediction) if c]
            if spec.quality else ())
        incidents.suppress(result.incidents, stored.acks, now)
    with progress.phase("scoring the monitoring rubric"):
        result.rubric = _rubric(spark, spec, result, ref, window, model_version)
    if log_to_mlflow:
        with progress.phase("logging audit to MLflow"), tracking_calls(client, "logging the audit run"):
            result.mlflow_run_id = mlflow_log.log_audit_run(client, spec, result, ref.uri, rows.version)
    with progress.phase(f"writing results to {spec.output.database or spec.output.path}"):
        record.write(spark, spec, result, ref.uri, window)
        incident_store.save(spark, spec, result.incidents, common, result.mlflow_run_id)
    if spec.notify:
        _notify(spark, spec, result, common, client if log_to_mlflow else None, progress)
    return result


def _notify(spark: SparkSession, spec: AuditSpec, result: AuditResult, common: dict, client,
            progress: Progress) -> None:
    """Send the incidents that opened, worsened or resolved; record what was sent. Runs after the results
    are complete: a target that fails is reported and tried again by the next audit, nothing else."""
    targets = [Target(t.kind, t.url, t.routing_key, t.min_severity) for t in spec.notify]
    before = {i.incident_id: i.notified for i in result.incidents}
    with progress.phase(f"notifying {len(targets)} target(s)"):
        result.notified = send(targets, result.incidents, audit=spec.name, run_url=mlflow_log.audit_run_url(
            client, spec, result.mlflow_run_id) if client is not None and result.mlflow_run_id else None)
        changed = [i for i in result.incidents if i.notified != before[i.incident_id]]
        if changed:
            incident_store.save(spark, spec, changed, common, result.mlflow_run_id)
    for url, incident_id, error in result.notified.failed:
        progress.note(f"notification of {incident_id} to {url} failed: {error} (the next audit tries again)")


def _utc(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, tz=timezone.utc)


def _rubric(spark: SparkSession, spec: AuditSpec, result: AuditResult, ref: LoadedReference, window: AuditWindow,
            model_version: str | None) -> list:
    """The ML Test Score monitoring rubric of this audit (``spark_audit.rubric``): from its findings and
    profiles, the reference's and training rows' end, the windows earlier complete audits of this version
    covered, and the newest row of the version in the table (one small aggregate)."""
    ends = [parse_iso(g.key.window_end) for g in result.groups if g.key.window_end]
    starts = [parse_iso(g.key.window_start) for g in result.groups if g.key.window_start]
    covered = [(min(starts), max(ends))] if starts and ends else []
    newest = None
    if spec.window.size:
        runs = store.read(spark, spec.output, "audit_runs")
        if runs is not None:
            mine = (F.col("status") == "complete") & (F.col("audit_name") == spec.name) & \
                F.col("window_start").isNotNull() & F.col("window_end").isNotNull()
            if model_version is not None:
                mine &= F.col("model_version") == F.lit(str(model_version))
            covered += [(_utc(r["s"]), _utc(r["e"])) for r in runs.where(mine).select(
                F.unix_micros("window_start").alias("s"), F.unix_micros("window_end").alias("e")).collect()]
        all_rows, _ = read_source(spark, replace(spec.source, version=result.source_version))
        all_rows = version_rows(all_rows, spec, model_version)
        row = all_rows.agg(F.unix_micros(F.max(_c(spec.source.timestamp_column))).alias("t")).first()
        newest = _utc(row["t"]) if row and row["t"] is not None else None
    training = ref.profile.extras.get("training") or {}
    return rubric.evaluate(
        spec, result.findings, result.groups, has_training=bool(training),
        audited_end=max(ends) if ends else window.end,
        reference_end=spec.reference.end or (parse_iso(ref.profile.key.window_end) if ref.profile.key.window_end
                                             else None),
        training_end=parse_iso(training["end"]) if training.get("end") else (spec.training.end if spec.training
                                                                            else None),
        covered=covered, newest_row=newest)


def run_audits(
    spark: SparkSession, spec: AuditSpec, *, start: datetime | None = None, end: datetime | None = None,
    incremental: bool = False, progress: Progress = QUIET, log_to_mlflow: bool = True,
) -> list[VersionAudit]:
    """``run_audit`` for each model version in the rows when they carry versions and the spec names none
    (each against its own reference, each its own run), else for the spec. With several versions, one
    whose reference is missing or whose rows are empty is reported and the others go on; with one, the
    error is raised. ``incremental``: each version from the end of its own last complete audit."""
    if spec.audits_each_version:
        mlflow_client(spec.mlflow)  # reachable, before the rows are read to find the versions
    specs = version_specs(spark, spec, start, end)
    out = []
    for s in specs:
        if len(specs) > 1:
            progress.note(f"model version {s.model.version}")
        s_start, s_end = start, end
        if incremental:
            s_start, s_end = incremental_range(spark, s, end=end)
            if s_start is not None and s_end is not None and s_start >= s_end:
                out.append(VersionAudit(s, nothing_new=f"windows up to {s_end.isoformat()} are audited"))
                continue
        try:
            out.append(VersionAudit(s, run_audit(spark, s, start=s_start, end=s_end, progress=progress,
                                                 log_to_mlflow=log_to_mlflow)))
        except EmptyWindowError as e:
            if incremental:
                since = s_start.isoformat() if s_start else "the beginning"
                out.append(VersionAudit(s, nothing_new=f"no new rows since {since}"))
            elif len(specs) > 1:
                out.append(VersionAudit(s, error=e))
            else:
                raise
        except ReferenceError_ as e:
            if len(specs) == 1:
                raise
            out.append(VersionAudit(s, error=e))
    return out


MAX_CORRELATION_WINDOWS = 10  # windows whose multivariate finding gets its changed pair named (one query each)


def _name_changed_pairs(findings: list[Finding], df: DataFrame, spec: AuditSpec, pca: dict | None,
                        groups: list[GroupResult]) -> list[Finding]:
    """A multivariate drift finding of a whole window says which pair of features changed correlation
    most (a small aggregation over that window's rows, for at most MAX_CORRELATION_WINDOWS windows)."""
    if not pca or not pca.get("corr") or pca.get("skipped"):
        return findings
    keys = {(g.key.window_start, g.key.model_version): g.key for g in groups if g.key.slice is None}
    out, named = [], 0
    for f in findings:
        key = keys.get((f.window_start, f.model_version))
        if f.kind == "multivariate_drift" and f.slice is None and key is not None and \
                named < MAX_CORRELATION_WINDOWS:
            named += 1
            rows = group_rows(df, key, timestamp_column=spec.source.timestamp_column,
                              version_column=spec.model.version_column)
            change = multivariate.largest_change(pca, multivariate.window_correlation(rows, pca))
            if change is not None:
                a, b, before, after = change
                f = replace(f, message=f"{f.message}; the largest change in correlation: {a} ~ {b} "
                                       f"{before:+.2f} -> {after:+.2f}")
        out.append(f)
    return out


