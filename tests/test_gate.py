"""The release gate: a candidate version against the champion on the same labelled rows.

Pure math first (no Spark): the Poisson table, the paired interval, verdicts and rules. Then the scan:
Poisson weights, pairing, and end to end on a Delta table with a real MLflow registry: a candidate better
overall but worse on one slice fails a gate that protects slices and passes one that does not; an equal
candidate gets no evidence; ``--promote`` moves the alias only on a pass. Last, the statistics as
statistics: 95 % intervals cover the true difference in 90-99 % of repeated draws.
"""

import json
import math

import numpy as np
import pytest
from mlflow import MlflowClient
from scipy.stats import poisson

from spark_audit import gate
from spark_audit.catalog import SCORE_BINS
from spark_audit.decay.metrics import roc_auc_from_bins, score_bin
from spark_audit.errors import DataError, SpecError
from spark_audit.gate import GateRow, Interval, decide, paired_interval, run_gate, verdict
from spark_audit.readback import complete_frame, read_frame
from spark_audit.spec import GateConfig, GateSlices, QualitySpec, parse_spec

MODEL = "gate-model"


# --------------------------------------------------------------------------- pure math


def test_poisson_table_is_the_poisson_1_cdf():
    assert np.allclose(gate.POISSON_CDF, poisson.cdf(np.arange(13), 1.0), rtol=0, atol=1e-15)
    assert 1 - gate.POISSON_CDF[-1] < 1e-9


def test_paired_interval_is_point_plus_minus_z_bootstrap_se():
    rng = np.random.default_rng(3)
    reps = rng.normal(0.05, 0.02, size=4000)
    iv = paired_interval(0.05, reps, 0.95)
    se = np.std(reps, ddof=1)
    assert iv.standard_error == pytest.approx(se)
    assert iv.low == pytest.approx(0.05 - 1.959964 * se, abs=1e-6)
    assert iv.high == pytest.approx(0.05 + 1.959964 * se, abs=1e-6)
    assert iv.p_value == pytest.approx(2 * (1 - 0.9937903), abs=2e-3)  # z = 0.05 / 0.02 = 2.5


def test_identical_predictions_are_no_evidence_not_better():
    iv = paired_interval(0.0, np.zeros(200), 0.95)
    assert iv.standard_error == 0 and iv.p_value == 1.0
    assert verdict(iv, True, 0.95) == "no evidence"


def test_too_few_defined_replicates_give_no_interval():
    reps = np.full(100, np.nan)
    reps[:50] = 0.1
    iv = paired_interval(0.1, reps, 0.95)
    assert math.isnan(iv.low) and verdict(iv, True, 0.95) == "no evidence"


def test_verdict_follows_the_metric_direction():
    lower = Interval(-0.05, -0.07, -0.03, 0.01, 1e-6)  # candidate's value is lower
    assert verdict(lower, True, 0.95) == "worse"  # accuracy down
    assert verdict(lower, False, 0.95) == "better"  # log loss down
    assert verdict(Interval(-0.01, -0.03, 0.01, 0.01, 0.3), True, 0.95) == "no evidence"


def _row(slice_, metric, diff, se, n=1000, protected=True, higher=True):
    z = 1.959964
    iv = Interval(diff, diff - z * se, diff + z * se, se, float(2 * (1 - __import__("scipy").stats.norm.cdf(
        abs(diff) / se))))
    return GateRow(slice_, metric, n, 0.8, 0.8 + diff, iv, verdict(iv, higher, 0.95), protected=protected,
                   drop=-diff if higher else diff)


