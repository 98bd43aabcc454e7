"""Building a reference: profile the reference rows per window, learn their noise, log them to MLflow.

The reference build reads the reference rows twice: a first pass gives the states and the bins (the
reference's quantiles and top categories), a second profiles every window on those bins, so each
window's exact counts merge into the whole reference and show the reference's own window-to-window
noise (``spark_audit.drift.noise``). The profile, with its slices, quality, table facts and PCA, is
logged as an MLflow artifact and tied to the registered model version.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
from mlflow.entities import Metric
from pyspark.sql import SparkSession

from spark_audit import multivariate, quality, table_checks
from spark_audit.drift import cycle as cycle_mod
from spark_audit.drift import noise, stats
from spark_audit.drift.compare import DRIFT_KINDS, compute, reference_bins
from spark_audit.drift.cycle import Cycle, CycleDecision
from spark_audit.drift.stats import STATISTICS
from spark_audit.errors import DataError, ReferenceError_
from spark_audit.mlflow_text import Tag, metric_key
from spark_audit.profile import Grouping, GroupResult, TableProfile, overall_groups, profile_groups, resolve_columns
from spark_audit.profile.exprs import Sketches
from spark_audit.profile.profiler import merged_group
from spark_audit.profile.state import Bins, ColumnProfile, GroupKey, merge_all
from spark_audit.progress import QUIET, Progress
from spark_audit.reference import ensure_experiment, log_profile_artifact, mlflow_client, resolve_model_version
from spark_audit.source import read_source
from spark_audit.spec import AuditSpec, check_feature_kinds
from spark_audit.timeutil import interval_seconds, iso_utc
from spark_audit.tracking import mlflow_run, tracking_calls
from spark_audit.versions import version_rows, version_specs


def _features(spec: AuditSpec) -> list[tuple[str, str | None]]:
    return [(f.name, f.kind) for f in spec.features]


def profile_reference(
    spark: SparkSession, spec: AuditSpec, *, progress: Progress = QUIET, model_version: str | None = None
) -> tuple[TableProfile, int]:
    """Profile the reference rows: one pass for the states and the bins, one for exact bin counts.

    The second pass groups by the audit's windows too (when the spec has them), so the reference's own
    window-to-window noise (``spark_audit.drift.noise``) comes from the same aggregation whose windows
    merge into the whole reference. When those windows follow a calendar cycle
    (``spark_audit.drift.cycle``), the noise is learned within phases and every phase keeps a profile of
    its own windows, per slice too (``TableProfile.phases``).
    """
    with progress.phase(f"reading reference rows of {spec.source.display}"):
        df, version = read_source(
            spark, spec.source, start=spec.reference.start, end=spec.reference.end, where=spec.reference.where
        )
        columns = resolve_columns(df.schema, _features(spec), source=spec.source.display)
        check_feature_kinds(spec, {c.name: c.kind for c in columns})  # before the scan
        df = version_rows(df, spec, model_version)
        df = quality.with_labels(spark, df, spec)
    grouping = Grouping(slices=spec.slices, model_version=model_version)
    windowed = bool(spec.window.size and spec.source.timestamp_column)
    by_window = Grouping(timestamp_column=spec.source.timestamp_column, window=spec.window.size, slices=spec.slices,
                         model_version=model_version) if windowed else grouping
    q_parts = quality.parts(spec.quality, None) if spec.quality else []
    with progress.phase("profiling reference"):
        first = overall_groups(profile_groups(df, columns, grouping, top_k=spec.profile.top_k,
                                              kll_k=spec.profile.kll_k, sketches=Sketches.of(spec.profile),
                                              engine=spec.profile.engine))
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
                                centers=centers, sketches=replace(Sketches.of(spec.profile), hll=()),
                                parts=[*q_parts, table_checks.part(df.columns), *pca_parts], engine=spec.profile.engine)
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
    decision = _cycle_decision(spec, windows[None]) if windowed else None
    cycle = decision.cycle if decision is not None else None

    def phases_of(members: list[GroupResult]) -> list[int] | None:
        return None if cycle is None else [cycle.phase(g.key.window_start) for g in members]

    def counts_of(label: str | None, members: list[GroupResult]) -> dict[str, list[int]] | None:
        """Per model version, the row counts of ``members``' windows."""
        if by_version is None:
            return None
        starts = {g.key.window_start for g in members}
        return {v: [n for w, n in ws.items() if w in starts] for v, ws in by_version.get(label, {}).items()}

    def whole(label: str | None) -> TableProfile:
        members = windows[label]
        phases = phases_of(members)
        profiles = [g.profile for g in members]
        merged = merge_all(profiles, key=replace(key, slice=label))
        top_from = base.profile if label is None else top_by_slice[label]
        # the first pass's sketches where the binned pass kept none (spark_audit.profile.exprs.Sketches)
        cols = {n: replace(c, top=top_from.columns[n].top, top_k=top_from.columns[n].top_k,
                           kll=c.kll if c.kll is not None else top_from.columns[n].kll,
                           hll=c.hll if c.hll is not None else top_from.columns[n].hll)
                for n, c in merged.columns.items()}
        learned = reference_noise(profiles, spec, phases, None if label is None else scales)
        if label is None:
            scales.update({n: c.iid for n, c in learned.items()})
        extras = noise.noise_extras(learned, len(profiles), spec.window.size if windowed else None)
        if windowed:
            rows = [g.profile.row_count for g in members]
            extras.update(table_checks.table_extras(members, counts_of(label, members),
                                                    table_checks.spread(rows, phases)))
        if spec.quality:
            states = [quality.state(g) for g in members]
            total = quality.state(merged_group(key, members))
            extras.update(quality.reference_extras(spec.quality, total, states, phases))
        return replace(merged, columns=cols, extras=extras)

    scales: dict[str, dict[str, float]] = {}  # the sampling scales learned on all rows, reused by the slices
    profile = whole(None)
    slices = {label: whole(label) for label in windows if label is not None}
    extras = dict(profile.extras)
    if windowed:
        extras.update(multivariate.reference_extras(pca_names, pca_means, pca_stds, windows[None],
                                                    merged_group(key, windows[None]), phases_of(windows[None])))
        if extras.get("pca") and not extras["pca"].get("skipped"):
            # each slice's own band of reconstruction errors, on the overall components
            slices = {label: replace(p, extras={**p.extras, **multivariate.slice_extras(
                extras["pca"], windows[label], phases_of(windows[label]))}) for label, p in slices.items()}
        extras["cycle"] = decision.to_dict() if decision is not None else None
    if spec.training is not None:
        extras["training"] = profile_training(spark, spec, bins, model_version, progress=progress)
    phase_profiles = {} if cycle is None else _phase_profiles(
        spec, key, windows, cycle, {None: profile, **slices}, counts_of)
    profile = replace(profile, key=key, slices=slices, extras=extras, phases=phase_profiles)
    return profile, version


