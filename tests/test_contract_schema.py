"""Contracts against the official ODCS JSON schema, and the rule registry as the only list of rules.
No Spark session needed."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from spark_audit.contract import infer_contract, odcs
from spark_audit.contract.reader import load_contract, loads_contract, parse_contract
from spark_audit.contract.rules import RULES, RuleKind, custom_property_names, quality_kinds
from spark_audit.errors import SpecError
from spark_audit.findings import SEVERITIES
from tests.test_contract_model import base  # the one minimal contract of the contract tests

CONF = Path(__file__).resolve().parents[1] / "conf"


def spec_error(doc: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_contract(doc, file="c.yaml")
    return info.value


def quality(d: dict) -> list:
    return d["schema"][0]["properties"][2]["quality"]


@pytest.mark.parametrize("mutate, key, words", [
    (lambda d: d.update(kind="Contract"), "kind", "expected one of DataContract, got 'Contract'"),
    (lambda d: d.update(apiVersion="v3.9.9"), "apiVersion", "expected one of v3.1.0, v3.0.2"),
    (lambda d: d.update(schema={"name": "t"}), "schema", "expected a list, got a mapping"),
    (lambda d: d["schema"].append("t2"), "schema[1]", "expected a mapping, got str 't2'"),
    (lambda d: d["schema"][0]["properties"][2].update(name=7), "schema[0].properties[2].name",
     "expected a string, got int 7"),
    (lambda d: d["schema"][0]["properties"][1].update(required="yes"), "schema[0].properties[1].required",
     "expected true or false, got str 'yes'"),
    (lambda d: d.update(version=2), "version", "(quote it)"),
    (lambda d: d.pop("id"), "id", "required key is missing"),
    (lambda d: d.update(description="churn features"), "description", "expected a mapping"),
    (lambda d: d.update(owner="ml"), "owner", "unknown key; allowed keys: version, kind, apiVersion"),
    (lambda d: d["schema"][0]["properties"][1].update(logicalTypeOptions={"minimum": "0"}),
     "schema[0].properties[1].logicalTypeOptions.minimum", "expected a number, got str '0'"),
    (lambda d: d["schema"][0]["properties"][0].update(logicalTypeOptions={"maximum": 5}),
     "schema[0].properties[0].logicalTypeOptions.maximum", "(for logicalType string)"),
    (lambda d: d["schema"][0]["properties"][0].update(customProperties=[{"property": "pattern"}]),
     "schema[0].properties[0].customProperties[0].value", "required key is missing"),
    (lambda d: quality(d)[0].update(id="plan.nulls"), "schema[0].properties[2].quality[0].id",
     "expected text matching ^[A-Za-z0-9_-]+$, got 'plan.nulls'"),
    (lambda d: quality(d)[0].update(dimension="freshness"), "schema[0].properties[2].quality[0].dimension",
     "expected one of accuracy, completeness"),
    (lambda d: quality(d).__setitem__(0, {"metric": "nullValues", "mustBeBetween": [1, 1]}),
     "schema[0].properties[2].quality[0].mustBeBetween", "expected distinct items"),
    (lambda d: quality(d).__setitem__(0, {"metric": "nullValues", "mustBeLessThan": "5"}),
     "schema[0].properties[2].quality[0].mustBeLessThan", "expected a number, got str '5'"),
    (lambda d: quality(d).__setitem__(0, {"metric": "nullValues"}), "schema[0].properties[2].quality[0]",
     "expected exactly one of mustBe, mustNotBe, mustBeGreaterThan"),
    (lambda d: quality(d).__setitem__(0, {"metric": "nullValue", "mustBe": 0}),
     "schema[0].properties[2].quality[0].metric", "expected one of nullValues, missingValues"),
    (lambda d: quality(d).__setitem__(0, {"query": "plan <> ''", "mustBe": 0}),
     "schema[0].properties[2].quality[0].query", "belongs to a rule of type: sql"),
    (lambda d: quality(d).__setitem__(0, {"rule": "nullValues", "mustBe": 0}),
     "schema[0].properties[2].quality[0].rule", "ODCS 3.0 name of metric"),
    (lambda d: quality(d).__setitem__(0, {"metric": "freshness", "mustBeLessThan": 2, "unit": "days"}),
     "schema[0].properties[2].quality[0].metric", "type: custom, engine: spark-audit"),
    (lambda d: quality(d).__setitem__(0, {"type": "custom", "engine": "spark-audit",
                                          "implementation": {"metric": "freshness"}, "mustBeLessThan": 2}),
     "schema[0].properties[2].quality[0].mustBeLessThan", "unknown key"),
    (lambda d: d.update(team={"name": "ml", "lead": "me"}), "team.lead", "unknown key"),
])
def test_the_official_schema_rejects_with_the_key_path(mutate, key, words):
    doc = base()
    mutate(doc)
    err = spec_error(doc)
    assert (err.file, err.key) == ("c.yaml", key), str(err)
    assert words in str(err)
    assert str(err).startswith(f"c.yaml: {key}: ")


def test_raw_schema_problems_match_what_the_reader_reports():
    """The errors come from the official schema itself, not from a list of our own."""
    doc = base()
    doc["kind"] = "Contract"
    [problem] = odcs.problems(doc)
    assert (problem.key, problem.validator) == ("kind", "enum")
    assert odcs.problems(base()) == []


def test_schema_check_comes_before_the_semantic_checks():
    doc = base()
    doc["schema"][0]["properties"][0]["logicalTypeOptions"] = {"pattern": "([a-z"}  # a bad regex: semantic
    assert "regular expression" in str(spec_error(copy.deepcopy(doc)))
    doc["schema"][0]["properties"][2]["logicalType"] = "text"  # structural, later in the file
    err = spec_error(doc)
    assert err.key == "schema[0].properties[2].logicalType" and "expected one of string" in str(err)


def test_an_unknown_key_is_reported_before_what_it_causes():
    """A misspelt operator leaves the rule without one: the typo is the error to show."""
    doc = base()
    quality(doc)[0] = {"metric": "nullValues", "mustBeLesThan": 1}
    assert len(odcs.problems(odcs.jsonable(doc))) == 2
    err = spec_error(doc)
    assert err.key == "schema[0].properties[2].quality[0].mustBeLesThan"
    assert "did you mean 'mustBeLessThan'?" in str(err)


def test_unquoted_yaml_dates_are_validated_as_iso_strings():
    text = """
