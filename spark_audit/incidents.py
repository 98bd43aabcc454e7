"""Incidents: one per cause, across windows, slices and audits.

An audit raises findings per window × slice × model version × column; a person wants to know what is
wrong. Findings that share a cause become one incident:

* **The same cause** is a family of kinds on one subject (``CAUSES``): a column's data (its type, its
  missing share, its contract rules, its distribution), training/serving skew of a column, the model's
  quality (realised, estimated, its history), the data's arrival (volume, missing windows, a stale
  source, freshness), duplicates, joint drift, a fairness attribute.
* **Consequences join their cause** in the same window: the prediction column drifting with a feature,
  and joint drift (PCA error, the drifted share) while a feature drifts, are listed in the feature's
  incident.
* **A slice that moves with the whole table** (a finding of the same kind and column in the same window,
  the same direction, an effect between half and twice the whole table's) is listed inside the overall
  incident; a slice that moves alone has an incident of its own.
* **Consecutive windows** continue an incident; it resolves once ``incidents.resolve_after`` audited
  windows in a row show nothing of its cause. Incidents live in the ``incidents`` Delta table and carry
  over between audits: a later audit continues or resolves them, a re-run of the same audit rewrites the
  same rows (the id is a hash of the cause and the first window).

Only findings a person acts on (warning and worse) make incidents; every finding stays in ``findings``.
An acknowledged incident (``spark-audit incident ack``, until a date) or one marked "not an issue" does not
change the exit code, and sends no notification, while the suppression lasts (``incident_acks``).

Pure Python over findings and stored rows: reading and writing the tables is the caller's.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from spark_audit.findings import SEVERITIES, Finding, exit_code, worst
from spark_audit.timeutil import iso_utc, parse_iso

# kind -> the family of causes it belongs to (None: its finding's column names the subject too)
CAUSES: dict[str, str] = {
    "schema": "column", "missing": "column", "contract": "column", "drift": "column",
    "skew": "skew",
    "quality": "quality", "quality_estimate": "quality", "anomaly": "quality",
    "volume": "arrival", "missing_window": "arrival", "stale": "arrival", "freshness": "arrival",
    "duplicates": "duplicates",
    "multivariate_drift": "joint", "dataset_drift": "joint",
    "fairness": "fairness",
    "prediction_threshold": "prediction_threshold",
}
_WITH_COLUMN = ("column", "skew", "fairness")  # families whose subject is a column
ACTIVE = "open"
RESOLVED = "resolved"
ACK, NOT_AN_ISSUE, UNACK = "ack", "not_an_issue", "unack"


@dataclass(frozen=True)
class Cause:
    """What an incident is about: a family, its subject (a column, or None), the model version and the
    slice (None: the whole table)."""

    family: str
    subject: str | None
    model_version: str | None
    slice: str | None

    @property
    def key(self) -> str:
        return "|".join(str(x) for x in (self.family, self.subject, self.model_version, self.slice))

    def title(self) -> str:
        """``drift of monthly_charges`` ... as a person reads the cause."""
        what = {"column": f"data of {self.subject}", "skew": f"training/serving skew of {self.subject}",
                "quality": "model quality", "arrival": "data arrival (volume, missing windows, freshness)",
                "duplicates": "duplicated rows", "joint": "joint drift of the features",
                "fairness": f"fairness across {self.subject}",
                "prediction_threshold": "prediction column vs quality.threshold"}.get(self.family, self.family)
        return what + (f" in {self.slice}" if self.slice else "")


def cause_of(f: Finding) -> Cause:
    family = CAUSES.get(f.kind, f.kind)
    subject = f.column if family in _WITH_COLUMN else None
    if f.kind == "contract" and not f.column:
        family = "contract"  # a table-level rule of the contract
    return Cause(family, subject, f.model_version, f.slice)


def _effect(f: Finding) -> float | None:
    """The finding's signed effect, relative to its threshold or reference value (None when it has none)."""
    if f.value is None or f.threshold is None or not (math.isfinite(f.value) and math.isfinite(f.threshold)):
        return None
    if f.kind == "volume" and f.threshold > 0:
        return f.value / f.threshold - 1.0
    return f.value - f.threshold


def moves_with(s: Finding, whole: Finding) -> bool:
    """Whether a slice's finding moves with the whole table's: the same kind and column, the same direction,
    an effect between half and twice the whole's (without numbers to compare, the same kind and column).

    >>> w = Finding("warning", "volume", "", window_start="d", value=2500.0, threshold=5000.0)
    >>> moves_with(Finding("warning", "volume", "", window_start="d", slice="s=a", value=600.0, threshold=1250.0), w)
    True
    >>> moves_with(Finding("warning", "volume", "", window_start="d", slice="s=a", value=2500.0, threshold=1250.0), w)
    False
    """
    if (s.kind, s.column) != (whole.kind, whole.column):
        return False
    a, b = _effect(s), _effect(whole)
    if a is None or b is None:
        return True
    if b == 0:
        return a == 0
    ratio = a / b
    return 0.5 <= ratio <= 2.0


