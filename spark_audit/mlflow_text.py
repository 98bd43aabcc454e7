"""What spark-audit writes into MLflow, as names and text: tag keys, metric names, run names, links, the
run's description and its findings table. Pure functions, no MLflow call: the audit's logger
(``spark_audit.mlflow_log``), the gate's recorder and the reference build share them.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from spark_audit.findings import SEVERITIES, Finding
from spark_audit.timeutil import parse_iso


class Tag:
    """The one list of MLflow tag keys spark-audit sets (runs, experiments and registered model versions)."""

    # MLflow's own keys
    RUN_NAME = "mlflow.runName"
    NOTE = "mlflow.note.content"  # the run's description (markdown)
    EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3's UI reads it to choose the runs view
    # a run's keys
    KIND = "spark_audit.kind"  # reference | audit | gate
    AUDIT = "spark_audit.audit"
    AUDIT_KEY = "spark_audit.audit_key"
    GATE_KEY = "spark_audit.gate_key"
    SOURCE = "spark_audit.source"
    SOURCE_VERSION = "spark_audit.source_version"
    REFERENCE = "spark_audit.reference"
    WINDOW_START = "spark_audit.window_start"
    WINDOW_END = "spark_audit.window_end"
    STATUS = "spark_audit.status"
    SPEC_HASH = "spark_audit.spec_hash"
    CHAMPION = "spark_audit.champion"
    GATE = "spark_audit.gate"
    PROMOTED = "spark_audit.promoted"
    MODEL_NAME = "model_name"
    MODEL_VERSION = "model_version"
    MODEL_ALIAS = "model_alias"
    # a registered model version's keys: short, so the registry's version list shows them whole
    REFERENCE_RUN = "spark_audit.reference_run_id"
    AUDIT_STATUS = "audit_status"
    AUDIT_SUMMARY = "audit_summary"
    AUDIT_RUN = "audit_run"
    RUBRIC = "ml_test_score"
    GATE_STATUS = "gate_status"
    GATE_CHAMPION = "gate_champion"
    GATE_SUMMARY = "gate_summary"
    GATE_RUN = "gate_run"
    GATE_PROMOTED = "gate_promoted"


FINDINGS_MD = "spark_audit/findings.md"
FINDINGS_JSON = "spark_audit/findings.json"
FINDINGS_TABLE = "spark_audit/findings_table.json"
INCIDENTS_JSON = "spark_audit/incidents.json"

# Parameter values longer than this are cut (MLflow 3 accepts 6000 characters, servers before 2.x 500).
MAX_PARAM_CHARS = 500
# The description is a tag (MLflow 3 accepts 8000 characters, older servers 5000).
MAX_DESCRIPTION_CHARS = 5000
DESCRIPTION_WIDTH = 100  # characters per line of the summary in the run's description
MAX_KEY_CHARS = 250  # MLflow's limit on a metric or parameter name
ARROW = "→"
SEP = " · "


# --------------------------------------------------------------------------- pure formatting


def status(worst_severity: str | None) -> str:
    """``CRITICAL``, ``ERROR``, ``WARNING``, ``INFO``, or ``OK`` when there is no finding."""
    return worst_severity.upper() if worst_severity else "OK"


def format_range(start: datetime | None, end: datetime | None) -> str:
    """The days audited, ``01-08→01-14``: from the first window's start to the last window's end, which is
    exclusive (a window ending at midnight shows its last day). ``MM-DD`` when the range spans less than a
    year, ``YYYY-MM-DD`` otherwise; one day shows once; ``""`` without windows.

    >>> from datetime import datetime, timezone
    >>> format_range(datetime(2026, 1, 8, tzinfo=timezone.utc), datetime(2026, 1, 15, tzinfo=timezone.utc))
    '01-08→01-14'
    >>> format_range(datetime(2026, 1, 8, tzinfo=timezone.utc), datetime(2026, 1, 9, tzinfo=timezone.utc))
    '01-08'
    """
    if start is None or end is None:
        return ""
    last = max(start, end - timedelta(microseconds=1))  # the end is exclusive
    fmt = "%m-%d" if last - start < timedelta(days=365) else "%Y-%m-%d"
    a, b = start.strftime(fmt), last.strftime(fmt)
    return a if a == b else f"{a}{ARROW}{b}"


def run_name(audit_name: str, model_version: str | None, start: datetime | None, end: datetime | None,
             worst_severity: str | None) -> str:
    """``churn-demo · model 2 · 01-08→01-14 · CRITICAL``: the audit, the model version (when one was
    audited), the days and the status."""
    parts = [audit_name]
    if model_version:
        parts.append(f"model {model_version}")
    days = format_range(start, end)
    if days:
        parts.append(days)
    parts.append(status(worst_severity))
    return SEP.join(parts)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings per severity, every severity of :data:`~spark_audit.findings.SEVERITIES` (0 when none)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        counts[f.severity] += 1
    return counts


def counts_text(counts: dict[str, int]) -> str:
    """``2 critical, 3 warning``, worst first, or ``no findings``."""
    found = [f"{counts[s]} {s}" for s in reversed(SEVERITIES) if counts.get(s)]
    return ", ".join(found) if found else "no findings"


def audit_summary(findings: list[Finding], start: datetime | None, end: datetime | None) -> str:
    """The registry's short summary, days first and about 30 characters so the versions table shows it
    whole: ``01-08→01-14 · 2 critical +3`` (the worst severity's count, then how many others)."""
    counts = severity_counts(findings)
    worst = next((s for s in reversed(SEVERITIES) if counts[s]), None)
    text = "no findings"
    if worst is not None:
        rest = sum(counts.values()) - counts[worst]
        text = f"{counts[worst]} {worst}" + (f" +{rest}" if rest else "")
    days = format_range(start, end)
    return f"{days}{SEP}{text}" if days else text


def incidents_summary(severities: list[str], start: datetime | None, end: datetime | None) -> str:
    """The registry's short summary of an audit's active incidents (their severities), days first:
    ``01-08→01-14 · 3 incidents: 2 critical +1``, or ``... · healthy``.

    >>> incidents_summary(["critical", "warning", "critical"], None, None)
    '3 incidents: 2 critical +1'
    >>> incidents_summary([], None, None)
    'healthy'
    """
    worst = max(severities, key=SEVERITIES.index, default=None)
    if worst is None:
        text = "healthy"
    else:
        n = severities.count(worst)
        rest = len(severities) - n
        text = f"{len(severities)} incident{'s' if len(severities) > 1 else ''}: {n} {worst}" + (
            f" +{rest}" if rest else "")
    days = format_range(start, end)
    return f"{days}{SEP}{text}" if days else text


ML_VIEW = "workflowType=machine_learning"
"""The query MLflow 3's UI reads to open the classic runs view: without it a fresh browser opens the GenAI
view (the UI keeps the choice in local storage, default GenAI, and 3.17 and 3.18 no longer read the
experiment's ``mlflow.experimentKind`` tag for it; tests/test_mlflow_browser.py checks it in Chromium)."""


def experiment_link(uri: str | None, experiment_id: str) -> str | None:
    """The experiment's page in the ML view, for a UI reached over http(s); None otherwise.

    >>> experiment_link("http://mlflow:5000/", "3")
    'http://mlflow:5000/#/experiments/3?workflowType=machine_learning'
    """
    if uri and re.match(r"^https?://", uri, re.IGNORECASE):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}?{ML_VIEW}"
    return None


