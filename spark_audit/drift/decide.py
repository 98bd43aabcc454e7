"""Findings about a window's columns against a baseline profile: a changed type, a jump in the missing
share, drift, and training/serving skew. Pure functions over profiles (no Spark); the FDR decision
across the audit is :func:`spark_audit.findings.decide`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from scipy.stats import norm

from spark_audit.drift import noise
from spark_audit.drift.compare import DriftResult
from spark_audit.drift.stats import STATISTICS
from spark_audit.findings import Candidate, Finding
from spark_audit.profile.exprs import ColumnSpec
from spark_audit.profile.profiler import GroupResult
from spark_audit.profile.state import GroupKey, TableProfile
from spark_audit.rows import finite

# increase of the missing share (null + NaN + inf) over the reference that counts as a pipeline bug
MISSING_WARN, MISSING_CRITICAL = 0.05, 0.20


def schema_changes(ref: TableProfile, groups: list[GroupResult], columns: list[ColumnSpec]) -> list[Finding]:
    """One finding per column whose type differs from the reference's, at the first window it shows."""
    ref_types = dict(ref.schema)
    out: list[Finding] = []
    for c in columns:
        for g in groups:
            now = dict(g.profile.schema).get(c.name)
            if c.name in ref_types and now is not None and ref_types[c.name] != now:
                k = g.key
                out.append(Finding("critical", "schema", f"type changed from {ref_types[c.name]} to {now}", c.name,
                                   k.window_start, None, k.model_version))
                break
    return out


def missing_candidates(
    ref: TableProfile, cur: GroupResult, columns: list[ColumnSpec], ref_noise: dict | None, *, judged: bool = True,
) -> list[Candidate]:
    """A jump in a column's missing share (null + NaN + inf) over the reference's: material when it is at
    least MISSING_WARN (MISSING_CRITICAL: critical), with a two-proportion test as the evidence (its z
    divided by the reference's own window-to-window overdispersion of the share)."""
    out: list[Candidate] = []
    k = cur.key
    for c in columns:
        rc, cc = ref.columns.get(c.name), cur.profile.columns[c.name]
        if rc is None or cc.count == 0 or rc.count == 0:
            continue
        m_ref, m_cur = noise.missing_count(rc), noise.missing_count(cc)
        share_ref, share_cur = m_ref / rc.count, m_cur / cc.count
        delta = share_cur - share_ref
        z = noise.two_proportion_z(m_ref, rc.count, m_cur, cc.count)
        phi = ref_noise[c.name].overdispersion("missing", cc.count, rc.count) if ref_noise and c.name in ref_noise \
            else 1.0
        p = float(norm.sf(z / math.sqrt(phi))) if math.isfinite(z) else (0.0 if z > 0 else 1.0)
        sev = "critical" if delta >= MISSING_CRITICAL else "warning"
        detail = f"nulls {cc.nulls}, NaN {cc.nan}, inf {cc.pos_inf + cc.neg_inf} of {cc.count} rows"
        f = Finding(sev, "missing", f"missing share {share_cur:.1%} vs {share_ref:.1%} in the reference ({detail})",
                    c.name, k.window_start, k.slice, k.model_version, "missing_share", share_cur,
                    share_ref + MISSING_WARN)
        out.append(Candidate(f, p, delta >= MISSING_WARN, judged))
    return out


def drift_finding(r: DriftResult, k: GroupKey, phase: str | None = None) -> Finding:
    """The finding of one column's deciding drift statistic in one group (``phase``: the cycle's phase whose
    reference windows it was compared with)."""
    sev = "critical" if r.critical else "warning"
    shown = f"p={r.p_value:.3g}" if r.p_value is not None and STATISTICS[r.statistic].is_test \
        else f"{r.value:.3f}"
    noise_note = f", noise band at this size {r.noise:.3f}" if r.noise is not None else ""
    against = f" vs the reference's {phase}" if phase else ""
    return Finding(sev, "drift", f"{r.statistic} {shown}{against} (material at {r.threshold:g}{noise_note}; "
                   f"n={r.n_current} vs {r.n_reference})", r.column, k.window_start, k.slice, k.model_version,
                   r.statistic, finite(r.value), r.threshold, band=None if r.noise is None else (None, r.noise))


def skew_finding(r: DriftResult, k: GroupKey) -> Finding:
    """Training/serving skew: the window's distribution of a feature against the training rows'."""
    f = drift_finding(r, k)
    return replace(f, kind="skew", message="training/serving skew: " + f.message)


def drift_candidates(results: list[DriftResult], rows: list[dict], k: GroupKey, *, judged: bool,
                     skew: bool = False, phase: str | None = None) -> list[Candidate]:
    """One candidate per column, from its deciding statistic, recording the statistic's row."""
    return [Candidate(skew_finding(r, k) if skew else drift_finding(r, k, phase),
                      r.p_value if r.p_value is not None else math.nan, r.material, judged, [row])
            for r, row in zip(results, rows, strict=True) if r.is_default]


def explained_skew(findings: list[Finding]) -> list[Finding]:
    """Without the skew findings of a column that drifted from the serving reference in the same window: the
    drift finding says it (the serving rows changed), a second finding would count one cause twice. The
    skew's rows stay in ``drift_metrics``."""
    drifted = {(f.column, f.window_start, f.slice, f.model_version) for f in findings if f.kind == "drift"}
    return [f for f in findings if not (f.kind == "skew" and (f.column, f.window_start, f.slice, f.model_version)
                                        in drifted)]
