"""Building rows of the result tables."""

from __future__ import annotations

import math
import numbers
from typing import Any

from spark_audit.profile.state import GroupKey
from spark_audit.timeutil import parse_iso


def group_fields(key: GroupKey) -> dict[str, Any]:
    """The (window_start, window_end, slice, model_version) columns every per-group row has."""
    return dict(window_start=parse_iso(key.window_start), window_end=parse_iso(key.window_end), slice=key.slice,
                model_version=key.model_version)


def finite(v: Any) -> float | None:
    """A float for a finite number (numpy's too); None for None, NaN, +/-inf or a non-number (Delta rows
    keep no NaN for "undefined", JSON has none)."""
    return None if not isinstance(v, numbers.Real) or not math.isfinite(v) else float(v)