apiVersion: v3.1.0
kind: DataContract
id: t
version: "1"
status: active
contractCreatedTs: 2024-05-01T10:00:00Z
schema:
  - name: t
    properties:
      - name: d
        logicalType: date
        logicalTypeOptions: {minimum: 2024-01-01, maximum: 2024-12-31}
      - name: ts
        logicalType: timestamp
        logicalTypeOptions: {minimum: 2020-01-01T00:00:00Z}
"""
    raw = yaml.safe_load(text)
    assert isinstance(raw["schema"][0]["properties"][0]["logicalTypeOptions"]["minimum"], dt.date)
    assert {p.key for p in odcs.problems(raw)} >= {"contractCreatedTs",
                                                   "schema[0].properties[0].logicalTypeOptions.minimum"}
    assert odcs.problems(odcs.jsonable(raw)) == []
    obj = loads_contract(text, file="dates.yaml").schema_object()
    assert (obj.property("d").minimum, obj.property("d").maximum) == ("2024-01-01", "2024-12-31")
    assert obj.property("ts").minimum == "2020-01-01T00:00:00+00:00"


def test_a_key_that_is_not_a_string_is_an_error():
    with pytest.raises(SpecError) as info:
        loads_contract("apiVersion: v3.1.0\nkind: DataContract\nschema:\n  - name: t\n    1: x\n", file="k.yaml")
    assert info.value.key == "schema[0]" and "keys must be strings, got 1" in str(info.value)


def contracts_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if (yaml.safe_load(p.read_text()) or {}).get("kind")
                  == "DataContract")


def test_the_example_contracts_validate():
    paths = contracts_in(CONF)
    assert [p.name for p in paths] == ["contract_example.yaml"]
    for path in paths:
        assert odcs.problems(odcs.jsonable(yaml.safe_load(path.read_text()))) == []
        assert load_contract(path).schema_object().properties


def test_the_demo_contract_validates():
    from spark_audit.demo import DEMO_CONTRACT

    assert odcs.problems(yaml.safe_load(yaml.safe_dump(DEMO_CONTRACT))) == []
    assert parse_contract(DEMO_CONTRACT).id == "churn-features-demo"


def column(name, kind, dtype, count, nulls=0, **kw):
    defaults = dict(nan=0, pos_inf=0, neg_inf=0, min=None, max=None, top={})
    return SimpleNamespace(name=name, kind=kind, dtype=dtype, count=count, nulls=nulls, **{**defaults, **kw})


def test_an_inferred_contract_validates():
    """What the writer emits passes the official schema: every shape of column it knows."""
    cols = [
        column("id", "categorical", "string", 100, top={f"C{i}": 1 for i in range(30)}, len_min=4, len_max=6),
        column("plan", "categorical", "string", 100, nulls=3, top={"basic": 60, "premium": 37}),
        column("age", "numeric", "double", 100, nulls=5, nan=1, pos_inf=1, min=18.0, max=90.0),
        column("visits", "numeric", "bigint", 100, min=0, max=12),
        column("stars", "categorical", "int", 100, top={"1": 50, "5": 50}),
        column("price", "numeric", "decimal(10,2)", 100, min=1.5, max=99.5),
        column("vip", "boolean", "boolean", 100),
        column("day", "timestamp", "date", 100),
        column("ts", "timestamp", "timestamp", 100, min=1.7e9, max=1.71e9),
        column("tags", "other", "array<string>", 100),
        column("attrs", "other", "map<string,int>", 100),
        column("blob", "categorical", "binary", 100),
    ]
    profile = SimpleNamespace(row_count=100, columns={c.name: c for c in cols})
    doc = infer_contract(profile, table_name="main.features.t")
    props = doc["schema"][0]["properties"]
    # the writer's every construct is in this document...
    assert {q["metric"] for p in props for q in p.get("quality", [])} == {"nullValues", "invalidValues"}
    assert {c["property"] for p in props for c in p.get("customProperties", [])} == {
        "allowedValues", "maxNanPercent", "maxInfPercent"}
    assert any("logicalTypeOptions" in p for p in props) and doc["schema"][0]["quality"][0]["metric"] == "rowCount"
    # ...and all of it passes the official schema, as YAML and back
    empty = infer_contract(SimpleNamespace(row_count=0, columns={}), table_name="empty")
    for d in (doc, empty):
        text = yaml.safe_dump(d, sort_keys=False)
        assert odcs.problems(yaml.safe_load(text)) == []
        assert loads_contract(text, file="inferred.yaml").schema_object().name == d["schema"][0]["name"]


# --------------------------------------------------------------------------- the registry


def test_library_metrics_are_odcs_metrics():
    """A library metric must be one ODCS defines; spark-audit's own are type: custom."""
    schema = odcs.official_schema()
    odcs_metrics = schema["$defs"]["DataQualityLibrary"]["properties"]["metric"]["enum"]
    assert set(quality_kinds("library")) <= set(odcs_metrics)
    assert quality_kinds("custom") == ["freshness"]
    assert all(k.name not in odcs_metrics for k in RULES.values() if k.quality == "custom")


