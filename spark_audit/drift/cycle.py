"""Calendar cycles in a reference: learned from its own windows, so a window is compared with the reference
windows of the same phase (a Saturday with the reference's Saturdays, 14:00 with its 14:00s).

Real tables have weekly and daily rhythms: fewer rows and other values at weekends, at night. A
reference that holds them differs from each of its windows in two ways at once, and one noise band
for all windows is too wide for the weekdays and too narrow for the weekends. So the reference build
asks whether its windows differ more *between* phases than *within* them:

* **Distributions.** For each column with exact counts on the reference's bins, the phases × bins
  table of phase totals gives Pearson's X² between phases, and each phase's windows × bins table the
  X² within it. Both carry the same between-window overdispersion, so their ratio
  ``(X²_between / df_between) / (X²_within / df_within)`` is F-distributed when the windows do not
  depend on the phase (a quasi-likelihood F test, McCullagh & Nelder 1989, 4.5).
* **Volume.** A one-way analysis of variance of the windows' row counts by phase, with the
  within-phase variance floored at Poisson's (the mean count).

The cycle is on when any test (Bonferroni across them) is below ``ALPHA``: a real weekly rhythm
gives p-values far below it, and on rows without one the cycle is on for one reference in a thousand,
at the cost only of comparing with fewer reference windows. The candidate period follows the window:
a day for windows shorter than a day, a week for windows of a day up to a week; a spec may force one
(``reference.cycle``). Every phase needs at least ``MIN_CYCLES`` windows: a shorter reference says so.

Everything here is numpy and scipy over counts (no Spark).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from scipy.stats import f as f_dist

from spark_audit.timeutil import parse_time

DAY, WEEK = 86_400, 604_800
PERIODS = {"day": DAY, "week": WEEK}
ALPHA = 0.001
MIN_CYCLES = 2  # windows of every phase the reference must hold
MIN_EXPECTED = 5.0  # Cochran's rule, as for the drift tests' pooled bins
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Cycle:
    """A calendar cycle of windows: ``period`` seconds long, ``window`` seconds per phase.

    Phases are counted from the epoch, as Spark's ``window()`` aligns windows.

    >>> week = Cycle(WEEK, DAY)
    >>> week.phases, week.name
    (7, 'week')
    >>> week.label(week.phase("2026-01-10T00:00:00Z")), week.plural(week.phase("2026-01-10T00:00:00Z"))
    ('Sat', 'Saturdays')
    >>> Cycle(DAY, 3600).plural(Cycle(DAY, 3600).phase("2026-01-10T14:00:00Z"))
    'windows at 14:00'
    """

    period: int
    window: int

    @property
    def phases(self) -> int:
        return self.period // self.window

    @property
    def name(self) -> str:
        return next((n for n, s in PERIODS.items() if s == self.period), f"{self.period} s")

    def phase(self, window_start: str | datetime) -> int:
        """The phase of the window starting at ``window_start`` (0 .. phases - 1)."""
        t = int(parse_time(window_start).timestamp())
        return (t % self.period) // self.window

    def label(self, phase: int) -> str:
        """``Sat``, ``Sat 06:00``, ``14:00``: the phase as a person reads it."""
        start = datetime.fromtimestamp(phase * self.window, tz=timezone.utc)  # the epoch's first cycle
        if self.period == WEEK:
            day = _WEEKDAYS[start.weekday()][:3]
            return day if self.window % DAY == 0 else f"{day} {start:%H:%M}"
        if self.period == DAY:
            return f"{start:%H:%M}"
        return f"phase {phase}"

    def plural(self, phase: int) -> str:
        """``Saturdays``, ``windows at Sat 06:00``, ``windows at 14:00``: the reference windows of a phase."""
        start = datetime.fromtimestamp(phase * self.window, tz=timezone.utc)
        if self.period == WEEK and self.window % DAY == 0:
            return _WEEKDAYS[start.weekday()] + "s"
        return f"windows at {self.label(phase)}"

    def to_dict(self) -> dict[str, int]:
        return {"period": self.period, "window": self.window}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Cycle | None:
        return cls(int(d["period"]), int(d["window"])) if d and d.get("period") else None


def candidate(window: int, force: str = "auto") -> Cycle | None:
    """The cycle a reference of ``window``-second windows is tested for: a day for windows shorter than a
    day, a week for windows of a day up to a week (``force`` names one: ``day`` or ``week``); None when
    no period is a whole number of windows (or ``force`` is ``off``)."""
    if force == "off" or window <= 0:
        return None
    period = PERIODS.get(force) if force in PERIODS else (DAY if window < DAY else WEEK if window < WEEK else None)
    if period is None or period % window or period // window < 2:
        return None
    return Cycle(period, window)


def pool_table(table: np.ndarray, min_expected: float = MIN_EXPECTED) -> np.ndarray:
    """Adjacent columns (bins) of a rows × bins count table merged, in order, until each holds at least
    ``min_expected`` expected counts in its smallest row; a short remainder joins the last column."""
    t = np.asarray(table, dtype=float)
    total = t.sum()
    if total <= 0 or t.shape[1] == 0:
        return t
    share = t.sum(axis=1).min() / total
    cols, acc = [], np.zeros(t.shape[0])
    for j in range(t.shape[1]):
        acc = acc + t[:, j]
        if acc.sum() * share >= min_expected:
            cols.append(acc)
            acc = np.zeros(t.shape[0])
    if acc.sum() > 0:
        if cols:
            cols[-1] = cols[-1] + acc
        else:
            cols = [acc]
    return np.stack(cols, axis=1)


def pearson_x2(table: np.ndarray) -> tuple[float, int]:
    """Pearson's X² of homogeneity of a rows × bins table and its degrees of freedom (empty rows and
    columns dropped). ``(0.0, 0)`` when fewer than two rows or two columns are left."""
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0] if t.size else t
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 2:
        return 0.0, 0
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    return float(np.sum((t - expected) ** 2 / expected)), (t.shape[0] - 1) * (t.shape[1] - 1)


def phase_test(counts: Sequence[np.ndarray], phases: Sequence[int]) -> tuple[float, float]:
    """``(F, p)`` of the quasi-likelihood F test that the windows' bin counts do not depend on their phase.

    ``counts[i]`` are window i's counts on the reference's bins, ``phases[i]`` its phase. NaN when there
    is nothing to test (one phase, phases of one window, a single bin).

    >>> rng = np.random.default_rng(0)
    >>> flat = [rng.multinomial(1000, [0.5, 0.3, 0.2]) for _ in range(14)]
    >>> phase_test(flat, [i % 7 for i in range(14)])[1] > 0.001
    True
    >>> weekly = [rng.multinomial(1000, [0.2, 0.3, 0.5] if i % 7 >= 5 else [0.5, 0.3, 0.2]) for i in range(14)]
    >>> phase_test(weekly, [i % 7 for i in range(14)])[1] < 1e-6
    True
    """
    table = np.asarray([np.asarray(c, dtype=float) for c in counts])
    ph = np.asarray(phases)
    if table.ndim != 2 or len(set(ph.tolist())) < 2:
        return math.nan, math.nan
    table = pool_table(table)
    labels = sorted(set(ph.tolist()))
    totals = np.stack([table[ph == p].sum(axis=0) for p in labels])
    x2_between, df_between = pearson_x2(totals)
    x2_within, df_within = 0.0, 0
    for p in labels:
        x2, df = pearson_x2(table[ph == p])
        x2_within, df_within = x2_within + x2, df_within + df
    if df_between == 0 or df_within == 0:
        return math.nan, math.nan
    within = max(x2_within / df_within, 1.0)  # never below independent rows' own noise
    stat = (x2_between / df_between) / within
    return float(stat), float(f_dist.sf(stat, df_between, df_within))


def volume_test(rows: Sequence[float], phases: Sequence[int]) -> tuple[float, float]:
    """``(F, p)`` of a one-way analysis of variance of the windows' row counts by phase, the within-phase
    variance floored at Poisson's (the mean count). NaN with fewer than two phases or no replicate.

    >>> volume_test([5000, 5000, 3000, 5000, 5000, 3000], [0, 1, 2, 0, 1, 2])[1] < 0.001
    True
    >>> round(volume_test([5000] * 6, [0, 1, 2, 0, 1, 2])[1], 6)
    1.0
    """
    n = np.asarray(rows, dtype=float)
    ph = np.asarray(phases)
    labels = sorted(set(ph.tolist()))
    k, w = len(labels), len(n)
    if k < 2 or w - k < 1:
        return math.nan, math.nan
    means = {p: n[ph == p].mean() for p in labels}
    grand = n.mean()
    between = sum((ph == p).sum() * (means[p] - grand) ** 2 for p in labels) / (k - 1)
    within = sum(((n[ph == p] - means[p]) ** 2).sum() for p in labels) / (w - k)
    within = max(within, grand)  # Poisson's variance: counts never vary less than that
    if within <= 0:
        return math.nan, math.nan
    stat = between / within
    return float(stat), float(f_dist.sf(stat, k - 1, w - k))


@dataclass
class CycleDecision:
    """Whether a reference has a cycle, and why: ``cycle`` (None: no cycle is used), ``status`` (``on``,
    ``off``, ``not found``, ``too short``, ``none``: no period fits the window), a sentence, and the tests."""

    cycle: Cycle | None
    status: str
    reason: str
    tests: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**(self.cycle.to_dict() if self.cycle else {}), "status": self.status, "reason": self.reason,
                "tests": self.tests}


def decide(window: int, window_starts: Sequence[str], rows: Sequence[float], columns: dict[str, list[np.ndarray]],
           force: str = "auto", alpha: float = ALPHA) -> CycleDecision:
    """Whether the reference's windows follow a calendar cycle.

    ``window_starts``/``rows`` are the reference's windows (all rows, oldest first), ``columns`` each
    column's exact counts per window (same order). ``force``: ``auto`` tests the candidate period,
    ``on`` uses it untested, ``day``/``week`` name the period (used untested), ``off`` never."""
    if force == "off":
        return CycleDecision(None, "off", "reference.cycle is off")
    cand = candidate(window, "auto" if force in ("auto", "on") else force)
    if cand is None:
        return CycleDecision(None, "none", f"no calendar period is a whole number of {window} s windows")
    phases = [cand.phase(w) for w in window_starts]
    held = {p: phases.count(p) for p in range(cand.phases)}
    if min(held.values()) < MIN_CYCLES:
        return CycleDecision(None, "too short", f"the reference holds {len(window_starts)} window(s), fewer than "
                             f"{MIN_CYCLES} of every phase of a {cand.name} ({MIN_CYCLES * cand.phases} windows): "
                             f"a {cand.name}ly rhythm cannot be learned from it")
    if force != "auto":
        return CycleDecision(cand, "on", f"reference.cycle is {force}: each window is compared with the reference's "
                             f"windows of the same phase of the {cand.name}")
    tests = []
    f, p = volume_test(rows, phases)
    if math.isfinite(p):
        tests.append({"what": "rows", "F": f, "p": p})
    for name, counts in columns.items():
        f, p = phase_test(counts, phases)
        if math.isfinite(p):
            tests.append({"what": name, "F": f, "p": p})
    if not tests:
        return CycleDecision(None, "not found", "nothing to test for a cycle", tests)
    hits = sorted((t for t in tests if t["p"] * len(tests) < alpha), key=lambda t: t["p"])
    if not hits:
        return CycleDecision(None, "not found", f"no {cand.name}ly cycle: the reference's windows differ no more "
                             f"between phases than within them ({len(tests)} tests)", tests)
    named = ", ".join(t["what"] for t in hits[:4]) + (f" and {len(hits) - 4} more" if len(hits) > 4 else "")
    return CycleDecision(cand, "on", f"a {cand.name}ly cycle in {named}: each window is compared with the "
                         f"reference's windows of the same phase", tests)
