"""A readable console summary of an audit."""

from __future__ import annotations

from spark_audit.audit import AuditResult
from spark_audit.findings import SEVERITIES, exit_code
from spark_audit.timeutil import iso_utc

# failing severities shout
_MARK = {s: s.upper() if exit_code(s) else s for s in SEVERITIES}


def summary(result: AuditResult) -> str:
    lines = [f"audit {result.audit_key} (source version {result.source_version}, "
             f"{len(result.groups)} group(s), mlflow run {result.mlflow_run_id or '-'})"]
    overall = [g for g in result.groups if g.key.slice is None]
    share = {(iso_utc(d["window_start"]), d["model_version"]): d for d in result.dataset
             if d["slice"] is None and d["drift_type"] == "reference"}
    lines += [_line(f) for f in result.findings if f.window_start is None and f.slice is None]
    lines.append(f"{'window':<22} {'model':>6} {'rows':>8} {'drift share':>12}  findings")
    for g in overall:
        k = g.key
        found = [f for f in result.findings if f.window_start and f.window_start == k.window_start and f.slice is None
                 and f.model_version == k.model_version]
        d = share.get((k.window_start, k.model_version))
        share_txt = f"{d['drifted_columns']}/{d['columns']}" if d else "-"
        lines.append(f"{(k.window_start or 'all')[:19]:<22} {k.model_version or '-':>6} "
                     f"{g.profile.row_count:>8} {share_txt:>12}  {len(found) or 'ok'}")
        lines += [_line(f) for f in found]
    sliced = [f for f in result.findings if f.slice is not None]
    if sliced:
        lines.append(f"{len(sliced)} finding(s) in slices (see the drift_metrics table)")
    lines.append(f"worst severity: {result.worst_severity or 'none'}; exit code {result.exit_code}")
    return "\n".join(lines)


def _line(f) -> str:
    return f"    {_MARK[f.severity]:<8} {f.kind:<13} {f.column or '(table)':<18} {f.message}"


def compare_versions(spark, spec, *, model: str | None = None) -> str:
    """Model versions side by side from the result tables (complete runs, newest per window)."""
    from pyspark.sql import functions as F

    from spark_audit import store

    model = model or spec.model.name
    runs = store.complete(spark, spec.output, "audit_runs")
    if runs is None:
        return f"no complete audits under {spec.output.path or spec.output.database}"
    if model:
        runs = runs.where(F.col("model_name") == model)
    names = sorted({r.audit_name for r in runs.select("audit_name").distinct().collect()})
    if not names:
        return f"no complete audits of model {model!r}"
    in_audits = F.col("audit_name").isin(names)
    overall = in_audits & F.col("slice").isNull()
    rows: dict[str, dict[str, str]] = {}

    def put(version, key, value):
        rows.setdefault(str(version), {})[key] = value

    ds = store.complete(spark, spec.output, "dataset_drift")
    if ds is not None:
        for r in (ds.where(overall & (F.col("drift_type") == "reference")).groupBy("model_version")
                  .agg(F.count("*").alias("w"), F.avg("drift_share").alias("mean"), F.max("drift_share").alias("mx"),
                       F.sum(F.col("drifted").cast("int")).alias("d")).collect()):
            put(r.model_version, "windows", str(r.w))
            put(r.model_version, "drift share mean/max", f"{r.mean:.2f}/{r.mx:.2f}")
            put(r.model_version, "drifted windows", str(r.d))
    prof = store.complete(spark, spec.output, "profile_metrics")
    if prof is not None:
        first_col = prof.where(overall).select("column").first()
        if first_col is not None:
            for r in (prof.where(overall & (F.col("column") == first_col[0])).groupBy("model_version")
                      .agg(F.sum("row_count").alias("n")).collect()):
                put(r.model_version, "rows", str(r.n))
    perf = store.complete(spark, spec.output, "performance_metrics")
    watched = spec.quality.watched() if spec.quality else ()
    if perf is not None and watched:
        latest = (perf.where(overall & F.col("metric").isin(list(watched)) & F.col("value").isNotNull())
                  .groupBy("model_version", "metric")
                  .agg(F.max_by("value", "window_start").alias("last"), F.first("reference_value").alias("ref"))
                  .collect())
        for r in latest:
            ref = "-" if r.ref is None else f"{r.ref:.3f}"
            put(r.model_version, f"{r.metric} last/ref", f"{r.last:.3f}/{ref}")
    cv = store.complete(spark, spec.output, "contract_violations")
    if cv is not None:
        for r in (cv.where(overall & ~F.col("passed")).groupBy("model_version").count().collect()):
            put(r.model_version, "contract failures", str(r["count"]))
    if not rows:
        return f"no results for model {model!r}"
    columns = ["windows", "rows", "drift share mean/max", "drifted windows",
               *[f"{m} last/ref" for m in watched], "contract failures"]
    widths = {c: max(len(c), *(len(v.get(c, "-")) for v in rows.values())) for c in columns}
    head = f"{'version':<8} " + " ".join(f"{c:>{widths[c]}}" for c in columns)
    lines = [f"model {model or '(any)'}: audits {', '.join(names)}", head]
    for version in sorted(rows, key=lambda v: (len(v), v)):
        vals = rows[version]
        lines.append(f"{version:<8} " + " ".join(f"{vals.get(c, '-'):>{widths[c]}}" for c in columns))
    return "\n".join(lines)
