"""spark-audit: audits of ML feature and prediction tables on Spark and Delta (profiles, data contracts,
drift and decay against reference profiles in MLflow), incidents, and release gates.

Exit codes (for schedulers) are the table ``spark_audit.errors.EXIT_CODES``; ``--help`` prints it.
Global flags (``--quiet``, ``--verbose``, ``--master``, ``--format``) go before or after the command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from spark_audit.cli_args import JSON_COMMANDS, build_parser
from spark_audit.errors import AuditError, SpecError


def _spec(args: argparse.Namespace):
    """The spec, narrowed to ``--model-version`` when given."""
    from spark_audit.spec import load_spec

    spec = load_spec(args.spec)
    if getattr(args, "engine", None):
        spec = replace(spec, profile=replace(spec.profile, engine=args.engine))
    mv = getattr(args, "model_version", None)
    return spec.for_model_version(mv) if mv else spec



def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command + (f" {args.contract_command}" if args.command == "contract" else "")
    if args.format == "json" and command not in JSON_COMMANDS:
        parser.error(f"--format json is not available for {command!r} yet "
                     f"(it is for: {', '.join(JSON_COMMANDS)})")
    with _verbosity(args.verbose):
        try:
            if args.command == "validate" and args.format == "json":
                return _validate_json(args)
            return _run(args)
        except SpecError as e:
            return _failed(args, f"invalid spec: {e}", str(e), e.exit_code)
        except AuditError as e:
            return _failed(args, str(e), str(e), e.exit_code)


@contextmanager
def _verbosity(verbose: bool) -> Iterator[None]:
    """``--verbose``: sessions started meanwhile show Spark's output (``spark_audit.session.VERBOSE_ENV``)."""
    from spark_audit.session import VERBOSE_ENV

    before = os.environ.get(VERBOSE_ENV)
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(VERBOSE_ENV, None)
        else:
            os.environ[VERBOSE_ENV] = before


def _failed(args: argparse.Namespace, message: str, error: str, code: int) -> int:
    """An error on stderr; with ``--format json`` also ``{"ok": false, "error": ...}`` on stdout."""
    print(f"spark-audit: {message}", file=sys.stderr)
    if args.format == "json":
        _print_json({"ok": False, "error": error})
    return code


def _print_json(doc: dict) -> None:
    print(json.dumps(doc, allow_nan=False))


def _validate_json(args: argparse.Namespace) -> int:
    """``validate --format json``: ``{"spec", "ok", "features", "contract", "spec_hash"}`` (no Spark)."""
    from spark_audit.spec import load_spec

    spec = load_spec(args.spec)
    contract = None
    if spec.contract:
        from spark_audit.contract import load_contract

        loaded = load_contract(spec.contract.path)
        contract = loaded.id
        unrun = [{"path": u.path, "what": u.what, "reason": u.reason} for u in loaded.unrun]
    _print_json({"spec": args.spec, "ok": True, "features": len(spec.features), "contract": contract,
                 "spec_hash": spec.published_hash(), **({"contract_not_checked": unrun} if spec.contract else {})})
    return 0


def _run(args: argparse.Namespace) -> int:
    from spark_audit.progress import Progress
    from spark_audit.spec import load_spec

    progress = Progress(enabled=not args.quiet)
    if args.command == "validate":
        spec = load_spec(args.spec)
        extra = ""
        if spec.contract:
            from spark_audit.contract import load_contract

            contract = load_contract(spec.contract.path)
            extra = f", contract {contract.id} {contract.version}"
            if contract.unrun:
                extra += f"; {len(contract.unrun)} thing(s) of it not checked"
        print(f"{args.spec}: ok ({len(spec.features)} features{extra}, spec hash {spec.published_hash()})")
        for u in contract.unrun if spec.contract else ():
            print(f"  not checked: {u.describe()}")
        return 0
    if args.command == "demo":
        return _demo(args, progress)
    if args.command == "contract" and args.contract_command == "validate":
        return _contract_validate(args)
    if args.command == "contract" and args.contract_command == "check":
        return _contract_check(args, progress)
    if args.command == "incident":
        return _incident(args, progress)
    spec = _spec(args)  # validated before Spark starts
    if args.command == "compare":
        return _compare(args, spec, progress)
    from spark_audit.session import get_spark

    with progress.phase("starting Spark"):
        spark = get_spark(args.master)
    if args.command == "reference":
        from spark_audit.reference_build import build_references

        for label, run_id, profile in build_references(spark, spec, progress=progress):
            print(("" if label is None else f"model version {label}: ") + f"reference logged as runs:/{run_id} "
                  f"({profile.row_count} rows, {len(profile.columns)} columns)")
        return 0
    if args.command == "contract":
        return _contract_infer(args, spark, spec, progress)
    if args.command == "gate":
        return _gate(args, spark, spec, progress)
    from spark_audit.audit import run_audits

    start, end = args.start, args.end
    if args.backfill:
        start, end = args.backfill
    audits = run_audits(spark, spec, start=start, end=end, incremental=args.incremental and not args.backfill,
                        progress=progress)
    print(_audits_output(args, audits, several=spec.audits_each_version))
    return max(a.exit_code for a in audits)