def test_rules_overall_slices_and_must_improve():
    cfg = GateConfig(metrics=("accuracy",), must_improve=("roc_auc",), slices=GateSlices(max_drop=0.02))
    rows = [
        _row(None, "accuracy", 0.01, 0.004),  # better overall
        _row(None, "roc_auc", 0.002, 0.004, protected=False),  # no evidence: must_improve fails
        _row("c=A", "accuracy", -0.05, 0.01),  # material and strong: fails
        _row("c=B", "accuracy", -0.05, 0.04),  # material but weak evidence
        _row("c=C", "accuracy", -0.015, 0.003),  # strong but below max_drop
        _row("c=D", "f1", -0.2, 0.01, protected=False),  # not a protected metric
    ]
    reasons = decide(rows, cfg)
    failed = [(r.slice, r.metric) for r in rows if r.failed]
    assert failed == [(None, "roc_auc"), ("c=A", "accuracy")], reasons
    assert len(reasons) == 2 and "must improve" in reasons[0] and reasons[1].startswith("c=A")
    assert rows[2].q_value is not None and rows[2].q_value < 0.001 and rows[3].q_value > 0.05
    unprotected = GateConfig(metrics=("accuracy",), slices=GateSlices(protect=False))
    rows = [_row(None, "accuracy", 0.01, 0.004), _row("c=A", "accuracy", -0.05, 0.01)]
    assert decide(rows, unprotected) == [] and rows[1].q_value is not None  # reported, not failing


def test_overall_worse_fails_only_beyond_max_drop():
    rows = [_row(None, "accuracy", -0.01, 0.003)]
    assert decide(rows, GateConfig(metrics=("accuracy",))) and rows[0].failed
    rows = [_row(None, "accuracy", -0.01, 0.003)]
    assert decide(rows, GateConfig(metrics=("accuracy",), max_drop=0.02)) == []


def test_too_few_rows_cannot_decide():
    rows = [_row(None, "accuracy", 0.01, 0.004, n=150)]
    with pytest.raises(DataError, match="gate.min_rows = 200"):
        gate.check_evidence(rows, GateConfig())
    gate.check_evidence(rows, GateConfig(min_rows=150))


def test_gate_metrics_need_both_scores():
    a = QualitySpec("binary", "y", score="s1")
    b = QualitySpec("binary", "y", prediction="p2")
    assert "roc_auc" not in gate.gate_metrics("binary", a, b)
    assert "roc_auc" in gate.gate_metrics("binary", a, QualitySpec("binary", "y", score="s2"))


def _raw(table, tracking, results, **gate_cfg):
    return {
        "name": "gate-test", "source": {"path": table}, "model": {"name": MODEL, "version_column": "mv"},
        "features": ["score"], "slices": ["country"],
        "quality": {"task": "binary", "label": "y", "score": "score", "metrics": ["accuracy", "roc_auc"]},
        "gate": {"key": ["id"], "replicates": 60, "slices": {"min_rows": 100}, **gate_cfg},
        "output": {"path": results}, "mlflow": {"tracking_uri": tracking, "experiment": "gate-test"},
    }


def test_spec_errors_name_the_key(tmp_path):
    base = _raw("t", "sqlite:///x.db", "out")
    with pytest.raises(SpecError, match="gate.key"):
        parse_spec({**base, "gate": {"replicates": 100}})
    with pytest.raises(SpecError, match="gate.metrics"):
        parse_spec({**base, "gate": {"key": ["id"], "metrics": ["rmse"]}})
    with pytest.raises(SpecError, match="gate.confidence"):
        parse_spec({**base, "gate": {"key": ["id"], "confidence": 95}})
    with pytest.raises(SpecError, match="quality section"):
        parse_spec({k: v for k, v in base.items() if k != "quality"})
    wide = {**base, "model": {"name": MODEL}, "gate": {"columns": {"1": {"score": "s1"}, "2": {}}}}
    with pytest.raises(SpecError, match=r"gate.columns.2"):
        parse_spec(wide)


# --------------------------------------------------------------------------- the scan


