"""Profile a DataFrame per (window, slice, model version) group in one aggregation.

The scan: one ``groupBy(window, slices, model_version).agg(...)`` with every
column's expressions plus every scan part's (``spark_audit.scan``: contract rules,
quality metrics, table checks, ...), so they share the scan. With the Arrow engine,
numbers and strings (their statistics and exact top-k) come from one ``mapInArrow``
pass (``spark_audit.profile.arrow_scan``); only string columns with more than
``arrow_scan.TOP_CAP`` distinct values in a task get their top-k from a grouped count
over those columns at once. Coarser groups (all slices of a window) are merged
from the finest ones in Python, not rescanned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_audit.catalog import ENGINES
from spark_audit.names import col as _c
from spark_audit.profile import arrow_scan
from spark_audit.profile.exprs import ALL_SKETCHES, ColumnSpec, Sketches, profile_exprs, profiles_from_row
from spark_audit.profile.state import Bins, GroupKey, TableProfile, merge_all
from spark_audit.scan import ScanPart, States, check_namespaces, merge_states
from spark_audit.session import codegen_fields
from spark_audit.timeutil import iso_utc

W_START = "__sa_window_start"
W_END = "__sa_window_end"
MODEL_VERSION = "__sa_model_version"
PROFILE = "p"  # the profile's namespace in the scan


@dataclass(frozen=True)
class Grouping:
    """How rows are grouped: time windows, slice columns, model version."""

    timestamp_column: str | None = None
    window: str | None = None  # a Spark interval such as "1 day" or "6 hours"
    slices: tuple[str, ...] = ()
    model_version_column: str | None = None
    model_version: str | None = None  # the label when there is no model version column

    def columns(self) -> list[str]:
        out = [W_START, W_END] if self.window and self.timestamp_column else []
        return out + list(self.slices) + [MODEL_VERSION]


@dataclass
class GroupResult:
    """One group's profile and the states of the scan parts that shared its aggregation."""

    key: GroupKey
    profile: TableProfile
    states: States = field(default_factory=States)
    children: list[GroupResult] = field(default_factory=list)  # finest groups merged into this one


def merged_group(key: GroupKey, members: Sequence[GroupResult]) -> GroupResult:
    """The group of the union of disjoint groups: profiles and every part's state merged, no rescan."""
    return GroupResult(key=key, profile=merge_all((m.profile for m in members), key=key),
                       states=merge_states(m.states for m in members), children=list(members))


GROUP_KEY = "__sa_group"


def group_key(group_cols: Sequence[str]) -> Column:
    """A group's name as one string (JSON of its group columns), the same for a row and its aggregate."""
    return F.to_json(F.struct(*[F.col(g) for g in group_cols]))


def with_group_columns(df: DataFrame, grouping: Grouping) -> DataFrame:
    if grouping.window and grouping.timestamp_column:
        w = F.window(_c(grouping.timestamp_column), grouping.window)
        df = df.where(_c(grouping.timestamp_column).isNotNull())
        # epoch microseconds, not timestamps: collected rows then mean the same instant whatever
        # the session's or the Python process's time zone
        df = df.withColumn(W_START, F.unix_micros(w.start)).withColumn(W_END, F.unix_micros(w.end))
    if grouping.model_version_column:
        mv: Column = _c(grouping.model_version_column).cast("string")
    else:
        mv = F.lit(grouping.model_version).cast("string")
    return df.withColumn(MODEL_VERSION, mv)


def _slice_label(grouping: Grouping, row: Mapping[str, Any]) -> str | None:
    if not grouping.slices:
        return None
    return ",".join(f"{s}={row[s]}" for s in grouping.slices)


def top_k_counts(
    df: DataFrame, columns: list[ColumnSpec], group_cols: list[str], k: int
) -> dict[tuple, dict[str, dict[str, int]]]:
    """Exact top-k values per group and categorical column, in one grouped pass.

    Values of all categorical columns are exploded into (column index, value)
    pairs and counted together; only the k most frequent per group and column
    reach the driver, so a million-category column costs a shuffle, not memory.
    """
    cats = [(i, c) for i, c in enumerate(columns) if c.kind == "categorical"]
    if not cats or k <= 0:
        return {}
    pairs = F.explode(
        F.array(*[F.struct(F.lit(i).alias("ci"), _c(c.name).cast("string").alias("v")) for i, c in cats])
    )
    counted = (
        df.select(*[F.col(g) for g in group_cols], pairs.alias("kv"))
        .select(*group_cols, "kv.ci", "kv.v")
        .where(F.col("v").isNotNull())
        .groupBy(*group_cols, "ci", "v")
        .count()
    )
    rank = F.row_number().over(
        Window.partitionBy(*[F.col(g) for g in group_cols], F.col("ci")).orderBy(F.desc("count"), F.asc("v"))
    )
    top = counted.withColumn("rk", rank).where(F.col("rk") <= k).collect()
    out: dict[tuple, dict[str, dict[str, int]]] = {}
    for r in top:
        gk = tuple(r[g] for g in group_cols)
        name = columns[r["ci"]].name
        out.setdefault(gk, {}).setdefault(name, {})[r["v"]] = int(r["count"])
    return out