def test_the_reader_takes_metric_names_from_the_registry(monkeypatch):
    doc = base()
    doc["schema"][0]["quality"] = [{"type": "custom", "engine": "spark-audit",
                                    "implementation": {"metric": "blankValues", "mustBe": 0}}]
    err = spec_error(copy.deepcopy(doc))
    assert err.key == "schema[0].quality[0].implementation.metric"
    assert str(err).endswith(f"expected one of {', '.join(quality_kinds('custom', 'table'))}")
    blank = RuleKind("blankValues", "quality: type custom, implementation.metric blankValues", "count",
                     lambda a: "blank values", lambda site, a, path: site.col() == "",
                     levels=("property",), quality="custom")
    monkeypatch.setitem(RULES, blank.name, blank)
    err = spec_error(copy.deepcopy(doc))  # registered for properties only
    assert "blankValues is a property-level metric" in str(err)
    doc["schema"][0]["properties"][0]["quality"] = doc["schema"][0].pop("quality")
    [rule] = parse_contract(doc).schema[0].property("id").quality
    assert (rule.metric, rule.type, rule.threshold.unit) == ("blankValues", "custom", "rows")


def test_the_reader_takes_property_options_from_the_registry(monkeypatch):
    doc = base()
    doc["schema"][0]["properties"][0]["customProperties"] = [{"property": "maxBlankPercent", "value": 2}]
    seen = []

    def read(reader, opts, ltype):
        seen.append((dict(opts), ltype))
        return {}

    kind = RuleKind("blankShare", "property option maxBlankPercent", "count", lambda a: "blank values",
                    lambda site, a, path: site.col() == "", options=("maxBlankPercent",), read_options=read)
    parse_contract(copy.deepcopy(doc))  # a free-form custom property until a rule kind reads it
    assert seen == []
    monkeypatch.setitem(RULES, kind.name, kind)
    assert "maxBlankPercent" in custom_property_names()
    parse_contract(doc)
    assert seen == [({"maxBlankPercent": (2, "schema[0].properties[0].customProperties[0].value")}, "string")]


