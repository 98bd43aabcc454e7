"""Orchestration: build a reference, run an audit, write results, log to MLflow."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.stats import norm

from spark_audit import mlflow_log, multivariate, quality, rubric, store, table_checks
from spark_audit.contract import ContractPlan, compile_contract, load_contract, sample_bad_rows, uniqueness_results
from spark_audit.contract.compile import tolerates_share
from spark_audit.drift import noise
from spark_audit.drift.compare import (
    DRIFT_KINDS,
    DriftResult,
    compare_profiles,
    compute,
    dataset_verdict,
    reference_bins,
)
from spark_audit.drift.stats import STATISTICS
from spark_audit.errors import AuditError, DataError, EmptyWindowError, ReferenceError_, SpecError
from spark_audit.findings import Candidate, Finding, decide, exit_code, worst
from spark_audit.names import col as _c
from spark_audit.profile import Grouping, GroupResult, TableProfile, overall_groups, profile_groups, resolve_columns
from spark_audit.profile.exprs import ColumnSpec
from spark_audit.profile.profiler import MODEL_VERSION, W_START, merged_group, with_group_columns
from spark_audit.profile.state import Bins, GroupKey, merge_all
from spark_audit.progress import QUIET, Progress
from spark_audit.reference import (
    TAG_REF_RUN,
    LoadedReference,
    ensure_experiment,
    find_reference,
    log_profile_artifact,
    mlflow_client,
    resolve_model_version,
)
from spark_audit.rows import finite, group_fields
from spark_audit.scan import ScanPart
from spark_audit.source import commit_time, read_source
from spark_audit.spec import AuditSpec, check_feature_kinds
from spark_audit.timeutil import interval_seconds, iso_utc, parse_duration, parse_iso
from spark_audit.tracking import end_run_failed, tracking_calls

# increase of the missing share (null + NaN + inf) over the reference that counts as a pipeline bug
MISSING_WARN, MISSING_CRITICAL = 0.05, 0.20


@dataclass
class AuditResult:
    audit_key: str
    audit_run_id: str
    source_version: int
    groups: list[GroupResult]
    drift: list[dict[str, Any]] = field(default_factory=list)
    dataset: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    performance: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    mlflow_run_id: str | None = None
    # the registered model version audited: the spec's version, or the one its alias named when the audit ran
    model_version: str | None = None
    newest_row_at: datetime | None = None  # freshness: the newest audited row, the source version's commit
    source_committed_at: datetime | None = None
    rubric: list = field(default_factory=list)  # spark_audit.rubric.RubricRow, the ML Test Score's monitoring tests

    @property
    def worst_severity(self) -> str | None:
        return worst(f.severity for f in self.findings)

    @property
    def exit_code(self) -> int:
        return exit_code(self.worst_severity)

    def windows(self) -> list[tuple[GroupResult, dict[str, Any] | None, list[Finding]]]:
        """Per window of all rows (no slice): its group, its dataset-drift row against the reference (None
        without one) and its findings; what the console summary and the JSON output list."""
        share = {(iso_utc(d["window_start"]), d["model_version"]): d for d in self.dataset
                 if d["slice"] is None and d["drift_type"] == "reference"}
        out = []
        for g in self.groups:
            k = g.key
            if k.slice is None:
                found = [f for f in self.findings if f.window_start and f.window_start == k.window_start
                         and f.slice is None and f.model_version == k.model_version]
                out.append((g, share.get((k.window_start, k.model_version)), found))
        return out


def _features(spec: AuditSpec) -> list[tuple[str, str | None]]:
    return [(f.name, f.kind) for f in spec.features]


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


def _model_version_label(spec: AuditSpec, client=None) -> str | None:
    if spec.model.version:
        return spec.model.version
    if spec.model.alias and spec.model.name and client is not None:
        return str(resolve_model_version(client, spec.model.name, None, spec.model.alias).version)
    return None


def _version_rows(df: DataFrame, spec: AuditSpec, model_version: str | None) -> DataFrame:
    """Only ``model_version``'s rows when the rows carry versions: a version's reference and its audit
    see that version alone (a shadow version scoring the same rows must not mix in)."""
    col = spec.model.version_column
    if not col or model_version is None:
        return df
    if col not in df.columns:
        raise DataError(f"model.version_column {col!r} is not a column of {spec.source.display!r}")
    return df.where(_c(col).cast("string") == F.lit(str(model_version)))


def version_order(v: str) -> tuple:
    """Model versions in numeric order where they are numbers ("2" before "10")."""
    return (0, int(v), v) if v.isdigit() else (1, 0, v)


def model_versions(spark: SparkSession, spec: AuditSpec, start: datetime | None = None,
                   end: datetime | None = None, *, reference: bool = False) -> list[str]:
    """The model versions in the rows an audit of [start, end) reads (or the reference rows), in
    version order; one small pass over the version column."""
    col = spec.model.version_column
    if not col:
        return []
    if reference:
        df, _ = read_source(spark, spec.source, start=spec.reference.start, end=spec.reference.end,
                            where=spec.reference.where)
    else:
        df, _ = read_source(spark, spec.source, start=start, end=end)
    if col not in df.columns:
        raise DataError(f"model.version_column {col!r} is not a column of {spec.source.display!r}")
    found = {r[0] for r in df.select(_c(col).cast("string")).distinct().collect() if r[0] is not None}
    return sorted(found, key=version_order)


def version_specs(spark: SparkSession, spec: AuditSpec, start: datetime | None = None, end: datetime | None = None,
                  *, reference: bool = False) -> list[AuditSpec]:
    """One spec per model version to audit (or to build a reference for): the spec itself, unless its
    rows carry versions and it names none (``AuditSpec.versions_in_rows``); an audit with an explicit
    ``reference.uri`` compares every version with that one reference."""
    if not (spec.versions_in_rows if reference else spec.audits_each_version):
        return [spec]
    versions = model_versions(spark, spec, start or spec.window.start, end or spec.window.end, reference=reference)
    if not versions:
        what = "reference rows" if reference else "audited rows"
        raise EmptyWindowError(f"no {what} of {spec.source.display!r} carry a model version "
                               f"({spec.model.version_column!r})")
    return [spec.for_model_version(v) for v in versions]


# --------------------------------------------------------------------------- reference


def profile_reference(
    spark: SparkSession, spec: AuditSpec, *, progress: Progress = QUIET, model_version: str | None = None
) -> tuple[TableProfile, int]:
    """Profile the reference rows: one pass for the states and the bins, one for exact bin counts.

    The second pass groups by the audit's windows too (when the spec has them), so the
    reference's own window-to-window noise (``spark_audit.drift.noise``) comes from the
    same aggregation whose windows merge into the whole reference.
    """
    with progress.phase(f"reading reference rows of {spec.source.display}"):
        df, version = read_source(
            spark, spec.source, start=spec.reference.start, end=spec.reference.end, where=spec.reference.where
        )
        columns = resolve_columns(df.schema, _features(spec), source=spec.source.display)
        check_feature_kinds(spec, {c.name: c.kind for c in columns})  # before the scan
        df = _version_rows(df, spec, model_version)
        df = quality.with_labels(spark, df, spec)
    grouping = Grouping(slices=spec.slices, model_version=model_version)
    windowed = bool(spec.window.size and spec.source.timestamp_column)
    by_window = Grouping(timestamp_column=spec.source.timestamp_column, window=spec.window.size, slices=spec.slices,
                         model_version=model_version) if windowed else grouping
    q_parts = quality.parts(spec.quality, None) if spec.quality else []
    with progress.phase("profiling reference"):
        first = overall_groups(profile_groups(df, columns, grouping, top_k=spec.profile.top_k,
                                              kll_k=spec.profile.kll_k, sketches=spec.profile.sketches()))
        if not first or first[0].profile.row_count == 0:
            of = f" of model version {model_version}" if spec.model.version_column and model_version else ""
            raise DataError(f"the reference selection of {spec.source.display!r} has no rows{of}")
        base = first[0]
        bins = {n: b for n, c in base.profile.columns.items() if (b := reference_bins(c, spec.drift.bins))}
        centers = base.profile.centers()
        pca_names = multivariate.pca_features(spec.features, base.profile)
        pca_means = [float(base.profile.columns[n].mean) for n in pca_names]
        pca_stds = [float(base.profile.columns[n].std) for n in pca_names]
        pca_parts = [multivariate.moments_part(pca_names, pca_means, pca_stds)] if len(pca_names) > 1 else []
        # no HLL here: the reference keeps the first pass's distinct counts (``whole`` below), and a
        # sketch would keep this scan from being code-generated (``Sketches``)
        finest = profile_groups(df, columns, by_window, bins=bins, top_k=0, kll_k=spec.profile.kll_k,
                                centers=centers, sketches=replace(spec.profile.sketches(), hll=()),
                                parts=[*q_parts, table_checks.part(df.columns), *pca_parts])
        # with a version column the audit judges each version's volume against that version's own
        by_version = table_checks.count_by_version(df, replace(
            by_window, model_version_column=spec.model.version_column), spec.slices) \
            if windowed and spec.model.version_column else None
    key = GroupKey(
        window_start=iso_utc(spec.reference.start), window_end=iso_utc(spec.reference.end), model_version=model_version
    )
    # per slice label (None = all rows): the reference's windows, oldest first
    windows: dict[str | None, list[GroupResult]] = {None: overall_groups(finest)}
    for g in finest:
        if g.key.slice is not None:
            windows.setdefault(g.key.slice, []).append(g)
    top_by_slice = {c.key.slice: c.profile for c in base.children}

    def whole(label: str | None) -> TableProfile:
        profiles = [g.profile for g in windows[label]]
        merged = merge_all(profiles, key=replace(key, slice=label))
        top_from = base.profile if label is None else top_by_slice[label]
        # the first pass's sketches where the binned pass kept none (spark_audit.profile.exprs.Sketches)
        cols = {n: replace(c, top=top_from.columns[n].top, top_k=top_from.columns[n].top_k,
                           kll=c.kll if c.kll is not None else top_from.columns[n].kll,
                           hll=c.hll if c.hll is not None else top_from.columns[n].hll)
                for n, c in merged.columns.items()}
        extras = noise.noise_extras(_noise(profiles, spec), len(profiles), spec.window.size if windowed else None)
        extras.update(table_checks.table_extras(windows[label], None if by_version is None else
                                                by_version.get(label, {})) if windowed else {})
        if spec.quality:
            states = [quality.state(g) for g in windows[label]]
            total = quality.state(merged_group(key, windows[label]))
            extras.update(quality.reference_extras(spec.quality, total, states))
        return replace(merged, columns=cols, extras=extras)

    slices = {label: whole(label) for label in windows if label is not None}
    profile = whole(None)
    extras = dict(profile.extras)
    if windowed:
        extras.update(multivariate.reference_extras(pca_names, pca_means, pca_stds, windows[None],
                                                    merged_group(key, windows[None])))
        if extras.get("pca"):  # each slice's own band of reconstruction errors, on the overall components
            slices = {label: replace(p, extras={**p.extras, **multivariate.slice_extras(extras["pca"], windows[label])})
                      for label, p in slices.items()}
    if spec.training is not None:
        extras["training"] = profile_training(spark, spec, bins, model_version, progress=progress)
    profile = replace(profile, key=key, slices=slices, extras=extras)
    return profile, version


def profile_training(spark: SparkSession, spec: AuditSpec, bins: dict[str, Bins], model_version: str | None, *,
                     progress: Progress = QUIET) -> dict[str, Any]:
    """The training rows' profile on the serving reference's ``bins`` (so each audited window's exact counts
    compare with it), as the reference keeps it: ``{"profile": ..., "source", "source_version", "start",
    "end", "skipped"}``. Features the training table lacks (the score, say) are skipped, and listed."""
    t = spec.training
    assert t is not None
    with progress.phase(f"profiling the training rows of {t.source.display}"):
        df, version = read_source(spark, t.source, start=t.start, end=t.end, where=t.where)
        if spec.model.version_column and spec.model.version_column in df.columns:
            df = _version_rows(df, spec, model_version)
        wanted = [(n, k) for n, k in _features(spec) if n in df.columns]
        skipped = [n for n, _ in _features(spec) if n not in df.columns]
        columns = resolve_columns(df.schema, wanted, source=t.source.display)
        groups = overall_groups(profile_groups(df, columns, Grouping(model_version=model_version), bins=bins,
                                               top_k=spec.profile.top_k, kll_k=spec.profile.kll_k,
                                               sketches=spec.profile.sketches()))
    if not groups or groups[0].profile.row_count == 0:
        raise DataError(f"the training rows of {t.source.display!r} are empty"
                        + (f" for model version {model_version}" if model_version else ""))
    return {"profile": groups[0].profile.to_dict(), "source": t.source.display, "source_version": version,
            "start": iso_utc(t.start), "end": iso_utc(t.end), "skipped": skipped}


def training_profile(ref: TableProfile) -> TableProfile | None:
    """The training profile a reference keeps (``profile_training``), None without one."""
    t = ref.extras.get("training")
    return TableProfile.from_dict(t["profile"]) if t else None


def explained_skew(findings: list[Finding]) -> list[Finding]:
    """Without the skew findings of a column that drifted from the serving reference in the same window: the
    drift finding says it (the serving rows changed), a second finding would count one cause twice. The
    skew's rows stay in ``drift_metrics``."""
    drifted = {(f.column, f.window_start, f.slice, f.model_version) for f in findings if f.kind == "drift"}
    return [f for f in findings if not (f.kind == "skew" and (f.column, f.window_start, f.slice, f.model_version)
                                        in drifted)]


