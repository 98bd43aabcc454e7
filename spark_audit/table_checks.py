"""Faults a column-by-column profile cannot see: missing windows, a stale source, volume, duplicates.

* **Missing windows.** The audit knows its range and window size, so every expected
  window (aligned to the epoch, as Spark's ``window()`` aligns them) with no rows for a
  model version is a ``missing_window`` finding; when the newest expected window is one
  of them the source is ``stale`` (critical), "no rows since" the last window that had
  some.
* **Volume.** A window's row count against the reference's per-window counts: material
  when it is at least ``VOLUME_RATIO`` times the reference's mean, or at most its
  inverse (a doubling, a halving); the evidence is a z-score on the reference windows'
  spread (never below Poisson noise), as a prediction for one new window.
* **Duplicates.** One HLL sketch of a 64-bit hash of every column of a row, in the same
  scan: ``1 - distinct / rows`` is the window's duplicate share, mergeable like every
  other state. Material when it exceeds the reference's by ``DUPLICATE_MATERIAL``; the
  evidence is the sketch's relative standard error. An exact uniqueness pass stays where
  a contract asks for one.

Pure functions over group results plus one aggregate expression; no Spark job of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from datasketches import hll_sketch, hll_union
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.stats import norm

from spark_audit import store
from spark_audit.findings import Candidate, Finding
from spark_audit.names import col as _c
from spark_audit.profile.arrow_scan import Extra
from spark_audit.profile.profiler import MODEL_VERSION, W_START, Grouping, GroupResult, with_group_columns
from spark_audit.profile.state import HLL_LG_K
from spark_audit.scan import ScanPart
from spark_audit.timeutil import interval_seconds, iso_utc, parse_time

ROWS_HLL = "t__rows_hll"
NEWEST = "t__newest"
VOLUME_RATIO = 1.5
DUPLICATE_MATERIAL = 0.05
HLL_RSE = 1.04 / math.sqrt(2**HLL_LG_K)


def duplicate_exprs(columns: Sequence[str]) -> list[Column]:
    """The row-hash HLL sketch (nulls hash too, so two identical rows with nulls count as one)."""
    return [F.hll_sketch_agg(F.xxhash64(*[_c(c) for c in columns]), HLL_LG_K).alias(ROWS_HLL)]


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Row-hash sketches unite; the newest row is the later one."""
    out = {**a, **b}
    sketches = [bytes(x[ROWS_HLL]) for x in (a, b) if x.get(ROWS_HLL) is not None]
    if len(sketches) == 2:
        union = hll_union(HLL_LG_K)
        for s in sketches:
            union.update(hll_sketch.deserialize(s))
        out[ROWS_HLL] = bytes(union.get_result().serialize_compact())
    newest = [int(x[NEWEST]) for x in (a, b) if x.get(NEWEST) is not None]
    if newest:
        out[NEWEST] = max(newest)
    return out


def part(columns: Sequence[str], timestamp_column: str | None = None) -> ScanPart:
    """The table checks' scan part: the row-hash sketch of ``columns`` and, with a timestamp column,
    the newest row's time. On the Arrow engine the sketch comes from the Arrow pass (Spark computes
    the same ``xxhash64`` there): ``hll_sketch_agg`` would keep the whole aggregation from being
    code-generated (``spark_audit.profile.exprs.Sketches``), and read every column a second time."""
    cols = tuple(columns)
    return ScanPart("t", tuple(newest_exprs(timestamp_column)), merge=_merge,
                    arrow=(Extra("row_hash", (ROWS_HLL,), cols, lg_k=HLL_LG_K),),
                    spark_twin=lambda: duplicate_exprs(cols))


def _rows_hll(group: GroupResult) -> bytes | None:
    b = group.states["t"].get(ROWS_HLL)
    return None if b is None else bytes(b)


def duplicate_share(group: GroupResult) -> float | None:
    """1 - (distinct rows / rows) of the group, from its row-hash sketch; None without one."""
    b = _rows_hll(group)
    n = group.profile.row_count
    if b is None or n <= 0:
        return None
    return max(0.0, 1.0 - hll_sketch.deserialize(b).get_estimate() / n)


def spread(rows: Sequence[float], phases: Sequence[Any] | None = None) -> float | None:
    """The windows' relative spread of row counts (the standard deviation over the mean, ddof 1), pooled
    within ``phases`` when given (a Saturday's count varies around the Saturdays' mean). None with fewer
    than two windows in every phase.

    >>> round(spread([100, 110, 90, 100]), 3)
    0.082
    >>> spread([5000, 3000, 5000, 3000], ["wd", "we", "wd", "we"])
    0.0
    """
    groups = [None] * len(rows) if phases is None else list(phases)
    dev, df = 0.0, 0
    for g in set(groups):
        n = np.asarray([r for r, x in zip(rows, groups, strict=True) if x == g and r > 0], dtype=float)
        if len(n) >= 2:
            dev += float(np.sum((n / n.mean() - 1.0) ** 2))
            df += len(n) - 1
    return math.sqrt(dev / df) if df else None


