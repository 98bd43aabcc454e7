"""How much the driver holds when the audit scan profiles many groups: 200 columns x 30 windows x 4 slices.

Not a test: a script that prints what it measured.

    PYTHONPATH=. python benchmarks/driver_memory.py                       # 600k and 1.2M rows
    PYTHONPATH=. python benchmarks/driver_memory.py --rows 1200000 --files 96

For each size it writes ``bench_profile.make_table``'s columns (``--columns``, 80% double, 20% string)
with a timestamp over 30 days and a 4-valued slice column as Delta, fits the reference's bins on it
(untimed), then runs the audit scan (``profile_groups`` by 1-day window and slice on those bins, with
top-k and the string HLL) and reports:

- the scan's tasks and groups;
- what the Arrow pass's merge stage handed the driver (rows, statistics, sketch bytes), from its log;
- the pickled size of the profiles the driver keeps (every group's columns, bins, sketches);
- the driver's Python peak and current resident memory, and the JVM heap in use after a GC.

Bounded means these stay the same when the rows (and so the tasks) double: they grow with
groups x columns, not with the data.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import pickle
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_profile as bp  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from spark_audit.profile import Grouping, profile_groups, resolve_columns  # noqa: E402
from spark_audit.profile.exprs import Sketches  # noqa: E402
from spark_audit.session import get_spark  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="600000,1200000", help="comma-separated table sizes (default 600000,1200000)")
    p.add_argument("--columns", type=int, default=200)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--slices", type=int, default=4)
    p.add_argument("--rows-per-file", type=int, default=25_000, help="so the tasks grow with the rows")
    return p.parse_args(argv)


def _status(field: str) -> float:
    """MiB of a /proc/self/status field (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = tempfile.mkdtemp(prefix="bench-driver-")
    spark = get_spark("local[2]", app_name="bench-driver", extra_conf={"spark.driver.memory": "4g",
                                                                           # small splits: many tasks, as on a cluster
                                                                           "spark.sql.files.maxPartitionBytes": "16m"})
    spark.sparkContext.setLogLevel("ERROR")
    handler = Captured()
    logger = logging.getLogger("spark_audit.profile.arrow_scan")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
    out = []
    try:
        for rows in [int(r) for r in args.rows.split(",")]:
            path = os.path.join(folder, f"t{rows}")
            gen = bp.parse_args(["--rows", str(rows), "--columns", str(args.columns),
                                 "--files", str(max(1, rows // args.rows_per_file))])
            gen.days = args.days
            bp.make_table(spark, gen).withColumn("segment", F.concat(F.lit("s"), F.pmod(F.col("id"), args.slices))) \
                .write.format("delta").mode("overwrite").save(path)
            df = spark.read.format("delta").load(path)
            names = [f"num_{j:02d}" for j in range(gen.numeric)] + [f"str_{j:02d}" for j in range(gen.strings)]
            cols = resolve_columns(df.schema, [(n, None) for n in names])
            [base] = profile_groups(df, cols, Grouping(model_version="1"), top_k=0, sketches=Sketches())
            bins, centers = bp.fitted(base)
            grouping = Grouping(timestamp_column="ts", window="1 day", slices=("segment",), model_version="1")
            gc.collect()
            rss0 = _status("VmRSS")
            handler.lines.clear()
            t0 = time.perf_counter()
            groups = profile_groups(df, cols, grouping, bins=bins, centers=centers, top_k=20, sketches=Sketches())
            seconds = time.perf_counter() - t0
            line = next(m for m in handler.lines if m.startswith("arrow pass:"))
            got = [int(x) for x in re.findall(r"(\d+) (?:row|statistic|sketch)", line)]
            kept = len(pickle.dumps(groups)) / 2**20
            spark.sparkContext._jvm.java.lang.System.gc()
            heap = (runtime.totalMemory() - runtime.freeMemory()) / 2**20
            out.append(f"{rows:>10,} {df.rdd.getNumPartitions():>6} {len(groups):>7} {got[0]:>12} "
                       f"{got[1] * 8 / 2**20:>10.1f} {got[2] / 2**20:>10.2f} {kept:>10.1f} "
                       f"{_status('VmRSS') - rss0:>9.0f} {_status('VmHWM'):>9.0f} {heap:>9.0f} {seconds:>7.1f}")
            print(f"done {rows:,} rows in {seconds:.0f}s", file=sys.stderr, flush=True)
            del groups
            shutil.rmtree(path, ignore_errors=True)
        print(f"{len(names)} columns ({gen.numeric} double, {gen.strings} string) x {args.days} 1-day windows x "
              f"{args.slices} slices; local[2]\n")
        print(f"{'rows':>10} {'tasks':>6} {'groups':>7} {'driver rows':>12} {'stats MiB':>10} "
              f"{'sketch MiB':>10} {'kept MiB':>10} {'RSS +MiB':>9} {'peak MiB':>9} {'JVM MiB':>9} {'s':>7}")
        print("\n".join(out))
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