def skew_finding(r: DriftResult, k: GroupKey) -> Finding:
    """Training/serving skew: the window's distribution of a feature against the training rows'."""
    f = _drift_finding(r, k)
    return replace(f, kind="skew", message="training/serving skew: " + f.message)


def _noise(windows: list[TableProfile], spec: AuditSpec) -> dict[str, noise.ColumnNoise]:
    """Each feature's window-to-window noise in these reference windows."""
    out = {}
    for f in spec.features:
        cols = [w.columns[f.name] for w in windows if f.name in w.columns]
        if not cols or cols[0].kind not in DRIFT_KINDS:
            continue
        kind = "categorical" if cols[0].kind == "boolean" else cols[0].kind
        wanted = sorted({s for s, info in STATISTICS.items() if kind in info.kinds and info.null_scale})
        out[f.name] = noise.column_noise(cols, wanted, compute)
    return out


def build_reference(spark: SparkSession, spec: AuditSpec, *, progress: Progress = QUIET) -> tuple[str, TableProfile]:
    """Profile the reference rows and log them as an MLflow artifact; returns (run id, profile)."""
    client = mlflow_client(spec.mlflow)
    mv = None
    label = spec.model.version
    if spec.model.name and (spec.model.version or spec.model.alias):
        try:
            mv = resolve_model_version(client, spec.model.name, spec.model.version, spec.model.alias)
            label = str(mv.version)
        except ReferenceError_:
            if spec.model.alias:
                raise
            # a version not registered (yet): the audit finds this run by the audit's name and the version
            progress.note(f"model {spec.model.name!r} version {label} is not registered: the reference is "
                          "tagged with the version, not linked from the registry")
    profile, version = profile_reference(spark, spec, progress=progress, model_version=label)
    with progress.phase("logging reference to MLflow"), tracking_calls(client, "logging the reference"):
        exp_id = ensure_experiment(client, spec.mlflow)
        tags = {
            "spark_audit.kind": "reference", "spark_audit.audit": spec.name,
            "spark_audit.source": spec.source.display, "spark_audit.source_version": str(version),
            "mlflow.runName": f"reference {spec.name}",
        }
        if label is not None:
            tags.update({"model_name": spec.model.name, "model_version": str(label),
                         "mlflow.runName": f"reference {spec.name} · model {label}"})
        run = client.create_run(exp_id, tags=tags)
        run_id = run.info.run_id
        try:
            log_profile_artifact(client, run_id, profile)
            from mlflow.entities import Metric

            metrics = {"reference.rows": profile.row_count}
            for name, col in profile.columns.items():  # missing: null, NaN and inf, as the audit counts it
                metrics[mlflow_log.metric_key("reference.missing_share", name)] = \
                    noise.missing_count(col) / col.count if col.count else math.nan
                for metric in ("mean", "std"):
                    metrics[mlflow_log.metric_key(f"reference.{metric}", name)] = col.summary().get(metric)
            client.log_batch(run_id, metrics=[Metric(k, float(v), int(time.time() * 1000), 0)
                                              for k, v in metrics.items()
                                              if isinstance(v, (int, float)) and math.isfinite(v)])
            if mv is not None:
                client.set_model_version_tag(mv.name, mv.version, TAG_REF_RUN, run_id)
        except Exception as e:
            end_run_failed(client, run_id, e)
            raise
        client.set_terminated(run_id, "FINISHED")
    progress.note(f"reference logged: runs:/{run_id} ({profile.row_count} rows)")
    return run_id, profile


