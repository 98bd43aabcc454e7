"""Time whylogs' Spark profile of a folder of Parquet files; print one JSON line.

Runs in its own virtualenv (/work/peers/whylogs, see README.md and setup.sh), never the project's::

    /work/peers/whylogs/bin/python benchmarks/peers/whylogs_profile.py \
        --parquet /tmp/bench/table --columns num_00,num_01,str_00 --repeats 3

What is timed, per run: ``collect_dataset_profile_view(df)`` (whylogs' Spark API: ``mapInPandas``
runs ``why.log`` on each Arrow batch, ``applyInPandas`` merges the column profiles per column,
the driver collects them), then reading every column's summary (``to_summary_dict``, which
computes the KLL quantiles, histogram and frequent items from the sketches). With
``--window-column ts`` the run is instead ``collect_segmented_results`` on a schema segmented by
the day of ``ts`` (``_day``, a ``yyyy-MM-dd`` string added with ``date_format``), i.e. one profile
per 1-day window, and every segment's column summaries are read.

Output on stdout (everything else goes to stderr)::

    {"tool": "whylogs", "version": "1.6.4", "pyspark": "3.5.9", "java": "17.0.15",
     "seconds": [..], "warmup_seconds": .., "rows": N, "columns": C, "windowed": false,
     "windows": null, "files": F}
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")  # no telemetry call (the network is closed anyway)
# whylogs' variance merge warns (numpy RuntimeWarning) on every batch of a column with NaN; the
# Python workers inherit this environment, so this keeps stderr readable. Results are unaffected.
os.environ.setdefault("PYTHONWARNINGS", "ignore::RuntimeWarning,ignore::FutureWarning")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, list_parquet_files, log, parse_args, read_columns, report, spark_builder, time_runs, warn_java  # noqa: E402

DAY_COLUMN = "_day"


def main(argv: list[str] | None = None) -> int:
    args = parse_args("whylogs", argv)
    files = list_parquet_files(args.parquet)
    log(f"{len(files)} parquet files under {args.parquet}")

    import pyspark
    import whylogs
    from pyspark.sql import functions as F
    from whylogs.api.pyspark.experimental import collect_dataset_profile_view, collect_segmented_results
    from whylogs.core.schema import DatasetSchema
    from whylogs.core.segmentation_partition import segment_on_column

    java = warn_java(pyspark.__version__)
    spark = spark_builder("peer-whylogs", args).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        full, cols = read_columns(spark, files, args)

        def prepare(df):
            if args.window_column:
                day = F.date_format(F.col(args.window_column), "yyyy-MM-dd").alias(DAY_COLUMN)
                return df.select(*cols, day)
            return df.select(*cols)

        schema = DatasetSchema(segments=segment_on_column(DAY_COLUMN)) if args.window_column else None

        def run(df) -> int | None:
            """One full profile, materialized; returns the number of segments (windowed) or None."""
            if schema is None:
                view = collect_dataset_profile_view(df)
                for name in cols:
                    view.get_column(name).to_summary_dict()
                return None
            results = collect_segmented_results(df, schema=schema)
            segments = results.segments()
            for seg in segments:
                view = results.view(seg)
                for name in cols:
                    view.get_column(name).to_summary_dict()
            return len(segments)

        df = prepare(full)
        warmup, seconds, windows = time_runs(
            args, lambda: run(prepare(spark.read.parquet(files[0]).limit(args.warmup_rows))),
            lambda: run(df), os.path.basename(files[0]))

        if args.check:
            view = collect_dataset_profile_view(full.select(args.check))
            summary = view.get_column(args.check).to_summary_dict()
            keep = (
                "counts/",
                "types/",
                "distribution/mean",
                "distribution/stddev",
                "distribution/min",
                "distribution/max",
                "distribution/median",
                "cardinality/est",
            )
            log(f"check {args.check}: " + str({k: v for k, v in summary.items() if k.startswith(keep)}))
            if schema is not None:
                results = collect_segmented_results(prepare(full), schema=schema)
                per_day = {}
                for seg in results.segments():
                    d = results.view(seg).get_column(args.check).to_summary_dict()
                    per_day[seg.key[0]] = (d["counts/n"], round(d.get("distribution/mean", float("nan")), 6))
                log(f"check {args.check} per window (counts/n, mean): {dict(sorted(per_day.items()))}")

        rows = full.count()
        emit(report("whylogs", whylogs.__version__, pyspark.__version__, java, warmup, seconds, rows, cols, args, windows,
                    files))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
