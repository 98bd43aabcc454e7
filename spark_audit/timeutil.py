"""Instants as ISO-8601 UTC strings ("2026-01-08T00:00:00Z"): the form group keys use."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


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


def parse_iso(v: str | None) -> datetime | None:
    """The aware UTC datetime of an ISO-8601 string; None stays None."""
    return None if v is None else datetime.fromisoformat(v.replace("Z", "+00:00"))


def interval_seconds(size: str) -> int:
    """Seconds of a Spark interval such as "1 day", "6 hours" or "2 weeks" (the spec's window sizes)."""
    n, unit = size.split()
    return int(n) * {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}[unit.lower().rstrip("s")]
