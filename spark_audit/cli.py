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
from datetime import datetime
from pathlib import Path

from spark_audit.errors import EXIT_CODES, AuditError, SpecError
from spark_audit.timeutil import parse_time

FORMATS = ("text", "json")
# commands whose output --format json turns into one JSON document on stdout
JSON_COMMANDS = ("validate", "audit", "compare", "gate", "incident")
DESCRIPTION = ("Audit ML feature and prediction tables on Spark and Delta: profiles, data contracts, drift and\n"
               "decay against reference profiles kept in MLflow, incidents that open and resolve, release gates.\n"
               "Each command's --help says what it does and what its exit code means.")
COMPARE_EXITS = ("exit codes: 0 the versions are shown (and, with --fail-on, none is as bad); 1 with --fail-on, "
                 "a version's newest audit has an active incident that severe or worse; 2 usage; 3 no complete "
                 "audit of the model (an unknown model, or empty results)")


def _time(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def version() -> str:
    """This installation's version: the distribution's metadata, else the package's ``__version__``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("spark-audit")
    except PackageNotFoundError:
        from spark_audit import __version__

        return __version__


def exit_code_help() -> str:
    """The exit-code table (``spark_audit.errors.EXIT_CODES``) as ``--help`` prints it."""
    return "exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in sorted(EXIT_CODES.items()))


def _add_global_flags(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The flags every command takes. ``suppress``: a subcommand's copy, which sets a flag only when given
    there, so a value given before the command is not overwritten by the copy's default."""

    def default(value):
        return argparse.SUPPRESS if suppress else value

    p.add_argument("--quiet", action="store_true", default=default(False), help="no progress lines on stderr")
    p.add_argument("--verbose", action="store_true", default=default(False),
                   help="show Spark's startup output (Ivy, log4j) and warnings; also env SPARK_AUDIT_VERBOSE=1")
    p.add_argument("--master", default=default(None),
                   help="Spark master when no session is active (default $SPARK_AUDIT_MASTER or local[*])")
    p.add_argument("--format", choices=FORMATS, default=default("text"),
                   help=f"output on stdout: text, or one JSON document ({', '.join(JSON_COMMANDS)})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spark-audit", description=DESCRIPTION, epilog=exit_code_help(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"spark-audit {version()}")
    _add_global_flags(p, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_flags(common, suppress=True)
    sub = _Subparsers(p.add_subparsers(dest="command", required=True), common)

    d = sub.add_parser("demo", help="generate a feature table with injected problems and audit it end to end")
    d.add_argument("--home", default="spark-audit-home", help="folder for tables, results and MLflow store")
    d.add_argument("--rows-per-day", type=int, default=2000, help="rows of each generated day (default 2000)")
    d.add_argument("--strict", action="store_true", help="exit with the audit's exit code (1 on critical findings)")

    v = sub.add_parser("validate", help="check an audit spec without starting Spark")
    v.add_argument("spec", help=SPEC_HELP)

    r = sub.add_parser("reference", help="reference profiles")
    rsub = _Subparsers(r.add_subparsers(dest="reference_command", required=True), common)
    rb = rsub.add_parser("build", help="profile the reference rows and log them to MLflow (one reference per "
                                       "model version when the rows carry versions and the spec names none)")
    rb.add_argument("spec", help=SPEC_HELP)
    _add_model_version(rb)

    a = sub.add_parser("audit", help="audit windows against the reference; exit 1 on an active critical or error "
                                     "incident")
    a.add_argument("spec", help=SPEC_HELP)
    a.add_argument("--start", type=_time, help="first window start (default: spec window.start)")
    a.add_argument("--end", type=_time, help="end of the last window (default: spec window.end)")
    a.add_argument("--incremental", action="store_true",
                   help="audit only windows after the last complete audit of this spec, up to the last whole window")
    a.add_argument("--backfill", nargs=2, type=_time, metavar=("START", "END"),
                   help="re-audit [START, END); readers then see these windows' newest results")
    _add_model_version(a)

    c = sub.add_parser("compare", help="model versions side by side, from the result tables (no Spark for a "
                                       "folder of tables)", epilog=COMPARE_EXITS)
    c.add_argument("spec", help="an audit spec (its output location is read)")
    c.add_argument("--model", help="only this model name (default: the spec's)")
    c.add_argument("--fail-on", choices=("warning", "error", "critical"), metavar="SEVERITY",
                   help="exit 1 when a version's newest audit has an active incident this severe or worse "
                        "(warning, error, critical)")

    i = sub.add_parser("incident", help="incidents: list them, acknowledge one, mark one not an issue")
    isub = _Subparsers(i.add_subparsers(dest="incident_command", required=True), common)
    il = isub.add_parser("list", help="the incidents of an audit's output (open ones; --all for every one)")
    il.add_argument("spec", help=SPEC_HELP)
    il.add_argument("--all", action="store_true", help="resolved incidents too")
    for name, what in (("ack", "acknowledge an incident: it stays listed, changes no exit code and sends no "
                               "notification until --until (default: until it resolves)"),
                       ("not-an-issue", "mark an incident as not an issue: it stays quiet for good"),
                       ("unack", "take an acknowledgement or a 'not an issue' back")):
        ia = isub.add_parser(name, help=what)
        ia.add_argument("target", nargs="+", metavar="[SPEC] ID",
                        help="the incident's id (INC-...), after the audit spec (or --spec, or $SPARK_AUDIT_SPEC)")
        ia.add_argument("--spec", dest="spec_option", help="the audit spec whose output holds the incident")
        ia.add_argument("--reason", help="why, for the people who read it next")
        if name == "ack":
            ia.add_argument("--until", type=_time, help="a date: after it the incident counts again")

    g = sub.add_parser("gate", help="before release: a candidate version against the champion on the same labelled "
                                    "rows, overall and per slice; exit 0 pass, 1 fail")
    g.add_argument("spec", help="an audit spec with a gate section")
    g.add_argument("--candidate", required=True, metavar="V", help="the candidate model version")
    g.add_argument("--champion", metavar="ALIAS|V", help="the champion: an alias or a version (default: gate.champion)")
    g.add_argument("--promote", metavar="ALIAS", help="move this alias to the candidate when the gate passes")

    k = sub.add_parser("contract", help="data contracts")
    ksub = _Subparsers(k.add_subparsers(dest="contract_command", required=True), common)
    ki = ksub.add_parser("infer", help="suggest a contract from the spec's reference profile")
    ki.add_argument("spec", help=SPEC_HELP)
    _add_model_version(ki)
    ki.add_argument("-o", "--output", help="write the YAML here (default: stdout)")
    ki.add_argument("--tolerance", type=float, default=0.1,
                    help="relative widening of observed null/NaN/inf percentages and string lengths")
    kc = ksub.add_parser("check", help="check a Delta table against a contract; exit 1 on error/critical")
    kc.add_argument("contract", help="a data contract (ODCS v3 YAML)")
    kg = kc.add_mutually_exclusive_group(required=True)
    kg.add_argument("--path", help="Delta table folder")
    kg.add_argument("--table", help="table name")
    kc.add_argument("--version", type=int, help="Delta table version (default: current)")
    return p


SPEC_HELP = "an audit spec (YAML; conf/churn_audit.yaml shows every key)"


def _add_model_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-version", metavar="V",
                   help="only this model version (its rows, with model.version_column, and its reference); "
                        "default: the spec's model.version, else every version in the rows")


def _spec(args: argparse.Namespace):
    """The spec, narrowed to ``--model-version`` when given."""
    from spark_audit.spec import load_spec

    spec = load_spec(args.spec)
    mv = getattr(args, "model_version", None)
    return spec.for_model_version(mv) if mv else spec


class _Subparsers:
    """``add_parser`` of an argparse subparsers action that gives every subcommand the global flags."""

    def __init__(self, action, common: argparse.ArgumentParser):
        self.action, self.common = action, common

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))  # the command's own --help says what it does
        return self.action.add_parser(name, parents=[self.common], **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.format == "json" and args.command not in JSON_COMMANDS:
        parser.error(f"--format json is not available for {args.command!r} yet "
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

        contract = load_contract(spec.contract.path).id
    _print_json({"spec": args.spec, "ok": True, "features": len(spec.features), "contract": contract,
                 "spec_hash": spec.published_hash()})
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
        print(f"{args.spec}: ok ({len(spec.features)} features{extra}, spec hash {spec.published_hash()})")
        return 0
    if args.command == "demo":
        return _demo(args, progress)
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