@dataclass
class Incident:
    """One incident: its cause, its windows (with their findings), its state."""

    incident_id: str
    cause: Cause
    first_window: str | None
    last_window: str | None
    severity: str
    status: str = ACTIVE
    window_findings: dict[str, int] = field(default_factory=dict)  # window start ("" without) -> findings
    slices: list[str] = field(default_factory=list)  # slices listed inside an overall incident
    kinds: list[str] = field(default_factory=list)
    checked_until: str | None = None  # the end of the newest window audited for its cause
    resolved_window: str | None = None
    message: str = ""  # the worst finding's message
    findings: list[Finding] = field(default_factory=list)  # this audit's findings (not stored)
    notified: str | None = None  # the state last notified ("open:warning", "resolved")
    suppressed: str | None = None  # why it stays quiet now (acknowledged until ..., not an issue)
    touched: bool = False  # has findings in this audit

    @property
    def state(self) -> str:
        return RESOLVED if self.status == RESOLVED else f"{ACTIVE}:{self.severity}"

    @property
    def finding_count(self) -> int:
        return sum(self.window_findings.values())

    def title(self) -> str:
        return self.cause.title()

    def text(self) -> str:
        """One line: id, severity, status, cause, windows, slices, suppression."""
        windows = [w for w in self.window_findings if w]
        span = (f"{windows[0][:10]}" + (f" to {windows[-1][:10]}" if len(windows) > 1 else "")) if windows \
            else "the audit"
        more = f"; slices moving with it: {', '.join(self.slices[:4])}" + (
            f" +{len(self.slices) - 4}" if len(self.slices) > 4 else "") if self.slices else ""
        quiet = f"; {self.suppressed}" if self.suppressed else ""
        version = f" · model {self.cause.model_version}" if self.cause.model_version else ""
        return (f"{self.incident_id} {self.severity.upper() if exit_code(self.severity) else self.severity} "
                f"{self.status} · {self.title()}{version} · {span} ({len(windows) or 1} window(s), "
                f"{self.finding_count} finding(s)){more}{quiet}")


def incident_id(audit_name: str, cause: Cause, first_window: str | None) -> str:
    raw = f"{audit_name}|{cause.key}|{first_window}"
    return "INC-" + hashlib.sha256(raw.encode()).hexdigest()[:10]


def _consequence(f: Finding, score_columns: Sequence[str]) -> bool:
    """Joint drift, or the prediction's drift: what a feature's drift brings with it."""
    return f.kind in ("multivariate_drift", "dataset_drift") or (f.kind == "drift" and f.column in score_columns)


def _host(findings: list[Finding], score_columns: Sequence[str]) -> tuple[dict[int, Cause], Cause | None]:
    """Per finding (by index) of one window and model version, the cause it belongs to: its own, or, for a
    consequence (the prediction's drift, joint drift) while a feature drifts, that feature's; and that
    feature's cause (None when no feature drifts)."""
    causes = {i: cause_of(f) for i, f in enumerate(findings)}
    lead_cause = None
    feature_drift = [i for i, f in enumerate(findings) if f.slice is None and f.kind == "drift"
                     and f.column not in score_columns]
    if feature_drift:
        lead = max(feature_drift, key=lambda i: (SEVERITIES.index(findings[i].severity),
                                                 (findings[i].value or 0) / (findings[i].threshold or 1)))
        lead_cause = causes[lead]
        for i, f in enumerate(findings):
            if f.slice is None and _consequence(f, score_columns):
                causes[i] = lead_cause
    return causes, lead_cause


def group(findings: Iterable[Finding], *, score_columns: Sequence[str] = ()) -> dict[Cause, list[Finding]]:
    """This audit's findings (warning and worse) grouped by cause: slices that move with the whole table
    and consequences that move with a feature join the whole table's cause."""
    loud = [f for f in findings if SEVERITIES.index(f.severity) >= SEVERITIES.index("warning")]
    by_window: dict[tuple, list[Finding]] = {}
    for f in loud:
        by_window.setdefault((f.window_start, f.model_version), []).append(f)
    out: dict[Cause, list[Finding]] = {}
    for (_, _), fs in by_window.items():
        overall = [f for f in fs if f.slice is None]
        hosts, lead = _host(overall, score_columns)
        for i, f in enumerate(overall):
            out.setdefault(hosts[i], []).append(f)
        for s in (f for f in fs if f.slice is not None):
            match = next((i for i, w in enumerate(overall) if moves_with(s, w)), None)
            if match is not None:
                cause = hosts[match]
            elif lead is not None and _consequence(s, score_columns):
                cause = lead  # a slice's joint drift or prediction drift while a feature drifts overall
            else:
                cause = cause_of(s)
            out.setdefault(cause, []).append(s)
    return out