def build_references(spark: SparkSession, spec: AuditSpec, *, progress: Progress = QUIET
                     ) -> list[tuple[str | None, str, TableProfile]]:
    """``build_reference`` for each model version in the reference rows when the rows carry versions
    and the spec names none, else for the spec; (model version, run id, profile) per reference."""
    if spec.versions_in_rows:
        mlflow_client(spec.mlflow)  # reachable, before the rows are read to find the versions
    out = []
    for s in version_specs(spark, spec, reference=True):
        label = s.model.version if s is not spec else None
        if label:
            progress.note(f"model version {label}: its reference, from its own rows")
        run_id, profile = build_reference(spark, s, progress=progress)
        out.append((label, run_id, profile))
    return out


# --------------------------------------------------------------------------- audit


def audit_key(spec: AuditSpec, source_version: int, start: datetime | None, end: datetime | None,
              model_version: str | None = None) -> str:
    """What identifies an audit's result rows: a re-run with the same key replaces them. The model
    version is in it so that an alias moved to another version does not replace the first's rows."""
    parts = [spec.name, spec.spec_hash(), spec.source.display, str(source_version), str(start), str(end)]
    raw = "|".join(parts + ([str(model_version)] if model_version is not None else []))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def schema_changes(ref: TableProfile, groups: list[GroupResult], columns: list[ColumnSpec]) -> list[Finding]:
    """One finding per column whose type differs from the reference's, at the first window it shows."""
    ref_types = dict(ref.schema)
    out: list[Finding] = []
    for c in columns:
        for g in groups:
            now = dict(g.profile.schema).get(c.name)
            if c.name in ref_types and now is not None and ref_types[c.name] != now:
                k = g.key
                out.append(Finding("critical", "schema", f"type changed from {ref_types[c.name]} to {now}", c.name,
                                   k.window_start, None, k.model_version))
                break
    return out