def test_poisson_weights_from_hashes_are_poisson_1_and_paired(spark):
    from pyspark.sql import functions as F

    df = spark.range(20000).select(F.col("id").cast("string").alias("k"))
    both = df.select("k", F.lit("1").alias("v")).unionByName(df.select("k", F.lit("2").alias("v")))
    w = gate.replicated(both, ("k",), 5, seed=11)
    stats = w.where(F.col(gate.REP) > 0).agg(F.mean(gate.WEIGHT).alias("m"), F.variance(gate.WEIGHT).alias("v"),
                                              F.mean((F.col(gate.WEIGHT) == 0).cast("double")).alias("p0")).first()
    # 200,000 draws: se of the mean 0.0022, of P(0) 0.0011
    assert stats["m"] == pytest.approx(1.0, abs=0.01)
    assert stats["v"] == pytest.approx(1.0, abs=0.02)
    assert stats["p0"] == pytest.approx(math.exp(-1), abs=0.005)
    assert w.where(F.col(gate.REP) == 0).agg(F.min(gate.WEIGHT), F.max(gate.WEIGHT)).first() == (1, 1)
    unpaired = (w.groupBy("k", gate.REP).agg(F.countDistinct(gate.WEIGHT).alias("n")).where("n > 1").count())
    assert unpaired == 0  # a row's two versions always carry the same weight


