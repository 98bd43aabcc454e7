"""Findings: what an audit wants a human (or a scheduler) to know, and how they are decided.

Severities, in rising order (the one place they are defined):

- ``info``: recorded, nobody needs to act (a column outside the contract, a group too
  small to judge, a reference without window noise);
- ``warning``: look at it today (material drift or decay with evidence beyond sampling
  noise, a history anomaly);
- ``error``: a broken data contract (a rule of the contract failed);
- ``critical``: page someone now (the model's inputs are broken: a missing-value burst,
  a changed type, drift or decay far beyond the material threshold, with evidence).

An audit exits 1 when any finding is ``error`` or ``critical`` (``spark_audit.errors.EXIT_CODES``).

Most findings are statistical: a :class:`Candidate` carries the evidence (a p-value)
and whether the effect is material. :func:`decide` puts every candidate of an audit
into one Benjamini-Hochberg family and raises the material ones whose q-value is
within the false discovery rate. Candidates of groups too small to judge are recorded
with their numbers, never raised.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from spark_audit.drift.stats import benjamini_hochberg
from spark_audit.errors import EXIT_FINDINGS, EXIT_OK

SEVERITIES = ("info", "warning", "error", "critical")
"""The one severity order, mildest first."""
FAILING = "error"
"""The mildest severity that fails an audit (exit code 1)."""


@dataclass(frozen=True)
class Finding:
    severity: str  # one of SEVERITIES
    kind: str  # drift, dataset_drift, missing, schema, contract, quality, quality_estimate, anomaly, ...
    message: str
    column: str | None = None  # a feature, or a quality metric
    window_start: str | None = None
    slice: str | None = None
    model_version: str | None = None
    statistic: str | None = None
    value: float | None = None
    threshold: float | None = None
    q_value: float | None = None


def worst(severities: Iterable[str]) -> str | None:
    found = list(severities)
    return max(found, key=SEVERITIES.index) if found else None


def exit_code(worst_severity: str | None) -> int:
    failing = worst_severity is not None and SEVERITIES.index(worst_severity) >= SEVERITIES.index(FAILING)
    return EXIT_FINDINGS if failing else EXIT_OK


@dataclass
class Candidate:
    """A finding that is raised only if ``material`` and its q-value is within the FDR.

    ``p_value``: the evidence (NaN when no test could run: then it is never raised).
    ``judged``: False for a group below the minimum size; it stays out of the family.
    ``rows``: result rows that record the candidate's p- and q-value (keys ``p_value``,
    ``q_value``) and, when they have the key, ``drifted``.
    """

    finding: Finding
    p_value: float
    material: bool = True
    judged: bool = True
    rows: list[dict[str, Any]] = field(default_factory=list)


def decide(candidates: list[Candidate], fdr: float) -> list[Finding]:
    """The raised findings, with their q-values; every candidate's rows get p and q."""
    p = np.asarray([c.p_value if c.judged and c.p_value is not None and math.isfinite(c.p_value) else np.nan
                    for c in candidates], dtype=float)
    q = benjamini_hochberg(p) if len(p) else p
    raised = []
    for c, qv in zip(candidates, q, strict=True):
        qf = float(qv) if math.isfinite(qv) else None
        hit = bool(c.judged and c.material and qf is not None and qf <= fdr)
        for row in c.rows:
            row["q_value"] = qf
            if "drifted" in row:
                row["drifted"] = hit
                if "critical" in row:
                    row["critical"] = bool(row["critical"] and hit)
        if hit:
            raised.append(replace(c.finding, q_value=qf))
    return raised
