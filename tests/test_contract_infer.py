"""Contract inference from a profile (a duck-typed stand-in for profile.state)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

from spark_audit.contract import check_dataframe, compile_contract, infer_contract, loads_contract
from spark_audit.profile import Grouping, profile_groups, resolve_columns

UTC = dt.timezone.utc


def col(name, kind, dtype, count, nulls=0, *, nan=0, pos_inf=0, neg_inf=0, min=None, max=None, top=None, **kw):
    top = top or {}
    return SimpleNamespace(
        name=name, kind=kind, dtype=dtype, count=count, nulls=nulls, nan=nan, pos_inf=pos_inf, neg_inf=neg_inf,
        min=min, max=max, top=top, distinct=float(len(top)) if top else None,
        null_fraction=nulls / count if count else float("nan"), **kw)


def table(*columns, row_count=None):
    cols = {c.name: c for c in columns}
    n = row_count if row_count is not None else max((c.count for c in columns), default=0)
    return SimpleNamespace(row_count=n, columns=cols)


def props(doc):
    return {p["name"]: p for p in doc["schema"][0]["properties"]}


def custom(p):
    return {c["property"]: c["value"] for c in p.get("customProperties", [])}


def test_inferred_shape_and_yaml_round_trip():
    profile = table(
        col("customer_id", "categorical", "string", 100, top={f"C{i}": 1 for i in range(20)}, len_min=4, len_max=6),
        col("age", "numeric", "double", 100, nulls=5, nan=1, min=18.0, max=90.0),
        col("tenure", "numeric", "bigint", 100, min=0, max=72),
        col("plan", "categorical", "string", 100, nulls=10, top={"basic": 60, "premium": 30}),
        col("churned", "boolean", "boolean", 100),
        col("event_ts", "timestamp", "timestamp", 100, min=1.7e9, max=1.71e9),
    )
    doc = infer_contract(profile, table_name="main.features.churn", tolerance=0.1, max_categories=10)
    assert doc["apiVersion"].startswith("v3.") and doc["kind"] == "DataContract" and doc["status"] == "draft"
    p = props(doc)
    assert {k: v["logicalType"] for k, v in p.items()} == {
        "customer_id": "string", "age": "number", "tenure": "integer", "plan": "string",
        "churned": "boolean", "event_ts": "timestamp"}
    assert p["customer_id"]["required"] is True and "required" not in p["age"]
    assert "logicalTypeOptions" not in p["age"]  # bounds are a tolerant quality rule, not hard options
    # shares widened by 4 binomial sds at 500 rows: 1 % -> 1 + 400 sqrt(.01 .99 / 500) = 2.78 (not 1.1)
    assert custom(p["age"]) == {"maxNanPercent": 2.78, "maxInfPercent": 0}
    assert p["age"]["quality"][0] == {"metric": "nullValues", "mustBeLessOrEqualTo": 8.9, "unit": "percent",
                                      "severity": "warning"}
    # no sketch in this stand-in: min/max widened by their distance (72), not below 0 (nothing negative)
    assert range_rule(p["age"])["arguments"] == {"minimum": 0.0, "maximum": 162.0}
    assert range_rule(p["tenure"])["arguments"] == {"minimum": 0, "maximum": 144}  # whole numbers
    assert custom(p["plan"]) == {"allowedValues": ["basic", "premium"]}
    assert "customProperties" not in p["customer_id"]  # 20 ids > max_categories: no domain
    assert p["customer_id"]["logicalTypeOptions"] == {"minLength": 3, "maxLength": 7}
    assert doc["schema"][0]["quality"][0]["metric"] == "rowCount"
    # dumps as plain YAML and loads as a valid contract
    contract = loads_contract(yaml.safe_dump(doc, sort_keys=False), file="inferred.yaml")
    age = contract.schema_object().property("age")
    assert (age.minimum, age.maximum, age.max_nan_percent) == (None, None, 2.78)
    rule = age.quality[1]
    assert (rule.metric, dict(rule.arguments), rule.severity) == (
        "invalidValues", {"minimum": 0.0, "maximum": 162.0}, "warning")


def range_rule(p):
    rules = [q for q in p.get("quality", []) if q["metric"] == "invalidValues"]
    assert len(rules) == 1, p
    return rules[0]


def bounds_of(p):
    args = range_rule(p)["arguments"]
    return args["minimum"], args["maximum"]


@pytest.mark.parametrize("lo, hi, margin, dtype, expected", [
    (18.0, 90.0, 0.0, "double", (18.0, 90.0)),
    (-5.0, 5.0, 0.1, "double", (-6.0, 6.0)),
    (3.0, 3.0, 0.1, "double", (2.7, 3.3)),  # constant: widened by |value|
    (0.5, 40.0, 0.1, "double", (0.0, 44.0)),  # nothing negative seen: not below 0
    (0.1234, 0.5678, 0.05, "double", (0.101, 0.591)),
    (1.0, 9.0, 0.1, "int", (0, 10)),
])
def test_bounds_without_a_sketch(lo, hi, margin, dtype, expected):
    """A profile without quantiles (no KLL sketch): min and max stand in for the quantiles."""
    doc = infer_contract(table(col("x", "numeric", dtype, 10, min=lo, max=hi)), table_name="t",
                         range_margin=margin)
    assert bounds_of(props(doc)["x"]) == pytest.approx(expected)
    assert bounds_of(props(doc)["x"])[0] <= lo and bounds_of(props(doc)["x"])[1] >= hi


def sketched(name, dtype, q_lo, q_hi, lo, hi, n=28_000):
    """A numeric column whose sketch says p0.1 = q_lo and p99.9 = q_hi, with exact min lo and max hi."""
    c = col(name, "numeric", dtype, n, min=lo, max=hi)
    c.quantiles = lambda probs: [q_lo if p < 0.5 else q_hi for p in probs]
    return c


@pytest.mark.parametrize("q_lo, q_hi, lo, hi, expected", [
    (10.0, 100.0, 5.0, 150.0, (0, 190)),  # quantiles +- their distance (90); not below 0
    (10.0, 100.0, 5.0, 600.0, (0, 600)),  # a long tail the reference really has is kept (within 10 x 90)
    (10.0, 100.0, 5.0, 1e9, (0, 1000)),  # a lone wild value is not: the bound stops at 100 + 10 x 90
    (-50.0, 50.0, -1e6, 60.0, (-1050, 150)),  # both ways
])
def test_bounds_from_quantiles(q_lo, q_hi, lo, hi, expected):
    doc = infer_contract(table(sketched("x", "bigint", q_lo, q_hi, lo, hi)), table_name="t")
    assert bounds_of(props(doc)["x"]) == expected


def test_inferred_numeric_bounds_are_tolerant_warnings(spark):
    """Inferred bounds are a guess: a warning, and a lone row outside them is no violation."""
    doc = infer_contract(table(col("x", "numeric", "double", 100, min=0.0, max=50.0),
                               col("n", "numeric", "int", 100, min=1, max=9)), table_name="t")
    for p in props(doc).values():
        assert range_rule(p) == {
            "metric": "invalidValues", "arguments": range_rule(p)["arguments"],
            "mustBeLessOrEqualTo": 0.2, "unit": "percent", "severity": "warning",  # >= 1 row of 500
            "description": range_rule(p)["description"]}
    strict = infer_contract(table(col("x", "numeric", "double", 100, min=0.0, max=50.0)), table_name="t",
                            max_out_of_range_percent=0)
    assert range_rule(props(strict)["x"])["mustBeLessOrEqualTo"] == 0
    plan = compile_contract(loads_contract(yaml.safe_dump(doc)),
                            spark.createDataFrame([], "x double, n int").schema)
    ranges = [r for r in plan.rules if r.kind == "invalidValues"]
    assert {r.column: r.severity for r in ranges} == {"x": "warning", "n": "warning"}
    assert {r.threshold_text for r in ranges} == {"failing % <= 0.2"}


def test_no_domain_when_top_values_do_not_cover_the_rows():
    partial = col("city", "categorical", "string", 100, top={"Paris": 50, "Lyon": 30})  # 20 rows elsewhere
    assert "customProperties" not in props(infer_contract(table(partial), table_name="t"))["city"]


def test_empty_and_all_null_profiles():
    doc = infer_contract(table(col("x", "numeric", "double", 0), col("s", "categorical", "string", 0),
                               row_count=0), table_name="t")
    assert "quality" not in doc["schema"][0]
    assert all("required" not in p for p in props(doc).values())
    loads_contract(yaml.safe_dump(doc))
    doc = infer_contract(table(col("x", "numeric", "double", 4, nulls=4)), table_name="t")
    assert props(doc)["x"]["quality"][0]["mustBeLessOrEqualTo"] == 100
    with pytest.raises(ValueError):
        infer_contract(table(), table_name="t", tolerance=-1)


# ---------------------------------------------------------------- round trip on Spark

SCHEMA = "id string, age double, plan string, visits int, vip boolean, ts timestamp"
T0 = dt.datetime(2024, 5, 1, tzinfo=UTC)
ROWS = [
    ("A1", 30.5, "basic", 3, True, T0),
    ("A2", None, "premium", 0, False, T0 + dt.timedelta(hours=1)),
    ("A3", math.nan, "basic", 7, None, T0 + dt.timedelta(hours=2)),
    ("A4", math.inf, None, 12, False, T0 + dt.timedelta(hours=3)),
    ("A5", 61.25, "standard", 1, True, T0 + dt.timedelta(hours=4)),
    ("A6", 19.0, "basic", 4, False, T0 + dt.timedelta(hours=5)),
]


def profile_of(rows, schema):
    """A stand-in profile computed in Python from collected rows (the data is tiny)."""
    columns = {}
    for f in schema.fields:
        values = [r[f.name] for r in rows]
        dtype = f.dataType.simpleString()
        present = [v for v in values if v is not None]
        kind = {"double": "numeric", "int": "numeric", "boolean": "boolean", "timestamp": "timestamp"}.get(
            dtype, "categorical")
        floats = [v for v in present if isinstance(v, float)]
        finite = [v.timestamp() if isinstance(v, dt.datetime) else v for v in present
                  if not isinstance(v, (bool, str)) and (not isinstance(v, float) or math.isfinite(v))]
        top = dict(Counter(str(v) for v in present)) if kind == "categorical" else {}
        columns[f.name] = col(
            f.name, kind, dtype, len(values), len(values) - len(present),
            nan=sum(math.isnan(v) for v in floats), pos_inf=sum(v == math.inf for v in floats),
            neg_inf=sum(v == -math.inf for v in floats),
            min=min(finite) if finite else None, max=max(finite) if finite else None, top=top,
            len_min=min(map(len, present)) if kind == "categorical" and present else None,
            len_max=max(map(len, present)) if kind == "categorical" and present else None)
    return table(*columns.values(), row_count=len(rows))


@pytest.fixture(scope="module")
def delta_table(spark, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("infer") / "t")
    spark.createDataFrame(ROWS, SCHEMA).write.format("delta").save(path)
    return path


@pytest.mark.parametrize("tolerance, margin", [(0.0, 0.0), (0.1, 1.0)])
def test_inferred_contract_passes_on_its_own_data(spark, delta_table, tolerance, margin):
    df = spark.read.format("delta").load(delta_table)
    profile = profile_of(df.collect(), df.schema)
    doc = infer_contract(profile, table_name="visits", tolerance=tolerance, range_margin=margin,
                         max_categories=5)
    contract = loads_contract(yaml.safe_dump(doc, sort_keys=False), file="visits.yaml")
    plan = compile_contract(contract, df.schema)
    results = check_dataframe(df, plan)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]
    kinds = {r.rule for r in results}
    assert {"required", "invalidValues", "nanValues", "infValues", "allowedValues", "nullValues", "rowCount",
            "length"} <= kinds


def test_inferred_contract_catches_new_data(spark, delta_table):
    df = spark.read.format("delta").load(delta_table)
    doc = infer_contract(profile_of(df.collect(), df.schema), table_name="visits", max_categories=5)
    plan = compile_contract(loads_contract(yaml.safe_dump(doc)), df.schema)
    new = spark.createDataFrame(ROWS + [("B1", 500.0, "gold", 99, True, T0)], SCHEMA)
    failing = {r.rule_id for r in check_dataframe(new, plan) if not r.passed}
    # one row in 7 (14%) is far beyond the 0.1% the inferred bounds tolerate
    assert failing == {"age.invalidValues", "plan.allowedValues", "visits.invalidValues"}


# ---------------------------------------------------------- a heavy tail, profiled on Spark

LOAN_SCHEMA = "w int, amount bigint, score double"
SENTINEL_WINDOW, OUTLIER_WINDOW = 20, 21


def loans(rng, n):
    """Loan amounts: lognormal, rounded to whole units (a long right tail); a light-tailed score."""
    amount = np.rint(rng.lognormal(mean=9.0, sigma=1.25, size=n)).astype(int)
    score = rng.normal(600.0, 50.0, size=n)
    return amount, score


def test_inferred_bounds_hold_on_fresh_windows_of_a_heavy_tail(spark):
    """A contract inferred from 28,000 reference rows (the real profiler, KLL sketches) is quiet on
    20 fresh windows of 4,000 rows from the same distribution and on a window with one wild row,
    but still catches a window whose amounts are 1% sentinel -999."""
    rng = np.random.default_rng(20240501)
    amount, score = loans(rng, 28_000)
    ref = spark.createDataFrame([(0, int(a), float(s)) for a, s in zip(amount, score, strict=True)],
                                LOAN_SCHEMA).drop("w")
    [group] = profile_groups(ref, resolve_columns(ref.schema, [("amount", None), ("score", None)]),
                             Grouping(model_version="1"))
    doc = infer_contract(group.profile, table_name="loans")
    plan = compile_contract(loads_contract(yaml.safe_dump(doc, sort_keys=False)), ref.schema)
    own = check_dataframe(ref, plan)
    assert all(r.passed for r in own), [r for r in own if not r.passed]  # it holds on its own data

    rows = []
    for w in range(22):
        amount, score = loans(rng, 4_000)
        if w == SENTINEL_WINDOW:
            amount[rng.choice(4_000, size=40, replace=False)] = -999
        if w == OUTLIER_WINDOW:
            amount[7] = 100 * int(group.profile.columns["amount"].max)
        rows += [(w, int(a), float(s)) for a, s in zip(amount, score, strict=True)]
    windows = spark.createDataFrame(rows, LOAN_SCHEMA)
    plan = compile_contract(loads_contract(yaml.safe_dump(doc, sort_keys=False)), windows.schema)
    results = {row["w"]: plan.evaluate(row, total_rows=row["n"])
               for row in windows.groupBy("w").agg(F.count(F.lit(1)).alias("n"), *plan.exprs).collect()}

    noisy = {w: [(r.rule_id, r.message) for r in rs if not r.passed] for w, rs in results.items()
             if w < SENTINEL_WINDOW and not all(r.passed for r in rs)}
    assert noisy == {}
    assert all(r.passed for r in results[OUTLIER_WINDOW]), "one wild row in 4,000 is not a violation"
    failing = [r for r in results[SENTINEL_WINDOW] if not r.passed]
    assert [(r.rule_id, r.severity, r.failing_count) for r in failing] == [("amount.invalidValues", "warning", 40)]
    assert failing[0].message.endswith("expected failing % <= 0.2")


def test_inferred_null_share_bound_holds_on_stable_windows_and_slices_but_not_a_spike():
    """A 2 % null share bounded at 2.2 % failed about one 4,000-row day in four by chance."""
    from spark_audit.contract.infer import _widen_percent

    rng = np.random.default_rng(3)
    bound = _widen_percent(560, 28_000, 0.1)
    shares = [rng.binomial(n, 0.02) / n * 100 for n in [4000] * 300 + [600] * 300]
    assert sum(s > bound for s in shares) <= 3  # nominal about 1e-4 at 500 rows
    assert 30.0 > bound  # a 30 % null spike still fails
