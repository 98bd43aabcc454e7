"""The command line's grammar: every command, flag and help text of ``spark-audit``, and nothing it does
(``spark_audit.cli`` runs the commands). Pure argparse: building the parser imports no Spark."""

from __future__ import annotations

import argparse
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

from spark_audit import __version__
from spark_audit.catalog import ENGINES
from spark_audit.errors import EXIT_CODES
from spark_audit.timeutil import parse_time

FORMATS = ("text", "json")
# commands whose output --format json turns into one JSON document on stdout
JSON_COMMANDS = ("validate", "audit", "compare", "gate", "incident", "contract validate")
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
    try:
        return dist_version("spark-audit")
    except PackageNotFoundError:
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
    kv = ksub.add_parser("validate", help="check a contract against the official ODCS schema and say what spark-audit "
                                          "does not check in it (no Spark); exit 2 when it is invalid")
    kv.add_argument("contract", help="a data contract (ODCS v3 YAML)")
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
    p.add_argument("--engine", choices=ENGINES,
                   help="how the scan computes the statistics: arrow (numpy kernels in one mapInArrow pass; the "
                        "executors need numpy, pyarrow, datasketches) or spark (Spark aggregates only, slower); "
                        "default: the spec's profile.engine, else arrow")


class _Subparsers:
    """``add_parser`` of an argparse subparsers action that gives every subcommand the global flags."""

    def __init__(self, action, common: argparse.ArgumentParser):
        self.action, self.common = action, common

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))  # the command's own --help says what it does
        return self.action.add_parser(name, parents=[self.common], **kwargs)


