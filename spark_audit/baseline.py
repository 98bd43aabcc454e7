"""What one audited group is compared with: its baseline in the reference profile.

A reference keeps its whole profile, one per slice, and, when its windows follow a calendar cycle
(``spark_audit.drift.cycle``), one per phase of the cycle and slice. A window is compared with the
reference windows of the same phase and slice: a Saturday's ``device=mobile`` rows with the
reference's Saturdays of ``device=mobile``. What the comparison needs comes from one place:

* ``profile``: the columns' counts compared (the phase's, else the slice's, else the whole reference's);
* ``scale``: the slice's (or whole) profile, whose spread normalises the distances, so a threshold
  means the same on every day of the week;
* ``noise``: the slice's window-to-window noise, learned within phases when there is a cycle;
* ``extras``: the facts of the baseline's own windows (their row counts, quality, PCA errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spark_audit.drift import noise as noise_mod
from spark_audit.drift.cycle import Cycle
from spark_audit.drift.noise import ColumnNoise
from spark_audit.profile.state import GroupKey, TableProfile


@dataclass(frozen=True)
class Baseline:
    """The part of a reference one group is compared with (see the module's doc)."""

    profile: TableProfile
    scale: TableProfile
    noise: dict[str, ColumnNoise] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    phase: str | None = None  # "Saturdays", "windows at 14:00": the reference windows of the cycle's phase
    seen: bool = True  # False for a slice the reference never saw (it is compared with the whole reference)


def cycle_of(ref: TableProfile) -> Cycle | None:
    """The cycle a reference learned, when it compares windows by phase; None otherwise."""
    info = ref.extras.get("cycle") or {}
    return Cycle.from_dict(info) if info.get("status") == "on" and ref.phases else None


def phase_of(ref: TableProfile, window_start: str | None) -> int | None:
    """The phase of the cycle of a window (None without a cycle or a window)."""
    cycle = cycle_of(ref)
    return None if cycle is None or not window_start else cycle.phase(window_start)


def baseline(ref: TableProfile, key: GroupKey, *, cycle: bool = True) -> Baseline:
    """The baseline of the group ``key``: its phase and slice of the reference (see the module's doc).

    ``cycle=False`` ignores the reference's cycle (``reference.cycle: off`` in the audit's spec)."""
    seen = not key.slice or key.slice in ref.slices
    sliced = ref.slices.get(key.slice, ref) if key.slice else ref
    noise = noise_mod.noise_from_extras(sliced.extras)
    c = cycle_of(ref) if cycle else None
    if c is not None and key.window_start:
        ph = c.phase(key.window_start)
        phase = ref.phases.get(str(ph))
        prof = None if phase is None else (phase.slices.get(key.slice) if key.slice else phase)
        if prof is not None:
            windows = int(prof.extras.get("windows") or 0)
            phased = None if noise is None else {n: x.for_baseline(windows) for n, x in noise.items()}
            return Baseline(prof, sliced, phased, {**sliced.extras, **prof.extras}, c.plural(ph), seen)
    return Baseline(sliced, sliced, noise, dict(sliced.extras), None, seen)
