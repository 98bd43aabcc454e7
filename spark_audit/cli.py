"""The ``spark-audit`` command line.

Exit codes (for schedulers): 0 no critical finding, 1 critical finding (or
error-severity contract violation), 2 bad spec or usage, 3 data or
infrastructure problem (missing table/column, empty window, missing reference,
MLflow unreachable).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from spark_audit.errors import AuditError, SpecError

EXIT_DATA = 3


def _time(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 date or time, got {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except SpecError as e:
        print(f"spark-audit: invalid spec: {e}", file=sys.stderr)
        return 2
    except AuditError as e:
        print(f"spark-audit: {e}", file=sys.stderr)
        return EXIT_DATA


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
    spec = load_spec(args.spec)  # validated before Spark starts
    from spark_audit.session import get_spark

    with progress.phase("starting Spark"):
        spark = get_spark(args.master)
    if args.command == "reference":
        from spark_audit.audit import build_reference

        run_id, profile = build_reference(spark, spec, progress=progress)
        print(f"reference logged as runs:/{run_id} ({profile.row_count} rows, {len(profile.columns)} columns)")
        return 0
    from spark_audit.audit import run_audit
    from spark_audit.report import summary

    result = run_audit(spark, spec, start=args.start, end=args.end, progress=progress)
    print(summary(result))
    return result.exit_code


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


if __name__ == "__main__":
    sys.exit(main())