def _audit_doc(a) -> dict:
    """One model version's audit (``audit.VersionAudit``) as the JSON document ``audit`` prints:
    ``report_json.result_json``, or why there is no result."""
    from spark_audit.report_json import result_json

    if a.result is not None:
        return result_json(a.result)
    if a.nothing_new is not None:  # incremental, with no new window
        return {"exit_code": 0, "worst_severity": None, "windows": [], "findings": [],
                "message": f"nothing new to audit: {a.nothing_new}"}
    return {"ok": False, "error": str(a.error), "exit_code": a.exit_code}


def _audit_text(a) -> str:
    from spark_audit.report import summary

    if a.result is not None:
        return summary(a.result)
    if a.nothing_new is not None:
        return f"nothing new to audit: {a.nothing_new}"
    return f"spark-audit: {a.error}"


def _audits_output(args: argparse.Namespace, audits, *, several: bool) -> str:
    """What ``audit`` prints on stdout: the summary, or one JSON document; per model version, when the spec
    audits each version found: in text a block per version, in JSON ``{"exit_code", "versions": [...]}``."""
    if args.format == "json":
        doc = _audit_doc(audits[0]) if not several else {
            "exit_code": max(a.exit_code for a in audits),
            "versions": [{"model_version": a.version, **_audit_doc(a)} for a in audits]}
        return json.dumps(doc, allow_nan=False)
    if not several:
        return _audit_text(audits[0])
    return "\n\n".join(f"== model version {a.version}\n{_audit_text(a)}" for a in audits)


def _compare(args: argparse.Namespace, spec, progress) -> int:
    """``compare``: every model version's health from the result tables; a folder of Delta tables is read
    without Spark (``spark_audit.readback``), metastore tables through a session. Exit 3 without complete
    audits of the model; with ``--fail-on``, exit 1 when a version's status is that severe or worse."""
    from spark_audit.errors import EXIT_DATA, EXIT_FINDINGS, EXIT_OK
    from spark_audit.findings import SEVERITIES
    from spark_audit.readback import needs_spark
    from spark_audit.version_table import compare_text, spec_version_table, version_json

    spark = None
    if needs_spark(spec.output):
        from spark_audit.session import get_spark

        with progress.phase("starting Spark"):
            spark = get_spark(args.master)
    table = spec_version_table(spec, model=args.model, spark=spark)
    if args.format == "json":
        _print_json(version_json(table))
    else:
        print(compare_text(table))
    if not table["versions"]:
        if args.format != "json":
            print(f"spark-audit: {table['message']}", file=sys.stderr)
        return EXIT_DATA
    if args.fail_on:
        bad = [v for v in table["versions"] if v.get("status") in SEVERITIES
               and SEVERITIES.index(v["status"]) >= SEVERITIES.index(args.fail_on)]
        return EXIT_FINDINGS if bad else EXIT_OK
    return EXIT_OK


