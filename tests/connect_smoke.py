"""Smoke audit through a local Spark Connect session; run by tests/test_spark_connect.py in its own process.

    python tests/connect_smoke.py HOME RESULT_JSON

``SparkSession.builder.remote("local[2]")`` makes PySpark start a Spark Connect server in a
local JVM (a classic session with the SparkConnectPlugin) and returns a Connect client
session to it. The builder's ``.config(...)`` entries set before ``.remote(...)`` become that
server's SparkConf, which is how Delta's JARs (``spark.jars.packages``) and its SQL extension
and catalog reach the server. A Connect session cannot share a process with a classic one,
hence the separate process.

The demo table is generated, the reference built, the audit and the release gate run with the real
product code through the Connect session; what the test checks is written to RESULT_JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

DELTA_CONF = {
    # the same settings spark_audit.session.get_spark gives a local classic session
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
FAST_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.enabled": "false",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def connect_session():
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("spark-audit-connect-smoke")
    for key, value in {**DELTA_CONF, **FAST_CONF}.items():
        builder = builder.config(key, value)
    # spark.jars.packages = io.delta:delta-spark_4.2_2.13:<delta-spark version>, as for a classic session
    builder = configure_spark_with_delta_pip(builder)
    # the server's Python workers (the profile's Arrow pass) run this interpreter, as get_spark arranges
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return builder.remote("local[2]").getOrCreate()


def main(home: Path, result_path: Path) -> None:
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - t0, 1)
        print(f"connect smoke: {name} at {timings[name]}s", file=sys.stderr, flush=True)

    spark = connect_session()
    lap("session")
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    from spark_audit import store
    from spark_audit.audit import run_audit
    from spark_audit.demo import write_demo
    from spark_audit.reference_build import build_reference
    from spark_audit.spec import load_spec

    spec = load_spec(write_demo(spark, home, rows_per_day=300)).for_model_version("1")  # one version: a smoke
    lap("demo table")
    build_reference(spark, spec)
    lap("reference")
    result = run_audit(spark, spec)
    lap("audit")
    from dataclasses import replace

    from spark_audit.gate import run_gate

    gate = run_gate(spark, replace(spec, gate=replace(spec.gate, replicates=30)), "2", champion="1",
                    log_to_mlflow=False)
    lap("gate")
    counts = {}
    for table in ("audit_runs", "profile_metrics"):  # read back through the complete-runs view
        df = store.complete(spark, spec.output, table)
        counts[table] = None if df is None else df.where(df.audit_name == spec.name).count()
    runs = store.read(spark, spec.output, "audit_runs")
    statuses = {} if runs is None else {r.audit_name: r.status for r in runs.select("audit_name", "status").collect()}
    lap("results read")
    out = {
        "connect": isinstance(spark, ConnectSession),
        "exit_code": result.exit_code,
        "findings": [
            {"severity": f.severity, "kind": f.kind, "column": f.column, "window_start": f.window_start,
             "slice": f.slice}
            for f in result.findings
        ],
        "gate": {"rows": len(gate.rows), "exit_code": gate.exit_code,
                 "overall": {r.metric: r.verdict for r in gate.overall()}},
        "output_path": str(spec.output.path),
        "counts": counts,
        "statuses": statuses,
        "timings": timings,
    }
    result_path.write_text(json.dumps(out))
    spark.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
