"""Contract loading and validation: no Spark needed."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from spark_audit.contract.logical_types import logical_type_of, logical_types_compatible, order_key
from spark_audit.contract.model import Threshold
from spark_audit.contract.reader import load_contract, loads_contract, parse_contract
from spark_audit.errors import SpecError

EXAMPLE = Path(__file__).resolve().parents[1] / "conf" / "contract_example.yaml"


def base() -> dict:
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "t",
        "version": "1.0.0",
        "status": "active",
        "schema": [{
            "name": "t",
            "properties": [
                {"name": "id", "logicalType": "string"},
                {"name": "age", "logicalType": "number"},
                {"name": "plan", "logicalType": "string", "quality": [{"metric": "nullValues", "mustBe": 0}]},
            ],
        }],
    }


def fresh(implementation: dict, unit: str | None = "hours") -> dict:
    """A freshness rule: a spark-audit extension, so an ODCS type: custom rule."""
    rule = {"type": "custom", "engine": "spark-audit", "implementation": {"metric": "freshness", **implementation}}
    return rule if unit is None else {**rule, "unit": unit}


def spec_error(doc: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_contract(doc, file="c.yaml")
    return info.value


def test_example_contract_loads():
    c = load_contract(EXAMPLE)
    assert c.id == "churn-features" and c.api_version == "v3.1.0"
    obj = c.schema_object()
    assert [p.name for p in obj.properties] == [
        "customer_id", "age", "tenure_months", "monthly_charges", "plan", "country", "event_ts"]
    age = obj.property("age")
    assert age.minimum == 18 and age.maximum == 110
    assert age.special_values[0].value == -1 and age.special_values[0].max_percent == 5
    assert obj.property("monthly_charges").exclusive_maximum is True
    assert obj.property("plan").allowed_values == ("basic", "standard", "premium")
    assert obj.property("country").severity == "warning"
    assert {q.metric for q in obj.quality} == {"rowCount", "freshness", "duplicateValues", "sql"}
    assert c.file == str(EXAMPLE)


def test_unknown_key_names_full_path_and_allowed_keys():
    doc = base()
    doc["schema"][0]["properties"][2]["quality"][0] = {"metric": "nullValues", "mustBeBetwen": [0, 1]}
    err = spec_error(doc)
    assert err.file == "c.yaml"
    assert err.key == "schema[0].properties[2].quality[0].mustBeBetwen"
    assert "mustBeBetween" in str(err) and "allowed keys" in str(err)
    assert str(err).startswith("c.yaml: schema[0].properties[2].quality[0].mustBeBetwen:")


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d.update(owner="me"), "owner"),
    (lambda d: d["schema"][0].update(colums=[]), "schema[0].colums"),
    (lambda d: d["schema"][0]["properties"][1].update(requird=True), "schema[0].properties[1].requird"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalTypeOptions={"minimun": 0}),
     "schema[0].properties[1].logicalTypeOptions.minimun"),
    (lambda d: d["schema"][0]["properties"][1].update(
        customProperties=[{"property": "specialValues", "value": [{"value": -1, "maxPct": 5}]}]),
     "schema[0].properties[1].customProperties[0].value[0].maxPct"),
    (lambda d: d["schema"][0]["properties"][2]["quality"][0].update(arguments={"validValues": ["a"]}),
     "schema[0].properties[2].quality[0].arguments.validValues"),
])
def test_unknown_keys_everywhere(mutate, key):
    doc = base()
    mutate(doc)
    assert spec_error(doc).key == key


def test_odcs_descriptive_keys_are_accepted():
    doc = base()
    doc.update(team={"name": "ml"}, tags=["churn"],
               servers=[{"server": "prod", "type": "databricks", "catalog": "main", "schema": "features"}])
    doc["description"] = {"purpose": "p", "usage": "u"}
    doc["schema"][0]["properties"][0].update(primaryKey=True, classification="restricted", examples=["C1"])
    c = parse_contract(doc)
    assert c.description == "purpose: p\nusage: u"


@pytest.mark.parametrize("mutate, key, words", [
    (lambda d: d.pop("status"), "status", "required"),
    (lambda d: d.update(apiVersion="v2.2.2"), "apiVersion", "v3"),
    (lambda d: d.update(kind="Contract"), "kind", "DataContract"),
    (lambda d: d.update(version=1.0), "version", "quote"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalType="float"),
     "schema[0].properties[1].logicalType", "number"),
    (lambda d: d["schema"][0]["properties"].append({"name": "id", "logicalType": "string"}),
     "schema[0].properties[3].name", "duplicate"),
    (lambda d: d["schema"][0]["properties"][0].update(logicalTypeOptions={"minimum": 1}),
     "schema[0].properties[0].logicalTypeOptions.minimum", "logicalType"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalTypeOptions={"minimum": 5, "maximum": 1}),
     "schema[0].properties[1].logicalTypeOptions.maximum", "below"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalTypeOptions={"minimum": "ten"}),
     "schema[0].properties[1].logicalTypeOptions.minimum", "number"),
    (lambda d: d["schema"][0]["properties"][1].update(
        logicalTypeOptions={"minimum": 1}, customProperties=[{"property": "minimum", "value": 2}]),
     "schema[0].properties[1].customProperties[0].property", "already set"),
    (lambda d: d["schema"][0]["properties"][0].update(
        customProperties=[{"property": "allowedValues", "value": ["DE", False]}]),
     "schema[0].properties[0].customProperties[0].value[1]", "quote"),
    (lambda d: d["schema"][0]["properties"][0].update(logicalTypeOptions={"pattern": "([a-z"}),
     "schema[0].properties[0].logicalTypeOptions.pattern", "regular expression"),
    (lambda d: d["schema"][0]["properties"][1].update(
        customProperties=[{"property": "maxNanPercent", "value": 120}]),
     "schema[0].properties[1].customProperties[0].value", "[0, 100]"),
    (lambda d: d["schema"][0]["properties"][2]["quality"][0].update(mustBeLessThan=3),
     "schema[0].properties[2].quality[0].mustBeLessThan", "exactly one of mustBe, mustNotBe"),
    (lambda d: d["schema"][0]["properties"][2]["quality"][0].update(mustBe=[1, 2]),
     "schema[0].properties[2].quality[0].mustBe", "number"),
    (lambda d: d["schema"][0]["properties"][2]["quality"][0].update(metric="rowCount"),
     "schema[0].properties[2].quality[0].metric", "table-level"),
    (lambda d: d["schema"][0]["properties"][2]["quality"][0].update(unit="percentage"),
     "schema[0].properties[2].quality[0].unit", "rows, percent"),
    (lambda d: d["schema"][0]["properties"][2]["quality"][0].update(severity="fatal"),
     "schema[0].properties[2].quality[0].severity", "critical"),
    (lambda d: d["schema"][0].update(quality=[{"metric": "rowCount"}]), "schema[0].quality[0]", "got none"),
    (lambda d: d["schema"][0].update(quality=[fresh({"mustBeLessThan": 3}, unit=None)]),
     "schema[0].quality[0].unit", "required"),
    (lambda d: d["schema"][0].update(quality=[fresh({"mustBeLessThan": 3}, unit="weeks")]),
     "schema[0].quality[0].unit", "seconds, minutes, hours, days"),
    (lambda d: d["schema"][0].update(quality=[fresh({"mustBeLessThan": 3, "mustBe": 1})]),
     "schema[0].quality[0].implementation.mustBeLessThan", "exactly one of"),
    (lambda d: d["schema"][0].update(quality=[fresh({"mustBeLessThan": 3, "arguments": {"column": "ts"}})]),
     "schema[0].quality[0].implementation.arguments.column", "allowed keys: property"),
    (lambda d: d["schema"][0].update(quality=[fresh({"mustBeLessThan": 3, "arguments": {"property": "ts"}})]),
     "schema[0].quality[0].implementation.arguments.property", "'ts' is not a property"),
    (lambda d: d["schema"][0].update(quality=[fresh({"metric": "stale", "mustBe": 0})]),
     "schema[0].quality[0].implementation.metric", "expected one of freshness"),
    (lambda d: d["schema"][0]["properties"][1].update(quality=[fresh({"mustBeLessThan": 3})]),
     "schema[0].properties[1].quality[0].implementation.metric", "table-level"),
    (lambda d: d["schema"][0].update(quality=[{"type": "custom", "engine": "spark-audit", "implementation": "x"}]),
     "schema[0].quality[0].implementation", "expected a mapping"),
    (lambda d: d["schema"][0].update(quality=[{"metric": "duplicateValues", "mustBe": 0,
                                               "arguments": {"properties": ["id", "nope"]}}]),
     "schema[0].quality[0].arguments.properties", "'nope'"),
    (lambda d: d["schema"][0].update(quality=[{"id": "x", "metric": "rowCount", "mustBeGreaterThan": 0},
                                              {"id": "x", "metric": "rowCount", "mustBeLessThan": 9}]),
     "schema[0].quality[1].id", "duplicate rule id"),
    (lambda d: d["schema"][0].update(quality=[{"metric": "rowCount", "mustBeBetween": [5, 1]}]),
     "schema[0].quality[0].mustBeBetween", "above"),
    (lambda d: d["schema"][0]["properties"][2]["quality"][0].update(
        metric="invalidValues", arguments={"minimum": 0}),
     "schema[0].properties[2].quality[0].arguments.minimum", "logicalType"),
    (lambda d: d["schema"][0]["properties"][1].update(quality=[{
        "metric": "invalidValues", "arguments": {"minimum": 5, "maximum": 1}, "mustBe": 0}]),
     "schema[0].properties[1].quality[0].arguments.maximum", "below"),
    (lambda d: d["schema"][0]["properties"][1].update(quality=[{"metric": "invalidValues", "arguments": {},
                                                                 "mustBe": 0}]),
     "schema[0].properties[1].quality[0].arguments", "minimum or maximum"),
    (lambda d: d["schema"][0]["properties"][1].update(quality=[{"type": "library", "rule": "nullValues",
                                                                 "mustBe": 0}]),
     "schema[0].properties[1].quality[0].metric", "write metric"),
    (lambda d: d["schema"][0]["properties"][1].update(quality=[{"type": "text", "mustBe": 0}]),
     "schema[0].properties[1].quality[0].mustBe", "unknown key"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalTypeOptions={"minimum": 1, "exclusiveMinimum": 0}),
     "schema[0].properties[1].logicalTypeOptions.exclusiveMinimum", "not both"),
    (lambda d: d.update(description={"purpose": "p", "usgae": "u"}), "description.usgae", "did you mean 'usage'"),
    (lambda d: d["schema"][0].update(customProperties=[{"property": "unexpectedColumns", "value": "warn"}]),
     "schema[0].customProperties[0].value", "ignore"),
])
def test_validation_errors_name_the_key(mutate, key, words):
    doc = base()
    mutate(doc)
    err = spec_error(doc)
    assert err.key == key, str(err)
    assert words in str(err)


def test_malformed_yaml_names_the_key_path_and_line():
    text = EXAMPLE.read_text()
    broken = text.replace("          minimum: 18\n", "          minimum: [18\n", 1)
    with pytest.raises(SpecError) as info:
        loads_contract(broken, file="bad.yaml")
    err = info.value
    assert err.file == "bad.yaml"
    assert err.key is not None and err.key.startswith("schema[0].properties[1].logicalTypeOptions")
    assert "malformed YAML at line" in str(err)


def test_malformed_yaml_tab_indentation():
    text = "apiVersion: v3.1.0\nkind: DataContract\nschema:\n  - name: t\n\tproperties: []\n"
    with pytest.raises(SpecError) as info:
        loads_contract(text, file="tab.yaml")
    assert "line 5" in str(info.value)
    assert info.value.key is not None and info.value.key.startswith("schema")


def test_non_mapping_and_empty_files(tmp_path):
    with pytest.raises(SpecError, match="empty"):
        loads_contract("", file="e.yaml")
    with pytest.raises(SpecError, match="mapping"):
        loads_contract("- a\n- b\n", file="l.yaml")
    with pytest.raises(SpecError) as info:
        load_contract(tmp_path / "missing.yaml")
    assert "missing.yaml" in str(info.value)


def test_quality_rules_and_defaults():
    doc = base()
    doc["schema"][0]["properties"][0]["quality"] = [
        {"metric": "invalidValues", "arguments": {"pattern": "^C"}, "mustBeLessThan": 5, "unit": "percent"},
        {"metric": "missingValues", "arguments": {"missingValues": [None, "", "n/a"]}, "mustBe": 0},
        {"type": "text", "description": "ids come from the CRM"},
        {"type": "sql", "query": "length(id) = 7", "severity": "info", "mustBeLessOrEqualTo": 2},
    ]
    doc["schema"][0]["quality"] = [fresh({"arguments": {"property": "age"}, "mustBeBetween": [0, 2]}, "days")]
    obj = parse_contract(doc).schema[0]
    rules = obj.property("id").quality
    assert [r.metric for r in rules] == ["invalidValues", "missingValues", "sql"]
    assert rules[0].threshold == Threshold("mustBeLessThan", 5, "percent")
    assert rules[1].threshold == Threshold("mustBe", 0, "rows")  # unit rows by default
    assert rules[1].arguments["missingValues"] == ("", "n/a")
    assert rules[2].type == "sql" and rules[2].severity == "info" and rules[2].query == "length(id) = 7"
    [freshness] = obj.quality
    assert (freshness.metric, freshness.type, dict(freshness.arguments)) == ("freshness", "custom", {"property": "age"})
    assert freshness.threshold == Threshold("mustBeBetween", (0, 2), "days") and freshness.severity == "error"


def test_invalid_values_by_range_and_unexpected_columns_setting():
    doc = base()
    doc["schema"][0]["properties"][1]["quality"] = [
        {"metric": "invalidValues", "arguments": {"minimum": 0, "maximum": 120.5},
         "mustBeLessOrEqualTo": 0.1, "unit": "percent", "severity": "warning"}]
    obj = parse_contract(doc).schema[0]
    [rule] = obj.property("age").quality
    assert dict(rule.arguments) == {"minimum": 0, "maximum": 120.5} and rule.severity == "warning"
    assert obj.unexpected_columns == "info"  # the default
    doc["schema"][0]["customProperties"] = [{"property": "unexpectedColumns", "value": "critical"}]
    assert parse_contract(doc).schema[0].unexpected_columns == "critical"


def test_dates_and_timestamps_normalised():
    doc = base()
    doc["schema"][0]["properties"].append({
        "name": "d", "logicalType": "date",
        "logicalTypeOptions": {"minimum": yaml.safe_load("2024-01-01"), "maximum": "2024-12-31"}})
    doc["schema"][0]["properties"].append({
        "name": "ts", "logicalType": "timestamp", "logicalTypeOptions": {"minimum": "2024-01-01T00:00:00Z"}})
    obj = parse_contract(doc).schema[0]
    assert obj.property("d").minimum == "2024-01-01" and obj.property("d").maximum == "2024-12-31"
    bad = copy.deepcopy(doc)
    bad["schema"][0]["properties"][-1]["logicalTypeOptions"]["minimum"] = "yesterday"
    assert spec_error(bad).key == "schema[0].properties[4].logicalTypeOptions.minimum"


def test_timestamp_bounds_compare_as_naive_utc():
    assert order_key("2024-01-01T01:00:00+01:00", "timestamp") == dt.datetime(2024, 1, 1)
    assert order_key("2024-01-01T00:30:00Z", "timestamp") == dt.datetime(2024, 1, 1, 0, 30)
    assert order_key("2024-01-01T00:30:00", "timestamp") == dt.datetime(2024, 1, 1, 0, 30)  # naive: UTC
    doc = base()
    doc["schema"][0]["properties"].append({"name": "ts", "logicalType": "timestamp", "logicalTypeOptions": {
        "minimum": "2024-01-01T01:00:00+01:00", "maximum": "2024-01-01T00:30:00Z"}})  # 00:00Z <= 00:30Z
    assert parse_contract(doc).schema[0].property("ts").maximum == "2024-01-01T00:30:00Z"
    doc["schema"][0]["properties"][-1]["logicalTypeOptions"]["maximum"] = "2024-01-01T00:30:00+01:00"  # 23:30Z
    err = spec_error(doc)
    assert err.key == "schema[0].properties[3].logicalTypeOptions.maximum" and "below minimum" in str(err)


@pytest.mark.parametrize("threshold, observed, expected", [
    (Threshold("mustBe", 0), 0, True),
    (Threshold("mustBe", 0), 1, False),
    (Threshold("mustNotBe", 0), 0, False),
    (Threshold("mustBeGreaterThan", 0), 0, False),
    (Threshold("mustBeGreaterThan", 0), 1, True),
    (Threshold("mustBeGreaterOrEqualTo", 2), 2, True),
    (Threshold("mustBeLessThan", 5, "percent"), 5.0, False),
    (Threshold("mustBeLessOrEqualTo", 5, "percent"), 5.0000000000001, True),
    (Threshold("mustBeLessOrEqualTo", 5, "percent"), 5.01, False),
    (Threshold("mustBeBetween", (1, 3)), 3, True),
    (Threshold("mustBeBetween", (1, 3)), 4, False),
    (Threshold("mustNotBeBetween", (1, 3)), 2, False),
    (Threshold("mustNotBeBetween", (1, 3)), 0, True),
])
def test_threshold_check(threshold, observed, expected):
    assert threshold.check(observed) is expected


def test_threshold_describe():
    assert Threshold("mustBeLessOrEqualTo", 5.0, "percent").describe("failing %") == "failing % <= 5"
    assert Threshold("mustBeBetween", (0, 48), "hours").describe("age") == "age in [0, 48] hours"


@pytest.mark.parametrize("spark_type, logical", [
    ("string", "string"), ("varchar(10)", "string"), ("int", "integer"), ("bigint", "integer"),
    ("double", "number"), ("decimal(10,2)", "number"), ("boolean", "boolean"), ("date", "date"),
    ("timestamp", "timestamp"), ("timestamp_ntz", "timestamp"), ("array<int>", "array"),
    ("map<string,int>", "object"), ("struct<a:int>", "object"), ("binary", "binary"),
])
def test_logical_type_of(spark_type, logical):
    assert logical_type_of(spark_type) == logical


def test_type_compatibility():
    assert logical_types_compatible("number", "bigint")
    assert logical_types_compatible("integer", "decimal(10,0)")
    assert not logical_types_compatible("integer", "double")
    assert not logical_types_compatible("string", "double")


def test_duplicate_yaml_key_is_an_error():
    text = EXAMPLE.read_text().replace(
        "      - name: plan\n", "      - name: plan\n        required: false\n", 1)
    with pytest.raises(SpecError) as info:
        loads_contract(text, file="dup.yaml")
    assert info.value.key == "schema[0].properties[4].required"
    assert "duplicate key" in str(info.value)


@pytest.mark.parametrize("mutate, path, words", [
    (lambda d: d["schema"][0]["properties"][1].update(customProperties=[{"property": "maxNaNPercent", "value": 1}]),
     "schema[0].properties[1].customProperties[0].property", "did you mean 'maxNanPercent'"),
    (lambda d: d["schema"][0].update(quality=[{"type": "custom", "engine": "soda", "implementation": "checks"}]),
     "schema[0].quality[0]", "engine soda"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalTypeOptions={"multipleOf": 5}),
     "schema[0].properties[1].logicalTypeOptions.multipleOf", "logicalTypeOptions.multipleOf"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalType="object", properties=[{"name": "x"}]),
     "schema[0].properties[1].properties", "nested properties of 'age'"),
    (lambda d: d["schema"][0]["properties"][1].update(physicalType="int4"),
     "schema[0].properties[1].physicalType", "not Spark type names"),
    (lambda d: d["schema"][0]["properties"][1].pop("logicalType") and
     d["schema"][0]["properties"][1].update(customProperties=[{"property": "maxNanPercent", "value": 5}]),
     "schema[0].properties[1].customProperties[0].value", "maxNanPercent of 'age' not checked (the property has no "
                                                          "logicalType"),
])
def test_a_valid_contract_loads_and_lists_what_is_not_checked(mutate, path, words):
    doc = base()
    mutate(doc)
    c = parse_contract(doc, file="c.yaml")
    assert [u.path for u in c.unrun] == [path], c.unrun
    assert words in c.unrun[0].describe()


def test_free_form_custom_properties_time_and_no_logical_type_are_accepted():
    doc = base()
    props = doc["schema"][0]["properties"]
    props[0].update(customProperties=[{"property": "pii", "value": True}, {"property": "enumValues", "value": [1]},
                                      {"property": "tags", "value": ["a"]}], primaryKey=True,
                    physicalName="ID_COL")
    props.append({"name": "at", "logicalType": "time"})
    props.append({"name": "n", "physicalType": "bigint"})  # no logicalType: the Spark physicalType says integer
    props.append({"name": "m"})
    c = parse_contract(doc)
    assert c.unrun == ()  # free-form metadata is data, not an unchecked rule
    obj = c.schema_object()
    assert obj.property("id").column == "ID_COL" and obj.primary_key() == (obj.property("id"),)
    assert (obj.property("at").logical_type, obj.property("n").logical_type, obj.property("m").logical_type) == \
        ("time", "integer", None)


@pytest.mark.parametrize("query, kind", [
    ("SELECT count(*) FROM {object} WHERE age < 0", "sqlQuery"),
    # a comment or a parenthesis in front of the SELECT is still a query that returns a value
    ("-- rows\n(select count(*) from {object})", "sqlQuery"),
    ("/* x */ WITH a AS (SELECT 1) SELECT count(*) FROM a", "sqlQuery"),
    ("age >= 18 OR plan = 'kids'", "sql"),
])
def test_a_sql_rule_is_a_row_expression_or_a_query_that_returns_a_value(query, kind):
    doc = base()
    doc["schema"][0]["quality"] = [{"id": "q", "type": "sql", "query": query, "mustBeLessThan": 5}]
    [rule] = parse_contract(doc).schema_object().quality
    assert rule.metric == kind and not rule.arguments["query"].startswith(("--", "/*"))
