"""Every scan part merges: the merge of a split table's states equals the state of the whole table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from spark_audit import multivariate, quality, table_checks
from spark_audit.contract import compile_contract, load_contract
from spark_audit.contract.scan import contract_part
from spark_audit.decay.estimate import Calibration
from spark_audit.drift.compare import reference_bins
from spark_audit.profile import Grouping, profile_groups, resolve_columns
from spark_audit.scan import ScanPart, check_namespaces
from spark_audit.spec import QualityConfig, QualitySpec
from tests.merge_check import assert_merge_matches_union

T0 = datetime(2026, 1, 8, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def table(spark):
    rng = np.random.default_rng(7)
    n = 600
    x = rng.normal(10, 2, n)
    y = 0.5 * x + rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-(x - 10)))
    # d: 25 values, five frequent ones in blocks of each 100 rows and 20 rare ones, so a top-5 list is
    # truncated in every split and the merge of truncated lists is checked
    head = ["h0"] * 36 + ["h1"] * 18 + ["h2"] * 12 + ["h3"] * 8 + ["h4"] * 6
    cycle = head + [f"t{j}" for j in range(100 - len(head))]
    rows = [(float(x[i]) if i % 50 else None, float(y[i]), ["a", "b", "c"][i % 3] if i % 40 else None,
             int(rng.uniform() < score[i]) if i % 7 else None, float(score[i]), int(score[i] >= 0.5),
             T0 + timedelta(minutes=i), cycle[i % 100]) for i in range(n)]
    rows += rows[:20]  # duplicated rows for the row-hash sketch
    return spark.createDataFrame(rows, "x double, y double, c string, label int, score double, pred int, "
                                       "ts timestamp, d string")


@pytest.mark.parametrize("engine", ["arrow", "spark"])
def test_every_part_merges_like_the_union(table, tmp_path, engine):
    contract_yaml = tmp_path / "c.yaml"
    contract_yaml.write_text("""
apiVersion: v3.1.0
kind: DataContract
id: t
name: t
version: "1"
status: active
schema:
  - name: t
    quality:
      - {id: fresh, type: custom, engine: spark-audit, unit: days,
         implementation: {metric: freshness, arguments: {property: ts}, mustBeLessOrEqualTo: 10000}}
      - {id: rows, metric: rowCount, mustBeGreaterThan: 0}
    properties:
      - {name: x, logicalType: number, required: true, logicalTypeOptions: {minimum: 0, maximum: 14}}
      - {name: ts, logicalType: timestamp}
      - {name: c, logicalType: string, quality: [{metric: invalidValues, arguments: {validValues: [a, b]},
                                                  mustBeLessOrEqualTo: 50, unit: percent}]}
""")
    plan = compile_contract(load_contract(str(contract_yaml)), table.schema, now=T0 + timedelta(days=1),
                            timestamp_column="ts")
    cfg = QualityConfig(measure=QualitySpec("binary", "label", prediction="pred", score="score"))
    calibration = Calibration(probs=tuple(np.linspace(0.02, 0.98, 20)), counts=(10.0,) * 20)
    pca = {"features": ["x", "y"], "means": [10.0, 5.0], "stds": [2.0, 1.4],
           "components": [[0.7071, 0.7071]]}
    parts = [*quality.parts(cfg, calibration), contract_part(plan), table_checks.part(table.columns, "ts"),
             multivariate.moments_part(["x", "y"], [10.0, 5.0], [2.0, 1.4]), multivariate.error_part(pca)]
    assert {p.name for p in parts} == {"q", "e", "c", "t", "m", "r"}
    columns = resolve_columns(table.schema, [("x", None), ("y", None), ("c", None), ("label", "categorical"),
                                             ("d", None)])
    # the profile on the reference's exact bins too, as in an audit
    [ref] = profile_groups(table, columns, Grouping(model_version="1"), top_k=5, engine=engine)
    bins = {n: b for n, c in ref.profile.columns.items() if (b := reference_bins(c, 10))}
    assert_merge_matches_union(table, columns, parts, bins=bins, centers={"x": 10.0}, top_k=5, engine=engine)
    assert set(ref.profile.columns["d"].top) == {"h0", "h1", "h2", "h3", "h4"}  # d's list truncated at 5


def test_a_column_outside_every_namespace_is_refused_before_the_scan(table):
    from pyspark.sql import functions as F

    stray = ScanPart("z", (F.count(F.lit(1)).alias("zz_rows"),))
    with pytest.raises(ValueError, match="outside every scan part's namespace: \\['zz_rows'\\]"):
        profile_groups(table, resolve_columns(table.schema, [("x", None)]), Grouping(model_version="1"), parts=[stray])
    with pytest.raises(ValueError, match="distinct names"):
        check_namespaces([], [ScanPart("q", ()), ScanPart("q", ())])