def profile_groups(
    df: DataFrame,
    columns: list[ColumnSpec],
    grouping: Grouping,
    *,
    bins: Mapping[str, Bins] | None = None,
    top_k: int = 20,
    kll_k: int = 200,
    parts: Sequence[ScanPart] = (),
    centers: Mapping[str, float] | None = None,
    sketches: Sketches = ALL_SKETCHES,
    engine: str = "arrow",
) -> list[GroupResult]:
    """Profile every finest group (window x slice values x model version), with every scan part's
    expressions in the same aggregation; each group keeps the parts' states.

    ``centers`` (the reference's means, when there is one) keep the summed moments accurate.
    ``sketches`` says which columns keep a KLL / HLL sketch (``spark_audit.profile.exprs.Sketches``).
    With ``engine="arrow"`` (the default; ``spark_audit.catalog.ENGINES``) numeric and string columns get their
    statistics (and KLL sketches) from one ``mapInArrow`` pass instead (``spark_audit.profile.arrow_scan``,
    which says why); ``"spark"`` keeps them in the aggregation.
    """
    schema = tuple((f.name, f.dataType.simpleString()) for f in df.schema.fields)
    grouped = with_group_columns(df, grouping)
    group_cols = grouping.columns()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    on_arrow = engine == "arrow"
    arrow = arrow_scan.targets(columns, bins, centers, sketches, top_k) if on_arrow else []
    extras = [e for p in parts for e in p.arrow] if on_arrow else []
    profile = ScanPart(PROFILE, tuple(profile_exprs(columns, prefix=PROFILE + "__", kll_k=kll_k, bins=bins,
                                                    centers=centers, sketches=sketches,
                                                    elsewhere=frozenset(t.name for t in arrow))))
    exprs = [*profile.exprs, *[e for p in parts for e in p.aggregate_exprs(on_arrow)]]
    aggregated = grouped.groupBy(*group_cols).agg(*exprs)
    if arrow or extras:  # each group's name in both passes, by the same Spark function of the same values
        aggregated = aggregated.withColumn(GROUP_KEY, group_key(group_cols))
    check_namespaces(aggregated.columns, [profile, *parts], others=[*group_cols, GROUP_KEY])  # analysis, no job
    with codegen_fields(df.sparkSession, len(exprs) + len(group_cols)):
        rows = [r.asDict() for r in aggregated.collect()]
    if arrow or extras:
        binned = arrow_scan.arrow_stats(grouped.withColumn(GROUP_KEY, group_key(group_cols)), GROUP_KEY, arrow,
                                        PROFILE + "__", kll_k=kll_k, extras=extras)
        for row in rows:
            name = row.pop(GROUP_KEY)
            if name not in binned:  # the two passes read the same rows; a group missing from one is a bug
                raise RuntimeError(f"the Arrow pass saw no rows of group {name}, which the aggregation counted")
            row.update(binned[name])
    # top-k: counted in the Arrow pass, except for columns with too many distinct values there (and for
    # the "spark" engine): those get Spark's exact grouped count
    counted = {t.name: f"{PROFILE}__{t.index}__top" for t in arrow if t.top}
    arrow_tops = [{c: row.pop(k) for c, k in counted.items()} for row in rows]
    by_spark = [c for c in columns if c.kind == "categorical"
                and (c.name not in counted or any(t[c.name] is None for t in arrow_tops))]
    tops = top_k_counts(grouped, by_spark, group_cols, top_k)
    results = []
    for row, from_arrow in zip(rows, arrow_tops, strict=True):
        n, cols = profiles_from_row(columns, row, bins=bins, centers=centers)
        gk = tuple(row[g] for g in group_cols)
        for name, values in [*from_arrow.items(), *tops.get(gk, {}).items()]:
            if values:  # None: counted by Spark; {}: no value (as a group missing from Spark's count)
                cols[name] = replace(cols[name], top=values, top_k=top_k)
        for name, c in cols.items():
            if c.kind == "categorical" and not c.top_k:
                cols[name] = replace(c, top_k=top_k)
        key = GroupKey(
            window_start=iso_utc(row.get(W_START)),
            window_end=iso_utc(row.get(W_END)),
            slice=_slice_label(grouping, row),
            model_version=row.get(MODEL_VERSION),
        )
        results.append(GroupResult(key=key, profile=TableProfile(key, n, cols, schema),
                                   states=States.of_row(parts, row)))
    results.sort(key=lambda r: (r.key.window_start or "", r.key.model_version or "", r.key.slice or ""))
    return results


def overall_groups(results: list[GroupResult]) -> list[GroupResult]:
    """Merge slices into one profile per (window, model version): no rescan."""
    by: dict[tuple, list[GroupResult]] = {}
    for r in results:
        by.setdefault((r.key.window_start, r.key.window_end, r.key.model_version), []).append(r)
    out = []
    for (ws, we, mv), members in by.items():
        key = GroupKey(window_start=ws, window_end=we, slice=None, model_version=mv)
        if len(members) == 1 and members[0].key.slice is None:
            out.append(members[0])
            continue
        out.append(merged_group(key, members))
    out.sort(key=lambda r: (r.key.window_start or "", r.key.model_version or ""))
    return out
