"""A readable console summary of an audit."""

from __future__ import annotations

from spark_audit.findings import SEVERITIES, exit_code
from spark_audit.result import AuditResult

# failing severities shout
_MARK = {s: s.upper() if exit_code(s) else s for s in SEVERITIES}


def summary(result: AuditResult) -> str:
    """The console summary: the incidents first (one line per cause, its worst finding under it), then each
    window of all rows with its findings, then the verdict."""
    lines = [f"audit {result.audit_key} (source version {result.source_version}, "
             f"{len(result.groups)} group(s), mlflow run {result.mlflow_run_id or '-'})"]
    lines += incident_lines(result)
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
        lines.append(f"{len(sliced)} finding(s) in slices (see the findings table)")
    if result.notified is not None and result.notified.failed:
        lines += [f"notification failed: {i} to {url}: {e} (the next audit tries again)"
                  for url, i, e in result.notified.failed]
    lines.append(f"status: {result.status_severity or 'ok'}"
                 + (f" ({len(result.active)} active incident(s))" if result.incidents is not None else "")
                 + f"; worst finding: {result.worst_severity or 'none'}; exit code {result.exit_code}")
    return "\n".join(lines)


def incident_lines(result: AuditResult) -> list[str]:
    """``incidents: 2 open (1 critical), 1 resolved, 1 acknowledged; 40 findings`` and one line per incident."""
    if result.incidents is None:
        return []
    if not result.incidents:
        return ["incidents: none"]
    open_ = [i for i in result.incidents if i.status == "open"]
    by_sev = ", ".join(f"{n} {s}" for s in reversed(SEVERITIES) if (n := sum(i.severity == s for i in open_)))
    quiet = sum(bool(i.suppressed) for i in result.incidents)
    head = (f"incidents: {len(open_)} open" + (f" ({by_sev})" if by_sev else "")
            + f", {len(result.incidents) - len(open_)} resolved" + (f", {quiet} suppressed" if quiet else "")
            + f"; {len(result.findings)} finding(s)")
    out = [head]
    for i in result.incidents:
        out.append(f"  {i.text()}")
        if i.message and i.touched:
            out.append(f"  ↳ {i.message}")
    return out


def _line(f) -> str:
    return f"    {_MARK[f.severity]:<8} {f.kind:<13} {f.column or '(table)':<18} {f.message}"
