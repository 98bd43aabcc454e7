"""Benchmark the audit path end to end against a bare windowed scan of the same columns.

Not a test: a script that prints timings measured side by side in one run.

    PYTHONPATH=. python benchmarks/bench_audit.py                       # 1M rows x (80 double + 20 string)
    PYTHONPATH=. python benchmarks/bench_audit.py --rows 5000000 --repeats 1   # the performance issue's size
    PYTHONPATH=. python benchmarks/bench_audit.py --engine spark        # the columns' statistics as Spark
                                                                        # aggregates instead of the Arrow pass

The table (``bench_profile.make_table``'s columns, timestamps over ``--days`` days) is written as Delta
once (``--keep DIR`` keeps and reuses it). The reference is the first half of the days, audited windows
are the 1-day windows of the second half. Contenders, each after one untimed warm-up, interleaved
round-robin with the order rotated each round:

- the bare scan: ``count/min/max/sum`` of every column (``count/max(length)`` of strings) grouped by the
  same 1-day windows over the audited days, and the same over the reference's days;
- ``spark-audit reference build`` (``build_references``: profile, bins, exact counts per window, the
  reference logged to MLflow);
- ``spark-audit audit`` (``run_audits``: reading, profiling, comparing, MLflow logging, Delta writes),
  with the time of its ``profiling windows`` phase reported on its own.

MLflow is a SQLite store and the results are Delta tables, both in the temp folder. Medians and the
ratios of medians are what to read.
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
from datetime import datetime, timedelta, timezone
from io import StringIO

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_profile as bp  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from spark_audit.profile.profiler import Grouping, with_group_columns  # noqa: E402
from spark_audit.progress import Progress  # noqa: E402
from spark_audit.session import get_spark  # noqa: E402
from spark_audit.spec import parse_spec  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--numeric", type=int, default=80)
    p.add_argument("--strings", type=int, default=20)
    p.add_argument("--days", type=int, default=10, help="days of rows; the first half is the reference")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--engine", choices=("arrow", "spark"), default="arrow")
    p.add_argument("--keep", metavar="DIR")
    return p.parse_args(argv)


class Timed(Progress):
    """Progress that keeps each phase's seconds (the last run's)."""

    def __init__(self) -> None:
        super().__init__(stream=StringIO(), enabled=True)
        self.phases: dict[str, float] = {}

    def note(self, message: str) -> None:
        m = re.match(r"(.*) done in ([0-9.]+)s$", message)
        if m:
            self.phases[m.group(1)] = float(m.group(2))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.keep or tempfile.mkdtemp(prefix="bench-audit-")
    path = os.path.join(folder, "table")
    spark = get_spark("local[2]", app_name="bench-audit", extra_conf={"spark.driver.memory": "6g"})
    spark.sparkContext.setLogLevel("ERROR")
    t0 = time.perf_counter()
    try:
        if not os.path.exists(os.path.join(path, "_delta_log")):
            gen = bp.parse_args(["--rows", str(args.rows), "--numeric", str(args.numeric), "--strings",
                                 str(args.strings), "--files", str(args.files)])
            ts = F.timestamp_seconds(F.lit(int(START.timestamp())) + F.floor(F.rand(seed=5) * args.days * 86400)
                                     .cast("long"))
            bp.make_table(spark, gen).withColumn("ts", ts).write.format("delta").mode("overwrite").save(path)
        print(f"[{time.perf_counter() - t0:6.0f}s] table ready", file=sys.stderr, flush=True)
        names = [f"num_{j:02d}" for j in range(args.numeric)] + [f"str_{j:02d}" for j in range(args.strings)]
        half = START + timedelta(days=args.days // 2)
        end = START + timedelta(days=args.days)
        spec = parse_spec({
            "name": "bench-audit",
            "source": {"path": path, "timestamp_column": "ts"},
            "window": {"size": "1 day", "start": half.isoformat(), "end": end.isoformat()},
            "model": {"name": "bench-model", "version": "1"},
            "features": names,
            "reference": {"start": START.isoformat(), "end": half.isoformat()},
            "output": {"path": os.path.join(folder, "results")},
            "mlflow": {"tracking_uri": f"sqlite:///{os.path.join(folder, 'mlflow.db')}", "experiment": "bench"},
            "profile": {"engine": args.engine},
        })
        from spark_audit.audit import run_audits
        from spark_audit.reference_build import build_references

        df = spark.read.format("delta").load(path)
        daily = Grouping(timestamp_column="ts", window="1 day", model_version="1")

        def bare(lo: datetime, hi: datetime):
            rows = df.where((F.col("ts") >= F.lit(lo)) & (F.col("ts") < F.lit(hi)))
            g = with_group_columns(rows, daily)
            return g.groupBy(*daily.columns()).agg(*bp.bare_exprs(df, names)).collect()

        progress, ref_progress = Timed(), Timed()
        profiling: list[float] = []

        def audit():
            run_audits(spark, spec, progress=progress)
            profiling.append(progress.phases["profiling windows"])

        contenders = {
            "bare windowed scan, audited days": lambda: bare(half, end),
            "bare windowed scan, reference days": lambda: bare(START, half),
            "reference build": lambda: build_references(spark, spec, progress=ref_progress),
            "audit (whole)": audit,
        }
        wall, _ = bp.run_contenders(contenders, args.repeats, bp.JvmCpu(spark),
                                    lambda m: print(f"[{time.perf_counter() - t0:6.0f}s] {m}", file=sys.stderr,
                                                    flush=True))
        med = {n: statistics.median(v) for n, v in wall.items()}
        prof = statistics.median(profiling[1:])
        bare_a, bare_r = med["bare windowed scan, audited days"], med["bare windowed scan, reference days"]
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
                   if f.endswith(".parquet")) / 2**20
        out = [f"Spark {spark.version}, local[2]; {args.rows:,} rows x {args.numeric} double + {args.strings} "
               f"string columns over {args.days} days ({size:.0f} MiB Parquet in Delta); engine {args.engine}; "
               f"medians of {args.repeats} round(s) after a warm-up", "",
               f"{'contender':<40} {'median s':>9} {'x bare':>7}  (target)",
               f"{'bare windowed scan, audited days':<40} {bare_a:9.1f} {1:7.2f}",
               f"{'audit: profiling phase':<40} {prof:9.1f} {prof / bare_a:7.2f}  (<= 2.0)",
               f"{'audit (whole, MLflow + Delta writes)':<40} {med['audit (whole)']:9.1f} "
               f"{med['audit (whole)'] / bare_a:7.2f}  (<= 3.0)",
               f"{'bare windowed scan, reference days':<40} {bare_r:9.1f} {1:7.2f}",
               f"{'reference build':<40} {med['reference build']:9.1f} "
               f"{med['reference build'] / bare_r:7.2f}  (<= 3.0)",
               "", "audit phases (last run): " + ", ".join(f"{k} {v:.1f}s" for k, v in progress.phases.items()),
               "reference build phases (last run): "
               + ", ".join(f"{k} {v:.1f}s" for k, v in ref_progress.phases.items())]
        print("\n".join(out), flush=True)
    finally:
        spark.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