def _cycle_decision(spec: AuditSpec, windows: list[GroupResult]) -> CycleDecision:
    """Whether the reference's windows (all rows) follow a calendar cycle: each column's exact counts on the
    reference's bins and the windows' row counts, tested between phases against within them."""
    counts: dict[str, list[np.ndarray]] = {}
    for f in spec.features:
        cols = [w.profile.columns.get(f.name) for w in windows]
        hist = [_counts(c) for c in cols]
        if all(h is not None for h in hist):
            counts[f.name] = hist
    return cycle_mod.decide(interval_seconds(spec.window.size), [w.key.window_start for w in windows],
                            [w.profile.row_count for w in windows], counts, spec.reference.cycle)


def _counts(col: ColumnProfile | None) -> np.ndarray | None:
    """A window's exact counts of one column: its bins, or false/true for a boolean (None without them)."""
    if col is None:
        return None
    if col.kind == "boolean":
        return np.asarray([col.n_false, col.n_true], dtype=float)
    if col.bins is None or col.kind not in DRIFT_KINDS:
        return None
    return np.asarray(col.bins.counts, dtype=float)


def _phase_profiles(spec: AuditSpec, key: GroupKey, windows: dict[str | None, list[GroupResult]], cycle: Cycle,
                    wholes: dict[str | None, TableProfile], counts_of) -> dict[str, TableProfile]:
    """Per phase of the cycle, the profile of the reference windows of that phase (all rows, and per
    slice): their exact counts (no sketch: the whole reference's normalise), their row counts, their
    quality; the noise stays with the slice, learned within phases (``spark_audit.baseline``)."""
    out: dict[str, TableProfile] = {}
    for ph in range(cycle.phases):
        by_label: dict[str | None, TableProfile] = {}
        for label, members in windows.items():
            mine = [g for g in members if cycle.phase(g.key.window_start) == ph]
            if not mine:
                continue
            merged = merge_all([g.profile for g in mine], key=replace(key, slice=label))
            cols = {n: replace(c, kll=None, hll=None, top={}, top_k=0) for n, c in merged.columns.items()}
            table = (wholes[label].extras.get("table") or {})
            extras: dict[str, Any] = {"windows": len(mine)}
            extras.update(table_checks.table_extras(mine, counts_of(label, mine), table.get("spread")))
            if spec.quality:
                whole_q = wholes[label].extras.get("quality") or {}
                phase_q = quality.reference_extras(spec.quality, quality.state(merged_group(key, mine)),
                                                   calibrate=False)["quality"]
                extras["quality"] = {**phase_q, "phi": whole_q.get("phi"), "tau2": whole_q.get("tau2")}
            by_label[label] = replace(merged, columns=cols, extras=extras)
        if None in by_label:
            out[str(ph)] = replace(by_label[None], slices={k: v for k, v in by_label.items() if k is not None})
    return out


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
            df = version_rows(df, spec, model_version)
        wanted = [(n, k) for n, k in _features(spec) if n in df.columns]
        skipped = [n for n, _ in _features(spec) if n not in df.columns]
        columns = resolve_columns(df.schema, wanted, source=t.source.display)
        groups = overall_groups(profile_groups(df, columns, Grouping(model_version=model_version), bins=bins,
                                               top_k=spec.profile.top_k, kll_k=spec.profile.kll_k,
                                               sketches=Sketches.of(spec.profile),
                                               engine=spec.profile.engine))
    if not groups or groups[0].profile.row_count == 0:
        raise DataError(f"the training rows of {t.source.display!r} are empty"
                        + (f" for model version {model_version}" if model_version else ""))
    return {"profile": groups[0].profile.to_dict(), "source": t.source.display, "source_version": version,
            "start": iso_utc(t.start), "end": iso_utc(t.end), "skipped": skipped}


