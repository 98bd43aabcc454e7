"""Contract rules compiled to aggregate expressions, on tiny Delta tables."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from spark_audit.contract import (
    BAD_ROWS_SCHEMA,
    CONTRACT_VIOLATIONS_FIELDS,
    RULES,
    RuleKind,
    RuleResult,
    check_dataframe,
    compile_contract,
    load_contract,
    parse_contract,
    sample_bad_rows,
    uniqueness_results,
    worst_severity,
)
from spark_audit.errors import SpecError

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
ODD = "odd.name-`x"  # a dot, a dash and a backtick: must be quoted, never pasted

SCHEMA = ("id string, age double, plan string, country string, amount bigint, ts timestamp, "
          f"`{ODD.replace('`', '``')}` string")
ROWS = [
    ("C000001", 30.0, "basic", "DE", 10, T0, None),
    ("C000002", 45.0, "premium", "FR", 20, T0 + dt.timedelta(days=1), None),
    ("C000003", None, "basic", None, 30, T0 + dt.timedelta(days=2), None),
    ("C000004", math.nan, "standard", "", 40, T0 + dt.timedelta(days=3), None),
    ("C000005", math.inf, "basic", "US", 50, T0 + dt.timedelta(days=4), None),
    ("C000006", -1.0, "premium", "US", 60, T0 + dt.timedelta(days=5), None),
    ("C000007", 150.0, "gold", "??", 70, T0 + dt.timedelta(days=6), None),
    ("X8", 22.0, "basic", "DE", 80, T0 + dt.timedelta(days=7), None),
    ("C000009", 60.0, "standard", "GB", None, T0 + dt.timedelta(days=8), None),
    ("C000009", 33.0, "basic", "NL", 100, T0 + dt.timedelta(days=9), None),
]
LATEST = T0 + dt.timedelta(days=9)


def _delta(spark, path: Path, rows, schema):
    spark.createDataFrame(rows, schema).write.format("delta").save(str(path))
    return spark.read.format("delta").load(str(path))


@pytest.fixture(scope="module")
def people(spark, tmp_path_factory):
    return _delta(spark, tmp_path_factory.mktemp("contract") / "people", ROWS, SCHEMA)


@pytest.fixture(scope="module")
def empty(spark, tmp_path_factory):
    return _delta(spark, tmp_path_factory.mktemp("contract") / "empty", [], SCHEMA)


def contract(*properties, quality=None) -> dict:
    obj = {"name": "people", "properties": list(properties)}
    if quality:
        obj["quality"] = quality
    return {"apiVersion": "v3.1.0", "kind": "DataContract", "id": "people", "version": "1.0.0",
            "status": "active", "schema": [obj]}


def prop(name, logical="string", **kw) -> dict:
    return {"name": name, "logicalType": logical, **kw}


def custom(**kw) -> list[dict]:
    return [{"property": k, "value": v} for k, v in kw.items()]


def fresh(rule_id, unit, *, property=None, **operator) -> dict:
    """A freshness rule: a spark-audit extension, so an ODCS type: custom rule of engine spark-audit."""
    implementation = {"metric": "freshness", **({"arguments": {"property": property}} if property else {}), **operator}
    return {"id": rule_id, "type": "custom", "engine": "spark-audit", "implementation": implementation, "unit": unit}


def run(df, doc, **kw) -> dict[str, RuleResult]:
    plan = compile_contract(parse_contract(doc, file="people.yaml"), df.schema, **kw)
    results = check_dataframe(df, plan, ignore=[c for c in df.columns if c not in
                                                {p["name"] for p in doc["schema"][0]["properties"]}])
    return {r.rule_id: r for r in results}


def test_required_and_null_fraction(people):
    res = run(people, contract(
        prop("id", required=True),
        prop("age", "number", required=True),
        prop("country", quality=[
            {"id": "country_nulls_ok", "metric": "nullValues", "mustBeLessOrEqualTo": 10, "unit": "percent"},
            {"id": "country_nulls_strict", "metric": "nullValues", "mustBeLessThan": 10, "unit": "percent"},
            {"id": "country_nulls_rows", "metric": "nullValues", "mustBe": 0},
        ])))
    assert res["id.required"].passed and res["id.required"].failing_count == 0
    age = res["age.required"]
    assert not age.passed and age.failing_count == 1 and age.total_count == 10
    assert age.fraction == pytest.approx(0.1) and age.rule == "required" and age.column == "age"
    assert res["country_nulls_ok"].passed
    assert not res["country_nulls_strict"].passed
    assert not res["country_nulls_rows"].passed and res["country_nulls_rows"].threshold == "failing rows == 0"


def test_nan_and_inf_fractions(people):
    res = run(people, contract(
        prop("age", "number", customProperties=custom(maxNanPercent=10, maxInfPercent=0)),
        prop("amount", "number", customProperties=custom(maxNanPercent=0)),  # a bigint column
    ))
    assert res["age.nanValues"].passed and res["age.nanValues"].failing_count == 1
    assert not res["age.infValues"].passed and res["age.infValues"].failing_count == 1
    assert res["amount.nanValues"].passed and res["amount.nanValues"].failing_count == 0
    strict = run(people, contract(prop("age", "number", customProperties=custom(maxNanPercent=5))))
    assert not strict["age.nanValues"].passed
    assert strict["age.nanValues"].threshold == "failing % <= 5"


def test_range_with_special_values(people):
    # value checks skip null, NaN, declared special values and (when bounded) inf
    res = run(people, contract(prop(
        "age", "number", logicalTypeOptions={"minimum": 18, "maximum": 100},
        customProperties=custom(specialValues=[{"value": -1, "maxPercent": 10}], maxInfPercent=10))))
    assert res["age.range"].failing_count == 1 and not res["age.range"].passed  # 150 only
    assert res["age.specialValue[-1]"].passed and res["age.specialValue[-1]"].failing_count == 1
    # inf is out of range when no maxInfPercent governs it; -1 without being special too
    res = run(people, contract(prop("age", "number", logicalTypeOptions={"minimum": 18, "maximum": 200})))
    assert res["age.range"].failing_count == 2  # -1 and inf
    # passing bounds; exclusive maximum bites at the bound itself
    res = run(people, contract(prop(
        "age", "number", logicalTypeOptions={"minimum": -1, "exclusiveMaximum": 150},
        customProperties=custom(maxInfPercent=10, specialValues=[{"value": -1, "maxCount": 0}]))))
    assert res["age.range"].failing_count == 1  # 150 is not < 150
    assert not res["age.specialValue[-1]"].passed
    res = run(people, contract(prop("age", "number", logicalTypeOptions={"minimum": -1, "maximum": 150},
                                    customProperties=custom(maxInfPercent=10))))
    assert res["age.range"].passed


def test_allowed_values(people):
    res = run(people, contract(prop(
        "plan", customProperties=custom(allowedValues=["basic", "standard", "premium"]))))
    assert not res["plan.allowedValues"].passed and res["plan.allowedValues"].failing_count == 1
    res = run(people, contract(prop(
        "plan", customProperties=custom(allowedValues=["basic", "standard", "premium", "gold"]))))
    assert res["plan.allowedValues"].passed


def test_pattern_and_length(people):
    res = run(people, contract(prop("id", logicalTypeOptions={
        "pattern": "^C[0-9]{6}$", "minLength": 7, "maxLength": 7})))
    assert not res["id.pattern"].passed and res["id.pattern"].failing_count == 1
    assert not res["id.length"].passed and res["id.length"].failing_count == 1
    res = run(people, contract(prop("id", logicalTypeOptions={
        "pattern": "^[CX][0-9]+$", "minLength": 2, "maxLength": 7})))
    assert res["id.pattern"].passed and res["id.length"].passed


def test_invalid_and_missing_values(people):
    res = run(people, contract(prop("country", quality=[
        {"id": "valid20", "metric": "invalidValues", "arguments": {"validValues": ["DE", "FR", "US", "GB", "NL"]},
         "mustBeLessOrEqualTo": 20, "unit": "percent"},
        {"id": "valid10", "metric": "invalidValues", "arguments": {"validValues": ["DE", "FR", "US", "GB", "NL"]},
         "mustBeLessOrEqualTo": 10, "unit": "percent"},
        {"id": "upper", "metric": "invalidValues", "arguments": {"pattern": "^[A-Z]{2}$"}, "mustBe": 2},
        {"id": "missing", "metric": "missingValues", "arguments": {"missingValues": [None, "", "??"]},
         "mustBeLessOrEqualTo": 2},
    ])))
    assert res["valid20"].passed and res["valid20"].failing_count == 2  # "" and "??"
    assert not res["valid10"].passed
    assert res["upper"].passed and res["upper"].failing_count == 2
    assert not res["missing"].passed and res["missing"].failing_count == 3  # null, "", "??"


def test_row_count_and_freshness(people):
    doc = contract(prop("ts", "timestamp"), quality=[
        {"id": "rows_ok", "metric": "rowCount", "mustBeBetween": [1, 100]},
        {"id": "rows_many", "metric": "rowCount", "mustBeGreaterThan": 10},
        fresh("fresh", "hours", property="ts", mustBeLessOrEqualTo=2),
        fresh("fresh_default_col", "minutes", mustBeLessOrEqualTo=30),
    ])
    res = run(people, doc, now=LATEST + dt.timedelta(hours=1), timestamp_column="ts")
    assert res["rows_ok"].passed and not res["rows_many"].passed
    with pytest.raises(ValueError, match="table-level"):
        compile_contract(parse_contract(doc), people.schema, timestamp_column="ts").failing_condition("rows_ok")
    assert res["fresh"].passed and "2024-05-10T10:00:00+00:00" in res["fresh"].message
    assert not res["fresh_default_col"].passed and res["fresh_default_col"].column == "ts"
    stale = run(people, doc, now=(LATEST + dt.timedelta(days=3)).timestamp(), timestamp_column="ts")
    assert not stale["fresh"].passed and "72 hours" in stale["fresh"].message
    with pytest.raises(SpecError) as info:
        compile_contract(parse_contract(doc, file="people.yaml"), people.schema)
    assert info.value.key == "schema[0].quality[3].implementation.arguments.property"


def test_sql_rules(people):
    res = run(people, contract(prop("amount", "integer", quality=[
        {"id": "amount_big_rows", "type": "sql", "query": "amount >= 20", "mustBeLessOrEqualTo": 2},
        {"id": "amount_big_strict", "type": "sql", "query": "amount >= 20", "mustBe": 0},
    ]), quality=[
        {"id": "premium_pays", "type": "sql", "query": "plan <> 'premium' OR amount >= 60",
         "mustBeLessOrEqualTo": 5, "unit": "percent"},
    ]))
    # amount 10 fails, amount null counts as failing (null is not true)
    assert res["amount_big_rows"].passed and res["amount_big_rows"].failing_count == 2
    assert not res["amount_big_strict"].passed and res["amount_big_strict"].column == "amount"
    assert not res["premium_pays"].passed and res["premium_pays"].failing_count == 1


def test_sql_rule_errors(people):
    bad_parse = contract(prop("amount", "integer"), quality=[{"type": "sql", "query": "amount >= AND 1", "mustBe": 0}])
    with pytest.raises(SpecError) as info:
        compile_contract(parse_contract(bad_parse, file="p.yaml"), people.schema)
    assert info.value.key == "schema[0].quality[0].query" and info.value.file == "p.yaml"
    not_bool = contract(prop("amount", "integer"), quality=[{"type": "sql", "query": "amount + 1", "mustBe": 0}])
    with pytest.raises(SpecError, match="boolean"):
        compile_contract(parse_contract(not_bool), people.schema)
    # a query on a column the table lacks is a data problem: reported, not raised
    res = run(people, contract(prop("amount", "integer"), quality=[
        {"id": "gone", "type": "sql", "query": "no_such_col > 0", "mustBe": 0},
        {"id": "rows", "metric": "rowCount", "mustBeGreaterThan": 0}]))
    assert not res["gone"].passed and res["gone"].message.startswith("not evaluated: query cannot run")
    assert res["rows"].passed


def test_missing_column_and_type_change_are_violations(people):
    doc = contract(
        prop("id", required=True),
        prop("tenure", "number", required=True, logicalTypeOptions={"minimum": 0}),
        prop("plan", "number", logicalTypeOptions={"minimum": 0}),
        prop("age", "number", physicalType="float"),
    )
    plan = compile_contract(parse_contract(doc), people.schema)
    skipped = {r.rule_id for r in plan.rules if r.skip_reason}
    assert skipped == {"tenure.required", "tenure.range", "plan.range"}
    assert len(plan.exprs) == 1  # only id.required runs
    results = {r.rule_id: r for r in check_dataframe(people, plan)}
    assert results["tenure.missingColumn"].rule == "missingColumn" and not results["tenure.missingColumn"].passed
    assert "is missing" in results["tenure.required"].message and not results["tenure.required"].passed
    assert results["plan.typeChange"].severity == "error" and "string" in results["plan.typeChange"].message
    assert "physicalType float" in results["age.typeChange"].message
    assert "numeric, date or timestamp" in results["plan.range"].message
    unexpected = {r.column for r in results.values() if r.rule == "unexpectedColumn"}
    assert unexpected == {"country", "amount", "ts", ODD}
    assert results["id.required"].passed
    assert worst_severity(results.values()) == "error"


def test_unexpected_columns_are_info_unless_the_contract_says_otherwise(people):
    """Columns the contract does not list (timestamps, ids, labels...) are recorded, not alarming."""
    doc = contract(prop("id"), prop("age", "number"))
    results = compile_contract(parse_contract(doc), people.schema).schema_results()
    assert {r.column: r.severity for r in results} == {c: "info" for c in ("plan", "country", "amount", "ts", ODD)}
    assert all(r.rule == "unexpectedColumn" and r.passed is False for r in results)  # recorded, once each
    for value in ("warning", "error"):
        doc["schema"][0]["customProperties"] = [{"property": "unexpectedColumns", "value": value}]
        results = compile_contract(parse_contract(doc), people.schema).schema_results()
        assert {r.severity for r in results} == {value} and len(results) == 5
    doc["schema"][0]["customProperties"] = [{"property": "unexpectedColumns", "value": "ignore"},
                                            {"property": "owner", "value": "ml-platform"}]  # others: ignored
    assert compile_contract(parse_contract(doc), people.schema).schema_results() == []
    doc["schema"][0]["customProperties"] = [{"property": "unexpectedColumns", "value": "loud"}]
    with pytest.raises(SpecError) as info:
        parse_contract(doc, file="people.yaml")
    assert info.value.key == "schema[0].customProperties[0].value" and "ignore" in str(info.value)


def test_type_change_is_one_finding_not_one_per_rule_and_window(people):
    """Rules that cannot run because their column changed type (or is missing) are recorded as not
    evaluated (passed None); the schema result is the one failing result. Other rules that cannot
    run still fail."""
    doc = contract(
        prop("plan", "number", required=True, logicalTypeOptions={"minimum": 0},  # the table's is string
             customProperties=custom(maxNanPercent=0, allowedValues=[1, 2]),
             quality=[{"metric": "invalidValues", "arguments": {"minimum": 0, "maximum": 9},
                       "mustBeLessOrEqualTo": 1, "unit": "percent"}]),
        prop("tenure", "number", required=True, logicalTypeOptions={"minimum": 0}),  # missing
        prop("age", "number", logicalTypeOptions={"minimum": 0, "maximum": 200}, customProperties=custom(
            maxInfPercent=10, specialValues=[{"value": -1, "maxPercent": 10}])),
        quality=[{"id": "gone", "type": "sql", "query": "no_such_col > 0", "mustBe": 0},
                 {"id": "plan_tenure_unique", "metric": "duplicateValues",
                  "arguments": {"properties": ["plan", "tenure"]}, "mustBe": 0}])
    plan = compile_contract(parse_contract(doc), people.schema)
    schema = plan.schema_results(people.schema, ignore=people.columns)
    assert {(r.rule_id, r.severity) for r in schema} == {("plan.typeChange", "error"),
                                                        ("tenure.missingColumn", "error")}
    rows = people.groupBy("country").agg(F.count(F.lit(1)).alias("n"), *plan.exprs).collect()
    for row in rows:  # every window/slice group
        res = {r.rule_id: r for r in plan.evaluate(row, total_rows=row["n"])}
        skipped = {rid for rid, r in res.items() if r.passed is None}
        assert skipped == {"plan.range", "plan.nanValues", "plan.allowedValues", "plan.invalidValues",
                           "tenure.required", "tenure.range"}
        for rid in skipped:
            assert res[rid].message.startswith("not evaluated") and res[rid].failing_count == 0
        assert res["gone"].passed is False  # not explained by a schema result: still a failure
        assert res["plan.required"].passed  # a rule the new type does not stop still runs
        assert res["age.range"].passed
        assert worst_severity(res[rid] for rid in skipped) is None
    [dup] = [g.result for g in uniqueness_results(people, plan)]
    assert dup.rule_id == "plan_tenure_unique" and dup.passed is None


def test_all_null_column_and_odd_name(people):
    res = run(people, contract(prop(
        ODD, required=True, logicalTypeOptions={"pattern": "^a", "maxLength": 3},
        customProperties=custom(allowedValues=["a"]),
        quality=[{"id": "odd_nulls", "metric": "nullValues", "mustBeLessOrEqualTo": 100, "unit": "percent"}])))
    assert not res[f"{ODD}.required"].passed and res[f"{ODD}.required"].failing_count == 10
    assert res[f"{ODD}.pattern"].passed and res[f"{ODD}.length"].passed and res[f"{ODD}.allowedValues"].passed
    assert res["odd_nulls"].passed and res["odd_nulls"].fraction == 1.0


def test_empty_table(empty):
    res = run(empty, contract(
        prop("id", required=True, logicalTypeOptions={"pattern": "^C"}),
        prop("age", "number", customProperties=custom(maxNanPercent=0),
             quality=[{"id": "age_nulls", "metric": "nullValues", "mustBeLessThan": 5, "unit": "percent"}]),
        prop("ts", "timestamp"),
        quality=[{"id": "rows", "metric": "rowCount", "mustBeGreaterThan": 0},
                 fresh("fresh", "days", property="ts", mustBeLessOrEqualTo=1)]), now=LATEST)
    assert not res["rows"].passed and "0 rows" in res["rows"].message
    assert not res["fresh"].passed and "empty" in res["fresh"].message
    for rid in ("id.required", "id.pattern", "age.nanValues", "age_nulls"):
        assert res[rid].passed and res[rid].total_count == 0 and res[rid].fraction == 0.0


def test_grouped_aggregation_with_profile_style_keys(people):
    """The lead puts plan.exprs into one groupBy(...).agg(...); evaluate per group."""
    plan = compile_contract(parse_contract(contract(
        prop("age", "number", required=True, customProperties=custom(maxNanPercent=0)),
        prop("plan", customProperties=custom(allowedValues=["basic", "standard", "premium"])))),
        people.schema)
    rows = people.groupBy("plan").agg(F.count(F.lit(1)).alias("n"), F.avg("amount").alias("p__x"),
                                      *plan.exprs).collect()
    by_plan = {row["plan"]: {r.rule_id: r for r in plan.evaluate(row, total_rows=row["n"])} for row in rows}
    assert by_plan["basic"]["age.required"].failing_count == 1
    assert by_plan["basic"]["age.required"].total_count == 5
    assert by_plan["standard"]["age.nanValues"].failing_count == 1
    assert by_plan["gold"]["plan.allowedValues"].failing_count == 1
    assert by_plan["premium"]["plan.allowedValues"].passed
    assert all(a.startswith("c__") for a in (r.alias for r in plan.rules))


def test_sample_bad_rows_masks_and_limits(people):
    doc = contract(
        prop("id", required=True, unique=True, logicalTypeOptions={"pattern": "^C[0-9]{6}$"}),
        prop("age", "number", logicalTypeOptions={"minimum": 18, "maximum": 100}),
        prop("plan", customProperties=custom(allowedValues=["basic", "standard", "premium", "gold"])),
    )
    plan = compile_contract(parse_contract(doc), people.schema)
    results = check_dataframe(people, plan, ignore=people.columns)
    failing = {r.rule_id for r in results if not r.passed}
    assert failing == {"id.pattern", "age.range", "id.unique"}
    sampled = sample_bad_rows(people, plan, limit_per_rule=1, mask_columns=["id"], rules=results)
    assert sorted(s["rule_id"] for s in sampled) == ["age.range", "id.pattern", "id.unique"]
    for s in sampled:
        row = json.loads(s["row_json"])
        assert row["id"] == "***" and set(row) == set(people.columns) and row[ODD] is None
    age_row = json.loads(next(s for s in sampled if s["rule_id"] == "age.range")["row_json"])
    assert age_row["age"] in (150.0, "Infinity", -1.0)
    dups = sample_bad_rows(people, plan, limit_per_rule=10, rules=["id.unique"])
    assert sorted(json.loads(s["row_json"])["amount"] or 0 for s in dups) == [0, 100]
    assert {json.loads(s["row_json"])["id"] for s in dups} == {"C000009"}
    assert set(dups[0]) == {f.name for f in BAD_ROWS_SCHEMA.fields}
    with pytest.raises(KeyError):
        plan.failing_condition("nope")


def test_uniqueness_grouped_pass(people):
    doc = contract(prop("id", unique=True), prop("ts", "timestamp"), prop("plan"), quality=[
        {"id": "id_ts_unique", "metric": "duplicateValues", "arguments": {"properties": ["id", "ts"]}, "mustBe": 0},
        {"id": "plan_dups_pct", "metric": "duplicateValues", "arguments": {"properties": ["plan"]},
         "mustBeLessOrEqualTo": 50, "unit": "percent"},
    ])
    plan = compile_contract(parse_contract(doc), people.schema)
    assert plan.exprs == [] and plan.has_uniqueness
    res = {g.result.rule_id: g.result for g in uniqueness_results(people, plan)}
    assert not res["id.unique"].passed and res["id.unique"].failing_count == 1
    assert res["id_ts_unique"].passed
    assert not res["plan_dups_pct"].passed and res["plan_dups_pct"].failing_count == 6  # 10 rows, 4 plans
    grouped = uniqueness_results(people, ["id", ("id", "plan")], group_cols=["plan"])
    assert {g.group["plan"] for g in grouped} == {"basic", "premium", "standard", "gold"}
    assert all(g.result.passed for g in grouped)  # the two C000009 rows are in different plans
    assert uniqueness_results(people, []) == []


def test_results_fit_the_violations_table(spark, people, tmp_path):
    plan = compile_contract(parse_contract(contract(prop("id", required=True), prop("nope", required=True))),
                            people.schema)
    results = check_dataframe(people, plan, ignore=people.columns)
    assert [f.name for f in CONTRACT_VIOLATIONS_FIELDS.fields] == list(RuleResult.__dataclass_fields__)
    df = spark.createDataFrame([r.as_dict() for r in results], CONTRACT_VIOLATIONS_FIELDS)
    df.write.format("delta").save(str(tmp_path / "violations"))
    back = spark.read.format("delta").load(str(tmp_path / "violations"))
    assert back.filter(~F.col("passed")).count() == 1  # nope.missingColumn
    assert back.filter(F.col("passed").isNull()).count() == 1  # nope.required: not evaluated


def test_example_contract_on_churn_table(spark, tmp_path):
    example = load_contract(Path(__file__).resolve().parents[1] / "conf" / "contract_example.yaml")
    now = dt.datetime(2024, 6, 2, tzinfo=UTC)
    rows = [
        ("C000001", 34.0, 12.0, 29.5, "basic", "DE", dt.datetime(2024, 6, 1, tzinfo=UTC)),
        ("C000002", -1.0, 40.0, 79.0, "premium", "NO", dt.datetime(2024, 6, 1, 6, tzinfo=UTC)),
        ("C000003", 51.0, 3.0, 10.0, "premium", "US", dt.datetime(2024, 6, 1, 9, tzinfo=UTC)),
        ("C000004", 27.0, 0.0, 49.0, "platinum", "FR", dt.datetime(2024, 6, 1, 12, tzinfo=UTC)),
    ]
    df = _delta(spark, tmp_path / "churn", rows,
                "customer_id string, age double, tenure_months double, monthly_charges double, "
                "plan string, country string, event_ts timestamp")
    plan = compile_contract(example, df.schema, now=now)
    res = {r.rule_id: r for r in check_dataframe(df, plan)}
    assert not any(r.rule in ("missingColumn", "typeChange", "unexpectedColumn") for r in res.values())
    failing = {rid for rid, r in res.items() if not r.passed}
    # -1 is 25% of rows (> 5%), one unknown plan, one cheap premium plan (25% > 1%)
    assert failing == {"age.specialValue[-1]", "plan.allowedValues", "churn_charges_consistent_with_plan"}
    assert res["churn_fresh"].passed and res["country_known"].passed
    assert worst_severity(res.values()) == "error"


def test_a_new_rule_is_one_registry_entry(people, monkeypatch):
    """A kind of rule is one entry of RULES and its functions: read, compiled, aggregated, judged."""
    blank = RuleKind("blankValues", "quality: type custom, engine spark-audit, implementation.metric blankValues",
                     "count", lambda a: "blank values",
                     lambda site, a, path: site.col().isNotNull() & (F.trim(site.col()) == F.lit("")),
                     quality="custom")
    monkeypatch.setitem(RULES, blank.name, blank)
    doc = contract(prop("country", quality=[
        {"id": "no_blanks", "type": "custom", "engine": "spark-audit",
         "implementation": {"metric": "blankValues", "mustBe": 0}, "severity": "warning"},
        {"id": "few_blanks", "type": "custom", "engine": "spark-audit",
         "implementation": {"metric": "blankValues", "mustBeLessOrEqualTo": 10}, "unit": "percent"}]))
    res = run(people, doc)
    assert (res["no_blanks"].rule, res["no_blanks"].failing_count, res["no_blanks"].passed) == ("blankValues", 1, False)
    assert res["no_blanks"].message.startswith("1 of 10 rows (10.00%) have blank values")
    assert res["no_blanks"].severity == "warning" and res["few_blanks"].passed
    plan = compile_contract(parse_contract(doc), people.schema)
    assert {r.kind for r in plan.rules} <= set(RULES)
    [row] = sample_bad_rows(people, plan, rules=["no_blanks"])
    assert json.loads(row["row_json"])["country"] == ""


def test_physical_names_and_a_composite_primary_key(spark, tmp_path):
    """The table's columns are not the logical names (physicalName); the primary key is two columns
    (primaryKeyPosition). Exactly the injected duplicate key and null key part are found, and the physical
    types another system names (``int4``) or Spark reads as strings (``varchar(18)``) raise no typeChange."""
    rows = [("c1", 1, "a"), ("c1", 2, "b"), ("c2", 1, "c"), ("c2", 1, "d"), (None, 3, "e"), ("c3", 4, "f")]
    df = _delta(spark, tmp_path / "orders", rows, "CUST_ID string, ORDER_NO int, NOTE string")
    doc = contract(
        prop("customer", physicalName="CUST_ID", physicalType="varchar(18)", primaryKey=True, primaryKeyPosition=1),
        prop("order", "integer", physicalName="ORDER_NO", physicalType="int4", primaryKey=True,
             primaryKeyPosition=2),
        prop("note", physicalName="NOTE", required=True),
    )
    c = parse_contract(doc)
    assert [u.what for u in c.unrun] == ["the physicalType of 1 property (int4)"]
    results = run(df, doc)
    failed = {rid: r.failing_count for rid, r in results.items() if r.passed is False}
    assert failed == {"customer.primaryKey.required": 1, "people.primaryKey": 1}, failed
    assert not any(r.rule in ("missingColumn", "typeChange", "unexpectedColumn") for r in results.values())
    assert results["note.required"].passed and results["order.primaryKey.required"].passed
    assert results["people.primaryKey"].column == "CUST_ID, ORDER_NO"
