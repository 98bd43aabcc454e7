"""The audit's MLflow run reads like a report, and the registry shows the audit: the formatting without Spark,
then one real audit (Spark, Delta, MLflow on SQLite) and what its run, experiment and model version hold."""

from datetime import datetime, timedelta, timezone

import mlflow
import pytest
from mlflow import MlflowClient

from spark_audit import mlflow_log, mlflow_text
from spark_audit.audit import run_audit
from spark_audit.findings import SEVERITIES, Finding
from spark_audit.mlflow_log import audit_params
from spark_audit.mlflow_text import (
    Tag,
    audit_summary,
    counts_text,
    description,
    findings_markdown,
    format_range,
    metric_key,
    run_link,
    run_name,
    severity_counts,
)
from spark_audit.reference import EXPERIMENT_KIND_ML, ensure_experiment
from spark_audit.reference_build import build_reference
from spark_audit.result import AuditResult
from spark_audit.spec import MlflowSpec, parse_spec

UTC = timezone.utc
T0 = datetime(2026, 2, 1, tzinfo=UTC)
DAY_MS = 86_400_000


def day(d: int) -> datetime:
    return T0 + timedelta(days=d)


# --------------------------------------------------------------------------- pure


def test_run_name_names_audit_model_days_and_status():
    start, end = datetime(2026, 1, 8, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC)  # seven daily windows
    assert run_name("churn-demo", "2", start, end, "critical") == "churn-demo · model 2 · 01-08→01-14 · CRITICAL"
    assert run_name("churn-demo", None, start, end, None) == "churn-demo · 01-08→01-14 · OK"
    assert run_name("a", "7", start, start + timedelta(days=1), "warning") == "a · model 7 · 01-08 · WARNING"
    assert run_name("a", None, None, None, "info") == "a · INFO"  # no windows: no days


def test_range_is_inclusive_and_shows_years_beyond_a_year():
    assert format_range(datetime(2025, 12, 29, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)) == "12-29→01-02"
    assert format_range(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)) == \
        "2025-01-01→2026-02-28"
    assert format_range(datetime(2026, 1, 8, 6, tzinfo=UTC), datetime(2026, 1, 8, 12, tzinfo=UTC)) == "01-08"
    assert format_range(None, None) == ""


