"""Benchmark spark-audit's profiles against a bare scan and the peers a user would pick instead.

Not a test: a script that prints timings measured side by side in one run.

    python benchmarks/bench_profile.py                          # 1M rows x 50 columns, with the peers
    python benchmarks/bench_profile.py --rows 10000000 --peers '' --no-summary --repeats 1   # rows scaling
    python benchmarks/bench_profile.py --columns 200 --peers '' --no-summary                  # columns scaling
    python benchmarks/bench_profile.py --variants --peers ''    # also the profile as Spark aggregates, ...

It generates a wide table (double columns with NaN/nulls/zeros, string columns with ~50 skewed
categories, a timestamp over 7 days), writes it as Delta to a temporary folder and reads it back.
Nothing is cached: every timed run scans the Delta table's Parquet files again (the OS page cache may
hold them, which is the same for every contender). Contenders:

1. a bare ``count/min/max/sum`` scan of every column (``count/max(length)`` of strings), and
2. the same grouped by 1-day windows: the floors;
3. spark-audit's profile of the whole table (KLL for numbers, HLL and exact top-k for strings);
4. spark-audit's reference profile: (3), then the 1-day windows on the bins it gives;
5. spark-audit's audit scan: 1-day windows on the reference's bins, with top-k, the row-hash sketch
   and the PCA reconstruction error;
6. ``df.summary()``;
7. whylogs and 8. Deequ's ``ColumnProfilerRunner`` (``--peers``), each in its own virtualenv
   (``benchmarks/peers/setup.sh``) as a subprocess reading the same Parquet files; each warms up in its
   own process on a few rows and reports the seconds of its profile.

Each in-process contender gets one untimed warm-up, then ``--repeats`` timed runs, interleaved
round-robin with the order rotated each round, so a burst of noise on the shared machine hits all
contenders alike. Medians and ratios of medians are what to read; the "ns per row x column" column
compares runs at other sizes (linear cost keeps it constant).
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
from spark_audit.profile.exprs import ColumnSpec, Sketches, hll_agg, kll_agg, profile_exprs  # noqa: E402
from spark_audit.profile.profiler import with_group_columns  # noqa: E402
from spark_audit.session import get_spark  # noqa: E402

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")
PEER_VENVS = os.path.join(PEERS, ".venvs")
DAY_SECONDS = 86_400
START_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (default 1,000,000)")
    p.add_argument("--numeric", type=int, default=40, help="double columns (default 40)")
    p.add_argument("--strings", type=int, default=10, help="string columns (default 10)")
    p.add_argument("--columns", type=int, help="all columns, 80%% double and 20%% string (overrides the two above)")
    p.add_argument("--categories", type=int, default=50, help="distinct values per string column (default 50)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contender (default 3)")
    p.add_argument("--files", type=int, default=8, help="Parquet files written (default 8)")
    p.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    p.add_argument("--driver-memory", default="4g", help="spark.driver.memory (default 4g)")
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--kll-k", type=int, default=200)
    p.add_argument("--no-summary", action="store_true", help="skip df.summary()")
    p.add_argument("--peers", default="whylogs,deequ",
                   help="peer profilers timed as subprocesses in their own virtualenvs (benchmarks/peers/README.md); "
                        "'' for none (default whylogs,deequ)")
    p.add_argument("--peer-repeats", type=int, default=1,
                   help="timed runs of each peer, in the first rounds (default 1: Deequ took 700 s at 1M x 50)")
    p.add_argument("--peer-driver-memory", default="12g",
                   help="a peer's spark.driver.memory (default 12g; Deequ's profiler ran out of 4g at 1M x 50)")
    p.add_argument("--peer-venvs", default=os.environ.get("SPARK_AUDIT_PEER_VENVS", PEER_VENVS),
                   help=f"folder holding the peers' virtualenvs, one per tool (default {PEER_VENVS})")
    p.add_argument(
        "--variants",
        action="store_true",
        help="also time the profile aggregation without KLL, without HLL, without both, ... to see what costs",
    )
    p.add_argument("--pca-features", type=int, default=20,
                   help="numeric features in the audit's PCA reconstruction-error part (default 20, the cap)")
    p.add_argument("--keep", metavar="DIR", help="write the table here and keep it (default: a temp folder, removed)")
    args = p.parse_args(argv)
    if args.columns:
        args.numeric = round(args.columns * 0.8)
        args.strings = args.columns - args.numeric
    return args


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
    days = getattr(args, "days", 7)
    ts = F.timestamp_seconds(F.lit(START_EPOCH) + F.floor(F.rand(seed=5) * days * DAY_SECONDS).cast("long"))
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
    """CPU seconds (user + system) used so far by the Spark JVM and its child processes (the Python
    workers of the Arrow pass), read from /proc.

    In local mode the driver JVM runs the tasks too, so this is the work a contender costs, much less
    sensitive than wall time to other processes competing for the 2 cores. Living descendants are
    summed (PySpark reuses its workers), each with the children it reaped. None where /proc is not there.
    """

    def __init__(self, spark: SparkSession) -> None:
        self.pid: int | None = None
        try:
            pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
            if os.path.exists(f"/proc/{pid}/stat"):
                self.pid = pid
                self.tick = os.sysconf("SC_CLK_TCK")
        except Exception:  # not local, or no /proc
            self.pid = None

    @staticmethod
    def _stat(pid: int) -> list[str] | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None

    def __call__(self) -> float | None:
        if self.pid is None:
            return None
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and (st := self._stat(int(name))) is not None:
                stats[int(name)] = st
        children: dict[int, list[int]] = {}
        for pid, st in stats.items():
            children.setdefault(int(st[1]), []).append(pid)  # field 4: ppid
        me = stats.get(self.pid)
        if me is None:
            return None
        ticks, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            st = stats[pid]
            # utime, stime (fields 14, 15), and cutime, cstime (16, 17): the children it reaped
            ticks += int(st[11]) + int(st[12]) + int(st[13]) + int(st[14])
            todo += children.get(pid, [])
        return ticks / self.tick


class Reported(float):
    """What a contender returns when it timed itself: a peer in its own process, whose start-up (a JVM,
    its own untimed warm-up) is not the profile's cost. Its CPU is not read."""


