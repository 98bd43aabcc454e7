"""The demo: a synthetic churn feature table with injected problems, audited end to end and gated.

Fourteen days of scored customer events, scored by model ``spark-audit-demo-churn``
version 1 (alias ``champion``) and shadow-scored by version 2 (the same rows twice, ``model_version``
says which). Days 0-6 are the reference period of each version; days 7-13 are audited one
day at a time, each version against its own reference. Problems injected: from day 11
``monthly_charges`` shifts up by 0.8 standard deviations (input drift); on day 13 ``tenure_months``
is all NaN (an upstream pipeline bug), which the demo's data contract also catches; labels
(``churned``) show concept drift from day 12 (customers churn more than the scores say, so realised
quality decays; day 13 has no labels yet, so only the label-free estimate is there); the training
rows (a table of their own) had ``age`` bucketed into 10-year steps (training/serving skew). Version 2
learnt the plan's effect, so it is better overall, but its Mexican pipeline flips tenure's sign: the
gate against ``@champion`` fails it for country MX. Everything lives under one local folder: Delta
tables, the MLflow SQLite store and its artifacts.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_audit.reference import ensure_experiment, mlflow_client
from spark_audit.spec import parse_spec

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
UI_URL = "http://127.0.0.1:5000"  # `mlflow ui`'s default address
DAYS = 14
REFERENCE_DAYS = 7
DRIFT_FROM_DAY = 11
NAN_DAY = 13
CONCEPT_DAY = 12
UNLABELLED_DAY = 13
MODEL_NAME = "spark-audit-demo-churn"
FEATURES = ["age", "tenure_months", "monthly_charges", "plan", "country", "is_promo", "churn_score"]


def generate(spark: SparkSession, rows_per_day: int = 2000, seed: int = 7) -> DataFrame:
    n = DAYS * rows_per_day
    base = spark.range(n).withColumn("day", (F.col("id") / rows_per_day).cast("int"))
    u = lambda i: F.rand(seed + i)  # noqa: E731
    z = lambda i: F.randn(seed + i)  # noqa: E731
    charges = F.lit(65.0) + F.lit(20.0) * z(3)
    drifted = F.col("day") >= DRIFT_FROM_DAY
    df = base.select(
        "day",
        F.concat(F.lit("c"), F.lpad(F.col("id").cast("string"), 8, "0")).alias("customer_id"),
        F.timestamp_seconds(
            F.lit(int(START.timestamp())) + F.col("day") * 86400 + (u(1) * 86399).cast("long")
        ).alias("event_ts"),
        F.round(F.least(F.greatest(F.lit(45.0) + F.lit(12.0) * z(2), F.lit(18.0)), F.lit(95.0)), 1).alias("age"),
        F.when(F.col("day") == NAN_DAY, F.lit(float("nan")))
        .otherwise(F.floor(F.lit(72.0) * u(4) * u(5)).cast("double")).alias("tenure_months"),
        F.round(F.when(drifted, charges + F.lit(16.0)).otherwise(charges), 2).alias("monthly_charges"),
        F.when(u(6) < 0.5, "basic").when(u(6) < 0.85, "standard").otherwise("premium").alias("plan"),
        F.when(u(7) < 0.6, "CA").when(u(7) < 0.9, "US").otherwise("MX").alias("country"),
        (u(8) < 0.2).alias("is_promo"),
    )
    tenure = F.coalesce(F.nanvl(F.col("tenure_months"), F.lit(24.0)), F.lit(24.0))
    logit = F.lit(-1.0) + F.lit(0.02) * (F.col("monthly_charges") - 65) - F.lit(0.03) * tenure \
        + F.lit(0.5) * F.col("is_promo").cast("double")
    # the plan matters too: version 1 does not know it, version 2 does
    plan_effect = F.when(F.col("plan") == "premium", F.lit(0.9)).when(F.col("plan") == "basic", F.lit(-0.6)) \
        .otherwise(F.lit(0.0))
    # concept drift: from CONCEPT_DAY customers churn more than the model's score says;
    # labels of the last day have not arrived yet
    true_logit = logit + plan_effect + F.when(F.col("day") >= CONCEPT_DAY, F.lit(1.5)).otherwise(F.lit(0.0))
    churned = F.when(F.col("day") >= UNLABELLED_DAY, F.lit(None)).otherwise(
        (u(9) < F.lit(1.0) / (F.lit(1.0) + F.exp(-true_logit))).cast("int"))
    # version 2 shadow-scores the same rows: it learnt the plan's effect, so it is better overall, but its
    # Mexican feature pipeline has a sign bug in tenure, so it is worse for country MX (the gate's story);
    # its scores differ from version 1's, so compared with version 1's reference they would look drifted
    v2 = F.when(F.col("country") == "MX", logit + plan_effect + F.lit(0.06) * tenure).otherwise(logit + plan_effect)
    scored = df.select("*", logit.alias("_logit"), v2.alias("_logit2"), churned.alias("churned"))
    versions = [("1", F.col("_logit")), ("2", F.col("_logit2"))]
    out = None
    for version, score_logit in versions:
        features = [c for c in scored.columns if c not in ("_logit", "_logit2", "churned", "day")]
        part = scored.select(
            *features, F.lit(version).alias("model_version"),
            F.round(F.lit(1.0) / (F.lit(1.0) + F.exp(-score_logit)), 4).alias("churn_score"), "churned")
        out = part if out is None else out.unionByName(part)
    return out


def training(spark: SparkSession, rows_per_day: int, seed: int = 11) -> DataFrame:
    """The training rows: the reference week's kind of customers (another draw), without scores, with age
    bucketed to 10-year steps by the training pipeline (serving sends exact ages)."""
    rows = generate(spark, rows_per_day, seed=seed)
    end = F.lit(START + timedelta(days=REFERENCE_DAYS))
    rows = rows.where((F.col("model_version") == "1") & (F.col("event_ts") < end))
    return rows.drop("model_version", "churn_score").withColumn("age", F.floor(F.col("age") / 10) * 10.0)


DEMO_CONTRACT = {
    "apiVersion": "v3.1.0",
    "kind": "DataContract",
    "id": "churn-features-demo",
    "version": "1.0.0",
    "status": "active",
    "schema": [{
        "name": "churn_features",
        "quality": [{"id": "rows_present", "metric": "rowCount", "mustBeGreaterThan": 0, "severity": "critical"}],
        "properties": [
            {"name": "customer_id", "logicalType": "string", "required": True,
             "logicalTypeOptions": {"pattern": "^c[0-9]{8}$"}},
            {"name": "event_ts", "logicalType": "timestamp", "required": True},
            {"name": "age", "logicalType": "number", "logicalTypeOptions": {"minimum": 0, "maximum": 120}},
            {"name": "tenure_months", "logicalType": "number", "required": True,
             "logicalTypeOptions": {"minimum": 0, "maximum": 120},
             "customProperties": [{"property": "maxNanPercent", "value": 0}]},
            {"name": "monthly_charges", "logicalType": "number", "required": True,
             "quality": [{"id": "charges_positive", "type": "sql", "query": "monthly_charges > 0",
                          "mustBeLessOrEqualTo": 1, "unit": "percent", "severity": "warning"}]},
            {"name": "plan", "logicalType": "string", "required": True,
             "customProperties": [{"property": "allowedValues", "value": ["basic", "standard", "premium"]}]},
            {"name": "country", "logicalType": "string",
             "customProperties": [{"property": "allowedValues", "value": ["CA", "US", "MX"]}]},
            {"name": "is_promo", "logicalType": "boolean"},
            {"name": "model_version", "logicalType": "string", "required": True},
            {"name": "churn_score", "logicalType": "number",
             "logicalTypeOptions": {"minimum": 0, "maximum": 1}},
            {"name": "churned", "logicalType": "integer", "customProperties": [
                {"property": "allowedValues", "value": [0, 1]}]},
        ],
    }],
}


def demo_spec(home: Path) -> dict:
    home = home.resolve()
    ref_end = START + timedelta(days=REFERENCE_DAYS)
    return {
        "name": "churn-demo",
        "source": {"path": str(home / "tables" / "churn_features"), "timestamp_column": "event_ts"},
        "window": {"size": "1 day", "start": ref_end.isoformat(), "end": (START + timedelta(days=DAYS)).isoformat()},
        # no version named: each version in the rows is audited against its own reference
        "model": {"name": MODEL_NAME, "version_column": "model_version"},
        "features": [
            "age", "tenure_months", {"name": "monthly_charges", "importance": 2.0}, "plan", "country",
            "is_promo", "churn_score",
        ],
        "slices": ["country"],
        "reference": {"start": START.isoformat(), "end": ref_end.isoformat()},
        "drift": {"bins": 10, "statistics": ["psi", "js"], "share_threshold": 0.5},
        "contract": {"path": str(home / "demo_contract.yaml"), "sample_rows": 5, "mask_columns": ["customer_id"]},
        "quality": {"task": "binary", "label": "churned", "score": "churn_score", "threshold": 0.3,
                    "max_degradation": 0.05},
        # before release: a candidate against @champion on the first week's labelled rows, both versions'
        # rows paired by customer_id; no country may lose more than 2 points of a watched metric
        "gate": {"champion": CHAMPION, "key": ["customer_id"], "start": START.isoformat(), "end": ref_end.isoformat(),
                 "slices": {"protect": True, "max_drop": 0.02}},
        # the rows the models were trained on: their pipeline bucketed age into 10-year steps, which serving
        # does not (training/serving skew, ML Test Score Monitor 3)
        "training": {"path": str(home / "tables" / "churn_training"), "timestamp_column": "event_ts",
                     "end": ref_end.isoformat()},
        "output": {"path": str(home / "results")},
        # the links spark-audit writes (the registry's audit_run, the gate's gate_run, notifications) point to the
        # UI that `mlflow ui` serves by default, which the demo's last lines say how to start
        "mlflow": {"tracking_uri": f"sqlite:///{home / 'mlflow.db'}", "experiment": "spark-audit-demo",
                   "ui_url": UI_URL},
    }


COEFFICIENTS = {"1": {"intercept": -1.0, "monthly_charges": 0.02, "tenure_months": -0.03, "is_promo": 0.5},
                "2": {"intercept": -1.0, "monthly_charges": 0.02, "tenure_months": -0.03, "is_promo": 0.5,
                      "plan=premium": 0.9, "plan=basic": -0.6}}
CHAMPION = "champion"  # the alias of the version in production: version 1


def ensure_model_version(client, experiment_id: str, version: str = "1") -> str:
    """Register a version of the demo model (a stand-in: a JSON of its coefficients), in order."""
    try:
        return client.get_model_version(MODEL_NAME, version).version
    except Exception:  # noqa: BLE001 - not registered yet
        pass
    run = client.create_run(experiment_id, tags={"mlflow.runName": f"train churn model v{version} (demo)"})
    client.log_dict(run.info.run_id, COEFFICIENTS[version], "model/coefficients.json")
    client.set_terminated(run.info.run_id, "FINISHED")
    try:
        client.create_registered_model(MODEL_NAME)
    except Exception:  # noqa: BLE001 - already exists
        pass
    mv = client.create_model_version(MODEL_NAME, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return mv.version


def write_demo(spark: SparkSession, home: Path, rows_per_day: int) -> Path:
    """Generate the table (overwriting an earlier demo's) and write the demo's audit spec."""
    home.mkdir(parents=True, exist_ok=True)
    spec_dict = demo_spec(home)
    table = spec_dict["source"]["path"]
    generate(spark, rows_per_day).write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true").save(table)
    training(spark, rows_per_day).write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true").save(spec_dict["training"]["path"])
    (home / "demo_contract.yaml").write_text(yaml.safe_dump(DEMO_CONTRACT, sort_keys=False))
    spec_path = home / "demo_audit.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict, sort_keys=False))
    spec = parse_spec(spec_dict, file=str(spec_path))
    client = mlflow_client(spec.mlflow)
    experiment = ensure_experiment(client, spec.mlflow)
    for version in COEFFICIENTS:
        ensure_model_version(client, experiment, version)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, "1")
    return spec_path
