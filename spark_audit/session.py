"""The SparkSession: the active one when there is one, else a local one with Delta.

A session started here is quiet by default: the JVM launcher's output while it starts (Ivy resolving Delta's
JARs, log4j's setup lines, JDK notices) is captured and shown only if the start fails, and log4j logs errors
only. ``verbose=True``, or the environment variable ``SPARK_AUDIT_VERBOSE=1`` (the CLI's ``--verbose``, or a
notebook), shows everything as Spark prints it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyspark is imported when a session is asked for: the CLI's validate needs none
    from pyspark.sql import SparkSession

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

VERBOSE_ENV = "SPARK_AUDIT_VERBOSE"

# log4j 2 for a quiet session: errors only, on stderr (Spark's own default is WARN on the shell)
QUIET_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""

# lines the JVM prints outside log4j after it started that say nothing actionable; dropped when quiet
BENIGN_JVM_LINES = (
    # DataSketches (inside Spark's catalyst JAR) on first use of a sketch, on Java 17+
    b"Warning: Java versions > Java 11 can only operate in restricted mode",
)
_MAX_CAPTURE = 4 << 20  # bytes of startup output kept for a failed start (the tail)


def verbose_from_env() -> bool:
    """True when ``SPARK_AUDIT_VERBOSE`` is set to 1/true/yes/on."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def get_spark(
    master: str | None = None,
    *,
    app_name: str = "spark-audit",
    extra_conf: dict[str, str] | None = None,
    verbose: bool | None = None,
) -> SparkSession:
    """Return the active session (Databricks, spark-submit, a notebook), else start one.

    A session started here runs locally with Delta Lake; Delta's JARs are resolved
    from Maven Central on first start by ``configure_spark_with_delta_pip``.
    ``verbose`` (default: ``SPARK_AUDIT_VERBOSE``) shows the JVM's startup output and
    log4j's warnings; otherwise they are hidden, and the startup output is written to
    stderr only if the start fails.
    """
    from pyspark.sql import SparkSession  # deferred: `spark-audit validate` starts no JVM and needs no pyspark

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if master is None and (os.environ.get("PYSPARK_GATEWAY_PORT") or os.environ.get("DATABRICKS_RUNTIME_VERSION")):
        # launched by spark-submit or on Databricks: master, packages and Delta come from there
        return SparkSession.builder.appName(app_name).getOrCreate()
    from delta import configure_spark_with_delta_pip  # deferred with pyspark (above)

    if verbose is None:
        verbose = verbose_from_env()
    # Python workers (the Arrow pass of spark_audit.profile.arrow_scan) run this interpreter, which has
    # numpy, pyarrow and spark_audit, not whatever python3 comes first on the PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(
        master or os.environ.get("SPARK_AUDIT_MASTER", "local[*]")
    )
    conf = {
        **DELTA_CONF,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
        # Delta rebuilds a table's state with this many tasks (default 50); a local session
        # reads small result tables, where 50 tasks cost far more than the work
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.showConsoleProgress": "false",
        **(extra_conf or {}),
    }
    if not verbose:
        conf["spark.driver.extraJavaOptions"] = _with_quiet_log4j(conf.get("spark.driver.extraJavaOptions", ""))
    for key, value in conf.items():
        builder = builder.config(key, value)
    builder = configure_spark_with_delta_pip(builder)
    if verbose:
        return builder.getOrCreate()
    with captured_jvm_output():
        return builder.getOrCreate()


def _with_quiet_log4j(java_options: str) -> str:
    """``java_options`` plus ``-Dlog4j2.configurationFile`` naming the quiet configuration (unless it names one)."""
    if "log4j2.configurationFile" in java_options or "log4j.configuration" in java_options:
        return java_options
    option = f"-Dlog4j2.configurationFile={_quiet_log4j2_file()}"
    if " " in option:  # Spark splits the options the way a shell does
        option = f'"{option}"'
    return f"{java_options} {option}".strip()