def missing_candidates(
    ref: TableProfile, cur: GroupResult, columns: list[ColumnSpec], ref_noise: dict | None, *, judged: bool = True,
) -> list[Candidate]:
    """A jump in a column's missing share (null + NaN + inf) over the reference's: material when it is at
    least MISSING_WARN (MISSING_CRITICAL: critical), with a two-proportion test as the evidence (its z
    divided by the reference's own window-to-window overdispersion of the share)."""
    out: list[Candidate] = []
    k = cur.key
    for c in columns:
        rc, cc = ref.columns.get(c.name), cur.profile.columns[c.name]
        if rc is None or cc.count == 0 or rc.count == 0:
            continue
        m_ref, m_cur = noise.missing_count(rc), noise.missing_count(cc)
        share_ref, share_cur = m_ref / rc.count, m_cur / cc.count
        delta = share_cur - share_ref
        z = noise.two_proportion_z(m_ref, rc.count, m_cur, cc.count)
        phi = ref_noise[c.name].missing_phi if ref_noise and c.name in ref_noise else 1.0
        p = float(norm.sf(z / math.sqrt(phi))) if math.isfinite(z) else (0.0 if z > 0 else 1.0)
        sev = "critical" if delta >= MISSING_CRITICAL else "warning"
        detail = f"nulls {cc.nulls}, NaN {cc.nan}, inf {cc.pos_inf + cc.neg_inf} of {cc.count} rows"
        f = Finding(sev, "missing", f"missing share {share_cur:.1%} vs {share_ref:.1%} in the reference ({detail})",
                    c.name, k.window_start, k.slice, k.model_version, "missing_share", share_cur,
                    share_ref + MISSING_WARN)
        out.append(Candidate(f, p, delta >= MISSING_WARN, judged))
    return out


