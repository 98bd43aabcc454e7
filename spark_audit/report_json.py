"""An audit's outcome as a JSON-safe dict: what ``spark-audit audit --format json`` prints.

The same figures as the console summary (``spark_audit.report.summary``): one entry per window of all rows
(no slice) with its rows, drift share and number of findings, and every finding. Values are plain ``str``,
``int``, ``float``, ``bool`` or ``None``: NaN and infinities become ``None`` (JSON has no NaN), times are
ISO-8601 UTC strings.
"""

from __future__ import annotations

import math
from typing import Any

from spark_audit.timeutil import iso_utc

FINDING_FIELDS = ("severity", "kind", "column", "window_start", "slice", "model_version", "statistic", "value",
                  "threshold", "q_value", "message")
_NUMBERS = ("value", "threshold", "q_value")


def result_json(result) -> dict[str, Any]:
    """``result`` (an ``AuditResult``) as a dict ``json.dumps`` accepts (``allow_nan=False`` too).

    Keys: ``audit_key``, ``audit_run_id``, ``mlflow_run_id``, ``source_version``, ``model_version``,
    ``exit_code``, ``worst_severity``, ``windows`` (per window of all rows: ``window_start``, ``window_end``,
    ``model_version``, ``rows``, ``columns``, ``drifted_columns``, ``drift_share``, ``findings``, a count)
    and ``findings`` (each with ``FINDING_FIELDS``).
    """
    share = {(iso_utc(d["window_start"]), d["model_version"]): d for d in result.dataset
             if d["slice"] is None and d["drift_type"] == "reference"}
    windows = []
    for g in result.groups:
        k = g.key
        if k.slice is not None:
            continue
        d = share.get((k.window_start, k.model_version))
        windows.append({
            "window_start": k.window_start,
            "window_end": k.window_end,
            "model_version": k.model_version,
            "rows": int(g.profile.row_count),
            "columns": None if d is None else int(d["columns"]),
            "drifted_columns": None if d is None else int(d["drifted_columns"]),
            "drift_share": None if d is None else _number(d["drift_share"]),
            "findings": sum(1 for f in result.findings if f.window_start and f.window_start == k.window_start
                            and f.slice is None and f.model_version == k.model_version),
        })
    return {
        "audit_key": result.audit_key,
        "audit_run_id": result.audit_run_id,
        "mlflow_run_id": result.mlflow_run_id,
        "source_version": result.source_version,
        "model_version": result.model_version,
        "exit_code": result.exit_code,
        "worst_severity": result.worst_severity,
        "windows": windows,
        "findings": [_finding(f) for f in result.findings],
    }


def _finding(f) -> dict[str, Any]:
    out = {name: getattr(f, name) for name in FINDING_FIELDS}
    for name in _NUMBERS:
        out[name] = _number(out[name])
    return out


def _number(v: Any) -> float | None:
    """A float for a finite number (numpy scalars too); None for None, NaN, +/-inf or a non-number."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
