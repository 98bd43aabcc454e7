"""The jobs/ scripts run under spark-submit as their own Spark application, as docs/operations.md says.

spark-submit gives the session (master, Delta packages); ``get_spark()`` must take it rather than
start another, and spark-submit must hand the job's exit code to the scheduler.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from spark_audit import store
from spark_audit.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = Path(sys.executable).with_name("spark-submit")
T0 = datetime(2026, 4, 1, tzinfo=timezone.utc)


def spark_submit(spark, script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a jobs/ script like the docs do: Delta from --packages and --conf, nothing else."""
    cmd = [
        str(SPARK_SUBMIT), "--master", "local[2]",
        # the same Delta artifact the test session resolved (already in the Ivy cache)
        "--packages", spark.conf.get("spark.jars.packages"),
        "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.driver.host=127.0.0.1",
        str(ROOT / "jobs" / script), *args,
    ]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)


@pytest.mark.skipif(not SPARK_SUBMIT.exists(), reason="spark-submit is not installed beside this Python")
def test_jobs_run_under_spark_submit_and_pass_the_exit_code(spark, tmp_path):
    table = str(tmp_path / "t")
    rows = [(T0 + timedelta(days=d, minutes=i), float("nan") if d == 2 else float(i % 50), f"c{i % 3}")
            for d in range(3) for i in range(200)]
    spark.createDataFrame(rows, "ts timestamp, x double, c string").write.format("delta").save(table)
    spec = {
        "name": "submit-test",
        "source": {"path": table, "timestamp_column": "ts"},
        "window": {"size": "1 day"},
        "features": ["x", "c"],
        "reference": {"end": (T0 + timedelta(days=1)).isoformat()},
        "output": {"path": str(tmp_path / "results")},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "submit"},
    }
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(spec))

    built = spark_submit(spark, "build_reference.py", str(path))
    assert built.returncode == 0, built.stderr[-3000:]
    uri = built.stdout.split("reference logged as ")[1].split()[0]
    path.write_text(yaml.safe_dump({**spec, "reference": {"uri": uri}}))

    audited = spark_submit(spark, "run_audit.py", str(path), "--backfill",
                           T0.isoformat(), (T0 + timedelta(days=3)).isoformat())
    # the all-NaN third day is a critical finding: exit code 1 reaches the scheduler through spark-submit
    assert audited.returncode == 1, audited.stdout[-2000:] + audited.stderr[-3000:]
    assert "CRITICAL missing" in audited.stdout and "exit code 1" in audited.stdout

    output = load_spec(str(path)).output
    runs = store.complete(spark, output, "audit_runs").collect()
    assert len(runs) == 1 and runs[0].status == "complete" and runs[0].exit_code == 1
    windows = {r.window_start for r in store.read(spark, output, "drift_metrics").select("window_start").collect()}
    assert len(windows) == 3