def _drift_finding(r: DriftResult, k: GroupKey) -> Finding:
    sev = "critical" if r.critical else "warning"
    shown = f"p={r.p_value:.3g}" if r.p_value is not None and STATISTICS[r.statistic].is_test \
        else f"{r.value:.3f}"
    noise_note = f", noise at this size ~{r.noise:.3f}" if r.noise is not None else ""
    return Finding(sev, "drift", f"{r.statistic} {shown} (material at {r.threshold:g}{noise_note}; "
                   f"n={r.n_current} vs {r.n_reference})", r.column, k.window_start, k.slice, k.model_version,
                   r.statistic, finite(r.value), r.threshold)


def _drift_rows(
    results: list[DriftResult], group: GroupResult, drift_type: str, baseline: str, common: dict[str, Any]
) -> list[dict[str, Any]]:
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


def _profile_rows(group: GroupResult, common: dict[str, Any]) -> list[dict[str, Any]]:
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


def _state_json(col) -> str:
    import json

    d = col.to_dict()
    d.pop("kll", None)
    d.pop("hll", None)  # binary columns beside it hold the sketches
    return json.dumps(d, sort_keys=True)


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
    start = start or spec.window.start
    end = end or spec.window.end
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
    model_version = _model_version_label(spec, client)
    with progress.phase(f"reading {spec.source.display}"):
        df, version = read_source(spark, spec.source, start=start, end=end)
        columns = resolve_columns(df.schema, _features(spec), source=spec.source.display)
        check_feature_kinds(spec, {c.name: c.kind for c in columns})  # before the scan
        df = _version_rows(df, spec, model_version)
        df = quality.with_labels(spark, df, spec)
    # a named version is in the spec's hash already; an alias's version is not
    key = audit_key(spec, version, start, end, model_version if spec.model.alias else None)
    run_id = uuid.uuid4().hex
    grouping = Grouping(
        timestamp_column=spec.source.timestamp_column, window=spec.window.size, slices=spec.slices,
        model_version_column=spec.model.version_column, model_version=model_version,
    )
    bins: dict[str, Bins] = {n: c.bins for n, c in ref.profile.columns.items() if c.bins is not None}
    now = datetime.now(timezone.utc)
    plan = None
    if contract is not None:
        plan = compile_contract(contract, df.schema, now=now, timestamp_column=spec.source.timestamp_column)
    with progress.phase("profiling windows" + (" and checking the contract" if plan else "")):
        pca = ref.profile.extras.get("pca")
        parts = [table_checks.part(df.columns, spec.source.timestamp_column)]
        parts += [multivariate.error_part(pca)] if pca else []
        parts += [contract_part(plan)] if plan else []
        parts += quality.parts(spec.quality, quality.reference_calibration(ref.profile.extras)) if spec.quality else []
        centers = ref.profile.centers()
        finest = profile_groups(df, columns, grouping, bins=bins, top_k=spec.profile.top_k, kll_k=spec.profile.kll_k,
                                parts=parts, centers=centers, sketches=spec.profile.sketches())
    if not finest:
        raise EmptyWindowError(
            f"no rows to audit in {spec.source.display!r} at version {version}"
            + (f" of model version {model_version}" if spec.model.version_column and model_version else "")
            + (f" between {iso_utc(start)} and {iso_utc(end)}" if start or end else "")
        )
    groups = overall_groups(finest) + ([g for g in finest if g.key.slice is not None] if spec.slices else [])
    result = AuditResult(key, run_id, version, groups, model_version=model_version)
    common = dict(audit_key=key, audit_run_id=run_id, audit_name=spec.name, source=spec.source.display,
                  source_version=version)
    judged = {id(g): g.profile.row_count >= spec.findings.min_rows for g in groups}
    candidates: list[Candidate] = []
    per_group: list[tuple[GroupResult, tuple, list[dict[str, Any]]]] = []
    with progress.phase(f"comparing {len(groups)} group(s)"):
        if noise.noise_from_extras(ref.profile.extras) is None:
            result.findings.append(Finding("info", "reference", f"the reference {ref.uri} keeps no window-to-window "
                                           "noise (built without windows, or by an older spark-audit): drift "
                                           "evidence assumes independent rows; rebuild it to calibrate"))
        result.findings += schema_changes(ref.profile, groups, columns)
        versions = sorted({g.key.model_version for g in groups}, key=str)
        result.findings += table_checks.missing_windows(spec.window.size, start, end, groups, versions)
        result.newest_row_at = table_checks.newest_row(groups)
        result.source_committed_at = commit_time(spark, spec.source, version)
        if spec.window.size and (end is None or end.timestamp() >= now.timestamp() - 2 * interval_seconds(
                spec.window.size)):  # the audit reaches the present: freshness means something
            default = 2 * interval_seconds(spec.window.size)
            f = spec.findings
            result.findings += table_checks.freshness(
                now, result.newest_row_at, result.source_committed_at,
                max_row_age=parse_duration(f.max_row_age).total_seconds() if f.max_row_age else default,
                max_commit_age=parse_duration(f.max_commit_age).total_seconds() if f.max_commit_age else default)
        previous: dict[tuple, GroupResult] = {}
        training = training_profile(ref.profile)
        volume_hist = table_checks.volume_history(spark, spec.output, spec.name, key, spec.findings.min_rows) \
            if spec.window.size else {}
        for g in sorted(groups, key=lambda g: g.key.window_start or ""):
            k = g.key
            # a slice compares with the same slice of the reference, without the slicing columns themselves
            baseline = ref.profile.slices.get(k.slice, ref.profile) if k.slice else ref.profile
            base_noise = noise.noise_from_extras(baseline.extras)
            features = tuple(f for f in spec.features if not (k.slice and f.name in spec.slices))
            candidates += missing_candidates(baseline, g, columns, base_noise, judged=judged[id(g)])
            # a slice the reference never saw has no volume of its own to compare with
            table = baseline.extras.get("table") if not k.slice or k.slice in ref.profile.slices else None
            volume = table_checks.volume_candidate(table, g)
            series_rows = volume_hist.setdefault((k.slice, k.model_version), [])
            past = [n for w, n in series_rows if w < (k.window_start or "")]
            if volume is None or not volume.material:  # a slow drift of volume the old reference cannot see
                volume = table_checks.volume_history_candidate(past, g) or volume
            if judged[id(g)] and k.window_start:
                series_rows.append((k.window_start, g.profile.row_count))
            # a slice is judged against the same slice's reference windows, with the overall components
            slice_pca = (baseline.extras.get("pca") if k.slice in ref.profile.slices else None) if k.slice else pca
            candidates += [c for c in (volume, table_checks.duplicate_candidate(table, g, judged=judged[id(g)]),
                                       multivariate.candidate(slice_pca, g, judged=judged[id(g)])) if c]
            drift = compare_profiles(baseline, g.profile, features, spec.drift, base_noise)
            rows = _drift_rows(drift, g, "reference", ref.uri, common)
            result.drift += rows
            per_group.append((g, features, [row for r, row in zip(drift, rows, strict=True) if r.is_default]))
            for r, row in zip(drift, rows, strict=True):
                if r.is_default:
                    candidates.append(Candidate(_drift_finding(r, k), r.p_value if r.p_value is not None
                                                else math.nan, r.material, judged[id(g)], [row]))
            if training is not None and not k.slice:
                skew = compare_profiles(training, g.profile, tuple(f for f in features if f.name in training.columns),
                                        spec.drift, base_noise)
                skew_rows = _drift_rows(skew, g, "skew", "training", common)
                result.drift += skew_rows
                candidates += [Candidate(skew_finding(r, k), r.p_value if r.p_value is not None else math.nan,
                                         r.material, judged[id(g)], [row])
                               for r, row in zip(skew, skew_rows, strict=True) if r.is_default]
            series = (k.slice, k.model_version)
            prev = previous.get(series)
            if spec.drift.consecutive and prev is not None:
                cons = compare_profiles(prev.profile, g.profile, features, spec.drift, base_noise)
                result.drift += _drift_rows(cons, g, "consecutive", str(prev.key.window_start), common)
            previous[series] = g
    if spec.quality is not None:
        with progress.phase("measuring model quality"):
            history = quality.history_from_table(spark, spec, key)
            result.performance, found = quality.evaluate(spec, groups, ref.profile, history, common, judged)
            candidates += found
            result.findings += quality.disagreement(spec, groups)
            if spec.quality.fairness is not None:
                rows, fair = quality.fairness(spec, groups, common)
                result.performance += rows
                candidates += fair
    result.findings += explained_skew(decide(candidates, spec.findings.fdr))
    result.findings = _name_changed_pairs(result.findings, df, spec, pca, groups)
    for g, features, rows in per_group:
        k = g.key
        decided = {row["column"]: bool(row["drifted"]) for row in rows}
        n, nd, share, drifted = dataset_verdict(decided, features, spec.drift.share_threshold)
        result.dataset.append(store.row(
            "dataset_drift", **common, **group_fields(k), drift_type="reference", baseline=ref.uri, columns=n,
            drifted_columns=nd, drift_share=float(share), share_threshold=spec.drift.share_threshold,
            drifted=bool(drifted and judged[id(g)]),
        ))
        if drifted and judged[id(g)]:
            result.findings.append(Finding("critical", "dataset_drift", f"{nd} of {n} features drifted "
                                           f"(share {share:.2f} >= {spec.drift.share_threshold:g})", None,
                                           k.window_start, k.slice, k.model_version, "drift_share", float(share),
                                           spec.drift.share_threshold))
    small = [g for g in groups if not judged[id(g)] and g.key.slice is None]
    for g in small:
        result.findings.append(Finding("info", "small_group", f"{g.profile.row_count} rows, fewer than "
                                       f"findings.min_rows={spec.findings.min_rows}: recorded, not judged", None,
                                       g.key.window_start, g.key.slice, g.key.model_version))
    if plan is not None:
        with progress.phase("evaluating the contract"):
            _check_contract(df, spec, plan, grouping, groups, result, common, now)
    with progress.phase("scoring the monitoring rubric"):
        result.rubric = _rubric(spark, spec, result, ref, start, end, model_version)
    if log_to_mlflow:
        with progress.phase("logging audit to MLflow"), tracking_calls(client, "logging the audit run"):
            result.mlflow_run_id = mlflow_log.log_audit_run(client, spec, result, ref.uri, version)
    with progress.phase(f"writing results to {spec.output.database or spec.output.path}"):
        _write(spark, spec, result, ref, start, end)
    return result


