"""Benchmark the column profiler against a bare one-pass aggregate and ``df.summary()``.

Not a test: a script that prints timings measured side by side in one run.

    python benchmarks/bench_profile.py                      # default size (~10 minutes on 2 shared cores)
    python benchmarks/bench_profile.py --rows 200000 --repeats 3   # quick check
    python benchmarks/bench_profile.py --variants           # also time profile variants
                                                            # (no KLL, no HLL, ...) to find the cost

It generates a wide table (double columns with NaN/nulls/zeros, string columns
with ~50 skewed categories, a timestamp over 7 days), writes it as Delta to a
temporary folder and reads it back. Nothing is cached: every timed run scans
the Delta table's Parquet files again (the OS page cache may hold them, which
is the same for every contender). Each contender gets one untimed warm-up, then
``--repeats`` timed runs; runs are interleaved round-robin (with the order
rotated each round) so a burst of noise on the shared machine hits all
contenders alike. Medians and ratios of medians are what to read; single
timings on a 2-core shared machine are not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyspark.sql import Column, DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from spark_audit import multivariate, table_checks  # noqa: E402
from spark_audit.drift.compare import reference_bins  # noqa: E402
from spark_audit.profile import Grouping, profile_groups, resolve_columns  # noqa: E402
from spark_audit.profile.exprs import ColumnSpec, hll_agg, kll_agg, profile_exprs  # noqa: E402
from spark_audit.session import get_spark  # noqa: E402

DAY_SECONDS = 86_400
START_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (default 1,000,000)")
    p.add_argument("--numeric", type=int, default=40, help="double columns (default 40)")
    p.add_argument("--strings", type=int, default=10, help="string columns (default 10)")
    p.add_argument("--categories", type=int, default=50, help="distinct values per string column (default 50)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contender (default 3)")
    p.add_argument("--files", type=int, default=8, help="Parquet files written (default 8)")
    p.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    p.add_argument("--driver-memory", default="4g", help="spark.driver.memory (default 4g)")
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--kll-k", type=int, default=200)
    p.add_argument("--no-summary", action="store_true", help="skip df.summary() (the slowest contender)")
    p.add_argument(
        "--variants",
        action="store_true",
        help="also time the profile aggregation without KLL, without HLL, without both, ... to see what costs",
    )
    p.add_argument("--audit-only", action="store_true",
                   help="time only the bare scan and the audit's scan (6-8): what the scan parts cost")
    p.add_argument("--pca-features", type=int, default=20,
                   help="numeric features in the audit's PCA reconstruction-error part (default 20, the cap)")
    p.add_argument("--keep", metavar="DIR", help="write the table here and keep it (default: a temp folder, removed)")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- data


def make_table(spark: SparkSession, args: argparse.Namespace) -> DataFrame:
    """A deterministic wide table: doubles with NaN/null/zeros, skewed strings, a timestamp."""
    base = spark.range(0, args.rows, 1, numPartitions=args.files)
    cols: list[Column] = []
    for j in range(args.numeric):
        u = F.rand(seed=1000 + j)
        v = F.randn(seed=2000 + j) * (1 + j) + j
        x = (
            F.when(u < 0.01, F.lit(None).cast("double"))  # ~1% null
            .when(u < 0.015, F.lit(float("nan")))  # ~0.5% NaN
            .when(u < 0.02, F.lit(0.0))  # ~0.5% exact zero
            .otherwise(v)
        )
        if j % 10 == 9:  # a few columns with rare infinities too
            x = F.when(u > 0.9995, F.lit(float("inf"))).otherwise(x)
        cols.append(x.alias(f"num_{j:02d}"))
    for j in range(args.strings):
        u = F.rand(seed=3000 + j)
        # skewed: category index ~ categories * u^2, so low indices are frequent
        idx = F.floor(F.pow(F.rand(seed=4000 + j), 2) * args.categories).cast("int")
        s = F.concat(F.lit(f"s{j}_cat_"), F.lpad(idx.cast("string"), 3, "0"))
        s = F.when(u < 0.01, F.lit(None).cast("string")).when(u < 0.012, F.lit("")).otherwise(s)
        cols.append(s.alias(f"str_{j:02d}"))
    ts = F.timestamp_seconds(F.lit(START_EPOCH) + F.floor(F.rand(seed=5) * 7 * DAY_SECONDS).cast("long"))
    return base.select(F.col("id"), ts.alias("ts"), *cols)


# --------------------------------------------------------------------------- contenders


def bare_exprs(df: DataFrame, names: list[str]) -> list[Column]:
    """The floor: the cheapest honest one-pass aggregate over the same columns."""
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    out: list[Column] = [F.count(F.lit(1)).alias("rows")]
    for n in names:
        c = F.col(n)
        if types[n] == "string":
            out += [F.count(c), F.max(F.length(c))]
        else:
            out += [F.count(c), F.min(c), F.max(c), F.sum(c)]
    return out


def sketch_floor_exprs(df: DataFrame, names: list[str], kll_k: int) -> list[Column]:
    """The bare scan plus only the sketches the profile must keep (HLL per column, KLL per number).

    No profile that keeps Spark's KLL and HLL sketches can be cheaper than this, so its ratio to
    the bare scan is the floor for the profile's.
    """
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    out = bare_exprs(df, names)
    for n in names:
        out.append(hll_agg(n))
        if types[n] != "string":
            out.append(kll_agg(n, kll_k))
    return out


_ALIAS = re.compile(r" AS `?([A-Za-z0-9_]+)`?'?>?$")


def alias_of(col: Column) -> str:
    m = _ALIAS.search(str(col))
    if not m:
        raise RuntimeError(f"cannot read the alias of {col}")
    return m.group(1)


def variant_exprs(cols: list[ColumnSpec], kll_k: int, drop: tuple[str, ...]) -> list[Column]:
    """profile_exprs(cols) without the metrics whose alias ends with one of ``drop``."""
    return [e for e in profile_exprs(cols, kll_k=kll_k) if not alias_of(e).endswith(tuple(f"__{d}" for d in drop))]


class JvmCpu:
    """CPU seconds (user + system) used so far by the Spark JVM, read from /proc.

    In local mode the driver JVM runs the tasks too, so this is the work a
    contender costs, much less sensitive than wall time to other processes
    competing for the 2 cores. None where /proc is not there.
    """

    def __init__(self, spark: SparkSession) -> None:
        self.path: str | None = None
        try:
            pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
            path = f"/proc/{pid}/stat"
            if os.path.exists(path):
                self.path = path
                self.tick = os.sysconf("SC_CLK_TCK")
        except Exception:  # not local, or no /proc
            self.path = None

    def __call__(self) -> float | None:
        if self.path is None:
            return None
        with open(self.path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime (fields 14, 15)


def run_contenders(
    contenders: dict[str, Callable[[], object]], repeats: int, cpu: JvmCpu, log: Callable[[str], None]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and JVM CPU seconds of each contender's timed runs."""
    names = list(contenders)
    for name in names:  # one untimed warm-up each (JIT, Delta snapshot, codegen)
        t0 = time.perf_counter()
        contenders[name]()
        log(f"  warm-up {name:<40} {time.perf_counter() - t0:8.2f}s")
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate, so no contender always runs first
        for name in order:
            c0 = cpu()
            t0 = time.perf_counter()
            contenders[name]()
            wall[name].append(time.perf_counter() - t0)
            c1 = cpu()
            if c0 is not None and c1 is not None:
                cpus[name].append(c1 - c0)
        log(f"  round {r + 1}/{repeats}: " + ", ".join(f"{n.split(' ')[0]}={wall[n][-1]:.2f}s" for n in names))
    return wall, cpus