def _eval_rows(n=2500, seed=1):
    """Champion (1) sees x1; candidate (2) sees x1 and x2, except in country C (10 % of rows) where it is
    mostly noise; 3 is the champion's scores exactly; 4 scores a subset only (unpaired)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    country = rng.choice(["A", "B", "C"], p=[0.5, 0.4, 0.1], size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x1 + x2)))).astype(int)
    s1 = 1 / (1 + np.exp(-x1))
    s2 = np.where(country == "C", 1 / (1 + np.exp(-(0.3 * x1 + rng.normal(size=n)))), 1 / (1 + np.exp(-(x1 + x2))))
    rows = []
    for i in range(n):
        for v, s in (("1", s1), ("2", s2), ("3", s1)):
            rows.append((f"id{i}", str(country[i]), int(y[i]), float(s[i]), v))
        if i % 2 == 0:
            rows.append((f"id{i}", str(country[i]), int(y[i]), float(s2[i]), "4"))
    return rows


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    home = tmp_path_factory.mktemp("gate")
    table = str(home / "eval")
    spark.createDataFrame(_eval_rows(), "id string, country string, y int, score double, mv string") \
        .write.format("delta").save(table)
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking)
    client.create_registered_model(MODEL)
    run = client.create_run(client.create_experiment("train"))
    for _ in range(3):
        client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", "1")
    return dict(home=home, table=table, tracking=tracking, client=client, results=str(home / "results"))


def _spec(world, **gate_cfg):
    return parse_spec(_raw(world["table"], world["tracking"], world["results"], **gate_cfg))


@pytest.fixture(scope="module")
def protecting(spark, world):
    """The gate that protects slices, asked to promote: it fails, so the alias stays."""
    return run_gate(spark, _spec(world), "2", promote="champion")


def test_better_overall_worse_on_a_slice_fails_a_protecting_gate_and_passes_another(spark, world, protecting):
    client = world["client"]
    overall = {r.metric: r for r in protecting.overall()}
    assert overall["accuracy"].verdict == "better" and overall["roc_auc"].verdict == "better"
    c = {r.metric: r for r in protecting.rows if r.slice == "country=C"}
    assert c["roc_auc"].verdict == "worse" and c["roc_auc"].failed
    assert not protecting.passed and protecting.exit_code == 1
    assert all(reason.startswith("country=C") for reason in protecting.reasons)
    assert not any(r.failed for r in protecting.rows if r.slice in ("country=A", "country=B"))
    text = gate.summary(protecting)
    assert "FAIL: model 2 may not replace model 1 (@champion)" in text and "<< fails the gate" in text
    # a failed gate does not move the alias; the decision is on the candidate's tags
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["gate_status"] == "fail" and tags["gate_champion"] == "1" and "gate_promoted" not in tags
    run = client.get_run(protecting.mlflow_run_id)
    assert run.data.tags["spark_audit.gate"] == "fail" and run.data.metrics["gate.passed"] == 0.0
    doc = json.loads(open(client.download_artifacts(run.info.run_id, "spark_audit/gate.json")).read())
    assert doc["passed"] is False and any(r["slice"] == "country=C" and r["failed"] for r in doc["rows"])

    lenient = run_gate(spark, _spec(world, slices={"protect": False, "min_rows": 100}), "2", promote="champion")
    assert lenient.passed and lenient.exit_code == 0 and lenient.promoted == "champion"
    assert {r.verdict for r in lenient.rows if r.slice == "country=C" and r.metric == "roc_auc"} == {"worse"}
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert client.get_model_version(MODEL, "2").tags["gate_promoted"] == "champion"
    client.set_registered_model_alias(MODEL, "champion", "1")  # back, for the other tests


def test_results_are_delta_rows_of_a_complete_run_and_a_rerun_does_not_duplicate(spark, world, protecting):
    spec = _spec(world)
    again = run_gate(spark, spec, "2", log_to_mlflow=False)
    assert again.gate_key == protecting.gate_key
    rows = complete_frame(read_frame(spec.output, "gate_results"), read_frame(spec.output, "audit_runs"))
    mine = rows[rows["audit_key"] == protecting.gate_key]
    assert len(mine) == len(protecting.rows) == 4 * 7  # (all rows + 3 slices) x 7 metrics, once
    failed = mine[mine["failed"]]
    assert set(failed["slice"]) == {"country=C"} and not mine["gate_passed"].any()
    runs = read_frame(spec.output, "audit_runs")
    gates = runs[runs["audit_key"] == protecting.gate_key]
    assert list(gates["status"]) == ["complete"] and gates["audit_name"].iloc[0] == "gate-test:gate"


def test_unpaired_rows_are_a_data_problem(spark, world):
    with pytest.raises(DataError, match="not scored on the same rows"):
        run_gate(spark, _spec(world), "4", champion="1", log_to_mlflow=False)
    with pytest.raises(SpecError, match="the candidate is the champion"):
        run_gate(spark, _spec(world), "1", log_to_mlflow=False)


def test_an_equal_candidate_gets_no_evidence_and_passes_through_the_cli(spark, world, tmp_path, capsys):
    """Version 3 is the champion's scores exactly: no difference anywhere, so no evidence, and a pass."""
    import yaml

    from spark_audit.cli import main

    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(_raw(world["table"], world["tracking"], world["results"])))
    assert main(["gate", str(path), "--candidate", "3", "--champion", "1", "--format", "json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is True and doc["champion"] == "1" and doc["reasons"] == []
    assert {r["verdict"] for r in doc["rows"] if r["verdict"] != "not judged"} == {"no evidence"}
    assert all(abs(r["difference"]) < 1e-12 and r["p_value"] == 1.0 for r in doc["rows"])
    assert main(["gate", str(path), "--candidate", "2", "--champion", "nope", "--quiet"]) == 3
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["gate", str(path), "--quiet"])  # --candidate is required
    assert e.value.code == 2


def test_regression_versions_in_their_own_columns(spark, tmp_path):
    """A regression model, each version in its own prediction column of one row (no key: rand weights):
    the candidate's smaller errors are better on every regression metric."""
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.normal(size=n)
    y = 2 * x + rng.normal(size=n)
    a, b = 2 * x + rng.normal(scale=1.0, size=n), 2 * x + rng.normal(scale=0.5, size=n)
    table = str(tmp_path / "reg")
    # the candidate missed 100 rows: both versions are compared on the 2,900 both predicted
    rows = [(float(y[i]), float(a[i]), None if i < 100 else float(b[i])) for i in range(n)]
    spark.createDataFrame(rows, "y double, p1 double, p2 double").write.format("delta").save(table)
    spec = parse_spec({
        "name": "reg", "source": {"path": table}, "model": {"name": "reg-model"}, "features": ["p1"],
        "quality": {"task": "regression", "label": "y", "prediction": "p1"},
        "gate": {"columns": {"1": {"prediction": "p1"}, "2": {"prediction": "p2"}}, "replicates": 60},
        "output": {"path": str(tmp_path / "out")}, "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'm.db'}"},
    })
    result = run_gate(spark, spec, "2", champion="1", log_to_mlflow=False)
    verdicts = {r.metric: r.verdict for r in result.overall()}
    assert verdicts == {"mse": "better", "rmse": "better", "mae": "better", "mape": "better", "r2": "better"}
    rmse = next(r for r in result.overall() if r.metric == "rmse")
    assert rmse.n == n - 100
    assert rmse.champion_value == pytest.approx(float(np.sqrt(np.mean((a[100:] - y[100:]) ** 2))), rel=1e-9)
    assert rmse.interval.high < 0 and result.passed


