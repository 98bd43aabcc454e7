"""The standard's own examples: every example contract of bitol-io/open-data-contract-standard
(``docs/examples``, vendored under ``tests/odcs_examples`` with the standard's Apache 2.0 licence, commit
e6a1c66) that the official ODCS v3.1.0 schema accepts loads, and the test prints what each one leaves
unchecked. Pure Python, no Spark."""

import json
from pathlib import Path

import pytest

from spark_audit.cli import main
from spark_audit.contract import load_contract, odcs
from spark_audit.yamlread import load_yaml

HERE = Path(__file__).parent / "odcs_examples"
EXAMPLES = sorted(HERE.rglob("*.odcs.yaml"))


def test_the_vendored_examples_are_all_there():
    assert len(EXAMPLES) == 18 and (HERE / "LICENSE").read_text().lstrip().startswith("Apache License")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_official_example_the_schema_accepts_loads(path):
    doc = odcs.jsonable(load_yaml(path, "contract"), file=str(path))
    assert odcs.problems(doc) == []  # the official schema accepts it ...
    contract = load_contract(path)  # ... so spark-audit does, and says what it does not check
    print(f"\n{path.parent.name}/{path.name}: {len(contract.unrun)} thing(s) not checked")
    for u in contract.unrun:
        print(f"  {u.describe()}")
    assert all(u.path and u.reason for u in contract.unrun)


def test_what_the_examples_leave_unchecked_is_named():
    unrun = {p.name: [u.describe() for u in load_contract(p).unrun] for p in EXAMPLES}
    assert any("engine soda" in u for u in unrun["column-custom.odcs.yaml"])
    assert any("nested properties" in u for u in unrun["all-schema-types.odcs.yaml"])
    assert any("describes no table" in u for u in unrun["basic-four-dpo.odcs.yaml"])
    assert unrun["full-example.odcs.yaml"] == []  # the standard's full example: every rule runs


def test_contract_validate_without_spark_in_text_and_json(capsys, tmp_path):
    custom = HERE / "quality" / "column-custom.odcs.yaml"
    assert main(["contract", "validate", str(custom)]) == 0
    out = capsys.readouterr().out
    assert ": ok (contract " in out and out.count("not checked: ") == 2 and "engine soda" in out
    assert main(["contract", "validate", "--format", "json", str(custom)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["objects"] == [{"name": "Air_Quality", "properties": 1, "rules": 0}]
    assert [u["path"] for u in doc["not_checked"]] == ["schema[0].properties[0].quality[0]",
                                                        "schema[0].properties[0].quality[1]"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(custom.read_text().replace("apiVersion: v3.1.0", "apiVersion: v9"))
    assert main(["contract", "validate", "--format", "json", str(bad)]) == 2
    assert json.loads(capsys.readouterr().out)["ok"] is False
