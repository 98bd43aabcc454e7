"""Shared plumbing for the peer profiler scripts (whylogs_profile.py, deequ_profile.py).

Pure standard library: each script runs in its own virtualenv (see README.md) and imports this
file from its own folder. Nothing here imports spark_audit.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from urllib.parse import unquote


def parse_args(tool: str, argv: list[str] | None = None, extra=None) -> argparse.Namespace:
    """The shared CLI; ``extra(parser)`` adds a tool's own options."""
    p = argparse.ArgumentParser(description=f"Time {tool}'s Spark profile of a folder of Parquet files.")
    p.add_argument("--parquet", required=True, metavar="DIR", help="a folder of .parquet files, or a Delta table")
    p.add_argument("--columns", default="", help="comma-separated subset of columns to profile (default: all)")
    p.add_argument("--window-column", default="", metavar="TS", help="timestamp column: also profile per 1-day window")
    p.add_argument("--repeats", type=int, default=3, help="timed runs (default 3)")
    p.add_argument("--warmup-rows", type=int, default=10_000, help="rows of the untimed warm-up run (0: none)")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--check", metavar="COL", default="", help="print this column's profiled count/mean etc. to stderr")
    if extra is not None:
        extra(p)
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _delta_active_files(folder: str) -> list[str] | None:
    """Files of the latest Delta version by replaying the JSON commits; None if that is not possible.

    A folder that was overwritten or compacted keeps its old Parquet files until VACUUM, so a plain
    glob would read them too. Replaying needs every commit from version 0; with a checkpoint (and
    older commits cleaned up) we fall back to the glob.
    """
    log_dir = os.path.join(folder, "_delta_log")
    commits = sorted(glob.glob(os.path.join(log_dir, "[0-9]" * 20 + ".json")))
    if not commits or not os.path.basename(commits[0]).startswith("0" * 20):
        return None
    active: dict[str, None] = {}
    for path in commits:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                action = json.loads(line)
                if "add" in action:
                    active[unquote(action["add"]["path"])] = None
                elif "remove" in action:
                    active.pop(unquote(action["remove"]["path"]), None)
                elif "metaData" in action:
                    cfg = action["metaData"].get("configuration") or {}
                    if cfg.get("delta.columnMapping.mode", "none") != "none":
                        log("warning: Delta column mapping is on; Parquet column names are physical names")
    files = [p if "://" in p or os.path.isabs(p) else os.path.join(folder, p) for p in active]
    return sorted(files)


def list_parquet_files(folder: str) -> list[str]:
    """The *.parquet files of a folder (recursively, skipping _delta_log and hidden/underscore entries).

    For a Delta table folder, only the files of its latest version (if the JSON log allows replay).
    """
    folder = os.path.abspath(folder)
    if os.path.isdir(os.path.join(folder, "_delta_log")):
        files = _delta_active_files(folder)
        if files is not None:
            return files
        log("warning: Delta log has a checkpoint or no commit 0; reading every *.parquet file in the folder")
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        keep = [n for n in sorted(names) if n.endswith(".parquet") and not n.startswith(("_", "."))]
        files += [os.path.join(root, n) for n in keep]
    if not files:
        raise SystemExit(f"no .parquet files under {folder}")
    return files


def spark_builder(app_name: str, args: argparse.Namespace, extra: dict[str, str] | None = None):
    """A SparkSession builder: local[2], no UI, 2 shuffle partitions, 4g driver, workers on this Python."""
    protect_stdout()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers must run this virtualenv's interpreter (the default is `python3` from PATH)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    b = (
        SparkSession.builder.master(args.master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
    )
    for k, v in (extra or {}).items():
        b = b.config(k, v)
    return b


def read_columns(spark, files: list[str], args: argparse.Namespace):
    """The Parquet files as one DataFrame, and the columns to profile (``--columns``, default all); a
    column (or ``--window-column``) the data lacks stops the script."""
    full = spark.read.parquet(*files)
    cols = [c.strip() for c in args.columns.split(",") if c.strip()] or list(full.columns)
    missing = [c for c in cols + ([args.window_column] if args.window_column else []) if c not in full.columns]
    if missing:
        raise SystemExit(f"columns not in the data: {missing}")
    return full, cols


def time_runs(args: argparse.Namespace, warm_up, run, what: str):
    """``warm_up()`` once (untimed, when ``--warmup-rows``), then ``--repeats`` timed ``run()``: (warm-up
    seconds or None, the runs' seconds, the last run's result, e.g. its number of windows)."""
    warmup = None
    if args.warmup_rows > 0:
        t0 = time.perf_counter()
        warm_up()
        warmup = time.perf_counter() - t0
        log(f"warm-up on {args.warmup_rows:,} rows of {what}: {warmup:.2f}s")
    seconds, last = [], None
    for i in range(args.repeats):
        t0 = time.perf_counter()
        last = run()
        seconds.append(round(time.perf_counter() - t0, 3))
        log(f"run {i + 1}/{args.repeats}: {seconds[-1]:.2f}s" + (f" ({last} windows)" if last else ""))
    return warmup, seconds, last


def java_version() -> str:
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
        return out.splitlines()[0].split('"')[1]
    except Exception:  # noqa: BLE001
        return "unknown"


_RESULT_OUT = None


def protect_stdout() -> None:
    """Keep stdout for the one JSON line: from here on fd 1 (and so the JVM that Spark starts, whose
    Ivy prints ':: loading settings ::' to stdout, and the Python workers) and sys.stdout go to stderr;
    ``emit`` writes to the original stdout. Call before starting Spark."""
    global _RESULT_OUT
    if _RESULT_OUT is not None:
        return
    sys.stdout.flush()
    _RESULT_OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def warn_java(pyspark_version: str) -> str:
    """Log a warning when the JVM is newer than Spark 3.5 supports; return the Java version."""
    version = java_version()
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return version
    if pyspark_version.startswith("3.") and major > 17:
        log(
            f"warning: Java {version} with PySpark {pyspark_version}: Spark 3.5 supports Java 8/11/17; "
            "set JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64"
        )
    return version


def report(tool: str, version: str, pyspark: str, java: str, warmup: float | None, seconds: list[float],
           rows: int, cols: list[str], args: argparse.Namespace, windows, files: list[str], **extra) -> dict:
    """What a script reports: the tool, its versions, the timed runs and what they profiled."""
    return {"tool": tool, "version": version, **{k: v for k, v in extra.items() if k != "kll"}, "pyspark": pyspark,
            "java": java, "seconds": seconds, "warmup_seconds": None if warmup is None else round(warmup, 3),
            "rows": rows, "columns": len(cols), "windowed": bool(args.window_column), "windows": windows,
            "files": len(files), **({"kll": extra["kll"]} if "kll" in extra else {})}


def emit(result: dict) -> None:
    """The one JSON line on (the original) stdout."""
    out = _RESULT_OUT or sys.stdout
    out.write(json.dumps(result) + "\n")
    out.flush()
