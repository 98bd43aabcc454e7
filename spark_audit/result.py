"""What an audit produces, and the window range it covers: plain data, no Spark, no MLflow.

The orchestrator (``spark_audit.audit``) fills an :class:`AuditResult`; the report, the JSON
output, the MLflow logger and the result writer read it. Keeping the type here, below all of
them, is what lets each of them depend on it without depending on the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spark_audit.errors import AuditError
from spark_audit.findings import Finding, exit_code, worst
from spark_audit.incidents import Incident
from spark_audit.notify import Delivery
from spark_audit.profile.profiler import GroupResult
from spark_audit.spec import AuditSpec
from spark_audit.timeutil import interval_seconds, iso_utc


@dataclass(frozen=True)
class AuditWindow:
    """The range an audit covers, ``[start, end)``, and its window size (None: one window, the whole
    range). ``start``/``end`` None mean "from the first row" / "to the last row"."""

    start: datetime | None = None
    end: datetime | None = None
    size: str | None = None

    @classmethod
    def of(cls, spec: AuditSpec, start: datetime | None = None, end: datetime | None = None) -> AuditWindow:
        """The spec's range, narrowed by ``start``/``end`` when given (the CLI's ``--start``/``--end``)."""
        return cls(start or spec.window.start, end or spec.window.end, spec.window.size)

    @property
    def seconds(self) -> int | None:
        """The window size in seconds, None without one."""
        return interval_seconds(self.size) if self.size else None

    def reaches(self, now: datetime) -> bool:
        """Whether the range reaches the present (within two windows): freshness means something then,
        and not for a backfill of old windows."""
        if not self.size:
            return False
        return self.end is None or self.end.timestamp() >= now.timestamp() - 2 * interval_seconds(self.size)

    def text(self) -> str:
        """`` between <start> and <end>`` (empty when the range is open on both sides)."""
        return f" between {iso_utc(self.start)} and {iso_utc(self.end)}" if self.start or self.end else ""


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
    # the incidents this audit changed (spark_audit.incidents); None when they were not tracked
    incidents: list[Incident] | None = None
    notified: Delivery | None = None  # what the notifications did

    @property
    def worst_severity(self) -> str | None:
        """The worst finding's severity."""
        return worst(f.severity for f in self.findings)

    @property
    def active(self) -> list[Incident]:
        """The incidents this audit saw that nobody has suppressed: what its exit code and status count."""
        return [i for i in self.incidents or [] if i.touched and not i.suppressed]

    @property
    def status_severity(self) -> str | None:
        """The audit's verdict: its active incidents' worst severity when incidents were tracked (an
        acknowledged incident no longer counts), else its findings'."""
        if self.incidents is None:
            return self.worst_severity
        return worst(i.severity for i in self.active)

    @property
    def exit_code(self) -> int:
        return exit_code(self.status_severity)

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


def version_order(v: str) -> tuple:
    """Model versions in numeric order where they are numbers ("2" before "10").

    >>> sorted(["10", "2", "b", "1"], key=version_order)
    ['1', '2', '10', 'b']
    """
    return (0, int(v), v) if v.isdigit() else (1, 0, v)
