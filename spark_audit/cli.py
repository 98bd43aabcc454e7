"""The ``spark-audit`` command line.

Exit codes (for schedulers): 0 no error or critical finding, 1 an error or
critical finding, 2 bad spec or usage, 3 data or infrastructure problem
(missing table/column, empty window, missing reference, MLflow unreachable);
the table is ``spark_audit.errors.EXIT_CODES``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from spark_audit.errors import AuditError, EmptyWindowError, SpecError
from spark_audit.timeutil import parse_time


def _time(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spark-audit", description=__doc__.split("\n")[0])
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--master", help="Spark master when no session is active (default local[*])")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate a feature table with injected problems and audit it end to end")
    d.add_argument("--home", default="spark-audit-home", help="folder for tables, results and MLflow store")
    d.add_argument("--rows-per-day", type=int, default=2000)
    d.add_argument("--strict", action="store_true", help="exit with the audit's exit code (1 on critical findings)")

    v = sub.add_parser("validate", help="check an audit spec without starting Spark")
    v.add_argument("spec")

    r = sub.add_parser("reference", help="reference profiles")
    rsub = r.add_subparsers(dest="reference_command", required=True)
    rb = rsub.add_parser("build", help="profile the reference rows and log them to MLflow")
    rb.add_argument("spec")

    a = sub.add_parser("audit", help="audit windows against the reference; exit 1 on critical findings")
    a.add_argument("spec")
    a.add_argument("--start", type=_time, help="first window start (default: spec window.start)")
    a.add_argument("--end", type=_time, help="end of the last window (default: spec window.end)")
    a.add_argument("--incremental", action="store_true",
                   help="audit only windows after the last complete audit of this spec, up to the last whole window")
    a.add_argument("--backfill", nargs=2, type=_time, metavar=("START", "END"),
                   help="re-audit [START, END); readers then see these windows' newest results")

    c = sub.add_parser("compare", help="model versions side by side, from the result tables")
    c.add_argument("spec", help="an audit spec (its output location is read)")
    c.add_argument("--model", help="only this model name (default: the spec's)")

    k = sub.add_parser("contract", help="data contracts")
    ksub = k.add_subparsers(dest="contract_command", required=True)
    ki = ksub.add_parser("infer", help="suggest a contract from the spec's reference profile")
    ki.add_argument("spec")
    ki.add_argument("-o", "--output", help="write the YAML here (default: stdout)")
    ki.add_argument("--tolerance", type=float, default=0.1,
                    help="relative widening of observed null/NaN/inf percentages and string lengths")
    kc = ksub.add_parser("check", help="check a Delta table against a contract; exit 1 on error/critical")
    kc.add_argument("contract")
    kg = kc.add_mutually_exclusive_group(required=True)
    kg.add_argument("--path", help="Delta table folder")
    kg.add_argument("--table", help="table name")
    kc.add_argument("--version", type=int, help="Delta table version (default: current)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except SpecError as e:
        print(f"spark-audit: invalid spec: {e}", file=sys.stderr)
        return e.exit_code
    except AuditError as e:
        print(f"spark-audit: {e}", file=sys.stderr)
        return e.exit_code


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
        print(f"{args.spec}: ok ({len(spec.features)} features{extra}, spec hash {spec.spec_hash()})")
        return 0
    if args.command == "demo":
        return _demo(args, progress)
    if args.command == "contract" and args.contract_command == "check":
        return _contract_check(args, progress)
    spec = load_spec(args.spec)  # validated before Spark starts
    from spark_audit.session import get_spark

    with progress.phase("starting Spark"):
        spark = get_spark(args.master)
    if args.command == "reference":
        from spark_audit.audit import build_reference

        run_id, profile = build_reference(spark, spec, progress=progress)
        print(f"reference logged as runs:/{run_id} ({profile.row_count} rows, {len(profile.columns)} columns)")
        return 0
    if args.command == "compare":
        from spark_audit.report import compare_versions

        print(compare_versions(spark, spec, model=args.model))
        return 0
    if args.command == "contract":
        return _contract_infer(args, spark, spec, progress)
    from spark_audit.audit import incremental_range, run_audit
    from spark_audit.report import summary

    start, end = args.start, args.end
    if args.backfill:
        start, end = args.backfill
    elif args.incremental:
        start, end = incremental_range(spark, spec, end=args.end)
        if start is not None and end is not None and start >= end:
            print(f"nothing new to audit: windows up to {end.isoformat()} are audited")
            return 0
    try:
        result = run_audit(spark, spec, start=start, end=end, progress=progress)
    except EmptyWindowError:
        if not args.incremental:
            raise
        print(f"nothing new to audit since {start.isoformat() if start else 'the beginning'}")
        return 0
    print(summary(result))
    return result.exit_code


def _contract_infer(args: argparse.Namespace, spark, spec, progress) -> int:
    import yaml

    from spark_audit.contract import infer_contract
    from spark_audit.reference import load_reference, mlflow_client

    with progress.phase("loading reference"):
        ref = load_reference(mlflow_client(spec.mlflow), spec.reference_uri())
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
    from spark_audit.audit import build_reference, run_audit
    from spark_audit.demo import write_demo
    from spark_audit.report import summary
    from spark_audit.session import get_spark
    from spark_audit.spec import load_spec

    home = Path(args.home)
    with progress.phase("starting Spark (first start downloads Delta's JARs)"):
        spark = get_spark(args.master)
    with progress.phase(f"generating the demo feature table under {home}"):
        spec_path = write_demo(spark, home, args.rows_per_day)
    spec = load_spec(spec_path)
    run_id, _ = build_reference(spark, spec, progress=progress)
    result = run_audit(spark, spec, progress=progress)
    print(summary(result))
    print(
        f"\nDelta results: {spec.output.path}\nMLflow UI:     mlflow ui --backend-store-uri {spec.mlflow.tracking_uri}"
        f"\nAudit spec:    {spec_path} (re-run with: spark-audit audit {spec_path})"
    )
    if args.strict:
        return result.exit_code
    print(f"(a scheduler running `spark-audit audit` would get exit code {result.exit_code}; "
          "the demo exits 0 because these problems were injected on purpose)")
    return 0


def run() -> None:
    """The console script: exit with main()'s code (a Databricks wheel task calls this and ignores returns)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
