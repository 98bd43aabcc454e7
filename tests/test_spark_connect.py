"""The product is Spark-Connect-safe (DESIGN.md principle 3): DataFrame API and SQL functions only.

Two checks: a cheap static one (no RDD, SparkContext, py4j or Python UDF in the package), and a
smoke audit through a real local Spark Connect session. The Connect session runs in its own
process (tests/connect_smoke.py): it cannot coexist with the classic session of conftest.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spark_audit"
SMOKE = Path(__file__).with_name("connect_smoke.py")
TIMEOUT_S = 900  # a cold Ivy cache fetches Delta's JARs first; a warm run takes about two minutes

# APIs that need the classic JVM-backed session, or run Python row by row on the executors
FORBIDDEN = {
    ".rdd": re.compile(r"\.rdd\b"),
    "sparkContext": re.compile(r"\bsparkContext\b"),
    "_jvm": re.compile(r"\b_jvm\b"),
    "_jsc": re.compile(r"\b_jsc\b"),
    "_jdf": re.compile(r"\b_jdf\b"),
    "py4j": re.compile(r"\bpy4j\b"),
    "udf(": re.compile(r"\budf\("),
    "pandas_udf": re.compile(r"\bpandas_udf\b"),
    "mapInPandas": re.compile(r"\bmapInPandas\b"),
}


def test_python_on_executors_only_in_the_arrow_pass():
    """One deliberate exception to "no Python on the hot path": the profile's vectorised Arrow pass
    (mapInArrow is Spark Connect safe; spark_audit/profile/arrow_scan.py says why it is there). Nothing
    else may run Python on the executors."""
    users = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                   if re.search(r"\.mapInArrow\(", p.read_text(encoding="utf-8")))
    assert users == ["spark_audit/profile/arrow_scan.py"], users


def test_package_uses_no_classic_only_spark_api():
    hits = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert files, f"no Python files under {PACKAGE}"
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{lineno}: {name}: {line.strip()}")
    assert not hits, "Spark Connect unsafe API in the package:\n" + "\n".join(hits)


class DeltaConnectPluginMissing(AssertionError):
    """The audit called DeltaTable, which needs the Delta Connect server plugin under Spark Connect."""


CONNECT_MODULES = ("grpc", "grpc_status", "google.rpc", "pyarrow", "pandas", "zstandard")


def _missing_connect_modules() -> list[str]:
    missing = []
    for name in CONNECT_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def run_smoke(work: Path) -> dict:
    """Run tests/connect_smoke.py in a fresh interpreter; its findings, counts and timings."""
    missing = _missing_connect_modules()
    if missing:
        pytest.skip(f"Spark Connect client modules missing: {', '.join(missing)} (pip install 'pyspark[connect]')")
    home, result = work / "home", work / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_REMOTE", "SPARK_CONNECT_MODE",
           "SPARK_LOCAL_REMOTE", "PYSPARK_GATEWAY", "PYSPARK_SUBMIT_ARGS", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    # the local Connect server then binds an ephemeral port instead of 15002, and the client asks it
    # which: concurrent test runs on one machine do not collide
    env["SPARK_TESTING"] = "1"
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # its own process group, so that a timeout ends the Connect server's JVM too
    proc = subprocess.Popen([sys.executable, str(SMOKE), str(home), str(result)], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"Spark Connect smoke audit timed out after {TIMEOUT_S}s:\n{_tail(output)}")
    if proc.returncode != 0:
        if "NO_HANDLER_FOR_EXTENSION" in output and "delta.connect" in output:
            raise DeltaConnectPluginMissing(_tail(output))
        pytest.fail(f"Spark Connect smoke audit exited {proc.returncode}:\n{_tail(output)}")
    return json.loads(result.read_text())


def _tail(text: str | None, lines: int = 60) -> str:
    return "\n".join((text or "").splitlines()[-lines:])


def test_smoke_audit_through_spark_connect(tmp_path):
    r = run_smoke(tmp_path)
    print("connect smoke timings (s):", r["timings"])
    assert r["connect"], "the audit did not run on a Spark Connect session"
    overall = [f for f in r["findings"] if f["slice"] is None]
    drifted_days = {f["window_start"][:10] for f in overall
                    if f["kind"] == "drift" and f["column"] == "monthly_charges" and f["severity"] == "critical"}
    assert {"2026-01-12", "2026-01-13", "2026-01-14"} <= drifted_days
    missing = [(f["column"], f["window_start"][:10], f["severity"]) for f in overall if f["kind"] == "missing"]
    assert missing == [("tenure_months", "2026-01-14", "critical")]
    assert r["exit_code"] == 1
    # the Delta result tables were written, and the run is recorded complete
    out = Path(r["output_path"])
    for table in ("audit_runs", "profile_metrics", "drift_metrics", "dataset_drift"):
        assert (out / table / "_delta_log").is_dir(), f"no Delta table {table} under {out}"
    assert r["statuses"] == {"churn-demo": "complete", "churn-demo:gate": "complete"}
    counts = r["counts"]
    assert counts["audit_runs"] == 1
    assert counts["profile_metrics"] == 7 * 4 * 7  # windows x (overall + 3 country slices) x features
    # the gate's one scan (Poisson weights, explode, its code-generation setting) runs on Connect too
    gate = r["gate"]
    assert gate["rows"] == 4 * 7  # (all rows + 3 countries) x metrics
    # version 2 is better overall (accuracy z of about 3 at 2,100 rows); Mexico (~4 % of them) is too small to judge
    assert gate["overall"]["accuracy"] == "better" and gate["exit_code"] == 0, gate
