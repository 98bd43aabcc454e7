"""A readable console summary of an audit."""

from __future__ import annotations

from spark_audit.findings import SEVERITIES, exit_code
from spark_audit.readback import complete_frames
from spark_audit.result import AuditResult, version_order
from spark_audit.rubric import TESTS as RUBRIC_TESTS
from spark_audit.store import GATE_SUFFIX
from spark_audit.timeutil import iso_utc

# failing severities shout
_MARK = {s: s.upper() if exit_code(s) else s for s in SEVERITIES}


def summary(result: AuditResult) -> str:
    lines = [f"audit {result.audit_key} (source version {result.source_version}, "
             f"{len(result.groups)} group(s), mlflow run {result.mlflow_run_id or '-'})"]
    lines += [_line(f) for f in result.findings if f.window_start is None and f.slice is None]
    lines.append(f"{'window':<22} {'model':>6} {'rows':>8} {'drift share':>12}  findings")
    for g, d, found in result.windows():
        k = g.key
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


VERSION_COLUMNS = ("last audit", "windows", "last window", "rows", *reversed(SEVERITIES), "drift windows")


def version_table(output, *, model: str | None = None, watched: tuple[str, ...] = (), spark=None) -> dict:
    """Every model version's health from the result tables (complete runs, newest per window): the
    worst severity of its last audit, windows and rows audited, findings per severity, windows with a
    drift finding, the watched quality metrics (last window against the reference) and contract
    failures. ``output`` is an audit spec's ``output``; ``model`` a model name (default: any). Reads the
    result tables without Spark when they are a folder (``spark_audit.readback``); metastore tables
    need ``spark``."""
    t = complete_frames(output, {
        "audit_runs": (), "profile_metrics": ("slice", "row_count"),
        "findings": ("slice", "kind", "severity"),
        "performance_metrics": ("slice", "metric", "value", "reference_value"),
        "contract_violations": ("slice", "passed"),
        "rubric": ("test_id", "test", "status", "points", "in_score", "evidence")}, spark)
    runs = t["audit_runs"]
    gates = None
    if runs is not None:  # a gate's run row (``<audit>:gate``) is not an audit of the version
        is_gate = runs["audit_name"].str.endswith(GATE_SUFFIX)
        gates, runs = runs[is_gate], runs[~is_gate]
    if model and runs is not None:
        runs = runs[runs["model_name"] == model]
        gates = gates[gates["model_name"] == model]
    table = {"model": model, "audits": [] if runs is None else sorted(runs["audit_name"].unique()), "versions": []}
    if runs is None or runs.empty:
        table["message"] = f"no complete audits under {output.path or output.database}" + (
            f" of model {model!r}" if model else "")
        return table

    def mine(name: str, overall: bool = True):
        df = t[name]
        if df is None:
            return None
        df = df[df["audit_name"].isin(table["audits"])].assign(_v=lambda d: d["model_version"].map(_version_label))
        return df[df["slice"].isna()] if overall else df

    # a version is any the rows name; an audit with one reference for all versions has runs of no version
    runs = runs.assign(_v=runs["model_version"].map(_version_label)).sort_values("finished_at")
    prof = mine("profile_metrics")
    found = mine("findings", overall=False)
    if found is not None:  # a table-level finding of a one-version audit is that version's
        run_version = dict(zip(runs["audit_run_id"], runs["_v"], strict=True))
        inherited = found["audit_run_id"].map(run_version).fillna(NO_VERSION)
        found = found.assign(_v=found["_v"].where(found["_v"] != NO_VERSION, inherited))
    seen = set(runs["_v"]) | (set() if prof is None else set(prof["_v"]))
    named = {v for v in seen if v != NO_VERSION}
    rows = {v: {"version": v, "audit runs": 0, **dict.fromkeys(SEVERITIES, 0), "drift windows": 0, "last audit": None}
            for v in (named or seen)}
    for v, row in rows.items():
        by_rows = set() if prof is None else set(prof.loc[prof["_v"] == v, "audit_run_id"])
        theirs = runs[(runs["_v"] == v) | runs["audit_run_id"].isin(by_rows)]
        row["audit runs"] = len(theirs)
        if theirs.empty:
            continue
        newest = theirs.iloc[-1]  # its verdict; of this version's findings when the run audited several
        if newest["_v"] == v or found is None:
            row["last audit"] = newest["worst_severity"] or "ok"
        else:
            own = found[(found["audit_run_id"] == newest["audit_run_id"]) & (found["_v"] == v)]["severity"]
            row["last audit"] = max(own, key=SEVERITIES.index, default="ok")

    def put(version, **values):
        if version in rows:
            rows[version].update(values)

    if prof is not None:  # rows and windows: the largest column count per window (all rows, no slice)
        per_window = prof.groupby(["_v", "window_start"])["row_count"].max().reset_index()
        for version, w in per_window.groupby("_v"):
            put(version, windows=len(w), rows=int(w["row_count"].sum()),
                **{"last window": iso_utc(w["window_start"].max())[:10]})
    if found is not None:
        for version, f in found.groupby("_v"):
            put(version, **{s: int((f["severity"] == s).sum()) for s in SEVERITIES},
                **{"drift windows": int(f.loc[f["kind"].isin(DRIFT_FINDINGS), "window_start"].nunique())})
    perf = mine("performance_metrics")
    if perf is not None and watched:
        perf = perf[perf["metric"].isin(watched) & perf["value"].notna()].sort_values("window_start")
        for (version, metric), m in perf.groupby(["_v", "metric"]):
            last = m.iloc[-1]
            ref = last["reference_value"]
            put(version, **{f"{metric} last/ref": [float(last["value"]), None if ref != ref else float(ref)]})
    cv = mine("contract_violations")
    if cv is not None:
        for version, c in cv[cv["passed"].eq(False)].groupby("_v"):
            put(version, **{"contract failures": len(c)})
    table["rubric"], table["rubric_tests"] = _rubric_by_version(t.get("rubric"), runs, rows)
    for v, cells in table["rubric"].items():
        put(v, **{"ML Test Score": cells.get("score")})
    if gates is not None and not gates.empty:
        for v, g in gates.assign(_v=gates["model_version"].map(_version_label)).sort_values("finished_at") \
                .groupby("_v"):
            last = g.iloc[-1]
            champion = str(last["reference_uri"]).rsplit("/", 1)[-1]
            put(v, gate=f"{'pass' if last['exit_code'] == 0 else 'fail'} vs {champion}")
    table["columns"] = [*VERSION_COLUMNS, *[f"{m} last/ref" for m in watched], "contract failures",
                        "ML Test Score", "gate"]
    table["versions"] = [rows[v] for v in sorted(rows, key=version_order)]
    return table


