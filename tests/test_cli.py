"""The CLI and the audit on bad input: clear messages and exit codes a scheduler can act on."""

import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from spark_audit import store
from spark_audit.cli import main
from spark_audit.spec import load_spec
from spark_audit.version_table import compare_text, spec_version_table

T0 = datetime(2026, 2, 1, tzinfo=timezone.utc)


def write_table(spark, path, *, days=3, n=200, nan_day=None, as_string=False):
    rows = []
    for d in range(days):
        for i in range(n):
            x = float("nan") if d == nan_day else float((i * 7919) % 100)
            rows.append((T0 + timedelta(days=d, minutes=i), str(x) if as_string else x, f"c{i % 4}", None))
    schema = f"ts timestamp, x {'string' if as_string else 'double'}, c string, empty double"
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true").save(path)


@pytest.fixture()
def setup(spark, tmp_path):
    table = str(tmp_path / "t")
    write_table(spark, table, nan_day=2)
    spec = {
        "name": "cli-test",
        "source": {"path": table, "timestamp_column": "ts"},
        "window": {"size": "1 day"},
        "features": ["x", "c", "empty"],
        "reference": {"uri": "", "end": (T0 + timedelta(days=1)).isoformat()},
        "output": {"path": str(tmp_path / "results")},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "cli"},
    }
    del spec["reference"]["uri"]

    def write(**patch):
        d = {**spec, **patch}
        p = tmp_path / "audit.yaml"
        p.write_text(yaml.safe_dump(d))
        return str(p)

    return write, spec, table


def reference_uri(capsys, spec_path):
    assert main(["--quiet", "reference", "build", spec_path]) == 0
    out = capsys.readouterr().out
    return out.split("reference logged as ")[1].split()[0]


def test_validate_and_bad_spec_exit_codes(setup, capsys, tmp_path):
    write, spec, _ = setup
    assert main(["validate", write()]) == 0
    assert "ok (3 features" in capsys.readouterr().out
    assert main(["validate", write(features=[{"name": "x", "kind": "bogus"}])]) == 2
    assert "features[0].kind: expected one of" in capsys.readouterr().err
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    assert main(["audit", str(bad)]) == 2
    assert "malformed YAML at line" in capsys.readouterr().err


def test_audit_flags_nan_window_and_all_null_column(setup, capsys, spark):
    write, spec, _ = setup
    uri = reference_uri(capsys, write())
    path = write(reference={"uri": uri})
    assert main(["--quiet", "audit", path]) == 1
    out = capsys.readouterr().out
    assert "CRITICAL missing       x" in out and "2026-02-03" in out
    assert "exit code 1" in out
    # the always-null column is not a finding: it was null in the reference too
    assert "empty" not in out.split("findings")[1].replace("empty_", "")
    drift = store.read(spark, load_spec(path).output, "drift_metrics")
    x_day1 = drift.where("column = 'x' AND drift_type = 'reference' AND is_default").orderBy("window_start").first()
    assert x_day1.value == 0.0 or x_day1.p_value == 1.0  # day 1 is the reference itself


def test_audit_without_problems_exits_zero(setup, capsys):
    write, spec, _ = setup
    uri = reference_uri(capsys, write())
    end = (T0 + timedelta(days=2)).isoformat()
    assert main(["--quiet", "audit", write(reference={"uri": uri}), "--end", end]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("status: ok (0 active incident(s))") and "exit code 0" in out
    assert "incidents: none" in out
    day1 = next(line for line in out.splitlines() if line.startswith("2026-02-01"))
    assert day1.split()[-2:] == ["0/3", "ok"]  # drift share: 0 of 3 features drifted (all-null counts as not)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"source": {"path": "/nonexistent/table", "timestamp_column": "ts"}}, "is not a readable Delta table"),
        ({"features": ["x", "nope"]}, "column(s) 'nope' not found"),
        ({"source": {"path": None, "timestamp_column": "wrong_ts"}}, "timestamp column 'wrong_ts' not found"),
        ({"window": {"size": "1 day", "start": "2030-01-01"}}, "no rows to audit"),
    ],
)
def test_data_problems_exit_3_with_a_named_cause(setup, capsys, patch, message):
    write, spec, table = setup
    uri = reference_uri(capsys, write())
    if patch.get("source", {}).get("path", "") is None:
        patch["source"]["path"] = table
    assert main(["--quiet", "audit", write(reference={"uri": uri}, **patch)]) == 3
    assert message in capsys.readouterr().err