# --------------------------------------------------------------------------- statistics as statistics


def _population_metrics(score, y):
    pred = score >= 0.5
    acc = float(np.mean(pred == (y == 1)))
    b = np.minimum(np.floor(np.clip(score, 0, 1) * SCORE_BINS), SCORE_BINS - 1).astype(int)
    pos = np.bincount(b[y == 1], minlength=SCORE_BINS)
    neg = np.bincount(b[y == 0], minlength=SCORE_BINS)
    p = np.clip(score, 1e-15, 1 - 1e-15)
    ll = float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))
    return {"accuracy": acc, "roc_auc": roc_auc_from_bins(pos, neg), "log_loss": ll}


def _draws(rng, n, noise_b):
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)
    a = 1 / (1 + np.exp(-2 * (x + rng.normal(scale=0.8, size=n))))
    b = 1 / (1 + np.exp(-2 * (x + rng.normal(scale=noise_b, size=n))))
    return y, a, b


@pytest.mark.parametrize("noise_b", [0.8, 0.5], ids=["equal-quality", "candidate-better"])
def test_95_percent_intervals_cover_the_true_difference(spark, tmp_path, noise_b):
    """150 independent draws of 300 rows (one slice each, one scan); each version in its own column."""
    rng = np.random.default_rng(2026)
    y, a, b = _draws(rng, 2_000_000, noise_b)
    pa, pb = _population_metrics(a, y), _population_metrics(b, y)
    truth = {m: pb[m] - pa[m] for m in pa}
    draws, n = 150, 300
    y, a, b = _draws(np.random.default_rng(7), draws * n, noise_b)
    rows = [(f"r{i}", f"{i // n:03d}", int(y[i]), float(a[i]), float(b[i])) for i in range(draws * n)]
    table = str(tmp_path / "sim")
    spark.createDataFrame(rows, "id string, draw string, y int, s1 double, s2 double").write.format("delta") \
        .save(table)
    spec = parse_spec({
        "name": "coverage", "source": {"path": table}, "model": {"name": MODEL}, "features": ["s1"],
        "slices": ["draw"], "quality": {"task": "binary", "label": "y", "score": "s1"},
        "gate": {"columns": {"1": {"score": "s1"}, "2": {"score": "s2"}}, "key": ["id"], "replicates": 100,
                 "min_rows": 100, "slices": {"min_rows": 100}},
        "output": {"path": str(tmp_path / "out")}, "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'm.db'}"},
    })
    champ, cand = gate.sides(spec, "2", "1")
    states = gate.scan(spark.read.format("delta").load(table), spec, champ, cand)
    rows = gate.evaluate(states, champ, cand, spec.gate, ("accuracy", "roc_auc", "log_loss"), ())
    for m, true_diff in truth.items():
        ivs = [r.interval for r in rows if r.slice is not None and r.metric == m]
        assert len(ivs) == draws
        covered = np.mean([iv.low <= true_diff <= iv.high for iv in ivs])
        assert 0.90 <= covered <= 0.99, (m, true_diff, covered)
        if noise_b == 0.8:  # equal quality: a verdict other than "no evidence" is a false alarm
            false = np.mean([r.verdict in ("better", "worse") for r in rows if r.slice is not None and r.metric == m])
            assert false <= 0.10, (m, false)
    if noise_b == 0.5:  # the whole table (45,000 rows) sees the candidate's real gain
        overall = {r.metric: r.verdict for r in rows if r.slice is None}
        assert overall == {"accuracy": "better", "roc_auc": "better", "log_loss": "better"}


def test_score_bin_is_the_bin_the_population_uses(spark):
    from pyspark.sql import functions as F

    values = [0.0, 0.049, 0.05, 0.5, 0.999, 1.0]
    got = [r[0] for r in spark.createDataFrame([(v,) for v in values], "s double")
           .select(score_bin(F.col("s"), SCORE_BINS)).collect()]
    assert got == [int(min(np.floor(v * SCORE_BINS), SCORE_BINS - 1)) for v in values]