def test_counts_and_short_summary():
    fs = [Finding("warning", "drift", "m"), Finding("critical", "missing", "m"), Finding("warning", "drift", "n")]
    assert severity_counts(fs) == {"info": 0, "warning": 2, "error": 0, "critical": 1}
    assert set(severity_counts([])) == set(SEVERITIES)
    assert counts_text(severity_counts(fs)) == "1 critical, 2 warning"
    assert counts_text(severity_counts([])) == "no findings"
    span = (datetime(2026, 1, 8, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
    assert audit_summary(fs, *span) == "01-08→01-14 · 1 critical +2"  # short: the registry's table shows it whole
    assert audit_summary([], None, None) == "no findings"


def test_findings_markdown_table_worst_first_and_escaped():
    fs = [
        Finding("info", "small_group", "12 rows", None, "2026-01-09T00:00:00Z"),
        Finding("warning", "drift", "psi 0.31 | material at 0.1", "plan", "2026-01-12T00:00:00Z", "country=US"),
        Finding("critical", "missing", "missing share 100.0%\nvs 0.0%", "tenure", "2026-01-14T00:00:00Z"),
        Finding("error", "contract", "tenure.nanValues: 1200 rows", "tenure", "2026-01-14T06:00:00Z"),
    ]
    md = findings_markdown(fs)
    lines = md.splitlines()
    assert lines[0] == "# Findings: 1 critical, 1 error, 1 warning, 1 info"
    assert lines[2] == "| severity | kind | window | slice | column | message |"
    assert lines[3] == "|---|---|---|---|---|---|"
    assert lines[4:] == [
        "| CRITICAL | missing | 2026-01-14 |  | tenure | missing share 100.0% vs 0.0% |",
        "| ERROR | contract | 2026-01-14 06:00 |  | tenure | tenure.nanValues: 1200 rows |",
        "| warning | drift | 2026-01-12 | country=US | plan | psi 0.31 \\| material at 0.1 |",
        "| info | small_group | 2026-01-09 |  |  | 12 rows |",
    ]
    assert findings_markdown([]) == "# Findings: no findings\n"
    two_versions = [Finding("warning", "drift", "a", "x", None, None, "1"),
                    Finding("warning", "drift", "b", "x", None, None, "2")]
    assert "| model |" in findings_markdown(two_versions)


def test_run_link_and_description_and_keys():
    view = "?workflowType=machine_learning"  # MLflow 3's UI opens the runs view, not the GenAI one
    assert run_link("http://mlflow:5000/", "3", "abc") == "http://mlflow:5000/#/experiments/3/runs/abc" + view
    assert run_link("https://x.example/mlflow", "3", "abc") == \
        "https://x.example/mlflow/#/experiments/3/runs/abc" + view
    assert run_link("sqlite:///m.db", "3", "abc") == "runs:/abc"
    assert run_link("databricks", "3", "abc") == "runs:/abc"
    text = description("line one\nline two", "churn · OK")
    assert text == "**churn · OK**\n\n```text\nline one\nline two\n```\n"
    long = description("\n".join(f"finding {i} " + "x" * 90 for i in range(200)), "n", limit=2000)
    assert len(long) <= 2000 and long.endswith("```\n") and "more line(s): see spark_audit/findings.md" in long
    assert metric_key("drift", "a(b)/c d") == "drift.a_b__c d"
    assert len(metric_key("drift", "x" * 400)) == 250


def test_logged_model_of_a_version():
    from types import SimpleNamespace as V

    assert mlflow_log.logged_model_id(V(model_id="m-1", source="s3://b/m")) == "m-1"  # Unity Catalog keeps it
    assert mlflow_log.logged_model_id(V(model_id=None, source="models:/m-abc")) == "m-abc"  # register_model
    assert mlflow_log.logged_model_id(V(model_id=None, source="file:///nowhere/model")) is None
    assert mlflow_log.logged_model_id(V(model_id=None, source="models:/churn/3")) is None


def test_params_carry_thresholds_and_statistics_without_spark():
    spec = parse_spec({
        "name": "p", "source": {"path": "/t", "timestamp_column": "ts"}, "window": {"size": "1 day"},
        "features": ["x", "c"], "output": {"path": "/o"}, "reference": {"uri": "runs:/r"},
        "drift": {"statistics": ["psi", "js"], "bins": 12, "share_threshold": 0.4},
        "findings": {"fdr": 0.01, "min_rows": 30},
        "quality": {"task": "binary", "label": "y", "score": "s", "threshold": 0.3, "max_degradation": 0.05},
    })
    drift = [{"drift_type": "reference", "slice": None, "is_default": True, "column": "x", "statistic": "wasserstein"},
             {"drift_type": "reference", "slice": None, "is_default": False, "column": "x", "statistic": "psi"},
             {"drift_type": "reference", "slice": "c=a", "is_default": True, "column": "x", "statistic": "psi"}]
    result = AuditResult("k", "r", 4, [], drift=drift)
    p = audit_params(spec, result, "runs:/" + "r" * 900, 4)
    assert {k: p[k] for k in ("window.size", "drift.statistics", "drift.bins", "drift.share_threshold",
                              "findings.fdr", "findings.min_rows",
                              "drift.x.statistic", "quality.task", "quality.threshold",
                              "quality.max_degradation")} == {
        "window.size": "1 day", "drift.statistics": "psi,js", "drift.bins": "12", "drift.share_threshold": "0.4",
        "findings.fdr": "0.01", "findings.min_rows": "30",
        "drift.x.statistic": "wasserstein", "quality.task": "binary", "quality.threshold": "0.3",
        "quality.max_degradation": "0.05"}
    # what differs between runs by nature (the reference, the source, the spec's hash) is a tag, not a
    # parameter: MLflow's comparison opens on a plot of the parameters that differ
    assert not {"reference.uri", "source", "source.version", "spec_hash"} & set(p)
    assert all(isinstance(v, str) and len(v) <= mlflow_text.MAX_PARAM_CHARS for v in p.values())
    long = audit_params(spec, AuditResult("k", "r", 4, [], drift=[{**drift[0], "column": "x" * 900}]), "", 4)
    assert max(len(v) for v in long.values()) <= mlflow_text.MAX_PARAM_CHARS


def test_experiment_is_tagged_for_the_classic_runs_view(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    created = ensure_experiment(client, MlflowSpec(tracking_uri=uri, experiment="new"))
    assert client.get_experiment(created).tags[Tag.EXPERIMENT_KIND] == EXPERIMENT_KIND_ML == "custom_model_development"
    old = client.create_experiment("older")  # made before spark-audit tagged its experiments
    assert ensure_experiment(client, MlflowSpec(tracking_uri=uri, experiment="older")) == old
    assert client.get_experiment(old).tags[Tag.EXPERIMENT_KIND] == EXPERIMENT_KIND_ML
    genai = client.create_experiment("genai", tags={Tag.EXPERIMENT_KIND: "genai_development"})
    ensure_experiment(client, MlflowSpec(tracking_uri=uri, experiment="genai"))
    assert client.get_experiment(genai).tags[Tag.EXPERIMENT_KIND] == "genai_development"  # a kind set stays


# --------------------------------------------------------------------------- a real audit


@pytest.fixture(scope="module")
def audited(spark, tmp_path_factory):
    """Three days of rows, the first the reference; x is NaN all of the last day. Model "churn" version 1
    is registered from a logged model (MLflow 3)."""
    home = tmp_path_factory.mktemp("mlflow-log")
    table = str(home / "t")
    rows = [(day(d) + timedelta(minutes=i), float("nan") if d == 2 else float((i * 7919) % 100), f"c{i % 4}")
            for d in range(3) for i in range(200)]
    spark.createDataFrame(rows, "ts timestamp, x double, c string").write.format("delta").save(table)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # the registry resolves a logged model through the global client
    client = MlflowClient(uri)
    exp_id = ensure_experiment(client, MlflowSpec(tracking_uri=uri, experiment="mlflow-log"))
    model = client.create_logged_model(exp_id, name="churn-model")
    client.create_registered_model("churn")
    client.create_model_version("churn", f"models:/{model.model_id}", model_id=model.model_id)
    spec = parse_spec({
        "name": "log-test", "source": {"path": table, "timestamp_column": "ts"},
        "window": {"size": "1 day", "start": day(1).isoformat(), "end": day(3).isoformat()},
        "model": {"name": "churn", "version": "1"}, "features": ["x", "c"],
        "reference": {"start": day(0).isoformat(), "end": day(1).isoformat()},
        "findings": {"min_rows": 50},
        "output": {"path": str(home / "results")},
        "mlflow": {"tracking_uri": uri, "experiment": "mlflow-log"},
    })
    build_reference(spark, spec)
    result = run_audit(spark, spec)
    yield spec, client, model.model_id, result, client.get_run(result.mlflow_run_id)
    mlflow.set_tracking_uri(None)


def history(client, run_id, key):
    return sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))


def test_run_name_description_and_params(audited):
    spec, client, _, result, run = audited
    assert result.worst_severity == "critical"
    tags = run.data.tags
    assert tags["mlflow.runName"] == "log-test · model 1 · 02-02→02-03 · CRITICAL"
    note = tags["mlflow.note.content"]
    assert note.startswith("**log-test · model 1 · 02-02→02-03 · CRITICAL**\n\n```text\n")
    assert result.mlflow_run_id in note and "worst finding: critical" in note  # (the first line is wrapped)
    assert note.index("incidents:") < note.index("window ")  # the incidents come first
    assert (tags["model_name"], tags["model_version"], tags["spark_audit.source_version"]) == ("churn", "1", "0")
    p = run.data.params
    assert p["window.size"] == "1 day" and p["drift.statistics"] == "psi,js" and p["drift.bins"] == "20"
    assert p["drift.share_threshold"] == "0.5" and p["findings.fdr"] == "0.05" and p["findings.min_rows"] == "50"
    assert tags["spark_audit.source"] == spec.source.display and tags["spark_audit.source_version"] == "0"
    assert tags["spark_audit.spec_hash"] == spec.published_hash() and tags["spark_audit.reference"]
    assert {p["drift.x.statistic"], p["drift.c.statistic"]} <= {"psi", "js", "wasserstein", "ks", "chi2"}
    assert not [k for k in p if k.startswith("quality.")]  # no quality section in the spec


def test_one_deciding_metric_per_feature_stamped_with_the_window(audited):
    _, client, _, result, run = audited
    metrics = run.data.metrics
    assert not [k for k in metrics if k.startswith(("drift.psi", "drift.js", "profile.null_fraction"))]
    # the window's ordinal in the audit as the step; its start as the timestamp ("Time (wall)" shows dates)
    at = {0: int(day(1).timestamp() * 1000), 1: int(day(2).timestamp() * 1000)}
    deciding = {(r["column"], r["window_start"].day if hasattr(r["window_start"], "day") else r["window_start"]): r
                for r in result.drift if r["drift_type"] == "reference" and r["slice"] is None and r["is_default"]}
    assert {c for c, _ in deciding} == {"x", "c"}
    # no flat .threshold or 0/1 .drifted series: the chart artifact draws the threshold and the findings
    assert not [k for k in metrics if k.endswith((".threshold", ".drifted"))]
    assert metrics["status"] == 4 and metrics["incidents.open"] >= 1 and metrics["drifted_features"] >= 0
    c = history(client, run.info.run_id, "drift.c")
    assert [(s, t) for s, t, _ in c] == sorted(at.items())
    rows = {r["window_start"]: r for r in result.drift if r["column"] == "c" and r["drift_type"] == "reference"
            and r["slice"] is None and r["is_default"]}
    assert sorted(v for _, _, v in c) == sorted(r["value"] for r in rows.values())
    assert [(s, t, v) for s, t, v in history(client, run.info.run_id, "rows")] == \
        [(s, t, 200.0) for s, t in sorted(at.items())]
    assert [s for s, _, _ in history(client, run.info.run_id, "drift.share")] == sorted(at)


def test_missing_share_counts_nan(audited):
    _, client, _, _, run = audited
    x = history(client, run.info.run_id, "missing_share.x")
    assert [(s, v) for s, _, v in x] == [(0, 0.0), (1, 1.0)]  # the all-NaN day
    assert [v for _, _, v in history(client, run.info.run_id, "missing_share.c")] == [0.0, 0.0]


def test_findings_counts_and_artifacts(audited, tmp_path):
    _, client, _, result, run = audited
    counts = severity_counts(result.findings)
    assert run.data.metrics["findings"] == len(result.findings)
    assert {s: run.data.metrics[f"findings.{s}"] for s in SEVERITIES} == counts
    assert counts["critical"] >= 1
    names = {a.path for a in client.list_artifacts(run.info.run_id, "spark_audit")}
    assert {"spark_audit/findings.md", "spark_audit/findings.json", "spark_audit/drift_over_windows.png"} <= names
    md = open(client.download_artifacts(run.info.run_id, "spark_audit/findings.md", str(tmp_path))).read()
    lines = md.splitlines()
    assert lines[0] == f"# Findings: {counts_text(counts)}"
    assert lines[2] == "| severity | kind | window | slice | column | message |"
    assert lines[4].startswith("| CRITICAL | ")  # worst first
    assert any(ln.startswith("| CRITICAL | missing | 2026-02-03 |  | x | missing share 100.0%") for ln in lines)
    assert len(lines) == 4 + len(result.findings)


def test_experiment_tag_and_registry_tags_and_model_link(audited):
    _, client, model_id, result, run = audited
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    mv = client.get_model_version("churn", "1")
    assert mv.tags["audit_status"] == "CRITICAL"  # health: the worst active incident
    live = [i.severity for i in result.active]
    critical = live.count("critical")
    assert critical >= 1 and mv.tags["audit_summary"] == (
        f"02-02→02-03 · {len(live)} incident{'s' if len(live) > 1 else ''}: {critical} critical"
        + (f" +{len(live) - critical}" if len(live) > critical else ""))
    assert mv.tags["audit_run"] == f"runs:/{run.info.run_id}"  # SQLite: no UI address to link to
    assert not [k for k in mv.tags if k.startswith("spark_audit.last_audit")]
    assert [m.model_id for m in run.inputs.model_inputs] == [model_id]


def test_description_wraps_long_finding_lines():
    """A 200-character finding line made the run page 2,000 px wide and pushed its tags off screen."""
    text = description("window ok\n    CRITICAL drift  x  " + "word " * 40, "n")
    body = text.split("```text\n")[1].split("\n```")[0].splitlines()
    assert body[0] == "window ok" and len(body) == 4
    assert max(len(line) for line in body) <= mlflow_text.DESCRIPTION_WIDTH
    assert all(line.startswith(" " * 8) for line in body[2:])
