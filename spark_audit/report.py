"""A readable console summary of an audit."""

from __future__ import annotations

from spark_audit.audit import AuditResult

_MARK = {"critical": "CRITICAL", "error": "ERROR", "warning": "warning", "info": "info"}


def summary(result: AuditResult) -> str:
    lines = [f"audit {result.audit_key} (source version {result.source_version}, "
             f"{len(result.groups)} group(s), mlflow run {result.mlflow_run_id or '-'})"]
    overall = [g for g in result.groups if g.key.slice is None]
    share = {(d["window_start"], d["model_version"]): d for d in result.dataset
             if d["slice"] is None and d["drift_type"] == "reference"}
    for f in result.findings:
        if f.window_start is None and f.slice is None:
            lines.append(f"    {_MARK[f.severity]:<8} {f.kind:<13} {f.column or '(table)':<18} {f.message}")
    lines.append(f"{'window':<22} {'model':>6} {'rows':>8} {'drift share':>12}  findings")
    for g in overall:
        k = g.key
        found = [f for f in result.findings if f.window_start and f.window_start == k.window_start and f.slice is None
                 and f.model_version == k.model_version]
        d = next((v for (ws, mv), v in share.items()
                  if mv == k.model_version and (ws and ws.isoformat()[:19]) == (k.window_start or "")[:19]), None)
        share_txt = f"{d['drifted_columns']}/{d['columns']}" if d else "-"
        lines.append(f"{(k.window_start or 'all')[:19]:<22} {k.model_version or '-':>6} "
                     f"{g.profile.row_count:>8} {share_txt:>12}  {len(found) or 'ok'}")
        for f in found:
            lines.append(f"    {_MARK[f.severity]:<8} {f.kind:<13} {f.column or '(table)':<18} {f.message}")
    sliced = [f for f in result.findings if f.slice is not None]
    if sliced:
        lines.append(f"{len(sliced)} finding(s) in slices (see the drift_metrics table)")
    lines.append(f"worst severity: {result.worst_severity or 'none'}; exit code {result.exit_code}")
    return "\n".join(lines)