def _incident(args: argparse.Namespace, progress) -> int:
    """``incident list | ack | not-an-issue | unack``: the incidents of an audit's output, and what people say
    of them (kept in ``incident_acks``: the audits read it, never write it)."""
    import getpass

    from spark_audit import incident_store
    from spark_audit.incidents import from_row, suppress
    from spark_audit.readback import read_frame, records
    from spark_audit.report_json import incident_json
    from spark_audit.session import get_spark
    from spark_audit.spec import load_spec

    if args.incident_command == "list":
        spec = load_spec(args.spec)
        spark = None
        if spec.output.database:  # a metastore table: through Spark
            with progress.phase("starting Spark"):
                spark = get_spark(args.master)
        frame = read_frame(spec.output, "incidents", spark)
        rows = [r for r in records(frame) if r["audit_name"] == spec.name and (args.all or r["status"] == "open")]
        incidents = [from_row(r) for r in sorted(rows, key=lambda r: str(r["first_window"]))]
        acks = incident_store.read_acks(spark, spec.output) if spark is not None else _acks_without_spark(spec.output)
        suppress(incidents, acks, datetime.now().astimezone())
        if args.format == "json":
            _print_json({"audit": spec.name, "incidents": [incident_json(i) for i in incidents]})
        else:
            print("\n".join(i.text() for i in incidents) if incidents else
                  f"no {'' if args.all else 'open '}incidents of {spec.name}")
        return 0
    target = list(args.target)
    spec_path = target.pop(0) if len(target) == 2 else (args.spec_option or os.environ.get("SPARK_AUDIT_SPEC"))
    if len(target) != 1 or not spec_path:
        raise SpecError(f"incident {args.incident_command} needs the audit spec and one incident id: "
                        f"spark-audit incident {args.incident_command} SPEC ID (or --spec SPEC, or $SPARK_AUDIT_SPEC)")
    spec = load_spec(spec_path)
    with progress.phase("starting Spark"):
        spark = get_spark(args.master)
    found = incident_store.find(spark, spec.output, target[0])
    if found is None:
        from spark_audit.errors import DataError

        raise DataError(f"no incident {target[0]!r} under {spec.output.path or spec.output.database}")
    action = {"ack": "ack", "not-an-issue": "not_an_issue", "unack": "unack"}[args.incident_command]
    ack = incident_store.acknowledge(spark, spec.output, target[0], action, until=getattr(args, "until", None),
                                     reason=args.reason, by=getpass.getuser())
    text = f"{target[0]} ({found['title']}): " + ("acknowledgement taken back" if action == "unack" else ack.text())
    if args.format == "json":
        _print_json({"incident_id": target[0], "action": action, "text": text})
    else:
        print(text)
    return 0


def _acks_without_spark(output):
    """The newest acknowledgement of each incident, from a folder of tables (delta-rs), or none."""
    from spark_audit.incidents import Ack, latest_acks
    from spark_audit.readback import read_frame, records

    frame = read_frame(output, "incident_acks") if not output.database else None
    return latest_acks([Ack(r["incident_id"], r["action"], r["until"], r["reason"], r["by"], r["at"])
                        for r in records(frame)])


def _gate(args: argparse.Namespace, spark, spec, progress) -> int:
    from spark_audit.gate import run_gate, summary

    result = run_gate(spark, spec, args.candidate, champion=args.champion, promote=args.promote, progress=progress)
    if args.format == "json":
        _print_json(result.to_json())
    else:
        print(summary(result))
    return result.exit_code


def _contract_infer(args: argparse.Namespace, spark, spec, progress) -> int:
    import yaml

    from spark_audit.contract import infer_contract
    from spark_audit.reference import find_reference, mlflow_client

    with progress.phase("loading reference"):
        ref = find_reference(mlflow_client(spec.mlflow), spec)
    contract = infer_contract(ref.profile, table_name=spec.source.display.rstrip("/").split("/")[-1],
                              tolerance=args.tolerance)
    text = yaml.safe_dump(contract, sort_keys=False)
    header = f"# Suggested by spark-audit from {ref.uri}: review and edit before use.\n"
    if args.output:
        Path(args.output).write_text(header + text)
        print(f"contract written to {args.output}")
    else:
        print(header + text)
    return 0


