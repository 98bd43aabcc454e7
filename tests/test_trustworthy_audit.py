"""Calibrated findings end to end on real Spark, Delta and MLflow: stable windows and slices stay quiet,
a tiny window is recorded but not judged, a NaN burst pages, the reference keeps its window noise, and
an older reference without it still loads and says so."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from spark_audit import store
from spark_audit.audit import run_audit
from spark_audit.reference_build import build_reference
from spark_audit.spec import parse_spec
from spark_audit.timeutil import iso_utc

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
REF_DAYS, AUDIT_DAYS = 7, 5


def _rows(rng, day: int, n: int, *, nan_x: bool = False, shift: float = 0.0):
    regions = rng.choice(["north", "south", "east", "west"], size=n, p=[0.15, 0.25, 0.25, 0.35])
    x = rng.normal(50 + shift, 10, size=n)
    amount = np.round(rng.lognormal(3, 1, size=n))
    plan = rng.choice(["basic", "plus", "gold"], size=n, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(x - 50) / 10))
    label = (rng.uniform(size=n) < score).astype(int)
    out = []
    for i in range(n):
        ts = T0 + timedelta(days=day, seconds=int(i * 86_000 / n))
        out.append((ts, str(regions[i]), float("nan") if nan_x else float(x[i]), float(amount[i]), str(plan[i]),
                    float(score[i]), int(score[i] >= 0.5), int(label[i])))
    return out


@pytest.fixture(scope="module")
def audited(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust")
    rng = np.random.default_rng(42)
    rows = []
    for d in range(REF_DAYS + AUDIT_DAYS):
        rows += _rows(rng, d, 1500)
    rows += _rows(rng, REF_DAYS + AUDIT_DAYS, 30, shift=30.0)  # a tiny, drifted window
    rows += _rows(rng, REF_DAYS + AUDIT_DAYS + 1, 1500, nan_x=True)  # a NaN burst
    rows += _rows(rng, REF_DAYS + AUDIT_DAYS + 2, 1500) * 2  # a day loaded twice
    # ... and the last two days of the range never arrive
    schema = "ts timestamp, region string, x double, amount double, plan string, score double, pred int, y int"
    spark.createDataFrame(rows, schema).write.format("delta").save(str(tmp / "t"))
    raw = {
        "name": "trust", "source": {"path": str(tmp / "t"), "timestamp_column": "ts"},
        "window": {"size": "1 day", "start": (T0 + timedelta(days=REF_DAYS)).isoformat(),
                   "end": (T0 + timedelta(days=REF_DAYS + AUDIT_DAYS + 5)).isoformat()},
        "features": ["x", "amount", "plan", "score"], "slices": ["region"],
        "reference": {"start": T0.isoformat(), "end": (T0 + timedelta(days=REF_DAYS)).isoformat()},
        "quality": {"task": "binary", "label": "y", "prediction": "pred", "score": "score", "threshold": 0.5},
        "output": {"path": str(tmp / "out")},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp / 'ml.db'}"},
    }
    run_id, ref = build_reference(spark, parse_spec(raw))
    spec = parse_spec({**raw, "reference": {**raw["reference"], "uri": f"runs:/{run_id}"}})
    result = run_audit(spark, spec, log_to_mlflow=False)
    return spec, ref, result, tmp


def _day(i: int) -> str:
    return iso_utc(T0 + timedelta(days=REF_DAYS + i))


def test_reference_keeps_window_noise_per_slice(audited):
    _, ref, _, _ = audited
    noise = ref.extras["noise"]
    assert noise["windows"] == REF_DAYS and noise["window_size"] == "1 day"
    x = noise["columns"]["x"]
    assert x["windows"] == REF_DAYS and 1.0 <= x["phi"] < 2.0 and len(x["values"]["wasserstein"]) == REF_DAYS
    # independent rows: little between-window variance (at 1/n scale it would be about 1e-4 per unit of phi)
    assert 0.0 <= x["tau2"]["chi2"] < 1e-3 and set(x["tau2"]) == {"chi2", "ks", "missing"}
    assert set(ref.slices) == {"region=north", "region=south", "region=east", "region=west"}
    assert ref.slices["region=north"].extras["noise"]["columns"]["x"]["windows"] == REF_DAYS
    assert set(ref.extras["quality"]["tau2"]) >= {"accuracy", "f1", "roc_auc", "fpr"}
    assert ref.to_dict()["format_version"] == 3
    # seven daily windows cannot hold two weekly cycles: the reference says so, and keeps no phases
    assert ref.extras["cycle"]["status"] == "too short" and not ref.phases


def test_stable_windows_and_slices_raise_nothing(audited):
    _, _, result, _ = audited
    stable = {_day(i) for i in range(AUDIT_DAYS)}
    assert stable <= {iso_utc(r["window_start"]) for r in result.drift}  # the keys match: not vacuous
    loud = [f for f in result.findings if f.window_start in stable and f.severity != "info"]
    assert loud == []
    # the effect-size rule alone would have fired on slice noise: evidence is what kept it quiet
    assert any(r["material"] and not r["drifted"] for r in result.drift if r["is_default"])


def test_tiny_window_is_recorded_not_judged(audited):
    _, _, result, _ = audited
    tiny = _day(AUDIT_DAYS)
    found = [f for f in result.findings if f.window_start == tiny]
    # recorded, not judged: no drift, missing or quality finding; its row count is a volume finding
    assert {f.kind for f in found} == {"small_group", "volume"}
    assert [f.severity for f in found if f.kind == "small_group"] == ["info"]
    rows = [r for r in result.drift if iso_utc(r["window_start"]) == tiny and r["is_default"]
            and r["drift_type"] == "reference"]
    assert rows and not any(r["drifted"] for r in rows) and any(r["material"] for r in rows)


def test_nan_burst_pages_once_per_group(audited):
    _, _, result, _ = audited
    burst = _day(AUDIT_DAYS + 1)
    missing = [f for f in result.findings if f.kind == "missing" and f.window_start == burst]
    assert {(f.column, f.severity) for f in missing} == {("x", "critical")}
    assert any(f.slice is None for f in missing) and all(f.q_value is not None and f.q_value < 1e-6 for f in missing)
    assert result.exit_code == 1


def test_q_values_are_stored(spark, audited):
    spec, _, result, _ = audited
    rows = store.complete(spark, spec.output, "drift_metrics").where("is_default and q_value is not null")
    assert rows.count() > 0
    perf = store.complete(spark, spec.output, "performance_metrics").where(
        "metric = 'accuracy' and sampling_error > 0 and p_value is not null")
    assert perf.count() > 0


def test_an_older_reference_without_noise_still_loads_and_says_so(spark, audited):
    spec, ref, _, tmp = audited
    d = ref.to_dict()
    d["format_version"] = 1
    d["extras"].pop("noise")
    d["extras"].pop("cycle")  # a format-1 reference knew nothing of cycles either
    for s in d["slices"].values():
        s["extras"].pop("noise", None)
    path = tmp / "old_ref.json"
    path.write_text(json.dumps(d))
    old = replace(spec, reference=replace(spec.reference, uri=str(path)), name="trust-old")
    result = run_audit(spark, old, log_to_mlflow=False)
    notes = [f for f in result.findings if f.kind == "reference"]
    assert len(notes) == 1 and notes[0].severity == "info" and "no window-to-window noise" in notes[0].message
    assert any(f.kind == "missing" and f.severity == "critical" for f in result.findings)


def test_duplicate_batch_missing_days_and_stale_source(audited):
    _, ref, result, _ = audited
    dup_day, gone = _day(AUDIT_DAYS + 2), [_day(AUDIT_DAYS + 3), _day(AUDIT_DAYS + 4)]
    kinds = {(f.kind, f.window_start, f.slice) for f in result.findings}
    assert ("duplicates", dup_day, None) in kinds and ("volume", dup_day, None) in kinds
    assert {w for k, w, _ in kinds if k == "missing_window"} == set(gone)
    [stale] = [f for f in result.findings if f.kind == "stale"]
    assert stale.severity == "critical" and _day(AUDIT_DAYS + 2) in stale.message
    assert len(ref.extras["table"]["rows"]) == REF_DAYS and ref.extras["table"]["duplicate_share"] < 0.01
    # no duplicate or volume finding on a stable day
    stable = {_day(i) for i in range(AUDIT_DAYS)}
    assert not [f for f in result.findings if f.kind in ("duplicates", "volume") and f.window_start in stable]


def test_findings_table_is_idempotent_on_re_run(spark, audited):
    spec, _, result, _ = audited
    first = store.read(spark, spec.output, "findings").where(f"audit_name = '{spec.name}'")
    keys = sorted(r.finding_key for r in first.select("finding_key").collect())
    assert len(keys) == len(result.findings) and len(set(keys)) == len(keys)
    again = run_audit(spark, spec, log_to_mlflow=False)
    assert again.audit_key == result.audit_key
    second = store.read(spark, spec.output, "findings").where(f"audit_name = '{spec.name}'")
    assert sorted(r.finding_key for r in second.select("finding_key").collect()) == keys
    crit = (store.complete(spark, spec.output, "findings")
            .where(f"audit_name = '{spec.name}' and severity = 'critical'").count())
    assert crit == sum(f.severity == "critical" for f in again.findings)


def test_an_audit_reaching_the_present_reports_an_old_newest_row(spark, audited):
    spec, _, _, _ = audited
    live = replace(spec, name="trust-live", window=replace(spec.window, end=None))
    result = run_audit(spark, live, log_to_mlflow=False)
    [fresh] = [f for f in result.findings if f.kind == "freshness"]
    assert "newest row" in fresh.message and fresh.value > 24 * 30  # the table's rows are months old
    # the last day with rows is the duplicated one, day REF_DAYS + AUDIT_DAYS + 2
    assert result.newest_row_at.date() == (T0 + timedelta(days=REF_DAYS + AUDIT_DAYS + 2)).date()
    assert result.source_committed_at is not None  # the commit is recent: no commit finding
    run = store.read(spark, live.output, "audit_runs").where("audit_name = 'trust-live'").first()
    assert run.newest_row_at is not None and run.source_committed_at is not None
