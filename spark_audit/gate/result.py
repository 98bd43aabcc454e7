"""A gate's outcome, and its text: what the CLI prints and the MLflow run describes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from spark_audit.errors import EXIT_FINDINGS, EXIT_OK
from spark_audit.gate.decide import GateRow
from spark_audit.rows import finite


@dataclass
class GateResult:
    spec_name: str
    model: str
    candidate: str
    champion: str
    champion_label: str  # "1" or "1 (@champion)"
    confidence: float
    replicates: int
    source_version: int
    rows: list[GateRow]
    reasons: list[str]
    gate_key: str = ""
    gate_run_id: str = ""
    mlflow_run_id: str | None = None
    promoted: str | None = None  # the alias moved to the candidate
    paired_rows: int = -1
    slices_protected: bool = True
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_FINDINGS

    def overall(self) -> list[GateRow]:
        return [r for r in self.rows if r.slice is None]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes None): what ``spark-audit gate --format json`` prints."""
        return {
            "audit": self.spec_name, "model": self.model, "candidate": self.candidate, "champion": self.champion,
            "passed": self.passed, "exit_code": self.exit_code, "reasons": self.reasons,
            "confidence": self.confidence, "replicates": self.replicates, "source_version": self.source_version,
            "gate_key": self.gate_key, "mlflow_run_id": self.mlflow_run_id, "promoted": self.promoted,
            "rows": [{"slice": r.slice, "metric": r.metric, "n": r.n, "champion": finite(r.champion_value),
                      "candidate": finite(r.candidate_value), "difference": finite(r.difference),
                      "low": finite(r.interval.low), "high": finite(r.interval.high),
                      "standard_error": finite(r.interval.standard_error), "p_value": finite(r.interval.p_value),
                      "q_value": finite(r.q_value), "verdict": r.verdict, "protected": r.protected,
                      "failed": r.failed} for r in self.rows],
        }


def _num(v: float, sign: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:+.4f}" if sign else f"{v:.4f}"


def summary(result: GateResult, *, slices: bool = True) -> str:
    """The decision, then a table: all rows first, then each slice, one line per metric."""
    head = (f"gate {result.spec_name}: candidate model {result.candidate} vs champion model {result.champion_label} "
            f"on {result.overall()[0].n if result.overall() else 0:,} paired labelled rows, "
            f"{result.confidence:.0%} intervals from {result.replicates} Poisson bootstrap replicates")
    lines = [head, ""]
    hdr = f"{'slice':<16}{'metric':<11}{'n':>7}  {'champion':>9}{'candidate':>10}  {'difference':>10}  " \
          f"{'interval':<21} verdict"
    lines += [hdr, "-" * len(hdr)]
    for r in result.rows:
        if r.slice is not None and not slices:
            continue
        iv = r.interval
        ci = f"[{_num(iv.low, True)}, {_num(iv.high, True)}]" if math.isfinite(iv.low) else "-"
        mark = "  << fails the gate" if r.failed else ""
        lines.append(f"{(r.slice or '(all rows)'):<16}{r.metric:<11}{r.n:>7}  {_num(r.champion_value):>9}"
                     f"{_num(r.candidate_value):>10}  {_num(iv.difference, True):>10}  {ci:<21} {r.verdict}{mark}")
    lines.append("")
    if result.passed:
        lines.append(f"PASS: model {result.candidate} may replace model {result.champion_label}"
                     + ("" if result.slices_protected else " (slices not protected)"))
    else:
        lines.append(f"FAIL: model {result.candidate} may not replace model {result.champion_label}:")
        lines += [f"  - {reason}" for reason in result.reasons]
    if result.promoted:
        lines.append(f"promoted: @{result.promoted} now points to model {result.candidate}")
    return "\n".join(lines)
