"""Time Deequ's column profiler (through PyDeequ) on a folder of Parquet files; print one JSON line.

Runs in its own virtualenv (/work/peers/deequ, see README.md and setup.sh), never the project's::

    /work/peers/deequ/bin/python benchmarks/peers/deequ_profile.py \
        --parquet /tmp/bench/table --columns num_00,num_01,str_00 --repeats 3

The Deequ jar comes from Maven Central through ``spark.jars.packages`` (``--deequ-coord``, default
``$DEEQU_COORD`` or the one for the installed PySpark's minor version, see ``DEFAULT_COORDS``), or
from a local file (``--deequ-jar``). Ivy keeps its cache under ``--ivy-dir``.

What is timed, per run: ``ColumnProfilerRunner(spark).onData(df).run()`` with Deequ's defaults:
pass 1 size, completeness, approximate distinct count (HLL++) and, for string columns, data type
inference; pass 2 for numeric columns (and strings inferred numeric) min, max, mean, sum,
stddev and approximate percentiles; pass 3 exact histograms for columns with at most 120
approximate distinct values. KLL sketches are off by default in Deequ (``--kll`` turns them on).
``run()`` returns after PyDeequ has converted every column profile into Python objects, so the
result is materialized.

With ``--window-column ts`` the profile is run once per 1-day window (Deequ has no grouping or
segmentation in its profiler: each day is a filtered DataFrame, ``to_date(ts) = day``, profiled
in turn; the list of days is found untimed beforehand). ``seconds`` is then the total over all
windows of a run.

Output on stdout (everything else goes to stderr)::

    {"tool": "deequ", "version": "2.1.0-spark-3.5", "pydeequ": "1.7.0", "pyspark": "3.5.9",
     "java": "17.0.15", "seconds": [..], "warmup_seconds": .., "rows": N, "columns": C,
     "windowed": false, "windows": null, "files": F}
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, list_parquet_files, log, parse_args, read_columns, report, spark_builder, time_runs, warn_java  # noqa: E402

# Deequ builds that resolve on Maven Central, by Spark minor version. PyDeequ 1.7.0's own mapping
# (2.0.21-spark-3.5, 2.0.18-spark-4.1) names versions that Maven Central does not serve here.
DEFAULT_COORDS = {
    "3.5": "com.amazon.deequ:deequ:2.1.0-spark-3.5",
    "4.1": "com.amazon.deequ:deequ:2.0.18-spark-4.1",
}


def main(argv: list[str] | None = None) -> int:
    def extra(p) -> None:
        p.add_argument(
            "--deequ-coord",
            default=os.environ.get("DEEQU_COORD", ""),
            help="Maven coordinate of Deequ (default: DEFAULT_COORDS for the installed PySpark)",
        )
        p.add_argument("--deequ-jar", default=os.environ.get("DEEQU_JAR", ""), help="a local Deequ jar instead")
        p.add_argument(
            "--ivy-dir",
            default=os.environ.get("DEEQU_IVY_DIR", os.path.join(sys.prefix, "ivy")),
            help="Ivy cache for spark.jars.packages (default: inside the virtualenv)",
        )
        p.add_argument("--kll", action="store_true", help="also compute Deequ's KLL sketches (off by default)")

    args = parse_args("deequ", argv, extra)
    own = args
    files = list_parquet_files(args.parquet)
    log(f"{len(files)} parquet files under {args.parquet}")

    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    os.environ.setdefault("SPARK_VERSION", spark_minor)  # PyDeequ refuses to import without it
    import pydeequ
    from pydeequ.profiles import ColumnProfilerRunner, NumericColumnProfile

    conf = {"spark.jars.ivy": own.ivy_dir}
    if own.deequ_jar:
        conf["spark.jars"] = own.deequ_jar
        deequ_version = os.path.basename(own.deequ_jar).removeprefix("deequ-").removesuffix(".jar")
    else:
        coord = own.deequ_coord or DEFAULT_COORDS.get(spark_minor) or pydeequ.deequ_maven_coord
        conf["spark.jars.packages"] = coord
        # f2j: as PyDeequ's README says. dqdl: Deequ 2.1.0 depends on software.amazon.glue:dqdl:1.0.7,
        # which Maven Central does not have (only 1.0.0); the column profiler never loads it.
        conf["spark.jars.excludes"] = f"{pydeequ.f2j_maven_coord},software.amazon.glue:dqdl"
        deequ_version = coord.split(":")[-1]
    log(f"pyspark {pyspark.__version__}, pydeequ {pydeequ.__version__}, deequ {deequ_version}")

    from pyspark.sql import functions as F

    java = warn_java(pyspark.__version__)
    spark = spark_builder("peer-deequ", args, conf).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        full, cols = read_columns(spark, files, args)

        def profile(df):
            builder = ColumnProfilerRunner(spark).onData(df)
            if own.kll:
                builder = builder.withKLLProfiling()
            return builder.run()

        days: list = []
        if args.window_column:
            day_col = F.to_date(F.col(args.window_column))
            days = [r[0] for r in full.select(day_col.alias("d")).distinct().orderBy("d").collect()]
            log(f"{len(days)} 1-day windows: {days[0]} .. {days[-1]}" if days else "no windows")

        def run(df) -> int | None:
            if not args.window_column:
                profile(df.select(*cols))
                return None
            for d in days:
                profile(df.where(F.to_date(F.col(args.window_column)) == F.lit(d)).select(*cols))
            return len(days)

        warmup, seconds, windows = time_runs(
            args, lambda: profile(spark.read.parquet(files[0]).limit(args.warmup_rows).select(*cols)),
            lambda: run(full), os.path.basename(files[0]))

        if args.check:
            result = profile(full.select(args.check))
            p = result.profiles[args.check]
            info = {
                "numRecords": result.numRecords,
                "completeness": p.completeness,
                "approximateNumDistinctValues": p.approximateNumDistinctValues,
                "dataType": p.dataType,
            }
            if isinstance(p, NumericColumnProfile):
                info.update(mean=p.mean, stdDev=p.stdDev, minimum=p.minimum, maximum=p.maximum, sum=p.sum)
            if p.histogram:
                info["histogram_bins"] = len(p.histogram)
            log(f"check {args.check}: {info}")
            if args.window_column:
                per_day = {}
                for d in days:
                    r = profile(full.where(F.to_date(F.col(args.window_column)) == F.lit(d)).select(args.check))
                    per_day[str(d)] = (r.numRecords, getattr(r.profiles[args.check], "mean", None))
                log(f"check {args.check} per window (numRecords, mean): {per_day}")

        rows = full.count()
        emit(report("deequ", deequ_version, pyspark.__version__, java, warmup, seconds, rows, cols, args, windows,
                    files, pydeequ=pydeequ.__version__, kll=own.kll))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
