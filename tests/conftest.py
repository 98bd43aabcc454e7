from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession with Delta for the whole suite."""
    from spark_audit.session import get_spark

    warehouse = tempfile.mkdtemp(prefix="spark-audit-warehouse-")
    session = get_spark(
        "local[2]",
        app_name="spark-audit-tests",
        extra_conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.adaptive.enabled": "false",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.warehouse.dir": warehouse,
            "spark.default.parallelism": "2",
        },
    )
    yield session
    session.stop()
    shutil.rmtree(warehouse, ignore_errors=True)


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch):
    """A real MLflow tracking store (SQLite) and artifact folder under tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None) if hasattr(mlflow, "set_tracking_uri") else None
    os.environ.pop("MLFLOW_TRACKING_URI", None)


# --------------------------------------------------------------------------- a real MLflow tracking server

MLFLOW_SERVER_STARTUP_TIMEOUT = 180  # seconds; a cold start takes 8-20 s on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on a free loopback port, with a SQLite store and an artifact folder under ``home``
    (or those of ``share_store_with``: two servers, one store).

    Artifacts are proxied (``--serve-artifacts``): experiments get ``mlflow-artifacts:/`` locations, so clients
    upload and download them over HTTP and the files land under ``artifacts``. The server runs in a process
    group of its own, which ``stop`` and ``kill`` end as a whole.
    """

    def __init__(self, home: Path, *, share_store_with: MlflowServer | None = None):
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.db = share_store_with.db if share_store_with else home / "mlflow.db"
        self.artifacts = share_store_with.artifacts if share_store_with else home / "artifacts"
        self.log_path = home / "server.log"
        self.proc: subprocess.Popen | None = None
        self.ended = False
        self.startup_seconds: float | None = None
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        """Launch the server and return at once (``wait`` for it to answer)."""
        exe = Path(sys.executable).with_name("mlflow")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
        cmd += ["server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{self.db}",
                "--serve-artifacts", "--artifacts-destination", str(self.artifacts)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner beside it: one process, quicker start
        self.started_at = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.home, env=env, start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                return r.status == 200
        except OSError:  # refused, reset, timed out (URLError is an OSError)
            return False

    def wait(self, timeout: float = MLFLOW_SERVER_STARTUP_TIMEOUT) -> MlflowServer:
        """Poll ``/health`` until the server answers; fail with its log if it exits or never answers."""
        assert self.proc is not None and not self.ended, "start() first"
        while time.monotonic() - self.started_at < timeout:
            if self.answers():
                self.startup_seconds = self.startup_seconds or time.monotonic() - self.started_at
                return self
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"mlflow server exited with code {self.proc.returncode} before answering "
                            f"{self.uri}/health; its log:\n{self.log()}")
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"mlflow server did not answer {self.uri}/health within {timeout:.0f}s; its log:\n{self.log()}")

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Terminate the process group; SIGKILL what is left after 15 s or once the parent has exited."""
        if self.proc is None or self.ended:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)  # the uvicorn child may outlive the `mlflow` parent
        self.proc.wait(timeout=15)
        self.ended = True

    def kill(self) -> None:
        """Die at once, like a crashed host: SIGKILL the group; returns once the port refuses connections."""
        assert self.proc is not None and not self.ended
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=15)
        self.ended = True
        t0 = time.monotonic()
        while self.answers():
            assert time.monotonic() - t0 < 10, f"{self.uri} still answers after SIGKILL"
            time.sleep(0.1)


@pytest.fixture(scope="session")
def mlflow_server_factory(tmp_path_factory):
    """``start(name, share_store_with=None)`` launches an :class:`MlflowServer` (not yet waited for);
    every server started is stopped at the end of the session, if its test did not end it first."""
    servers: list[MlflowServer] = []

    def start(name: str = "mlflow-server", *, share_store_with: MlflowServer | None = None) -> MlflowServer:
        servers.append(MlflowServer(tmp_path_factory.mktemp(name), share_store_with=share_store_with).start())
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def mlflow_server_launched(mlflow_server_factory):
    """The session's server, launched but perhaps not answering yet: a module that requests this before its
    Spark fixtures has the server boot (8-20 s) while Spark starts."""
    return mlflow_server_factory()


@pytest.fixture(scope="session")
def mlflow_server(mlflow_server_launched):
    """A real MLflow tracking server (HTTP on loopback) shared by the session, answering: ``.uri``,
    ``.artifacts``, ``.log()``."""
    return mlflow_server_launched.wait()


@pytest.fixture(scope="session")
def mlflow_server_uri(mlflow_server):
    """``http://127.0.0.1:PORT`` of the session's MLflow tracking server."""
    return mlflow_server.uri


@pytest.fixture(scope="session")
def demo_both(spark, tmp_path_factory):
    """The demo end to end, once for the session: its two model versions, each with its own reference and
    its own audit (logged to MLflow). (spec, [(version, reference run id, profile)], [VersionAudit])."""
    from spark_audit.audit import run_audits
    from spark_audit.demo import write_demo
    from spark_audit.reference_build import build_references
    from spark_audit.spec import load_spec

    home = tmp_path_factory.mktemp("demo")
    # 1200 rows a day: at 600 a stable feature's Wasserstein distance (sampling noise plus the KLL sketches'
    # rank error) crossed 0.1 in one window of one run
    spec = load_spec(write_demo(spark, home, rows_per_day=1200))
    refs = build_references(spark, spec)
    audits = run_audits(spark, spec)
    return spec, refs, audits


@pytest.fixture(scope="session")
def demo_gate(spark, demo_both):
    """The demo's release gate, once for the session: version 2 against @champion, asked to promote (60
    bootstrap replicates instead of 200, for time). Its rows join the demo's result tables."""
    from dataclasses import replace

    from spark_audit.demo import CHAMPION
    from spark_audit.gate import run_gate

    spec, _, _ = demo_both
    return run_gate(spark, replace(spec, gate=replace(spec.gate, replicates=60)), "2", promote=CHAMPION)