def table(wall: dict[str, list[float]], cpus: dict[str, list[float]], floor: str) -> list[str]:
    base = statistics.median(wall[floor])
    cbase = statistics.median(cpus[floor]) if cpus[floor] else None
    width = max(len(n) for n in wall)
    lines = [
        f"{'contender':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}  {'x bare':>7}"
        f"  {'JVM cpu s':>9}  {'cpu x bare':>10}"
    ]
    lines.append("-" * len(lines[0]))
    for name, ts in wall.items():
        med = statistics.median(ts)
        row = f"{name:<{width}}  {med:9.2f}  {min(ts):7.2f}  {max(ts):7.2f}  {med / base:7.2f}"
        if cbase:
            cmed = statistics.median(cpus[name])
            row += f"  {cmed:9.2f}  {cmed / cbase:10.2f}"
        lines.append(row)
    return lines


def _audit_setup(df: DataFrame, cols: list[ColumnSpec], pca_features: int, kll_k: int):
    """What an audit gets from its reference (untimed): exact bins, centres and the fitted PCA."""
    [base] = profile_groups(df, cols, Grouping(model_version="1"), top_k=0, kll_k=kll_k)
    bins = {n: b for n, c in base.profile.columns.items() if (b := reference_bins(c, 20))}
    centers = {n: c.mean for n, c in base.profile.columns.items() if c.mean is not None}
    numeric = [c.name for c in cols if c.kind == "numeric" and (base.profile.columns[c.name].std or 0) > 0]
    names = numeric[:min(pca_features, multivariate.MAX_FEATURES)]
    means = [float(base.profile.columns[n].mean) for n in names]
    stds = [float(base.profile.columns[n].std) for n in names]
    [whole] = profile_groups(df, cols[:1], Grouping(model_version="1"), top_k=0,
                             parts=[multivariate.moments_part(names, means, stds)])
    pca = multivariate.reference_extras(names, means, stds, [whole], whole)["pca"]
    return bins, centers, pca


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    folder = args.keep or tempfile.mkdtemp(prefix="bench-profile-")
    path = os.path.join(folder, "table")
    spark = get_spark(
        args.master,
        app_name="bench-profile",
        extra_conf={
            "spark.driver.memory": args.driver_memory,
            "spark.sql.warehouse.dir": os.path.join(folder, "warehouse"),
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        if not os.path.exists(os.path.join(path, "_delta_log")):
            log(f"writing {args.rows:,} rows x {args.numeric} double + {args.strings} string columns to {path}")
            make_table(spark, args).write.format("delta").mode("overwrite").save(path)
        df = spark.read.format("delta").load(path)
        names = [f"num_{j:02d}" for j in range(args.numeric)] + [f"str_{j:02d}" for j in range(args.strings)]
        cols = resolve_columns(df.schema, [(n, None) for n in names])
        size_mb = (
            sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs if f.endswith(".parquet"))
            / 2**20
        )
        log(f"table: {size_mb:.0f} MiB of Parquet, {df.rdd.getNumPartitions()} scan partitions")

        k, kll_k = args.top_k, args.kll_k
        unwindowed = Grouping(model_version="1")
        daily = Grouping(timestamp_column="ts", window="1 day", model_version="1")
        bare = "1 bare scan (count/min/max/sum)"
        floor = "1a bare scan + KLL/HLL sketches only"
        agg = "2 profile, aggregation only"
        full = "3 profile_groups, unwindowed"
        windowed = "4 profile_groups, 1-day windows"
        summ = "5 df.summary()"
        contenders: dict[str, Callable[[], object]] = {
            bare: lambda: df.agg(*bare_exprs(df, names)).collect(),
            floor: lambda: df.agg(*sketch_floor_exprs(df, names, kll_k)).collect(),
            agg: lambda: df.agg(*profile_exprs(cols, kll_k=kll_k)).collect(),
            full: lambda: profile_groups(df, cols, unwindowed, top_k=k, kll_k=kll_k),
            windowed: lambda: profile_groups(df, cols, daily, top_k=k, kll_k=kll_k),
        }
        # the audit's scan: the windowed profile on the reference's exact bins, then with the other scan
        # parts an audit adds (the row-hash sketch and newest row; the PCA reconstruction error)
        audit_bins, audit_centers, pca = _audit_setup(df, cols, args.pca_features, kll_k)
        on_bins = "6 audit profile on reference bins, 1-day windows"
        with_table = "7 = 6 + row-hash HLL + newest row"
        with_pca = f"8 = 7 + PCA error ({len(pca['features'])} features)"
        table_part = table_checks.part(df.columns, "ts")
        contenders[on_bins] = lambda: profile_groups(df, cols, daily, bins=audit_bins, centers=audit_centers,
                                                     top_k=k, kll_k=kll_k)
        contenders[with_table] = lambda: profile_groups(df, cols, daily, bins=audit_bins, centers=audit_centers,
                                                        top_k=k, kll_k=kll_k, parts=[table_part])
        contenders[with_pca] = lambda: profile_groups(df, cols, daily, bins=audit_bins, centers=audit_centers,
                                                      top_k=k, kll_k=kll_k,
                                                      parts=[table_part, multivariate.error_part(pca)])
        if args.audit_only:
            contenders = {n: f for n, f in contenders.items() if n in (bare, on_bins, with_table, with_pca)}
        elif not args.no_summary:
            contenders[summ] = lambda: df.select(*names).summary().collect()
        if args.variants:
            for label, drop in [
                ("v no KLL", ("kll",)),
                ("v no HLL", ("hll",)),
                ("v no KLL, no HLL", ("kll", "hll")),
                ("v no NaN/inf/zero counts", ("nan", "pinf", "ninf", "zeros")),
            ]:
                exprs = variant_exprs(cols, kll_k, drop)
                contenders[label] = lambda e=exprs: df.agg(*e).collect()
            contenders["v KLL only"] = lambda: df.agg(
                *[e for e in profile_exprs(cols, kll_k=kll_k) if alias_of(e).endswith("__kll")]
            ).collect()
            contenders["v HLL only"] = lambda: df.agg(
                *[e for e in profile_exprs(cols, kll_k=kll_k) if alias_of(e).endswith("__hll")]
            ).collect()
            contenders["v top-k pass only"] = lambda: _top_k_only(df, cols, unwindowed, k)
            # fixed cost: building ~600 expressions over py4j, planning, codegen; Parquet stats skip every row group
            none = df.where(F.col("id") < 0)
            contenders["v profile agg on 0 rows (fixed cost)"] = lambda: none.agg(
                *profile_exprs(cols, kll_k=kll_k)
            ).collect()
            contenders["v bare scan on 0 rows (fixed cost)"] = lambda: none.agg(*bare_exprs(df, names)).collect()

        times, cpus = run_contenders(contenders, args.repeats, JvmCpu(spark), log)
        total = time.perf_counter() - t_start

        med = {n: statistics.median(t) for n, t in times.items()}
        cmed = {n: statistics.median(t) for n, t in cpus.items() if t}

        def ratio(a: str, b: str, target: str = "") -> str:
            line = f"{med[a] / med[b]:5.2f}x wall"
            if a in cmed and b in cmed:
                line += f", {cmed[a] / cmed[b]:5.2f}x JVM cpu"
            return line + (f"   ({target})" if target else "")

        out = [
            f"Spark {spark.version}, master {spark.sparkContext.master}, "
            f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}",
            f"rows {args.rows:,}; columns {args.numeric} double + {args.strings} string "
            f"({args.categories} categories) + ts over 7 days; {size_mb:.0f} MiB Parquet in Delta, "
            f"{df.rdd.getNumPartitions()} scan partitions",
            f"repeats {args.repeats} (after 1 untimed warm-up each); top_k={k}, kll_k={kll_k}",
            "",
            *table(times, cpus, bare),
            "",
        ]
        if agg in med:
            out += [
                f"profile aggregation / bare scan : {ratio(agg, bare, 'target <= 2x')}",
                f"bare + sketches / bare scan     : "
                f"{ratio(floor, bare, 'the floor for any profile with these sketches')}",
                f"profile aggregation / bare + sketches : {ratio(agg, floor)}",
                f"profile_groups full / bare scan : {ratio(full, bare)}",
            ]
        out += [
            f"audit profile on bins / bare    : {ratio(on_bins, bare)}",
            f"row-hash HLL + newest row       : {ratio(with_table, on_bins)}",
            f"PCA error part                  : {ratio(with_pca, with_table, 'target <= 1.15x')}",
            f"audit scan, all parts / bare    : {ratio(with_pca, bare)}",
        ]
        if summ in med:
            out += [
                f"summary() / profile aggregation : {ratio(summ, agg, 'target >= 10x')}",
                f"summary() / profile_groups full : {ratio(summ, full)}",
                f"summary() / bare + sketches     : {ratio(summ, floor, 'the most any such profile can reach')}",
            ]
        out += ["", f"wall time of the whole run: {total:.0f}s"]
        print("\n".join(out), flush=True)
    finally:
        spark.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _top_k_only(df: DataFrame, cols: list[ColumnSpec], grouping: Grouping, k: int) -> object:
    from spark_audit.profile.profiler import top_k_counts, with_group_columns

    return top_k_counts(with_group_columns(df, grouping), cols, grouping.columns(), k)


if __name__ == "__main__":
    sys.exit(main())