def run_contenders(
    contenders: dict[str, Callable[[], object]], repeats: int, cpu: JvmCpu, log: Callable[[str], None],
    warm_up: bool = True,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each contender's timed runs (a ``Reported`` return replaces the wall
    time, and has no CPU time)."""
    names = list(contenders)
    for name in names if warm_up else ():  # one untimed warm-up each (JIT, Delta snapshot, codegen)
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
            got = contenders[name]()
            wall[name].append(float(got) if isinstance(got, Reported) else time.perf_counter() - t0)
            c1 = cpu()
            # a Python worker that exited between the readings takes its CPU time with it when nobody
            # waited for it: a negative difference says so, and is not kept
            if c0 is not None and c1 is not None and not isinstance(got, Reported) and c1 >= c0:
                cpus[name].append(c1 - c0)
        log(f"  round {r + 1}/{repeats}: " + ", ".join(f"{n.split(' ')[0]}={wall[n][-1]:.2f}s" for n in names))
    return wall, cpus


def median(xs: list[float]) -> float:
    """The median of the runs that finished (a failed peer run is NaN); NaN when none did."""
    done = [x for x in xs if x == x]
    return statistics.median(done) if done else float("nan")


def table(wall: dict[str, list[float]], cpus: dict[str, list[float]], floor: str) -> list[str]:
    base = median(wall[floor])
    cbase = statistics.median(cpus[floor]) if cpus[floor] else None
    width = max(len(n) for n in wall)
    lines = [
        f"{'contender':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}  {'x bare':>7}"
        f"  {'cpu s':>9}  {'cpu x bare':>10}"
    ]
    lines.append("-" * len(lines[0]))
    for name, ts in wall.items():
        med = median(ts)
        done = [t for t in ts if t == t] or [float("nan")]
        row = f"{name:<{width}}  {med:9.2f}  {min(done):7.2f}  {max(done):7.2f}  {med / base:7.2f}"
        if cbase and cpus[name]:  # read as a hint: a worker's exit can also shrink a positive difference
            cmed = statistics.median(cpus[name])
            row += f"  {cmed:9.2f}  {cmed / cbase:10.2f}"
        lines.append(row)
    return lines


def fitted(base) -> tuple[dict, dict]:
    """What a reference profile gives the scans after it: each column's 20 quantile bins and its mean."""
    cols = base.profile.columns
    return {n: b for n, c in cols.items() if (b := reference_bins(c, 20))}, base.profile.centers()


