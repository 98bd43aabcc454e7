"""Fairness across a protected attribute's groups: per window and model version, the gap of a rate between
the groups (predictive parity: precision; equal opportunity: recall; statistical parity: the rate of
positive predictions) and the disparate impact (the smallest positive-prediction rate over the largest).

A gap is material past ``quality.fairness.max_gap`` (a ratio below ``min_ratio``), and its evidence is
Fisher's exact test of the two groups' counts, one-sided: valid at any count, so a small group's
chance gap is not a finding. A group whose denominator is below ``quality.min_count`` is left out.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from scipy.stats import fisher_exact

from spark_audit import store
from spark_audit.catalog import metric
from spark_audit.decay import evidence as ev
from spark_audit.decay.metrics import merge_states
from spark_audit.findings import Candidate, Finding
from spark_audit.profile.profiler import GroupResult
from spark_audit.quality import Q, state
from spark_audit.rows import finite, group_fields
from spark_audit.spec import AuditSpec

RATES = {  # fairness notion -> the per-group rate it compares
    "predictive_parity": "precision",
    "equal_opportunity": "recall",
    "statistical_parity": "predicted_positive_rate",
}


def attribute_value(slice_label: str, attribute: str) -> str | None:
    """The value of ``attribute`` in a slice label ``a=1,b=x``.

    >>> attribute_value("country=MX,device=ios", "device")
    'ios'
    """
    for part in slice_label.split(","):
        name, _, value = part.partition("=")
        if name == attribute:
            return value
    return None


def gap_p(lo: tuple[float, float], hi: tuple[float, float]) -> float:
    """Fisher's exact one-sided p-value that the group with ``lo = (x, d)`` has a lower rate than ``hi``.

    >>> round(gap_p((10, 100), (30, 100)), 5)
    0.00033
    >>> gap_p((0, 3), (1, 3)) > 0.4
    True
    """
    (x1, d1), (x2, d2) = lo, hi
    table = [[int(round(x1)), int(round(d1 - x1))], [int(round(x2)), int(round(d2 - x2))]]
    return float(fisher_exact(table, alternative="less").pvalue)


def fairness(spec: AuditSpec, groups: list[GroupResult], common: dict[str, Any]
             ) -> tuple[list[dict[str, Any]], list[Candidate]]:
    """The fairness rows (``performance_metrics``) and candidate findings of every window."""
    cfg = spec.quality
    assert cfg is not None and cfg.fairness is not None
    attr = cfg.fairness.attribute
    by_window: dict[tuple, dict[str, dict[str, Any]]] = {}
    keys: dict[tuple, Any] = {}
    for g in groups:
        if g.key.slice is None:
            continue
        value = attribute_value(g.key.slice, attr)
        window = (g.key.window_start, g.key.model_version)
        keys.setdefault(window, replace(g.key, slice=None))
        states = by_window.setdefault(window, {})
        states[value] = merge_states(states.get(value, {}), state(g))
    rows: list[dict[str, Any]] = []
    found: list[Candidate] = []
    for window, states in sorted(by_window.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        key = keys[window]
        where = dict(window_start=key.window_start, slice=None, model_version=key.model_version)
        for notion, rate in RATES.items():
            info = metric(cfg.measure.task, rate)
            counts = {v: ev.count_of(info, ev.cells(st, Q)) for v, st in states.items()}
            usable = {v: xd for v, xd in counts.items() if xd is not None and xd[1] >= 1}
            if len(usable) < 2:
                continue
            rates = {v: x / d for v, (x, d) in usable.items()}
            lo, hi = min(rates, key=rates.get), max(rates, key=rates.get)
            gap = rates[hi] - rates[lo]
            detail = f"{rate} {rates[hi]:.3f} for {attr}={hi} vs {rates[lo]:.3f} for {attr}={lo}"
            thin = [v for v in (lo, hi) if usable[v][1] < cfg.min_count]
            note = (f"not judged: {attr}={thin[0]} has {usable[thin[0]][1]:.0f} {info.min_counts[0][0]}, fewer than "
                    f"quality.min_count={cfg.min_count}") if thin else None
            p = gap_p(usable[lo], usable[hi])
            n = usable[lo][1] + usable[hi][1]
            row = _row(common, key, f"fairness.{attr}.{notion}_gap", gap, detail, n, note)
            rows.append(row)
            found.append(Candidate(Finding("warning", "fairness", f"{notion}: {detail} (gap {gap:.3f} > "
                                           f"{cfg.fairness.max_gap:g}; n={usable[hi][1]:.0f} and {usable[lo][1]:.0f})",
                                           attr, **where, statistic=f"{notion}_gap", value=gap,
                                           threshold=cfg.fairness.max_gap), p, gap > cfg.fairness.max_gap,
                                   not thin, [row]))
            if notion == "statistical_parity" and rates[hi] > 0:
                ratio = rates[lo] / rates[hi]
                row = _row(common, key, f"fairness.{attr}.disparate_impact", ratio, detail, n, note)
                rows.append(row)
                found.append(Candidate(Finding("warning", "fairness", f"disparate impact {ratio:.2f} < "
                                               f"{cfg.fairness.min_ratio:g}: {detail}", attr, **where,
                                               statistic="disparate_impact", value=ratio,
                                               threshold=cfg.fairness.min_ratio),
                                       p, ratio < cfg.fairness.min_ratio, not thin, [row]))
    return rows, found


def _row(common: dict[str, Any], key, name: str, value: float, detail: str, n: float,
         note: str | None = None) -> dict[str, Any]:
    return store.row("performance_metrics", **common, **group_fields(key), metric=name, value=finite(value),
                     anomaly=False, anomaly_reason=detail, reference_value=None, degradation=None,
                     estimated_value=None, estimated_degradation=None, n=None, unlabelled=None, trend=None,
                     windows_until_critical=None, sampling_error=None, p_value=None, q_value=None,
                     estimated_sampling_error=None, denominator=finite(n), band_low=None, band_high=None,
                     note=note if math.isfinite(value) else "undefined")