def _quiet_log4j2_file() -> str:
    """A file holding ``QUIET_LOG4J2`` in the temp folder, one per user and content (written once, kept:
    a killed process leaves nothing behind to clean up)."""
    digest = hashlib.sha256(QUIET_LOG4J2.encode()).hexdigest()[:12]
    user = getattr(os, "getuid", lambda: "u")()
    path = os.path.join(tempfile.gettempdir(), f"spark-audit-log4j2-{user}-{digest}.properties")
    try:
        with open(path) as f:
            if f.read() == QUIET_LOG4J2:
                return path
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix="spark-audit-log4j2-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(QUIET_LOG4J2)
    os.replace(tmp, path)  # atomic: a concurrent start reads the old or the new file, never half of one
    return path


class _JvmOutput:
    """Reads what the JVM writes to its stdout and stderr (both inherited: one pipe).

    While the JVM starts, the output is kept; then either dropped (the start worked) or
    written to stderr (it failed). From then on it is passed on to stderr as it comes, so
    an error the JVM prints later (an out-of-memory crash, say) is never hidden.
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.target = os.dup(2)  # this process's stderr as it is now
        self.kept = bytearray()
        self.partial = b""
        self.passing = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump, name="spark-audit-jvm-output", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except OSError:
                chunk = b""
            with self.lock:
                if not chunk:  # every writer (the JVM and what it started) has exited
                    self._write(self.partial)
                    self.partial = b""
                    break
                if self.passing:
                    self._pass_lines(chunk)
                else:
                    self.kept += chunk
                    del self.kept[:-_MAX_CAPTURE]
        os.close(self.read_fd)

    def _pass_lines(self, chunk: bytes) -> None:
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        self._write(b"".join(line + b"\n" for line in lines if not line.startswith(BENIGN_JVM_LINES)))

    def _write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.target, data):]
            except OSError:
                return

    def started(self) -> None:
        """The JVM started: drop its startup output, pass on what comes next."""
        with self.lock:
            self.kept.clear()
            self.passing = True

    def failed(self, wait: float = 5.0) -> None:
        """The start failed: write the startup output to stderr (waiting up to ``wait`` s for the JVM to exit)."""
        self.thread.join(wait)
        with self.lock:
            kept, self.kept = bytes(self.kept), bytearray()
            self._write(kept)
            self.passing = True


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


@contextmanager
def captured_jvm_output() -> Iterator[None]:
    """Point file descriptors 1 and 2 at a pipe while the block runs: a JVM launched in it inherits them.

    Its output is shown only if the block raises (then before the exception propagates);
    after a successful start, what the JVM writes later still reaches stderr.
    """
    _flush_std()
    jvm = _JvmOutput()
    saved = os.dup(1), os.dup(2)
    ok = False
    try:
        os.dup2(jvm.write_fd, 1)
        os.dup2(jvm.write_fd, 2)
        yield
        ok = True
    finally:
        _flush_std()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, jvm.write_fd):  # the JVM, if it runs, holds the pipe's only write ends now
            os.close(fd)
        if ok:
            jvm.started()
        else:
            jvm.failed()


@contextmanager
def codegen_fields(spark: SparkSession, fields: int) -> Iterator[None]:
    """Whole-stage code generation for an aggregation of ``fields`` outputs, within the block.

    Spark turns it off above ``spark.sql.codegen.maxFields`` (100), and the scans here have hundreds
    to thousands of plain sums and counts, where generated code is what makes them cheap: the gate's
    aggregation (demo table, 200 replicates, three alternating runs after warm-up) measured 12.8-15.4 s
    against 20.7-21.6 s; the profile's, see ``spark_audit.profile.profiler``. The session's setting is
    restored afterwards."""
    key = "spark.sql.codegen.maxFields"
    before = spark.conf.get(key, None)
    if before is not None and before.isdigit() and int(before) >= fields:
        yield
        return
    spark.conf.set(key, str(fields))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