def _audit_setup(df: DataFrame, cols: list[ColumnSpec], pca_features: int, kll_k: int):
    """What an audit gets from its reference (untimed): exact bins, centres and the fitted PCA."""
    [base] = profile_groups(df, cols, Grouping(model_version="1"), top_k=0, kll_k=kll_k)
    bins, centers = fitted(base)
    numeric = [c.name for c in cols if c.kind == "numeric" and (base.profile.columns[c.name].std or 0) > 0]
    names = numeric[:min(pca_features, multivariate.MAX_FEATURES)]
    means = [float(base.profile.columns[n].mean) for n in names]
    stds = [float(base.profile.columns[n].std) for n in names]
    [whole] = profile_groups(df, cols[:1], Grouping(model_version="1"), top_k=0,
                             parts=[multivariate.moments_part(names, means, stds)])
    pca = multivariate.reference_extras(names, means, stds, [whole], whole)["pca"]
    return bins, centers, pca


PEER_WARMUP_ROWS = 10_000


class Peer:
    """A peer profiler timed in its own virtualenv and process (``benchmarks/peers/<tool>_profile.py``):
    it reads the same Delta table's Parquet files, warms up on a few rows, profiles the same columns
    once and reports its own seconds. The warm-up round of ``run_contenders`` is skipped: the peer
    warms up in every process it starts."""

    def __init__(self, tool: str, n: int, args: argparse.Namespace, path: str, names: list[str],
                 log: Callable[[str], None]) -> None:
        self.tool, self.path, self.names, self.log = tool, path, names, log
        self.label = f"{7 + n} {tool} (own virtualenv)"
        self.venv = os.path.join(args.peer_venvs, tool)
        python = os.path.join(self.venv, "bin", "python")
        self.python = python if os.path.exists(python) else None
        self.script = os.path.join(PEERS, f"{tool}_profile.py")
        self.driver_memory = args.peer_driver_memory
        self.repeats = args.peer_repeats
        self.versions = ""
        self.errors: list[str] = []
        self.calls = 0

    def __call__(self) -> Reported:
        import json
        import subprocess

        self.calls += 1
        if self.calls == 1 or self.calls > 1 + self.repeats:  # no warm-up round; at most --peer-repeats runs
            return Reported(0.0 if self.calls == 1 else float("nan"))
        cmd = [self.python, self.script, "--parquet", self.path, "--columns", ",".join(self.names),
               "--repeats", "1", "--warmup-rows", str(PEER_WARMUP_ROWS), "--driver-memory", self.driver_memory]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME", "PYSPARK_PYTHON")}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3 * 3600)
        if done.returncode != 0:  # kept as a result: a peer that cannot profile this table at this memory
            lines = [ln for ln in done.stderr.splitlines() if "Error" in ln or "Exception" in ln]
            self.errors.append(lines[0].strip()[:300] if lines else f"exit code {done.returncode}")
            self.log(f"{self.tool} failed: {self.errors[-1]}")
            return Reported(float("nan"))
        result = json.loads(done.stdout.strip().splitlines()[-1])
        self.versions = ", ".join(f"{k} {v}" for k, v in result.items()
                                  if k in ("version", "pydeequ", "pyspark", "java") and v)
        return Reported(float(result["seconds"][0]))


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
        bare_w = "2 bare scan, 1-day windows"
        prof = "3 spark-audit profile (KLL, HLL, top-k)"
        ref = "4 spark-audit reference profile (2 passes)"
        audit = "5 spark-audit audit scan (1-day windows, bins)"
        summ = "6 df.summary()"
        table_part = table_checks.part(df.columns, "ts")
        audit_bins, audit_centers, pca = _audit_setup(df, cols, args.pca_features, kll_k)  # untimed

        def windowed_bare() -> object:
            g = with_group_columns(df, daily)
            return g.groupBy(*daily.columns()).agg(*bare_exprs(df, names)).collect()

        def reference_profile() -> object:
            """What ``build_reference`` scans: the whole reference (KLL for its bins, HLL, top-k), then its
            1-day windows on those bins (exact counts, the row-hash sketch; no column sketch)."""
            [base] = profile_groups(df, cols, unwindowed, top_k=k, kll_k=kll_k, sketches=Sketches())
            bins, centers = fitted(base)
            return profile_groups(df, cols, daily, bins=bins, centers=centers, top_k=0, kll_k=kll_k,
                                  sketches=Sketches(hll=()), parts=[table_part])

        contenders: dict[str, Callable[[], object]] = {
            bare: lambda: df.agg(*bare_exprs(df, names)).collect(),
            bare_w: windowed_bare,
            prof: lambda: profile_groups(df, cols, unwindowed, top_k=k, kll_k=kll_k, sketches=Sketches()),
            ref: reference_profile,
            # what ``run_audit`` scans: the windows on the reference's bins and centres, top-k, string HLL,
            # the row-hash sketch and newest row, the PCA reconstruction error
            audit: lambda: profile_groups(df, cols, daily, bins=audit_bins, centers=audit_centers, top_k=k,
                                          kll_k=kll_k, sketches=Sketches(),
                                          parts=[table_part, multivariate.error_part(pca)]),
        }
        if not args.no_summary:
            contenders[summ] = lambda: df.select(*names).summary().collect()
        peers = [Peer(tool, n, args, path, names, log) for n, tool in enumerate(t for t in args.peers.split(",") if t)]
        for peer in peers:
            if peer.python:
                contenders[peer.label] = peer
            else:
                log(f"{peer.tool}: not run, no virtualenv at {peer.venv} (benchmarks/peers/setup.sh makes it)")
        if args.variants:
            agg = "v profile as Spark aggregates (the engine before the Arrow pass)"
            contenders["v bare scan + KLL/HLL sketches only"] = lambda: df.agg(
                *sketch_floor_exprs(df, names, kll_k)).collect()
            contenders[agg] = lambda: df.agg(*profile_exprs(cols, kll_k=kll_k)).collect()
            contenders["v profile, engine spark"] = lambda: profile_groups(df, cols, unwindowed, top_k=k,
                                                                          kll_k=kll_k, engine="spark")
            contenders["v top-k pass only"] = lambda: _top_k_only(df, cols, unwindowed, k)
            # fixed cost: building the expressions over py4j, planning; Parquet stats skip every row group
            none = df.where(F.col("id") < 0)
            contenders["v profile agg on 0 rows (fixed cost)"] = lambda: none.agg(
                *profile_exprs(cols, kll_k=kll_k)
            ).collect()
            contenders["v bare scan on 0 rows (fixed cost)"] = lambda: none.agg(*bare_exprs(df, names)).collect()

        times, cpus = run_contenders(contenders, args.repeats, JvmCpu(spark), log)
        total = time.perf_counter() - t_start

        med = {n: median(t) for n, t in times.items()}
        cmed = {n: statistics.median(t) for n, t in cpus.items() if t}

        def ratio(a: str, b: str, target: str = "") -> str:
            line = f"{med[a] / med[b]:6.2f}x wall"
            if a in cmed and b in cmed:
                line += f", {cmed[a] / cmed[b]:5.2f}x cpu"
            return line + (f"   ({target})" if target else "")

        cells = args.rows * len(names)
        versions = [f"{p.label}: {p.versions}" for p in peers if p.versions]
        out = [
            f"Spark {spark.version}, master {spark.sparkContext.master}, "
            f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}",
            f"rows {args.rows:,}; columns {args.numeric} double + {args.strings} string "
            f"({args.categories} categories) + ts over 7 days; {size_mb:.0f} MiB Parquet in Delta, "
            f"{df.rdd.getNumPartitions()} scan partitions",
            f"repeats {args.repeats} (after 1 untimed warm-up each; a peer runs in the first {args.peer_repeats} "
            f"round(s), warms up in its own process on {PEER_WARMUP_ROWS:,} rows and reports its own time, "
            f"driver memory {args.peer_driver_memory}); top_k={k}, kll_k={kll_k}",
            *versions,
            "",
            *table(times, cpus, bare),
            "",
            f"{'contender':<48} {'ns per row x column':>20}",
            *[f"{n:<48} {med[n] / cells * 1e9:20.1f}" for n in contenders],
            "",
            f"spark-audit profile / bare scan          : {ratio(prof, bare)}",
            f"audit scan / bare scan, 1-day windows    : {ratio(audit, bare_w, 'target <= 2.0x')}",
            f"reference profile / bare, 1-day windows  : {ratio(ref, bare_w, 'target <= 3.0x')}",
        ]
        if summ in med:
            out.append(f"summary() / spark-audit profile         : {ratio(summ, prof, 'target >= 5x')}")
        for peer in peers:
            if peer.label in med:
                out.append(f"{peer.tool + ' / spark-audit profile':<41}: {ratio(peer.label, prof, 'target > 1x')}")
            if peer.errors:
                out.append(f"{peer.tool} failed in {len(peer.errors)} run(s): {peer.errors[0]}")
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