def table_extras(windows: Sequence[GroupResult], rows_by_version: dict[str, list[int]] | None = None,
                 relative_spread: float | None = None) -> dict[str, Any]:
    """What a reference (or one phase of it) keeps for these checks: its windows' row counts (per model
    version too, when the table has a version column), their relative spread, and their duplicate share."""
    shares = [s for s in (duplicate_share(g) for g in windows) if s is not None]
    rows = [int(g.profile.row_count) for g in windows]
    out: dict[str, Any] = {"rows": rows, "duplicate_share": float(np.mean(shares)) if shares else None,
                           "spread": relative_spread if relative_spread is not None else spread(rows)}
    if rows_by_version is not None:
        out["rows_by_version"] = rows_by_version
    return {"table": out}


def count_by_version(df: DataFrame, grouping: Grouping,
                     slices: Sequence[str]) -> dict[str | None, dict[str, dict[str, int]]]:
    """Per slice label (None = all) and model version, the reference's row count of each window (by its
    start) in a small grouped count: the audit compares each version's windows with that version's own
    volume."""
    grouped = with_group_columns(df, grouping)
    rows = grouped.groupBy(W_START, MODEL_VERSION, *slices).count().collect()
    per: dict[str | None, dict[str, dict[str, int]]] = {}
    for r in rows:
        labels = [None] + ([",".join(f"{c}={r[c]}" for c in slices)] if slices else [])
        for label in labels:
            by_window = per.setdefault(label, {}).setdefault(str(r[MODEL_VERSION]), {})
            w = iso_utc(r[W_START])
            by_window[w] = by_window.get(w, 0) + int(r["count"])
    return {label: {v: dict(sorted(ws.items())) for v, ws in vs.items()} for label, vs in per.items()}


def volume_candidate(ref_table: dict[str, Any] | None, group: GroupResult, phase: str | None = None
                     ) -> Candidate | None:
    """The window's row count against the reference windows' (of the same phase, when ``phase`` names it)."""
    by_version = (ref_table or {}).get("rows_by_version")
    if by_version is not None:
        # a version the reference did not have has no volume to compare with
        counts = by_version.get(str(group.key.model_version), [])
    else:
        counts = (ref_table or {}).get("rows", [])
    rows = [r for r in counts if r > 0]
    if len(rows) < 2 or (len(rows) < 3 and phase is None):
        return None
    of = f", its {phase}" if phase else ""
    return _volume(rows, group, "rows", (ref_table or {}).get("spread"),
                   f"per window in the reference{of} ({{ratio:.2f}}x; reference windows {min(rows)} to "
                   f"{max(rows)})")


def _volume(rows: Sequence[float], group: GroupResult, statistic: str, relative_spread: float | None, where: str,
            adjust: float = 1.0) -> Candidate:
    """The window's row count against earlier windows' counts ``rows``: material at a ratio of VOLUME_RATIO
    either way and outside its noise band (the 95 % prediction interval of a new window: the windows'
    relative spread, pooled within phases, floored at Poisson's, widened for the mean's own error);
    evidence from the same z-test. ``adjust``: the window's phase factor (its phase's mean over the
    whole reference's), by which the count is divided before it is compared with seasonally adjusted
    ``rows``. ``where`` ends the message (``{ratio}`` is filled in)."""
    mean = float(np.mean(rows))
    rel = relative_spread if relative_spread is not None else (float(np.std(rows, ddof=1)) / mean
                                                             if len(rows) > 1 and mean > 0 else 0.0)
    sd = max(rel * mean, math.sqrt(mean)) * math.sqrt(1 + 1 / len(rows))
    n = group.profile.row_count
    value = n / adjust
    ratio = value / mean
    lo, hi = mean - 1.96 * sd, mean + 1.96 * sd
    k = group.key
    shown = f"{n} rows" + (f" ({value:.0f} seasonally adjusted)" if adjust != 1.0 else "")
    f = Finding("warning", "volume", f"{shown} vs {mean:.0f} " + where.format(ratio=ratio)
                + f"; expected {max(lo, 0):.0f} to {hi:.0f}", None, k.window_start, k.slice, k.model_version,
                statistic, float(value), mean, band=(lo, hi))
    return Candidate(f, float(2 * norm.sf(abs((value - mean) / sd))),
                     ratio >= VOLUME_RATIO or ratio <= 1 / VOLUME_RATIO)


VOLUME_HISTORY = 8  # trailing windows of the audit's own history the volume is compared with
VOLUME_MIN_HISTORY = 5


def volume_history(spark: SparkSession, output: Any, audit_name: str, audit_key: str,
                   min_rows: int) -> dict[tuple, list[tuple[str, int]]]:
    """Earlier windows' row counts from complete audits of the same audit name, per (slice, model
    version): the volume's own history (``profile_metrics`` keeps each group's row count)."""
    found = store.window_history(spark, output, "profile_metrics", audit_name, audit_key,
                                 ("slice", "model_version"), "row_count", F.col("row_count") >= F.lit(min_rows))
    return {k: [(w, int(v)) for w, v in series] for k, series in found.items()}