def run_link(uri: str | None, experiment_id: str, run_id: str) -> str:
    """The run's page (in the ML view) for a UI reached over http(s), else ``runs:/<run_id>``.

    >>> run_link("http://mlflow:5000", "3", "abc")
    'http://mlflow:5000/#/experiments/3/runs/abc?workflowType=machine_learning'
    >>> run_link("sqlite:///mlflow.db", "3", "abc")
    'runs:/abc'
    """
    if uri and re.match(r"^https?://", uri, re.IGNORECASE):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"
    return f"runs:/{run_id}"


def _window_text(window_start: str | None) -> str:
    if not window_start:
        return ""
    t = parse_iso(window_start)
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute, t.second) == (0, 0, 0) else t.strftime("%Y-%m-%d %H:%M")


def _cell(v: Any) -> str:
    text = "" if v is None else str(v)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _worst_first(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-SEVERITIES.index(f.severity), f.window_start or "", f.kind,
                                           f.slice or "", f.column or "", f.model_version or "", f.message))


def findings_markdown(findings: list[Finding]) -> str:
    """The findings as a markdown table, worst first: severity, kind, window, slice, column, message (and
    the model version, when the findings name more than one)."""
    counts = severity_counts(findings)
    lines = [f"# Findings: {counts_text(counts)}", ""]
    if not findings:
        return lines[0] + "\n"
    with_model = len({f.model_version for f in findings if f.model_version is not None}) > 1
    head = ["severity", "kind", "window", "slice", "column", *(["model"] if with_model else []), "message"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in _worst_first(findings):
        cells = [f.severity.upper() if f.severity in ("critical", "error") else f.severity, f.kind,
                 _window_text(f.window_start), f.slice, f.column, *([f.model_version] if with_model else []),
                 f.message]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def description(summary: str, name: str, *, limit: int = MAX_DESCRIPTION_CHARS) -> str:
    """The run's description (markdown): its name, then the console summary in a code block, cut to
    ``limit`` characters at a line (the findings are whole in ``spark_audit/findings.md``)."""
    head = f"**{name}**\n\n```text\n"
    tail = "\n```\n"
    # long finding lines wrapped, so the run page keeps its side panel (tags) in view
    summary = "\n".join(textwrap.fill(line, DESCRIPTION_WIDTH, subsequent_indent=" " * 8, break_long_words=False)
                        if len(line) > DESCRIPTION_WIDTH else line for line in summary.splitlines())
    body = summary
    if len(head) + len(body) + len(tail) > limit:
        kept: list[str] = []
        lines = summary.splitlines()
        room = limit - len(head) - len(tail) - 80
        for line in lines:
            if sum(len(k) + 1 for k in kept) + len(line) + 1 > room:
                break
            kept.append(line)
        body = "\n".join([*kept, f"... {len(lines) - len(kept)} more line(s): see {FINDINGS_MD}"])
    return head + body + tail


def metric_key(*parts: str) -> str:
    """A metric or parameter name MLflow accepts: characters outside letters, digits, ``_ - . space``
    become ``_``; at most 250 characters.

    >>> metric_key("drift", "age/x")
    'drift.age_x'
    """
    return re.sub(r"[^\w.\- ]", "_", ".".join(parts))[:MAX_KEY_CHARS]


VERSION_NOTE = "**spark-audit**"
"""The heading of the block spark-audit keeps at the end of a model version's description (markdown, so its
links open the runs: MLflow shows tags as plain text)."""


def version_description(existing: str | None, label: str, text: str, link: str | None) -> str:
    """A model version's description with its spark-audit line LABEL (``latest audit``, ``latest gate``) set
    to TEXT, linked to LINK when it is an http(s) page; the owner's own text and the other lines are kept.

    >>> d = version_description("Trained on 2025 data.", "latest audit", "CRITICAL · 4 incidents", "http://m/r")
    >>> print(d)
    Trained on 2025 data.
    <BLANKLINE>
    **spark-audit**
    <BLANKLINE>
    - latest audit: [CRITICAL · 4 incidents](http://m/r)
    >>> print(version_description(d, "latest gate", "fail vs 1", "runs:/abc").split(VERSION_NOTE)[1])
    <BLANKLINE>
    <BLANKLINE>
    - latest audit: [CRITICAL · 4 incidents](http://m/r)
    - latest gate: fail vs 1 (runs:/abc)
    """
    own, _, ours = (existing or "").partition(VERSION_NOTE)
    lines = {m.group(1): m.group(0) for m in re.finditer(r"^- ([a-z ]+): .*$", ours, re.MULTILINE)}
    shown = text.replace("[", "(").replace("]", ")")
    lines[label] = f"- {label}: [{shown}]({link})" if link and re.match(r"^https?://", link) else \
        f"- {label}: {shown}" + (f" ({link})" if link else "")
    block = VERSION_NOTE + "\n\n" + "\n".join(lines[k] for k in sorted(lines))
    return (own.rstrip() + "\n\n" + block) if own.strip() else block
