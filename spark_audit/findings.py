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
FAILS_AUDIT = "error"
"""The mildest severity that fails an audit (exit code 1)."""
FAILS_TEST = "warning"
"""The mildest severity that fails the ML Test Score test its kind belongs to (``spark_audit.rubric``)."""


@dataclass(frozen=True)
class FindingKind:
    """One kind of finding: what it means, the severities it can take, and the ML Test Score monitoring
    test it fails (``rubric``: a test id of ``spark_audit.rubric.TESTS``, or None with ``why_no_test``)."""

    name: str
    meaning: str
    severities: tuple[str, ...]
    rubric: str | None = None
    why_no_test: str = ""


KINDS: dict[str, FindingKind] = {k.name: k for k in (
    FindingKind("schema", "a column's type differs from the reference's", ("critical",), "monitor_1"),
    FindingKind("missing", "a jump in a column's missing share (null, NaN, inf) over the reference's",
                ("warning", "critical"), "monitor_1"),
    FindingKind("missing_window", "an expected window has no rows", ("warning",), "monitor_1"),
    FindingKind("stale", "the newest expected windows have no rows", ("critical",), "monitor_1"),
    FindingKind("freshness", "the newest row or the latest Delta commit is older than allowed", ("warning",),
                "monitor_1"),
    FindingKind("volume", "a window's row count against the reference's or its own history", ("warning",),
                "monitor_1"),
    FindingKind("duplicates", "a window's share of duplicated rows against the reference's", ("warning",),
                "monitor_1"),
    FindingKind("contract", "a rule of the data contract failed", ("info", "warning", "error", "critical"),
                "monitor_2"),
    FindingKind("skew", "a window's feature against the training rows' (training/serving skew)",
                ("warning", "critical"), "monitor_3"),
    FindingKind("quality", "realised quality worse than the reference's", ("warning", "critical"), "monitor_7"),
    FindingKind("quality_estimate", "label-free estimated quality worse than the reference's", ("warning",),
                "monitor_7"),
    FindingKind("anomaly", "a quality metric outside its own history", ("warning",), "monitor_7"),
    FindingKind("drift", "a feature's distribution against the reference's", ("warning", "critical"),
                why_no_test="input drift is not one of the paper's monitoring tests: recorded, it fails none"),
    FindingKind("dataset_drift", "the share of drifted features reaches the spec's threshold", ("critical",),
                why_no_test="input drift (see drift)"),
    FindingKind("multivariate_drift", "the joint distribution of the numeric features changed (PCA error)",
                ("warning",), why_no_test="input drift (see drift)"),
    FindingKind("fairness", "a rate differs between the groups of a protected attribute", ("warning",),
                why_no_test="fairness is outside the paper's monitoring section"),
    FindingKind("prediction_threshold", "the prediction column disagrees with score >= quality.threshold",
                ("warning",), why_no_test="a spec problem, not the model's"),
    FindingKind("reference", "what the reference cannot tell (no window noise, too short for a cycle)",
                ("info",), why_no_test="about the reference, not the served data"),
    FindingKind("small_group", "a group too small to judge: recorded, not judged", ("info",),
                why_no_test="nothing was judged"),
    FindingKind("skipped", "a check that cannot run on this data, and why", ("info",),
                why_no_test="nothing was judged"),
)}
"""The one registry of finding kinds: severities, meaning and rubric test come from here."""


def kinds_failing(test_id: str) -> tuple[str, ...]:
    """The finding kinds that fail the rubric test ``test_id``."""
    return tuple(k.name for k in KINDS.values() if k.rubric == test_id)


@dataclass(frozen=True)
class Finding:
    severity: str  # one of SEVERITIES
    kind: str  # one of KINDS
    message: str
    column: str | None = None  # a feature, or a quality metric
    window_start: str | None = None
    slice: str | None = None
    model_version: str | None = None
    statistic: str | None = None
    value: float | None = None
    threshold: float | None = None
    q_value: float | None = None
    # the values of ``value`` that noise alone gives (low, high; None = open), where the finding prints
    # one: a value inside its own band is never raised (``decide``)
    band: tuple[float | None, float | None] | None = None

    @property
    def inside_band(self) -> bool:
        """Whether the finding's value lies inside its own noise band (False without a band or value)."""
        if self.band is None or self.value is None or not math.isfinite(self.value):
            return False
        lo, hi = self.band
        return (lo is None or self.value >= lo) and (hi is None or self.value <= hi)

    def __post_init__(self) -> None:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown finding kind {self.kind!r}; kinds are {sorted(KINDS)}")
        if self.severity not in kind.severities:
            raise ValueError(f"a {self.kind} finding is {'/'.join(kind.severities)}, not {self.severity!r}")


def worst(severities: Iterable[str]) -> str | None:
    """The worst of ``severities`` (None when there are none).

    >>> worst(["warning", "critical", "info"])
    'critical'
    >>> worst([]) is None
    True
    """
    found = list(severities)
    return max(found, key=SEVERITIES.index) if found else None


def exit_code(worst_severity: str | None) -> int:
    """The audit's exit code for its worst severity: 1 from ``error`` up, else 0.

    >>> [exit_code(s) for s in (None, "info", "warning", "error", "critical")]
    [0, 0, 0, 1, 1]
    """
    failing = worst_severity is not None and SEVERITIES.index(worst_severity) >= SEVERITIES.index(FAILS_AUDIT)
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
        hit = bool(c.judged and c.material and qf is not None and qf <= fdr and not c.finding.inside_band)
        for row in c.rows:
            row["q_value"] = qf
            if "drifted" in row:
                row["drifted"] = hit
                if "critical" in row:
                    row["critical"] = bool(row["critical"] and hit)
        if hit:
            raised.append(replace(c.finding, q_value=qf))
    return raised