def test_missing_reference_exits_3(setup, capsys):
    write, _, _ = setup
    assert main(["--quiet", "audit", write(reference={"uri": "models:/no-such-model/1"})]) == 3
    assert "registered model 'no-such-model' version 1 not found" in capsys.readouterr().err


def test_type_change_is_a_critical_finding_not_a_crash(setup, capsys, spark):
    write, spec, table = setup
    uri = reference_uri(capsys, write())
    write_table(spark, table, as_string=True)  # upstream now writes x as a string
    assert main(["--quiet", "audit", write(reference={"uri": uri})]) == 1
    out = capsys.readouterr().out
    assert "schema" in out and "type changed from double to string" in out


def test_incremental_audits_only_new_windows_and_backfill_replaces(setup, capsys, spark):
    write, spec, table = setup
    uri = reference_uri(capsys, write())
    path = write(reference={"uri": uri})
    out = load_spec(path).output
    assert main(["--quiet", "audit", path, "--end", (T0 + timedelta(days=2)).isoformat(), "--incremental"]) == 0
    first = capsys.readouterr().out
    assert "2026-02-01" in first and "2026-02-02" in first and "2026-02-03" not in first
    # the next scheduled run picks up the third day only (with its NaN problem)
    assert main(["--quiet", "audit", path, "--incremental"]) == 1
    second = capsys.readouterr().out
    assert "2026-02-03" in second and "2026-02-01" not in second
    assert main(["--quiet", "audit", path, "--incremental"]) == 0
    assert "nothing new to audit" in capsys.readouterr().out
    runs = store.read(spark, out, "audit_runs")
    assert runs.count() == 2
    # a backfill re-audits day 2 and 3; readers see each window once, from the newest run
    assert main(["--quiet", "audit", path, "--backfill", (T0 + timedelta(days=1)).isoformat(),
                 (T0 + timedelta(days=3)).isoformat()]) == 1
    capsys.readouterr()
    prof = store.complete(spark, out, "profile_metrics").where("column = 'x'")
    assert sorted(r.window_start.day for r in prof.collect()) == [1, 2, 3]
    assert store.read(spark, out, "profile_metrics").where("column = 'x'").count() == 5  # the record keeps all