def _contract_validate(args: argparse.Namespace) -> int:
    """``contract validate``: the official schema, then spark-audit's reading; no Spark. An invalid contract
    raises SpecError (exit 2, ``{"ok": false, "error"}`` with ``--format json``)."""
    from spark_audit.contract import load_contract

    c = load_contract(args.contract)
    objects = [{"name": o.name, "properties": len(o.properties), "rules": len(o.quality)
                + sum(len(p.quality) for p in o.properties)} for o in c.schema]
    if args.format == "json":
        _print_json({"contract": args.contract, "ok": True, "id": c.id, "version": c.version, "objects": objects,
                     "not_checked": [{"path": u.path, "what": u.what, "reason": u.reason} for u in c.unrun]})
        return 0
    print(f"{args.contract}: ok (contract {c.id} {c.version}; " + ", ".join(
        f"{o['name']}: {o['properties']} properties, {o['rules']} quality rules" for o in objects) + ")")
    for u in c.unrun:
        print(f"  not checked: {u.describe()}")
    return 0


def _contract_check(args: argparse.Namespace, progress) -> int:
    from spark_audit.contract import check_dataframe, compile_contract, load_contract, worst_severity
    from spark_audit.findings import exit_code
    from spark_audit.session import get_spark
    from spark_audit.source import read_source
    from spark_audit.spec import SourceSpec

    contract = load_contract(args.contract)
    with progress.phase("starting Spark"):
        spark = get_spark(args.master)
    df, version = read_source(spark, SourceSpec(path=args.path, table=args.table, version=args.version))
    with progress.phase(f"checking {args.path or args.table} at version {version}"):
        results = check_dataframe(df, compile_contract(contract, df.schema))
    failing = [r for r in results if r.passed is False]
    for r in results:
        mark = "ok" if r.passed else ("skipped" if r.passed is None else r.severity.upper())
        print(f"{mark:<9} {r.rule_id:<40} {r.message}")
    for u in contract.unrun:
        print(f"{'info':<9} not checked: {u.describe()}")
    worst = worst_severity(results)
    print(f"{len(results) - len(failing)} passed, {len(failing)} failed; worst severity: {worst or 'none'}")
    return exit_code(worst)


def _demo(args: argparse.Namespace, progress) -> int:
    from spark_audit.audit import run_audits
    from spark_audit.demo import CHAMPION, write_demo
    from spark_audit.gate import run_gate
    from spark_audit.gate import summary as gate_summary
    from spark_audit.mlflow_text import experiment_link
    from spark_audit.reference import mlflow_client
    from spark_audit.reference_build import build_references
    from spark_audit.report import summary
    from spark_audit.session import get_spark
    from spark_audit.spec import load_spec
    from spark_audit.version_table import compare_versions

    home = Path(args.home)
    with progress.phase("starting Spark (first start downloads Delta's JARs)"):
        spark = get_spark(args.master)
    with progress.phase(f"generating the demo feature table under {home}"):
        spec_path = write_demo(spark, home, args.rows_per_day)
    spec = load_spec(spec_path)
    build_references(spark, spec, progress=progress)  # one per model version, from its own rows
    audits = run_audits(spark, spec, progress=progress)
    for a in audits:
        print(f"== model version {a.version}\n{summary(a.result)}\n")
    # before release: may version 2 replace the champion? (it may not: it is worse for one country)
    gate = run_gate(spark, spec, "2", promote=CHAMPION, progress=progress)
    print(f"== gate: model 2 against @{CHAMPION}\n{gate_summary(gate, slices=False)}\n")
    print(compare_versions(spec))
    code = max(a.exit_code for a in audits)
    exp = mlflow_client(spec.mlflow).get_experiment_by_name(spec.mlflow.experiment)
    print(
        f"\nDelta results: {spec.output.path}\nMLflow UI:     mlflow ui --backend-store-uri {spec.mlflow.tracking_uri}"
        f" --port 5000, then open {experiment_link(spec.mlflow.ui_url, exp.experiment_id)}"
        f"\nAudit spec:    {spec_path} (re-run with: spark-audit audit {spec_path}; "
        f"versions side by side: spark-audit compare {spec_path}; the gate: spark-audit gate {spec_path} "
        "--candidate 2)"
    )
    if args.strict:
        return code
    print(f"(a scheduler running `spark-audit audit` would get exit code {code}; "
          "the demo exits 0 because these problems were injected on purpose)")
    return 0


def run() -> None:
    """The console script: exit with main()'s code (a Databricks wheel task calls this and ignores returns).
    A reader that closes the pipe early (``| head``) ends the output quietly."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's advice: point stdout at devnull so the interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    run()