NO_VERSION = "-"  # rows of no model version


def _rubric_by_version(rub, runs, rows) -> tuple[dict, dict]:
    """Per version, its newest audit's rubric: ``{version: {test_id: status, "score": "6/7"}}``, and the
    tests' titles in order."""
    if rub is None or rub.empty:
        return {}, {}
    fin = dict(zip(runs["audit_run_id"], runs["finished_at"], strict=True))
    rub = rub.assign(_v=rub["model_version"].map(_version_label), _fin=rub["audit_run_id"].map(fin))
    rub = rub[rub["_fin"].notna()]
    out, titles = {}, {}
    for v, r in rub.groupby("_v"):
        if v not in rows:
            continue
        newest = r[r["audit_run_id"] == r.sort_values("_fin").iloc[-1]["audit_run_id"]]
        cells = dict(zip(newest["test_id"], newest["status"], strict=True))
        scored = newest[newest["in_score"]]
        cells["score"] = f"{scored['points'].sum():g}/{len(scored)}"
        out[v] = cells
        titles.update(dict(zip(newest["test_id"], newest["test"], strict=True)))
    order = [t.id for t in RUBRIC_TESTS if t.id in titles]
    return out, {k: titles[k] for k in order}


def _version_label(v) -> str:
    return NO_VERSION if v is None or v != v else str(v)


# the finding kinds a window's distribution is judged by
DRIFT_FINDINGS = ("drift", "dataset_drift", "multivariate_drift")


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "/".join("-" if x is None else f"{x:.3f}" for x in value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return _MARK.get(value, str(value)) if isinstance(value, str) else str(value)


def spec_version_table(spec, *, model: str | None = None, spark=None) -> dict:
    """``version_table`` of an audit spec: its output, its model (or ``model``), its watched metrics."""
    return version_table(spec.output, model=model or spec.model.name,
                         watched=spec.quality.watched() if spec.quality else (), spark=spark)


def compare_versions(spec, *, model: str | None = None, spark=None) -> str:
    """``spec_version_table`` as text: one line per model version."""
    table = spec_version_table(spec, model=model, spark=spark)
    if not table["versions"]:
        return table["message"]
    columns = table["columns"]
    cells = [{c: _cell(v.get(c)) for c in columns} for v in table["versions"]]
    widths = {c: max(len(c), *(len(x[c]) for x in cells)) for c in columns}
    lines = [f"model {table['model'] or '(any)'}: audits {', '.join(table['audits'])}",
             f"{'version':<8} " + " ".join(f"{c:>{widths[c]}}" for c in columns)]
    for v, x in zip(table["versions"], cells, strict=True):
        lines.append(f"{v['version']:<8} " + " ".join(f"{x[c]:>{widths[c]}}" for c in columns))
    lines.append("last audit: the worst finding of the version's newest audit; findings per severity and drift "
                 "windows over its audited windows (newest run per window)")
    if table.get("rubric"):
        versions = [v["version"] for v in table["versions"]]
        width = max(len(t) for t in (*versions, "not measured"))
        lines += ["", "ML Test Score, monitoring tests (Breck et al. 2017), each version's newest audit:",
                  f"{'test':<64}" + "".join(f" {v:>{width}}" for v in versions)]
        for test_id, title in table["rubric_tests"].items():
            label = (test_id.replace("monitor_", "M") + " " if test_id.startswith("monitor_") else "") + title
            label = label if len(label) <= 63 else label[:60] + "..."
            lines.append(f"{label:<64}" + "".join(
                f" {table['rubric'].get(v, {}).get(test_id, '-'):>{width}}" for v in versions))
        lines.append(f"{'score (1 point per automated test; M1-M7)':<64}" + "".join(
            f" {table['rubric'].get(v, {}).get('score', '-'):>{width}}" for v in versions))
    return "\n".join(lines)
