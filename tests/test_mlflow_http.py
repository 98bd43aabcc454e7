"""Reference build, audit and compare against a real MLflow tracking server over HTTP, and what happens when
that server cannot be reached or dies half-way: exit code 3, a message naming the server, nothing complete."""

import contextlib
import io
import json
import os
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from mlflow import MlflowClient

import spark_audit.audit as audit_module
import spark_audit.reference_build as reference_build
import spark_audit.versions as versions
from spark_audit import mlflow_log, store
from spark_audit.cli import main
from spark_audit.errors import EXIT_DATA, EXIT_FINDINGS, ReferenceError_, TrackingError
from spark_audit.profile.state import TableProfile
from spark_audit.reference import REF_ARTIFACT, load_reference, mlflow_client
from spark_audit.source import read_source
from spark_audit.spec import MlflowSpec, load_spec
from spark_audit.tracking import MLFLOW_DEFAULTS, tracking_calls

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAYS, PER_DAY = 4, 120
NAN_DAY = 3  # x is NaN on the last day: a critical "missing" finding, exit code 1
MODEL = "churn-http"
# where a doomed server is killed, in the order an audit gets there: once the audit's client found it up (before
# the reference is loaded); once the reference is loaded over HTTP (before anything is logged); once the audit run
# exists on the server with its metrics (before its charts upload)
KILL_POINTS = ("mlflow_client", "find_reference", "_log_plot")


@pytest.fixture(scope="module", autouse=True)
def mlflow_globals():
    """The product sets MLflow's global tracking URI and some of its environment variables: unset those for this
    module (the product's own defaults are under test) and put them back after it."""
    import mlflow

    keys = (*MLFLOW_DEFAULTS, "MLFLOW_TRACKING_URI")
    saved = {k: os.environ.get(k) for k in keys}
    for k in MLFLOW_DEFAULTS:
        os.environ.pop(k, None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module", autouse=True)
def doomed(mlflow_globals, mlflow_server_launched, table, mlflow_server, mlflow_server_factory):
    """A server per kill point. The session's server boots while Spark starts and writes the table; these
    then boot while the end-to-end test runs. They share the session server's store (once it has created
    it): the reference built through it loads through them too."""
    servers = {k: mlflow_server_factory(f"doomed-{k}", share_store_with=mlflow_server) for k in KILL_POINTS}
    yield servers
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory):
    """Four days of two model versions' rows, the same values for both; x is NaN on the last day."""
    path = str(tmp_path_factory.mktemp("http-table") / "t")
    rows = []
    for d in range(DAYS):
        for i in range(PER_DAY):
            j = i // 2
            x = float("nan") if d == NAN_DAY else float((j * 7919) % 100)
            rows.append((T0 + timedelta(days=d, minutes=5 * i), x, f"c{j % 4}", str(1 + i % 2)))
    spark.createDataFrame(rows, "ts timestamp, x double, c string, mv string").write.format("delta").save(path)
    return path


