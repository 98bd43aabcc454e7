"""The one place that reads and writes times and durations.

* Instants are ISO-8601; group keys use the UTC form ``"2026-01-08T00:00:00Z"``.
* Durations are ``"<n> <unit>"`` (``"1 day"``, ``"6 hours"``, ``"30 min"``, ``"2w"``), the form of
  window sizes, label delays and freshness limits. Window sizes also go to Spark's ``window()``,
  so ``parse_duration(..., spark_interval=True)`` accepts only whole numbers of a Spark unit.

Everything here is pure Python: the spec, the contract reader and the engine share it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

__all__ = ["iso_utc", "parse_iso", "parse_time", "parse_duration", "interval_seconds"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w)\s*$", re.I)
_SPARK_INTERVAL = re.compile(r"^\s*\d+\s+(second|minute|hour|day|week)s?\s*$", re.I)


def iso_utc(v: Any) -> str | None:
    """ISO-8601 UTC of epoch microseconds (int) or a datetime (naive = UTC); None stays None."""
    if v is None:
        return None
    if isinstance(v, int):
        v = datetime.fromtimestamp(v / 1e6, tz=timezone.utc)
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return str(v)


def parse_time(v: Any) -> datetime:
    """An aware datetime from an ISO-8601 string (trailing ``Z`` allowed), a date (midnight) or a
    datetime. Naive values are UTC. Raises ``ValueError`` saying what was expected."""
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        dt = datetime(v.year, v.month, v.day)
    elif isinstance(v, str):
        text = v.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected an ISO-8601 date or time like 2026-01-08 or 2026-01-08T12:00:00Z, "
                             f"got {v!r}") from None
    else:
        raise ValueError(f"expected an ISO-8601 date or time, got {v!r}")
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def parse_iso(v: str | None) -> datetime | None:
    """``parse_time`` that lets None through (for optional stored instants)."""
    return None if v is None else parse_time(v)


def parse_duration(v: Any, *, spark_interval: bool = False) -> timedelta:
    """A positive duration from ``"7 days"``, ``"12 hours"``, ``"30 min"``, ``"2w"`` or a timedelta.

    ``spark_interval=True`` accepts only what Spark's ``window()`` takes (``"<int> <unit>"``).
    Raises ``ValueError`` saying what was expected.
    """
    if isinstance(v, timedelta):
        td = v
    else:
        text = str(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else None
        m = _DURATION.match(text) if text is not None else None
        if m is None or (spark_interval and not _SPARK_INTERVAL.match(text or "")):
            example = "'1 day', '6 hours' or '2 weeks'" if spark_interval else "'7 days', '12 hours' or '30 min'"
            raise ValueError(f"expected a duration like {example}, got {v!r}")
        unit = m.group(2).lower()
        key = "m" if unit.startswith("min") or unit == "m" else unit[0]
        td = timedelta(seconds=float(m.group(1)) * _UNITS[key])
    if td.total_seconds() <= 0:
        raise ValueError(f"expected a positive duration, got {v!r}")
    return td


def interval_seconds(size: str) -> int:
    """Seconds of a window size such as "1 day", "6 hours" or "2 weeks"."""
    return int(parse_duration(size, spark_interval=True).total_seconds())