def volume_history_candidate(past: Sequence[float], group: GroupResult, adjust: float = 1.0,
                             relative_spread: float | None = None) -> Candidate | None:
    """The window's row count against the audit's own trailing windows (a slow change the reference, taken
    long ago, would not see as sudden): material at a ratio of VOLUME_RATIO either way, evidence as for
    the reference's volume. With a cycle, ``past`` holds the earlier windows' counts seasonally adjusted
    (each divided by its phase's factor) and ``adjust`` is this window's factor. None with fewer than
    VOLUME_MIN_HISTORY earlier windows."""
    rows = [r for r in past[-VOLUME_HISTORY:] if r > 0]
    if len(rows) < VOLUME_MIN_HISTORY:
        return None
    return _volume(rows, group, "rows_vs_history", relative_spread,
                   f"per window over the last {len(rows)} audited windows ({{ratio:.2f}}x)", adjust)


def duplicate_candidate(ref_table: dict[str, Any] | None, group: GroupResult, *, judged: bool) -> Candidate | None:
    share = duplicate_share(group)
    if share is None:
        return None
    base = (ref_table or {}).get("duplicate_share") or 0.0
    delta = share - base
    k = group.key
    f = Finding("warning", "duplicates", f"{share:.1%} of the {group.profile.row_count} rows are duplicates "
                f"vs {base:.1%} in the reference (a batch loaded twice?)", None, k.window_start, k.slice,
                k.model_version, "duplicate_share", share, base + DUPLICATE_MATERIAL)
    return Candidate(f, float(norm.sf(delta / HLL_RSE)), delta >= DUPLICATE_MATERIAL, judged)


def expected_windows(size: str, start: datetime, end: datetime) -> list[str]:
    """Starts of the windows Spark's ``window(ts, size)`` makes that lie wholly in [start, end)."""
    step = interval_seconds(size)
    s, e = int(start.timestamp()), int(end.timestamp())
    first = s if s % step == 0 else s - s % step + step
    return [iso_utc(datetime.fromtimestamp(t, tz=timezone.utc)) for t in range(first, e - step + 1, step)]


def missing_windows(size: str | None, start: datetime | None, end: datetime | None,
                    groups: Sequence[GroupResult], versions: Sequence[str | None]) -> list[Finding]:
    """``missing_window`` for each expected window without rows, per model version; ``stale`` (critical)
    when the newest expected window is missing."""
    if not size:
        return []
    seen = {(g.key.window_start, g.key.model_version) for g in groups if g.key.slice is None}
    starts = [w for w, _ in seen if w]
    lo = start or (min(parse_time(w) for w in starts) if starts else None)
    hi = end
    if lo is None or hi is None:
        return []
    expected = expected_windows(size, lo, hi)
    out: list[Finding] = []
    for v in versions:
        have = sorted(w for w, mv in seen if mv == v)
        gaps = [w for w in expected if (w, v) not in seen]
        for w in gaps:
            out.append(Finding("warning", "missing_window", f"no rows in the window starting {w}", None, w, None, v))
        if expected and expected[-1] in gaps:
            since = have[-1] if have else None
            run = [w for w in expected if w > (since or "")]
            out.append(Finding("critical", "stale", f"no rows since {since or 'the start of the range'}: "
                               f"{len(run)} expected window(s) missing, the newest {expected[-1]}", None,
                               expected[-1], None, v))
    return out


def newest_exprs(timestamp_column: str | None) -> list[Column]:
    """The newest row's time (epoch microseconds) per group, for freshness."""
    if not timestamp_column:
        return []
    return [F.max(F.unix_micros(_c(timestamp_column).cast("timestamp"))).alias(NEWEST)]


def newest_row(groups: Sequence[GroupResult]) -> datetime | None:
    """The newest row's time over the groups (their finest rows)."""
    found = [int(g.states["t"][NEWEST]) for g in groups if g.states["t"].get(NEWEST) is not None]
    return datetime.fromtimestamp(max(found) / 1e6, tz=timezone.utc) if found else None


def freshness(now: datetime, newest: datetime | None, committed: datetime | None, *, max_row_age: float,
              max_commit_age: float) -> list[Finding]:
    """``freshness`` warnings when the newest row or the source's latest commit is older than allowed
    (seconds). Call it only for an audit that reaches the present: a backfill of old windows is not stale."""
    out = []
    for what, when, limit in (("newest row", newest, max_row_age), ("latest Delta commit", committed, max_commit_age)):
        if when is None:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        age = (now - when).total_seconds()
        if age > limit:
            out.append(Finding("warning", "freshness", f"the source's {what} is {age / 3600:.1f} h old "
                               f"({iso_utc(when)}; allowed {limit / 3600:.1f} h)", None, None, None, None,
                               "age_hours", age / 3600, limit / 3600))
    return out