def training_profile(ref: TableProfile) -> TableProfile | None:
    """The training profile a reference keeps (``profile_training``), None without one."""
    t = ref.extras.get("training")
    return TableProfile.from_dict(t["profile"]) if t else None


def noise_statistics(spec: AuditSpec, name: str, kind: str) -> list[str]:
    """The statistics an audit computes on a column of ``kind`` whose noise a reference learns: the default
    deciding distance, the feature's own, and ``drift.statistics`` (tests decided on a p-value need none)."""
    dkind = "categorical" if kind == "boolean" else kind
    feature = next(f for f in spec.features if f.name == name)
    wanted = {stats.default_statistic(dkind, stats.SMALL_SAMPLE + 1, stats.SMALL_SAMPLE + 1)[0],
              *([feature.drift.statistic] if feature.drift.statistic else []), *spec.drift.statistics}
    return sorted(s for s in wanted if STATISTICS[s].applies(kind) and STATISTICS[s].null_scale)


def reference_noise(windows: list[TableProfile], spec: AuditSpec, phases: list[int] | None = None,
                    scales: dict[str, dict[str, float]] | None = None) -> dict[str, noise.ColumnNoise]:
    """Each feature's window-to-window noise in these reference windows (compared within ``phases``);
    ``scales`` per column: the statistics' sampling scales learned on all rows, which a slice reuses."""
    out = {}
    for f in spec.features:
        cols = [w.columns[f.name] for w in windows if f.name in w.columns]
        if not cols or cols[0].kind not in DRIFT_KINDS:
            continue
        wanted = noise_statistics(spec, f.name, cols[0].kind)
        groups = None if phases is None else [p for w, p in zip(windows, phases, strict=True) if f.name in w.columns]
        out[f.name] = noise.column_noise(cols, wanted, compute, groups, None if scales is None
                                         else scales.get(f.name, {}))
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
            Tag.KIND: "reference", Tag.AUDIT: spec.name,
            Tag.SOURCE: spec.source.display, Tag.SOURCE_VERSION: str(version),
            Tag.RUN_NAME: f"reference {spec.name}",
        }
        if label is not None:
            tags.update({Tag.MODEL_NAME: spec.model.name, Tag.MODEL_VERSION: str(label),
                         Tag.RUN_NAME: f"reference {spec.name} · model {label}"})
        with mlflow_run(client, exp_id, tags) as run_id:
            log_profile_artifact(client, run_id, profile)
            metrics = {"reference.rows": profile.row_count}
            for name, col in profile.columns.items():  # missing: null, NaN and inf, as the audit counts it
                metrics[metric_key("reference.missing_share", name)] = \
                    noise.missing_count(col) / col.count if col.count else math.nan
                for metric in ("mean", "std"):
                    metrics[metric_key(f"reference.{metric}", name)] = col.summary().get(metric)
            client.log_batch(run_id, metrics=[Metric(k, float(v), int(time.time() * 1000), 0)
                                              for k, v in metrics.items()
                                              if isinstance(v, (int, float)) and math.isfinite(v)])
            if mv is not None:
                client.set_model_version_tag(mv.name, mv.version, Tag.REFERENCE_RUN, run_id)
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