def _runs(windows: list[str], step: int | None, resolve_after: int) -> list[list[str]]:
    """Windows of one cause split where ``resolve_after`` or more windows in a row are quiet."""
    ordered = sorted(set(windows))
    if not step:
        return [ordered]
    out: list[list[str]] = []
    for w in ordered:
        if out and (parse_iso(w).timestamp() - parse_iso(out[-1][-1]).timestamp()) / step <= resolve_after:
            out[-1].append(w)
        else:
            out.append([w])
    return out


def _end(window: str | None, step: int | None) -> str | None:
    if not window or not step:
        return window
    return iso_utc(datetime.fromtimestamp(parse_iso(window).timestamp() + step, tz=timezone.utc))


def track(audit_name: str, findings: list[Finding], stored: list[Incident], *, window_seconds: int | None,
          audited_end: str | None, resolve_after: int, score_columns: Sequence[str] = ()) -> list[Incident]:
    """This audit's incidents, continuing and resolving the ``stored`` ones (their latest state).

    Returns every incident this audit changed: new ones, continued ones (``touched``), stored open ones it
    resolved, and stored open ones whose cause it audited and did not see (their ``checked_until`` moves).
    ``audited_end``: the end of the audit's last window."""
    out: dict[str, Incident] = {}
    open_by_cause: dict[str, Incident] = {}
    for inc in stored:
        if inc.status == ACTIVE:
            open_by_cause.setdefault(inc.cause.key, inc)
    step = window_seconds
    for cause, fs in group(findings, score_columns=score_columns).items():
        timed = [f.window_start for f in fs if f.window_start]
        runs = _runs(timed, step, resolve_after) if timed else [[""]]
        for n, run in enumerate(runs):
            # findings of no window (a contract's schema rule) belong with the newest run of their cause
            mine = [f for f in fs if (f.window_start or "") in run
                    or (not f.window_start and n == len(runs) - 1)]
            prior = open_by_cause.get(cause.key)
            first = run[0] or None
            continues = prior is not None and (
                not first or not prior.last_window or not step
                or (parse_iso(first).timestamp() - parse_iso(prior.last_window).timestamp()) / step <= resolve_after)
            if continues:
                inc = replace(prior, window_findings=dict(prior.window_findings), slices=list(prior.slices),
                              kinds=list(prior.kinds), findings=[])
            else:
                inc = Incident(incident_id(audit_name, cause, first), cause, first, run[-1] or None, "warning")
            for f in mine:  # this audit's findings replace what a run of the same windows stored
                inc.window_findings[f.window_start or ""] = 0
            for f in mine:
                inc.window_findings[f.window_start or ""] += 1
                if f.slice and f.slice not in inc.slices and cause.slice is None:
                    inc.slices.append(f.slice)
                if f.kind not in inc.kinds:
                    inc.kinds.append(f.kind)
            inc.window_findings = dict(sorted(inc.window_findings.items()))
            timed_all = [w for w in inc.window_findings if w]
            inc.first_window = timed_all[0] if timed_all else None
            inc.last_window = timed_all[-1] if timed_all else None
            inc.findings = mine
            lead = max(mine, key=lambda f: (SEVERITIES.index(f.severity), f.slice is None))
            inc.severity = worst([inc.severity if continues else "warning", lead.severity]) or lead.severity
            inc.message = lead.message
            inc.status, inc.resolved_window, inc.touched = ACTIVE, None, True
            checked = [x for x in (inc.checked_until, audited_end, _end(inc.last_window, step)) if x]
            inc.checked_until = max(checked) if checked else None
            if step and inc.last_window and inc.checked_until:  # quiet long enough within this audit already
                quiet = (parse_iso(inc.checked_until).timestamp()
                         - parse_iso(_end(inc.last_window, step)).timestamp()) / step
                if quiet >= resolve_after:
                    inc.status, inc.resolved_window = RESOLVED, _end(inc.last_window, step * (resolve_after + 1))
            out[inc.incident_id] = inc
            open_by_cause[cause.key] = inc
    # open incidents this audit did not see: resolved once resolve_after windows after their last are quiet
    for inc in stored:
        if inc.status != ACTIVE or inc.incident_id in out:
            continue
        if not audited_end or not step or not inc.last_window or audited_end <= (inc.checked_until or ""):
            if audited_end and not inc.last_window:  # an audit-level cause absent from this audit
                out[inc.incident_id] = replace(inc, status=RESOLVED, resolved_window=audited_end, findings=[],
                                               touched=False)
            continue
        quiet = (parse_iso(audited_end).timestamp() - parse_iso(_end(inc.last_window, step)).timestamp()) / step
        done = quiet >= resolve_after
        out[inc.incident_id] = replace(
            inc, checked_until=audited_end, findings=[], touched=False, status=RESOLVED if done else ACTIVE,
            resolved_window=_end(inc.last_window, step * (resolve_after + 1)) if done else None)
    return sorted(out.values(), key=lambda i: (-SEVERITIES.index(i.severity), i.first_window or "", i.incident_id))


