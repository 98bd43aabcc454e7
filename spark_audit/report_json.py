"""An audit's outcome as a JSON-safe dict: what ``spark-audit audit --format json`` prints.

The same figures as the console summary (``spark_audit.report.summary``): one entry per window of all rows
(no slice) with its rows, drift share and number of findings, and every finding. Values are plain ``str``,
``int``, ``float``, ``bool`` or ``None``: NaN and infinities become ``None`` (JSON has no NaN), times are
ISO-8601 UTC strings.
"""

from __future__ import annotations

from typing import Any

from spark_audit.rows import finite

FINDING_FIELDS = ("severity", "kind", "column", "window_start", "slice", "model_version", "statistic", "value",
                  "threshold", "q_value", "message")
_NUMBERS = ("value", "threshold", "q_value")


def result_json(result) -> dict[str, Any]:
    """``result`` (an ``AuditResult``) as a dict ``json.dumps`` accepts (``allow_nan=False`` too).

    Keys: ``audit_key``, ``audit_run_id``, ``mlflow_run_id``, ``source_version``, ``model_version``,
    ``exit_code``, ``worst_severity`` (of the findings), ``status`` (of the active incidents), ``incidents``
    (``incident_json``), ``windows`` (per window of all rows: ``window_start``, ``window_end``,
    ``model_version``, ``rows``, ``columns``, ``drifted_columns``, ``drift_share``, ``findings``, a count)
    and ``findings`` (each with ``FINDING_FIELDS``).
    """
    windows = []
    for g, d, found in result.windows():
        k = g.key
        windows.append({
            "window_start": k.window_start,
            "window_end": k.window_end,
            "model_version": k.model_version,
            "rows": int(g.profile.row_count),
            "columns": None if d is None else int(d["columns"]),
            "drifted_columns": None if d is None else int(d["drifted_columns"]),
            "drift_share": None if d is None else finite(d["drift_share"]),
            "findings": len(found),
        })
    return {
        "audit_key": result.audit_key,
        "audit_run_id": result.audit_run_id,
        "mlflow_run_id": result.mlflow_run_id,
        "source_version": result.source_version,
        "model_version": result.model_version,
        "exit_code": result.exit_code,
        "worst_severity": result.worst_severity,
        "status": result.status_severity or "ok",
        "incidents": [incident_json(i) for i in result.incidents or []],
        "windows": windows,
        "findings": [_finding(f) for f in result.findings],
    }


def incident_json(i) -> dict[str, Any]:
    """An incident (``spark_audit.incidents.Incident``) as JSON: snake_case keys, numbers as numbers."""
    return {"incident_id": i.incident_id, "title": i.title(), "status": i.status, "severity": i.severity,
            "model_version": i.cause.model_version, "slice": i.cause.slice, "family": i.cause.family,
            "subject": i.cause.subject, "first_window": i.first_window, "last_window": i.last_window,
            "windows": len([w for w in i.window_findings if w]), "findings": i.finding_count,
            "slices": list(i.slices), "kinds": list(i.kinds), "message": i.message, "suppressed": i.suppressed,
            "in_this_audit": i.touched}


def _finding(f) -> dict[str, Any]:
    out = {name: getattr(f, name) for name in FINDING_FIELDS}
    for name in _NUMBERS:
        out[name] = finite(out[name])
    return out

