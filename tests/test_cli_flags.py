"""The CLI's global flags, --version, --help's exit codes, --format json; a quiet Spark start that hides nothing.

The argparse and ``validate`` tests start no Spark; one test runs an audit in text and in JSON and compares.
"""

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from spark_audit.cli import build_parser, main
from spark_audit.errors import EXIT_CODES
from tests.test_cli import reference_uri, setup  # noqa: F401  (setup: the fixture of a small table and spec)

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--quiet", "--verbose", "--master", "local[1]", "--format", "json"]


@pytest.mark.parametrize("command", [
    ["audit", "s.yaml"],
    ["validate", "s.yaml"],
    ["reference", "build", "s.yaml"],
    ["contract", "check", "c.yaml", "--path", "t"],
    ["compare", "s.yaml"],
])
@pytest.mark.parametrize("where", ["before", "after", "middle"])
def test_global_flags_before_or_after_the_command(command, where):
    if where == "before":
        argv = FLAGS + command
    elif where == "after":
        argv = command + FLAGS
    else:  # after the command's first word: between "reference" and "build", say
        argv = command[:1] + FLAGS + command[1:]
    args = build_parser().parse_args(argv)
    assert (args.quiet, args.verbose, args.master, args.format) == (True, True, "local[1]", "json")


def test_flags_before_the_command_survive_the_subcommands_defaults():
    args = build_parser().parse_args(["--master", "local[1]", "--format", "json", "reference", "build", "s.yaml"])
    assert (args.quiet, args.verbose, args.master, args.format) == (False, False, "local[1]", "json")
    args = build_parser().parse_args(["contract", "check", "c.yaml", "--path", "t"])
    assert (args.quiet, args.verbose, args.master, args.format) == (False, False, None, "text")
    # the last one given wins, as argparse does for a repeated flag
    assert build_parser().parse_args(["--master", "a", "audit", "s.yaml", "--master", "b"]).master == "b"


def test_contract_check_version_is_still_the_table_version():
    args = build_parser().parse_args(["contract", "check", "c.yaml", "--path", "t", "--version", "3"])
    assert args.version == 3


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"spark-audit {version('spark-audit')}\n"


def test_help_lists_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code, meaning in EXIT_CODES.items():
        assert f"  {code}  {meaning}\n" in out
    for flag in ("--quiet", "--verbose", "--master", "--format", "--version"):
        assert flag in out


