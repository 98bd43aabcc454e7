"""Quality from a separate labels table, joined with a maximum label delay, inside an audit."""

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from spark_audit import store
from spark_audit.audit import run_audit
from spark_audit.reference_build import build_reference
from spark_audit.spec import load_spec

T0 = datetime(2026, 4, 1, tzinfo=timezone.utc)


def test_labels_table_with_delay(spark, tmp_path):
    preds, labels = [], []
    for d in range(3):
        for i in range(100):
            pid = f"p{d}-{i}"
            ts = T0 + timedelta(days=d, minutes=i)
            score = (i % 10) / 10 + 0.05
            preds.append((pid, ts, score, float(i % 7)))
            y = int(score > 0.5) if i % 10 else 1 - int(score > 0.5)  # 90% of rows right
            late = d == 2 and i < 50  # half of day 3's labels arrive after the allowed delay
            labels.append((pid, y, ts + timedelta(days=40 if late else 1)))
    spark.createDataFrame(preds, "id string, ts timestamp, score double, x double").write.format("delta").save(
        str(tmp_path / "preds"))
    spark.createDataFrame(labels, "id string, y int, labelled_at timestamp").write.format("delta").save(
        str(tmp_path / "labels"))
    spec = {
        "name": "labels-test",
        "source": {"path": str(tmp_path / "preds"), "timestamp_column": "ts"},
        "window": {"size": "1 day"}, "features": ["x", "score"],
        "reference": {"end": (T0 + timedelta(days=1)).isoformat()},
        "quality": {"task": "binary", "label": "y", "score": "score", "score_bins": 10,
                    "labels": {"path": str(tmp_path / "labels"), "keys": ["id"],
                               "label_time_column": "labelled_at", "max_delay": "30 days"}},
        "output": {"path": str(tmp_path / "out")},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'ml.db'}"},
    }
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(spec))
    run_id, ref = build_reference(spark, load_spec(p))
    assert ref.extras["quality"]["metrics"]["accuracy"] == 0.9
    spec["reference"] = {"uri": f"runs:/{run_id}"}
    p.write_text(yaml.safe_dump(spec))
    result = run_audit(spark, load_spec(p), log_to_mlflow=False)
    acc = {r["window_start"].day: r for r in result.performance if r["metric"] == "accuracy"}
    assert [acc[d]["n"] for d in (1, 2, 3)] == [100, 100, 50]  # late labels count as missing
    assert acc[3]["unlabelled"] == 50
    assert all(abs(acc[d]["value"] - 0.9) < 1e-9 for d in (1, 2, 3))
    assert acc[1]["reference_value"] == 0.9 and acc[1]["degradation"] == 0.0
    written = store.complete(spark, load_spec(p).output, "performance_metrics").where("metric = 'accuracy'")
    assert written.count() == 3


def test_fairness_gaps_between_groups_of_a_protected_attribute(spark, tmp_path):
    rows = []
    for d in range(2):
        for i in range(200):
            group = "A" if i % 2 else "B"
            # group B gets scores above the threshold three times as often; labels are the same mix
            score = 0.7 if (i % 10 < (6 if group == "B" else 2)) else 0.2
            rows.append((T0 + timedelta(days=d, minutes=i), group, score, int(i % 10 < 4)))
    spark.createDataFrame(rows, "ts timestamp, g string, score double, y int").write.format("delta").save(
        str(tmp_path / "t"))
    spec = {
        "name": "fair", "source": {"path": str(tmp_path / "t"), "timestamp_column": "ts"},
        "window": {"size": "1 day"}, "features": ["score"], "slices": ["g"],
        "reference": {"end": (T0 + timedelta(days=1)).isoformat()},
        "quality": {"task": "binary", "label": "y", "score": "score", "estimate": False,
                    "fairness": {"attribute": "g", "max_gap": 0.1}},
        "output": {"path": str(tmp_path / "out")}, "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'ml.db'}"},
    }
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(spec))
    run_id, _ = build_reference(spark, load_spec(p))
    spec["reference"] = {"uri": f"runs:/{run_id}"}
    p.write_text(yaml.safe_dump(spec))
    result = run_audit(spark, load_spec(p), log_to_mlflow=False)
    fair = {(r["window_start"].day, r["metric"]): r["value"] for r in result.performance
            if r["metric"].startswith("fairness.")}
    # per group of 100: A predicts 20 positive, B 60 -> statistical parity gap 0.4, impact 1/3
    assert fair[(1, "fairness.g.statistical_parity_gap")] == pytest.approx(0.4)
    assert fair[(1, "fairness.g.disparate_impact")] == pytest.approx(1 / 3)
    # labels: 40 positive per group; A catches 20 of them, B all 40 -> equal opportunity gap 0.5
    assert fair[(1, "fairness.g.equal_opportunity_gap")] == pytest.approx(0.5)
    # precision: A 20/20, B 40/60 -> predictive parity gap 1/3
    assert fair[(1, "fairness.g.predictive_parity_gap")] == pytest.approx(1 / 3)
    kinds = {(f.kind, f.window_start[:10]) for f in result.findings if f.kind == "fairness"}
    assert kinds == {("fairness", "2026-04-01"), ("fairness", "2026-04-02")}