def test_compare_model_versions(spark, tmp_path, capsys):
    """Rows of two versions: `reference build` profiles each version's own rows, `audit` audits each against
    its own reference, and `compare` (no Spark for a folder of tables) shows both, as text and as JSON."""
    table = str(tmp_path / "mv")
    rows = [(T0 + timedelta(hours=h), float(h % 10), str(1 + (h % 2)), float(h % 10) / 10, h % 2)
            for h in range(96)]
    spark.createDataFrame(rows, "ts timestamp, x double, mv string, score double, y int").write.format(
        "delta").save(table)
    spec = {
        "name": "mv-test", "source": {"path": table, "timestamp_column": "ts"}, "window": {"size": "1 day"},
        "model": {"name": "m", "version_column": "mv"}, "features": ["x"],
        "reference": {"end": (T0 + timedelta(days=1)).isoformat()},
        "quality": {"task": "binary", "label": "y", "score": "score"},
        "output": {"path": str(tmp_path / "results")},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    }
    path = tmp_path / "mv.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["--quiet", "reference", "build", str(path)]) == 0
    built = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in built] == ["model version 1", "model version 2"]
    assert all("(12 rows" in ln for ln in built)  # each version's 12 rows of the first day, not 24
    assert main(["--quiet", "audit", str(path)]) in (0, 1)
    audited = capsys.readouterr().out
    assert "== model version 1" in audited and "== model version 2" in audited
    assert main(["--quiet", "compare", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model m: audits mv-test"
    assert lines[1].split()[:4] == ["version", "status", "open", "incidents"] and "accuracy last/ref" in lines[1]
    assert [ln.split()[0] for ln in lines[2:4]] == ["1", "2"]
    assert main(["compare", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["windows"], v["rows"]) for v in doc["versions"]] == [("1", 4, 48), ("2", 4, 48)]
    assert all(k.isidentifier() for v in doc["versions"] for k in v)  # snake_case keys, numbers as numbers
    assert all(isinstance(v["accuracy_last"], float) and isinstance(v["ml_test_score"]["points"], float)
               for v in doc["versions"])
    worst = max((v["status"] for v in doc["versions"]), key=["ok", "info", "warning", "error", "critical"].index)
    assert main(["--quiet", "compare", str(path), "--fail-on", "warning"]) == (1 if worst in ("warning", "error",
                                                                                            "critical") else 0)
    assert main(["--quiet", "compare", str(path), "--fail-on", "critical"]) == (1 if worst == "critical" else 0)
    capsys.readouterr()
    assert main(["--quiet", "compare", str(path), "--model", "nonexistent-model"]) == 3  # nothing to show
    assert "no complete audits" in capsys.readouterr().err
    fitted = compare_text(spec_version_table(load_spec(path)), width=60).splitlines()
    assert max(len(ln) for ln in fitted[1:4]) <= 60 and fitted[1].split()[:2] == ["version", "status"]
    # one version named: only its rows, only its reference
    assert main(["--quiet", "audit", str(path), "--model-version", "2", "--format", "json"]) in (0, 1)
    assert {w["model_version"] for w in json.loads(capsys.readouterr().out)["windows"]} == {"2"}


def test_contract_infer_then_check(setup, capsys, tmp_path):
    write, spec, table = setup
    uri = reference_uri(capsys, write())
    path = write(reference={"uri": uri})
    out = tmp_path / "inferred.yaml"
    assert main(["--quiet", "contract", "infer", path, "-o", str(out)]) == 0
    assert "contract written" in capsys.readouterr().out
    inferred = yaml.safe_load(out.read_text())
    props = {p["name"]: p for p in inferred["schema"][0]["properties"]}
    assert set(props) == {"x", "c", "empty"} and props["x"]["required"] is True
    # the reference (day 1) had no NaN; the whole table has a NaN day: the check fails and says so
    assert main(["--quiet", "contract", "check", str(out), "--path", table]) == 1
    text = capsys.readouterr().out
    assert "x.nanValues" in text and "ERROR" in text
    assert main(["--quiet", "contract", "check", str(out), "--path", table + "_missing"]) == 3


def test_catalog_tables_in_and_out(spark, tmp_path, capsys):
    """source.table and output.database (metastore / Unity Catalog style names) instead of paths."""
    spark.sql("CREATE DATABASE IF NOT EXISTS audit_in")
    spark.sql("CREATE DATABASE IF NOT EXISTS audit_out")
    rows = [(T0 + timedelta(hours=h), float(h % 24)) for h in range(72)]
    spark.createDataFrame(rows, "ts timestamp, x double").write.format("delta").mode("overwrite").saveAsTable(
        "audit_in.features")
    spec = {
        "name": "catalog-test", "source": {"table": "audit_in.features", "timestamp_column": "ts"},
        "window": {"size": "1 day"}, "features": ["x"],
        "reference": {"end": (T0 + timedelta(days=1)).isoformat()},
        "output": {"database": "audit_out"},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = reference_uri(capsys, str(path))
    spec["reference"] = {"uri": uri}
    path.write_text(yaml.safe_dump(spec))
    assert main(["--quiet", "audit", str(path)]) == 0
    assert "source version 0" in capsys.readouterr().out
    assert spark.table("audit_out.profile_metrics").count() == 3
    assert store.complete(spark, load_spec(path).output, "audit_runs").count() == 1


def test_model_alias_is_recorded_as_the_version_it_named(setup, capsys, spark):
    """audit_runs, profile rows, the MLflow run and the registry tag all name the resolved version, not "champion"."""
    from mlflow.tracking import MlflowClient

    write, spec, _ = setup
    client = MlflowClient(spec["mlflow"]["tracking_uri"])
    client.create_registered_model("churn")
    for _ in range(2):
        mv = client.create_model_version("churn", "file:///nowhere/model")
    client.set_registered_model_alias("churn", "champion", "1")  # not the newest: v2 exists
    uri = reference_uri(capsys, write(model={"name": "churn", "alias": "champion"}))
    path = write(model={"name": "churn", "alias": "champion"}, reference={"uri": uri})
    assert main(["--quiet", "audit", path, "--end", (T0 + timedelta(days=2)).isoformat()]) == 0
    output = load_spec(path).output
    [run] = store.complete(spark, output, "audit_runs").collect()
    assert (run.model_name, run.model_version) == ("churn", "1")
    versions = {r.model_version for r in store.read(spark, output, "profile_metrics").select("model_version").collect()}
    assert versions == {"1"}
    tags = client.get_run(run.mlflow_run_id).data.tags
    assert (tags["model_version"], tags["model_alias"]) == ("1", "champion")
    assert client.get_model_version("churn", "1").tags["audit_run"] == f"runs:/{run.mlflow_run_id}"
    assert "audit_run" not in client.get_model_version("churn", mv.version).tags
    # the alias moves to version 2 and the same days are audited again: version 1's rows are not replaced
    client.set_registered_model_alias("churn", "champion", mv.version)
    assert main(["--quiet", "audit", path, "--end", (T0 + timedelta(days=2)).isoformat()]) == 0
    runs = store.complete(spark, output, "audit_runs").collect()
    assert sorted(r.model_version for r in runs) == ["1", str(mv.version)]
    assert len({r.audit_key for r in runs}) == 2


def test_a_spec_with_relative_paths_runs_from_its_working_directory(spark, tmp_path, capsys, monkeypatch):
    """Source, labels, training, contract and output named relative to the working directory (the README's
    rule): Spark SQL's delta.`path` does not resolve a relative path, so the spec makes them absolute."""
    work = tmp_path / "job"
    (work / "data").mkdir(parents=True)
    write_table(spark, str(work / "data" / "table"), nan_day=2)
    labels = [(T0 + timedelta(days=d, minutes=i), i % 2) for d in range(3) for i in range(200)]
    spark.createDataFrame(labels, "ts timestamp, y int").write.format("delta").save(str(work / "data" / "labels"))
    (work / "contract.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": "rel", "version": "1.0.0", "status": "active",
        "schema": [{"name": "t", "properties": [{"name": "x", "logicalType": "number",
                                                 "quality": [{"metric": "nullValues", "mustBe": 0}]}]}]}))
    spec = {
        "name": "relative", "source": {"path": "data/table", "timestamp_column": "ts"}, "window": {"size": "1 day"},
        "features": ["x", "c"], "reference": {"end": (T0 + timedelta(days=1)).isoformat()},
        "training": {"path": "data/table", "timestamp_column": "ts", "end": (T0 + timedelta(days=1)).isoformat()},
        "quality": {"task": "binary", "label": "y", "prediction": "x", "positive": 1,
                    "labels": {"path": "data/labels", "keys": ["ts"]}},
        "contract": "contract.yaml", "output": {"path": "out/results"},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "relative"},
    }
    (work / "audit.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(work)
    assert main(["--quiet", "reference", "build", "audit.yaml"]) == 0
    uri = capsys.readouterr().out.split("reference logged as ")[1].split()[0]
    spec["reference"] = {"uri": uri}
    (work / "audit.yaml").write_text(yaml.safe_dump(spec))
    assert main(["--quiet", "audit", "audit.yaml"]) == 1  # x is NaN on the last day
    out = capsys.readouterr().out
    assert "CRITICAL missing       x" in out
    runs = store.complete(spark, load_spec(work / "audit.yaml").output, "audit_runs").collect()
    assert len(runs) == 1 and runs[0].source == str(work / "data" / "table")
    assert (work / "out" / "results" / "findings").is_dir()  # written where the spec said, under the cwd