def test_json_is_refused_where_there_is_none_yet(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--format", "json", "contract", "infer", "s.yaml"])
    assert e.value.code == 2
    assert "--format json is not available for 'contract infer'" in capsys.readouterr().err


@pytest.fixture()
def no_spark(monkeypatch):
    """validate must not start Spark: a session asked for fails the test."""
    import spark_audit.session

    def refuse(*args, **kwargs):
        raise AssertionError("validate started Spark")

    monkeypatch.setattr(spark_audit.session, "get_spark", refuse)


def test_validate_json_good_spec(no_spark, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the example spec names its contract relative to the repository
    assert main(["validate", "conf/churn_audit.yaml", "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert set(doc) == {"spec", "ok", "features", "contract", "spec_hash", "contract_not_checked"}
    assert doc["contract_not_checked"] == []  # the example contract: every rule of it runs
    assert doc["spec"] == "conf/churn_audit.yaml" and doc["ok"] is True
    assert doc["contract"] == yaml.safe_load((ROOT / "conf/contract_example.yaml").read_text())["id"]
    assert doc["features"] > 0 and isinstance(doc["spec_hash"], str) and doc["spec_hash"]
    # the same facts as the text line
    assert main(["validate", "conf/churn_audit.yaml"]) == 0
    text = capsys.readouterr().out
    assert f"ok ({doc['features']} features, contract {doc['contract']} " in text
    assert f"spec hash {doc['spec_hash']})" in text


def test_validate_json_bad_spec(no_spark, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "source": {"path": "t", "timestamp_column": "ts"},
                                   "window": {"size": "1 day"}, "features": [{"name": "x", "kind": "bogus"}],
                                   "output": {"path": "o"}}))
    assert main(["--format", "json", "validate", str(bad)]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout holds the JSON document only
    assert doc["ok"] is False and set(doc) == {"ok", "error"}
    assert "features[0].kind: expected one of" in doc["error"]
    assert "invalid spec" in captured.err  # and a person reading the log still sees the line
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert main(["validate", "--format", "json", str(broken)]) == 2
    assert "malformed YAML at line" in json.loads(capsys.readouterr().out)["error"]


def _parse_summary(text: str):
    """The text summary's header key, window rows, window findings, slice-finding count and exit code."""
    lines = text.splitlines()
    key = lines[0].split()[1]
    windows, findings = [], []
    for line in lines[1:]:
        if line.startswith("    "):
            mark, kind, column = line.split()[:3]
            findings.append((windows[-1][0] if windows else None, mark.lower(), kind,
                             None if column == "(table)" else column))
        elif line[:4].isdigit():
            start, mv, rows, share, found = line.split()
            windows.append((start, mv, int(rows), share, 0 if found == "ok" else int(found)))
    sliced = next((int(ln.split()[0]) for ln in lines if "finding(s) in slices" in ln), 0)
    return key, windows, findings, sliced, lines[-1]


def test_audit_json_agrees_with_the_text_summary(setup, capsys):  # noqa: F811
    write, spec, _ = setup
    uri = reference_uri(capsys, write())
    path = write(reference={"uri": uri})
    code = main(["--quiet", "audit", path])
    key, windows, findings, sliced, last = _parse_summary(capsys.readouterr().out)
    assert main(["audit", path, "--format", "json"]) == code == 1  # progress on stderr, not in the document
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert "profiling" in captured.err
    assert doc["audit_key"] == key and doc["exit_code"] == code
    assert last.startswith(f"status: {doc['status']} (") and last.endswith(
        f"; worst finding: {doc['worst_severity'] or 'none'}; exit code {doc['exit_code']}")
    assert doc["incidents"] and all(i["incident_id"].startswith("INC-") for i in doc["incidents"])
    assert isinstance(doc["source_version"], int) and doc["mlflow_run_id"] and doc["audit_run_id"]
    assert [(w["window_start"][:19], w["model_version"] or "-", w["rows"],
             f"{w['drifted_columns']}/{w['columns']}" if w["columns"] is not None else "-", w["findings"])
            for w in doc["windows"]] == windows
    unsliced = [((f["window_start"] or "")[:19], f["severity"], f["kind"], f["column"] or "")
                for f in doc["findings"] if f["slice"] is None]
    assert sorted(unsliced) == sorted((w or "", s, k, c or "") for w, s, k, c in findings)
    assert sum(f["slice"] is not None for f in doc["findings"]) == sliced
    keys = {"severity", "kind", "column", "window_start", "slice", "model_version", "statistic", "value",
            "threshold", "q_value", "message"}
    assert doc["findings"] and all(set(f) == keys for f in doc["findings"])
    nan = next(f for f in doc["findings"] if f["kind"] == "missing" and f["column"] == "x")
    assert nan["severity"] == "critical" and nan["window_start"].startswith("2026-02-03")
    json.dumps(doc, allow_nan=False)  # JSON-safe: no NaN anywhere


# ------------------------------------------------------------------ the session's JVM output: quiet, never hidden

def _start_spark(env_patch: dict[str, str]) -> subprocess.CompletedProcess:
    code = ("from spark_audit.session import get_spark\n"
            "s = get_spark('local[1]')\n"
            "print('rows', s.range(3).count())\n"
            "s.stop()\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARK_AUDIT_VERBOSE", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")}
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYTHONPATH=str(ROOT), **env_patch)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


def test_a_failed_spark_start_shows_what_the_launcher_said():
    done = _start_spark({"JAVA_HOME": "/nonexistent-java-home"})
    assert done.returncode != 0
    assert "/nonexistent-java-home/bin/java" in done.stderr  # the launcher's own words, not only pyspark's
    assert "JAVA_GATEWAY_EXITED" in done.stderr


def test_a_spark_start_is_quiet_unless_verbose():
    quiet = _start_spark({})
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "rows 3\n" and quiet.stderr == ""
    verbose = _start_spark({"SPARK_AUDIT_VERBOSE": "1"})
    assert verbose.returncode == 0, verbose.stderr
    assert ":: resolving dependencies ::" in verbose.stderr or "Ivy Default Cache" in verbose.stderr
