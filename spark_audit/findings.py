"""A finding: one thing an audit wants a human (or a scheduler) to know."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class Finding:
    severity: str  # one of SEVERITIES; error and critical make the audit exit 1
    kind: str  # drift, dataset_drift, missing, schema, contract, quality, quality_estimate, anomaly
    message: str
    column: str | None = None  # a feature, or a quality metric
    window_start: str | None = None
    slice: str | None = None
    model_version: str | None = None