# --------------------------------------------------------------------------- acknowledgements


@dataclass(frozen=True)
class Ack:
    incident_id: str
    action: str  # ack | not_an_issue | unack
    until: datetime | None = None
    reason: str | None = None
    by: str | None = None
    at: datetime | None = None

    def active(self, now: datetime) -> bool:
        if self.action == NOT_AN_ISSUE:
            return True
        if self.action != ACK:
            return False
        until = self.until if self.until is None or self.until.tzinfo else self.until.replace(tzinfo=timezone.utc)
        return until is None or now < until

    def text(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        if self.action == NOT_AN_ISSUE:
            return f"marked not an issue{f' by {self.by}' if self.by else ''}{why}"
        until = f" until {iso_utc(self.until)[:10]}" if self.until else ""
        return f"acknowledged{until}{f' by {self.by}' if self.by else ''}{why}"


def latest_acks(acks: Iterable[Ack]) -> dict[str, Ack]:
    """The newest acknowledgement of each incident."""
    out: dict[str, Ack] = {}
    for a in sorted(acks, key=lambda a: a.at or datetime.min.replace(tzinfo=timezone.utc)):
        out[a.incident_id] = a
    return out


def suppress(incidents: list[Incident], acks: dict[str, Ack], now: datetime) -> None:
    """Mark the incidents an active acknowledgement keeps quiet."""
    for inc in incidents:
        a = acks.get(inc.incident_id)
        inc.suppressed = a.text() if a is not None and a.active(now) else None


def audit_exit_code(incidents: list[Incident]) -> int:
    """The exit code of the incidents an audit touched, without the suppressed ones."""
    return exit_code(worst(i.severity for i in incidents if i.touched and not i.suppressed))


# --------------------------------------------------------------------------- rows


def to_row(inc: Incident, common: dict[str, Any], mlflow_run_id: str | None) -> dict[str, Any]:
    """The ``incidents`` row of an incident (``spark_audit.store.TABLES``)."""
    return dict(
        incident_id=inc.incident_id, audit_name=common["audit_name"], model_version=inc.cause.model_version,
        family=inc.cause.family, subject=inc.cause.subject, slice=inc.cause.slice, title=inc.title(),
        status=inc.status, severity=inc.severity, first_window=parse_iso(inc.first_window),
        last_window=parse_iso(inc.last_window), checked_until=parse_iso(inc.checked_until),
        resolved_window=parse_iso(inc.resolved_window), windows=len([w for w in inc.window_findings if w]),
        findings=inc.finding_count, window_findings=json.dumps(inc.window_findings, sort_keys=True),
        slices=json.dumps(inc.slices), kinds=json.dumps(inc.kinds), message=inc.message,
        notified=inc.notified, audit_key=common["audit_key"], audit_run_id=common["audit_run_id"],
        mlflow_run_id=mlflow_run_id, updated_at=datetime.now(timezone.utc))


def from_row(r: dict[str, Any]) -> Incident:
    """An incident as the ``incidents`` table stored it."""
    return Incident(
        incident_id=r["incident_id"],
        cause=Cause(r["family"], r.get("subject"), r.get("model_version"), r.get("slice")),
        first_window=iso_utc(r.get("first_window")), last_window=iso_utc(r.get("last_window")),
        severity=r["severity"], status=r["status"],
        window_findings=json.loads(r.get("window_findings") or "{}"), slices=json.loads(r.get("slices") or "[]"),
        kinds=json.loads(r.get("kinds") or "[]"), checked_until=iso_utc(r.get("checked_until")),
        resolved_window=iso_utc(r.get("resolved_window")), message=r.get("message") or "",
        notified=r.get("notified"))