def write_spec(folder, table, uri, *, name="http-e2e", **patch):
    spec = {
        "name": name,
        "source": {"path": table, "timestamp_column": "ts"},
        "window": {"size": "1 day"},
        "model": {"name": MODEL, "version_column": "mv"},
        "features": ["x", "c"],
        "reference": {"end": (T0 + timedelta(days=1)).isoformat()},
        "output": {"path": str(folder / "results")},
        "mlflow": {"tracking_uri": uri, "experiment": "http-audits"},
        "findings": {"min_rows": 50},
        **patch,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


@pytest.fixture(scope="module")
def reference(spark, table, mlflow_server, tmp_path_factory):
    """`spark-audit reference build` through the session server: the URI it printed for model version 1."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--quiet", "reference", "build", write_spec(tmp_path_factory.mktemp("ref"), table,
                                                                   mlflow_server.uri)])
    assert code == 0, out.getvalue()
    return out.getvalue().split("reference logged as ")[1].split()[0]


def complete_runs(spark, spec_path):
    runs = store.read(spark, load_spec(spec_path).output, "audit_runs")
    return [] if runs is None else runs.where("status = 'complete'").collect()


def test_reference_audit_and_compare_over_http(spark, table, reference, tmp_path, capsys, mlflow_server):
    client = MlflowClient(mlflow_server.uri)

    # the reference went to the server's artifact store over HTTP
    ref_id = reference.removeprefix("runs:/")
    ref_run = client.get_run(ref_id)
    assert ref_run.info.status == "FINISHED" and ref_run.data.tags["spark_audit.kind"] == "reference"
    assert ref_run.info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied by the server, not a local path
    assert [a.path for a in client.list_artifacts(ref_id, "spark_audit")] == [REF_ARTIFACT]
    stored = mlflow_server.artifacts / ref_run.info.experiment_id / ref_id / "artifacts" / REF_ARTIFACT
    assert stored.is_file()  # in the server's artifact folder
    local = client.download_artifacts(ref_id, REF_ARTIFACT, str(tmp_path))
    profile = TableProfile.from_json(open(local).read())
    # built per model version: version 1's rows of the first day only
    assert profile.row_count == PER_DAY // 2 and set(profile.columns) == {"x", "c"}
    assert ref_run.data.metrics["reference.rows"] == PER_DAY // 2

    # the audit loads it back over HTTP, and logs its run, metrics and charts there
    path = write_spec(tmp_path, table, mlflow_server.uri, reference={"uri": reference})
    assert main(["--quiet", "audit", path]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "CRITICAL missing" in out and "2026-03-04" in out
    assert "View run" not in out  # MLflow's own lines stay out of the report
    download = f"GET /api/2.0/mlflow-artifacts/artifacts/{ref_run.info.experiment_id}/{ref_id}/artifacts/spark_audit"
    assert download in mlflow_server.log()

    [row] = complete_runs(spark, path)
    assert (row.exit_code, row.reference_uri, row.worst_severity) == (EXIT_FINDINGS, reference, "critical")
    [run] = client.search_runs([ref_run.info.experiment_id], "tags.`spark_audit.audit` = 'http-e2e' "
                               "AND tags.`spark_audit.kind` = 'audit'")
    assert run.info.run_id == row.mlflow_run_id and run.info.status == "FINISHED"
    assert run.data.tags["spark_audit.reference"] == reference
    assert run.data.metrics["findings"] == row.findings > 0
    # one step per window (both versions log the same key and step, and MLflow keeps one of equal values)
    # (the step is the window's ordinal in the audit, 0, 1, 2..., its time the window's start)
    rows_logged = client.get_metric_history(run.info.run_id, "rows")
    assert {(m.step, m.value) for m in rows_logged} == {(d, PER_DAY / 2) for d in range(DAYS)}
    assert {m.timestamp for m in rows_logged} == {int((T0 + timedelta(days=d)).timestamp() * 1000)
                                                 for d in range(DAYS)}
    names = {a.path for a in client.list_artifacts(run.info.run_id, "spark_audit")}
    assert {"spark_audit/findings.json", "spark_audit/drift_over_windows.png"} <= names
    logged = json.load(open(client.download_artifacts(run.info.run_id, "spark_audit/findings.json", str(tmp_path))))
    assert len(logged["findings"]) == row.findings

    # the Delta results are complete and point at the server's run
    output = load_spec(path).output
    prof = store.complete(spark, output, "profile_metrics").where("column = 'x' AND slice IS NULL").collect()
    assert sorted((r.window_start.day, r.model_version) for r in prof) == [
        (1 + d, v) for d in range(DAYS) for v in ("1", "2")]
    assert sum(r.row_count for r in prof) == DAYS * PER_DAY
    findings = store.complete(spark, output, "findings").collect()
    assert len(findings) == row.findings and {f.mlflow_run_id for f in findings} == {run.info.run_id}
    assert {(f.column, f.window_start.day, f.model_version) for f in findings
            if f.kind == "missing" and f.severity == "critical"} == {("x", 1 + NAN_DAY, "1"), ("x", 1 + NAN_DAY, "2")}

    # compare reads what the HTTP-logged audit wrote
    assert main(["--quiet", "compare", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"model {MODEL}: audits http-e2e"
    # version, status, open incidents (the NaN day: one), last window, audited windows
    assert [ln.split()[:5] for ln in lines[2:4]] == [[v, "CRITICAL", "1", "2026-03-04", str(DAYS)]
                                                     for v in ("1", "2")]


def test_an_answer_is_not_a_lost_server(mlflow_server):
    """What a live server answers ("no such run") stays what it is; only a failure to talk to it, or a refusal
    while logging, is a tracking failure. Errors of spark-audit's own pass through."""
    client = mlflow_client(MlflowSpec(tracking_uri=mlflow_server.uri))
    missing = "0123456789abcdef0123456789abcdef"
    with pytest.raises(ReferenceError_, match=f"run {missing} has no artifact"):
        load_reference(client, f"runs:/{missing}")
    with pytest.raises(ReferenceError_, match="registered model 'nope' version 1 not found"):
        load_reference(client, "models:/nope/1")
    with pytest.raises(TrackingError, match=f"'{mlflow_server.uri}' failed while testing: .*{missing}"):
        with tracking_calls(client, "testing"):
            client.log_metric(missing, "m", 1.0)
    with pytest.raises(KeyError), tracking_calls(client, "testing"):
        raise KeyError("a bug is not a tracking failure")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_exits_3_at_once_naming_it(spark, table, tmp_path, capsys, monkeypatch):
    uri = f"http://127.0.0.1:{_closed_port()}"
    path = write_spec(tmp_path, table, uri, reference={"uri": f"models:/{MODEL}@champion"})
    reads = []
    for module in (audit_module, reference_build, versions):  # every reader of the source rows
        monkeypatch.setattr(module, "read_source", lambda *a, **k: reads.append(a) or read_source(*a, **k))
    for command in (["reference", "build"], ["audit"], ["contract", "infer"]):
        t = time.monotonic()
        assert main(["--quiet", *command, path]) == EXIT_DATA
        assert time.monotonic() - t < 20, "MLflow's HTTP retries were not capped"
        assert f"MLflow tracking server '{uri}' is not reachable: connection refused" in capsys.readouterr().err
    assert reads == []  # it failed before reading any data
    assert store.read(spark, load_spec(path).output, "audit_runs") is None  # and wrote nothing


@pytest.mark.parametrize("kill_in", KILL_POINTS)
def test_server_dying_mid_audit_exits_3_and_marks_nothing_complete(
        spark, table, reference, tmp_path, capsys, monkeypatch, doomed, mlflow_server, kill_in):
    server = doomed[kill_in].wait()
    name = f"dying-{kill_in.strip('_')}"
    path = write_spec(tmp_path, table, server.uri, name=name, reference={"uri": reference})
    module = mlflow_log if kill_in == "_log_plot" else audit_module  # the charts are logged by mlflow_log
    original = getattr(module, kill_in)
    killed = []

    def die():
        server.kill()
        killed.append(time.monotonic())

    def then_die(*args, **kwargs):
        if kill_in == "_log_plot":  # the run and its metrics are on the server: die before the charts
            die()
            return original(*args, **kwargs)
        done = original(*args, **kwargs)  # the client (the probe answered), or the reference loaded over HTTP
        die()
        return done

    monkeypatch.setattr(module, kill_in, then_die)
    assert main(["--quiet", "audit", path]) == EXIT_DATA
    assert killed, f"the audit never reached {kill_in}"
    if kill_in != "find_reference":  # MLflow calls follow at once (after find_reference comes the Spark work)
        assert time.monotonic() - killed[0] < 20, "MLflow's HTTP retries were not capped"
    doing = f"loading reference {reference!r}" if kill_in == "mlflow_client" else "logging the audit run"
    assert f"MLflow tracking server '{server.uri}' failed while {doing}: connection refused" in capsys.readouterr().err
    assert complete_runs(spark, path) == []
    # the store the dead server shared: the audit run it was logging when it died is left RUNNING
    client = MlflowClient(mlflow_server.uri)
    runs = client.search_runs([client.get_experiment_by_name("http-audits").experiment_id],
                              f"tags.`spark_audit.audit` = '{name}'")
    assert [r.info.status for r in runs] == (["RUNNING"] if kill_in == "_log_plot" else [])