def test_units_and_severities_come_from_their_one_place():
    doc = base()
    quality(doc)[0]["severity"] = "fatal"
    assert str(spec_error(doc)).endswith(f"expected one of {', '.join(SEVERITIES)}, got 'fatal'")
    doc = base()
    doc["schema"][0]["quality"] = [{"type": "custom", "engine": "spark-audit", "unit": "fortnights",
                                    "implementation": {"metric": "freshness", "mustBeLessThan": 1}}]
    assert "expected one of seconds, minutes, hours, days" in str(spec_error(doc))


def test_a_rule_kind_names_a_known_measure():
    with pytest.raises(ValueError, match="unknown measure"):
        RuleKind("x", "nowhere", "median", lambda a: "", lambda site, a, path: None)
    with pytest.raises(ValueError, match="quality must be one of"):
        RuleKind("x", "nowhere", "count", lambda a: "", lambda site, a, path: None, quality="soda")


def _nested(depth: int, name: str = "p") -> dict:
    if depth == 0:
        return {"name": name, "logicalType": "string"}
    return {"name": name, "logicalType": "object", "properties": [_nested(depth - 1, f"{name}a"),
                                                                  _nested(depth - 1, f"{name}b")]}


def test_nested_properties_are_validated_level_by_level_with_their_key_paths():
    """Each nested property is checked against its own definition (validating the document whole took
    exponential time in the depth: 70 s at 6 levels); a problem deep inside keeps its full key path."""
    doc = base()
    doc["schema"][0]["properties"] = [_nested(8)]  # 511 properties, 1,285 lines of YAML
    contract = parse_contract(copy.deepcopy(doc))
    assert [u.what for u in contract.unrun] == ["the nested properties of 'p'"]
    doc["schema"][0]["properties"][0]["properties"][1]["properties"][0]["logicalType"] = "strng"
    doc["schema"][0]["properties"][0]["properties"][0] = {
        "name": "arr", "logicalType": "array", "items": {"name": "i", "logicalType": "string", "pii": 1}}
    err = spec_error(copy.deepcopy(doc))
    assert err.key == "schema[0].properties[0].properties[0].items.pii" and "unknown key" in str(err)
    del doc["schema"][0]["properties"][0]["properties"][0]["items"]["pii"]
    found = {p.key: p.message for p in odcs.problems(doc)}
    deep = "schema[0].properties[0].properties[1].properties[0]"
    assert found[f"{deep}.logicalType"].startswith("expected one of string"), found
    assert found[f"{deep}.properties"].startswith("unknown key")  # children only an object may have