def _utc(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, tz=timezone.utc)


def _rubric(spark: SparkSession, spec: AuditSpec, result: AuditResult, ref: LoadedReference, start, end,
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
        all_rows = _version_rows(all_rows, spec, model_version)
        row = all_rows.agg(F.unix_micros(F.max(_c(spec.source.timestamp_column))).alias("t")).first()
        newest = _utc(row["t"]) if row and row["t"] is not None else None
    training = ref.profile.extras.get("training") or {}
    return rubric.evaluate(
        spec, result.findings, result.groups, has_training=bool(training), audited_end=max(ends) if ends else end,
        reference_end=spec.reference.end or (parse_iso(ref.profile.key.window_end) if ref.profile.key.window_end
                                             else None),
        training_end=parse_iso(training["end"]) if training.get("end") else (spec.training.end if spec.training
                                                                            else None),
        covered=covered, newest_row=newest)


@dataclass
class VersionAudit:
    """One model version's audit in ``run_audits``: its result, or why there is none."""

    spec: AuditSpec
    result: AuditResult | None = None
    error: AuditError | None = None  # its reference is missing, or it has no rows in the range
    nothing_new: str | None = None  # incremental: its windows are all audited already

    @property
    def version(self) -> str | None:
        return self.result.model_version if self.result else self.spec.model.version

    @property
    def exit_code(self) -> int:
        return self.result.exit_code if self.result else (self.error.exit_code if self.error else 0)


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


def _name_changed_pairs(findings: list[Finding], df: DataFrame, spec: AuditSpec, pca: dict[str, Any] | None,
                        groups: list[GroupResult]) -> list[Finding]:
    """A multivariate drift finding of a whole window says which pair of features changed correlation
    most (a small aggregation over that window's rows, for at most MAX_CORRELATION_WINDOWS windows)."""
    if not pca or not pca.get("corr"):
        return findings
    keys = {(g.key.window_start, g.key.model_version): g.key for g in groups if g.key.slice is None}
    out, named = [], 0
    for f in findings:
        key = keys.get((f.window_start, f.model_version))
        if f.kind == "multivariate_drift" and f.slice is None and key is not None and \
                named < MAX_CORRELATION_WINDOWS:
            named += 1
            change = multivariate.largest_change(pca, multivariate.window_correlation(_window_rows(df, spec, key),
                                                                                       pca))
            if change is not None:
                a, b, before, after = change
                f = replace(f, message=f"{f.message}; the largest change in correlation: {a} ~ {b} "
                                       f"{before:+.2f} -> {after:+.2f}")
        out.append(f)
    return out


def contract_part(plan: ContractPlan) -> ScanPart:
    """The contract's scan part: its rules' counts (freshness keeps the latest time)."""
    return ScanPart("c", tuple(plan.exprs), merge=lambda a, b: plan.merge_rows([a, b]))


MAX_SAMPLED_FAILURES = 50  # (rule, window) pairs whose bad rows are sampled, one limited query each


def _check_contract(
    df: DataFrame, spec: AuditSpec, plan: ContractPlan, grouping: Grouping, groups: list[GroupResult],
    result: AuditResult, common: dict[str, Any], now: datetime,
) -> None:
    """Contract results per group from the shared scan; uniqueness and bad-row samples as extra passes."""
    assert spec.contract is not None
    per_group: list[tuple[GroupKey | None, Any]] = [(None, r) for r in plan.schema_results(df.schema)]
    unique: dict[tuple, list] = {}
    if plan.has_uniqueness:
        cols = [W_START, MODEL_VERSION] if W_START in grouping.columns() else [MODEL_VERSION]
        for g in uniqueness_results(with_group_columns(df, grouping), plan, cols):
            unique.setdefault((iso_utc(g.group.get(W_START)), g.group[MODEL_VERSION]), []).append(g.result)
    for g in groups:
        rules = plan.evaluate(g.states["c"], total_rows=g.profile.row_count, now=now)
        if g.key.slice is None:
            rules += unique.get((g.key.window_start, g.key.model_version), [])
        per_group += [(g.key, r) for r in rules]
    sampled = 0
    key_rows = {g.key: g.profile.row_count for g in groups}
    for key, r in per_group:
        k = key or GroupKey()
        result.violations.append(store.row("contract_violations", **common, **group_fields(k), **r.as_dict()))
        if r.passed is not False:  # True: passed; None: not evaluated, the schema result is the finding
            continue
        if key is not None and key_rows.get(key, spec.findings.min_rows) < spec.findings.min_rows \
                and tolerates_share(plan.rule(r.rule_id).threshold):
            continue  # a share tolerance says nothing on a group too small to judge: recorded only
        result.findings.append(Finding(r.severity, "contract", f"{r.rule_id}: {r.message}", r.column,
                                       k.window_start, k.slice, k.model_version))
        if key is None or key.slice is not None or sampled >= MAX_SAMPLED_FAILURES or not spec.contract.sample_rows:
            continue
        if plan.rule(r.rule_id).measure not in ("count", "duplicates"):
            continue
        sampled += 1
        rows = _window_rows(df, spec, k)
        for i, bad in enumerate(sample_bad_rows(rows, plan, limit_per_rule=spec.contract.sample_rows,
                                                mask_columns=spec.contract.mask_columns, rules=[r.rule_id])):
            result.bad_rows.append(store.row("contract_bad_rows", **common, **group_fields(k), sample=i, **bad))


def _window_rows(df: DataFrame, spec: AuditSpec, key: GroupKey) -> DataFrame:
    ts = spec.source.timestamp_column
    if ts and key.window_start and key.window_end:
        df = df.where((_c(ts) >= F.lit(parse_iso(key.window_start))) & (_c(ts) < F.lit(parse_iso(key.window_end))))
    if spec.model.version_column and key.model_version is not None:
        df = df.where(_c(spec.model.version_column).cast("string") == F.lit(key.model_version))
    return df


def _write(spark: SparkSession, spec: AuditSpec, result: AuditResult, ref: LoadedReference, start, end) -> None:
    out = spec.output
    windows = [g.key.window_start for g in result.groups if g.key.window_start]
    ends = [g.key.window_end for g in result.groups if g.key.window_end]
    run = dict(
        audit_key=result.audit_key, audit_run_id=result.audit_run_id, audit_name=spec.name,
        source=spec.source.display, source_version=result.source_version, spec_hash=spec.spec_hash(),
        model_name=spec.model.name, model_version=result.model_version, reference_uri=ref.uri,
        window_start=parse_iso(min(windows)) if windows else start, window_end=parse_iso(max(ends)) if ends else end,
        started_at=datetime.now(timezone.utc), groups=len(result.groups), mlflow_run_id=result.mlflow_run_id,
        newest_row_at=result.newest_row_at, source_committed_at=result.source_committed_at,
    )
    store.write_rows(spark, out, "audit_runs", [store.row(
        "audit_runs", **run, status="running", finished_at=None, findings=None, worst_severity=None, exit_code=None,
        message=None)], audit_key=result.audit_key)
    common = dict(audit_key=result.audit_key, audit_run_id=result.audit_run_id, audit_name=spec.name,
                  source=spec.source.display, source_version=result.source_version)
    # every result table but the run row, from a few threads (each is its own small Delta commit)
    tables: dict[str, list[dict[str, Any]]] = {
        "profile_metrics": [r for g in result.groups for r in _profile_rows(g, common)],
        "drift_metrics": result.drift, "dataset_drift": result.dataset,
        "findings": _finding_rows(result, common)}
    if spec.quality is not None:
        tables["performance_metrics"] = result.performance
    if spec.contract is not None:
        tables["contract_violations"] = result.violations
        tables["contract_bad_rows"] = result.bad_rows
    if result.rubric:
        tables["rubric"] = rubric.table_rows(result.rubric, common, result.model_version,
                                             iso_utc(run["window_start"]), iso_utc(run["window_end"]))
    store.write_tables(spark, out, tables, audit_key=result.audit_key)
    store.write_rows(spark, out, "audit_runs", [store.row(
        "audit_runs", **run, status="complete", finished_at=datetime.now(timezone.utc), findings=len(result.findings),
        worst_severity=result.worst_severity, exit_code=result.exit_code,
        message=f"{len(result.findings)} finding(s)",
    )], audit_key=result.audit_key)


def _finding_rows(result: AuditResult, common: dict[str, Any]) -> list[dict[str, Any]]:
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
                         q_value=finite(f.q_value), mlflow_run_id=result.mlflow_run_id))
    return rows
