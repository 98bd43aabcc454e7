"""One audit end to end under each engine (``profile.engine: arrow`` and ``spark``), on the same reference:
the result tables hold the same rows, value for value. And the engine is a spec key and a CLI option."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from spark_audit import store
from spark_audit.audit import run_audit
from spark_audit.cli import build_parser
from spark_audit.errors import SpecError
from spark_audit.reference_build import build_reference
from spark_audit.spec import parse_spec
from tests.merge_check import _registers

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
# what tells two runs apart (the audit key hashes the output location too), not what they computed
RUN_COLUMNS = {"audit_key", "audit_run_id", "mlflow_run_id", "run_id", "audited_at", "created_at", "started_at",
               "finished_at", "output", "recorded_at", "first_seen_at", "last_seen_at", "written_at"}
TABLES = ("profile_metrics", "drift_metrics", "dataset_drift", "performance_metrics", "findings", "contract_violations")


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory):
    rng = np.random.default_rng(11)
    rows = []
    for d in range(6):
        shift = 0.8 if d == 5 else 0.0  # the last day drifts, so the findings are not empty
        for i in range(300):
            x = float(rng.normal(shift, 1.0))
            z = float(rng.lognormal(0, 0.5)) if i % 25 else float("nan")
            cat = ["a", "b", "c", "d"][int(rng.integers(0, 4 if d < 5 else 2))]
            score = 1 / (1 + math.exp(-x))
            rows.append((T0 + timedelta(days=d, minutes=4 * i), x, z, cat, ["n", "s"][i % 2], score,
                         int(rng.uniform() < score)))
    path = str(tmp_path_factory.mktemp("engines") / "t")
    spark.createDataFrame(rows, "ts timestamp, x double, z double, cat string, region string, score double, "
                                "label int").write.format("delta").save(path)
    return path


CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: engines
version: "1"
status: active
schema:
  - name: engines
    customProperties: [{property: unexpectedColumns, value: ignore}]
    quality:
      - {id: few_high, type: sql, query: "SELECT count(*) FROM {object} WHERE x > 2.5", mustBeLessThan: 8}
    properties:
      - name: x
        logicalType: number
        quality:
          - id: x_high
            type: sql
            query: "-- ODCS placeholders\\n(SELECT count(*) FROM {object} WHERE {property} > 2.5)"
            mustBeLessThan: 8
      - {name: category, physicalName: cat, logicalType: string, customProperties: [{property: pii, value: false}]}
"""


def _spec(path: str, home, engine: str, out: str, reference: dict):
    (home / "contract.yaml").write_text(CONTRACT)
    return parse_spec({
        "name": "engines", "source": {"path": path, "timestamp_column": "ts"},
        "window": {"size": "1 day", "start": (T0 + timedelta(days=3)).isoformat(),
                   "end": (T0 + timedelta(days=6)).isoformat()},
        "slices": ["region"], "features": ["x", "z", "cat", "score"], "reference": reference,
        "quality": {"task": "binary", "label": "label", "score": "score"},
        "profile": {"engine": engine}, "contract": {"path": str(home / "contract.yaml")},
        "output": {"path": str(home / out)}, "mlflow": {"tracking_uri": f"sqlite:///{home / 'ml.db'}"},
    })


def _rows(spark, spec, table: str) -> list[dict]:
    rows = [{k: json.loads(v) if k == "state" and v else v for k, v in r.asDict().items() if k not in RUN_COLUMNS}
            for r in store.complete(spark, spec.output, table).collect()]
    key = [k for k in store.TABLES[table][1] if k not in RUN_COLUMNS]  # the table's natural key
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in key))


def _same(a, b, where: str) -> None:
    if where.endswith(".hll") and a is not None and b is not None:  # the same registers, whatever the order
        a, b = (base64.b64decode(v) if isinstance(v, str) else bytes(v) for v in (a, b))  # the rows came in
        assert _registers(a) == pytest.approx(_registers(b), rel=1e-12), where
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_both_engines_write_the_same_result_rows(spark, table, tmp_path):
    run_id, _ = build_reference(spark, _spec(table, tmp_path, "arrow", "ref",
                                             {"start": T0.isoformat(), "end": (T0 + timedelta(days=3)).isoformat()}))
    specs = {e: _spec(table, tmp_path, e, f"out_{e}", {"uri": f"runs:/{run_id}"}) for e in ("arrow", "spark")}
    other = replace(specs["arrow"], profile=replace(specs["arrow"].profile, engine="spark"))
    assert other.spec_hash() == specs["arrow"].spec_hash()  # the same audit, computed two ways
    results = {e: run_audit(spark, s, log_to_mlflow=False) for e, s in specs.items()}
    assert [f.kind for f in results["arrow"].findings] == [f.kind for f in results["spark"].findings]
    assert any(f.kind == "drift" for f in results["arrow"].findings)  # the shifted day is found by both
    # the ODCS type: sql value queries ran once per window, {object} bound to its rows: only the shifted day
    # (x drawn around 0.8 instead of 0) has 8 or more values above 2.5
    for rule in ("few_high", "x_high"):
        by_day = {v["window_start"].day: v for v in results["arrow"].violations if v["rule_id"] == rule}
        assert sorted(by_day) == [5, 6, 7] and [by_day[d]["passed"] for d in (5, 6, 7)] == [True, True, False]
        assert by_day[7]["rule"] == "sqlQuery" and "the query gave" in by_day[7]["message"]
    for name in TABLES:
        arrow, spark_rows = _rows(spark, specs["arrow"], name), _rows(spark, specs["spark"], name)
        assert arrow, f"{name}: no rows to compare"
        assert len(arrow) == len(spark_rows), name
        for i, (a, b) in enumerate(zip(arrow, spark_rows, strict=True)):
            assert a.keys() == b.keys(), name
            for k in a:
                _same(a[k], b[k], f"{name}[{i}].{k}")


def test_the_engine_is_a_spec_key_and_a_cli_option(tmp_path):
    spec = _spec("/t", tmp_path, "spark", "o", {"uri": "runs:/x"})
    assert spec.profile.engine == "spark"
    with pytest.raises(SpecError, match="profile.engine.*expected one of arrow, spark, got 'numpy'"):
        _spec("/t", tmp_path, "numpy", "o", {"uri": "runs:/x"})
    args = build_parser().parse_args(["audit", "a.yaml", "--engine", "spark"])
    assert args.engine == "spark"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["audit", "a.yaml", "--engine", "numpy"])
