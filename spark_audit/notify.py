"""Notifications: an incident that opens, worsens or resolves reaches a person once.

The spec's ``notify`` section lists targets: a plain JSON webhook, a Slack incoming webhook, PagerDuty's
Events API v2. Each incident's state (``open:<severity>`` or ``resolved``) is sent when it differs from
the state last sent (kept in the ``incidents`` table's ``notified``), so re-running an audit sends
nothing new; a suppressed incident (acknowledged, not an issue) sends nothing. Delivery is retried with
backoff; a target that still fails is reported, its incidents keep their old ``notified`` state (the next
audit tries again), and the audit's results, already written, are never touched by it.

Plain ``urllib`` over HTTP(S): no client library for three small JSON posts.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spark_audit.findings import SEVERITIES
from spark_audit.incidents import RESOLVED, Incident

EVENTS = ("opened", "worsened", "resolved")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PD_SEVERITY = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}


@dataclass(frozen=True)
class Target:
    """One notification target of the spec: ``kind`` webhook, slack or pagerduty; ``min_severity``: the
    mildest incident it hears of (resolutions of those included)."""

    kind: str
    url: str
    routing_key: str | None = None  # PagerDuty's integration key
    min_severity: str = "warning"
    timeout: float = 10.0
    retries: int = 3


@dataclass
class Delivery:
    """What a notification run did: per target, the events sent and the failures (with their error)."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (target url, incident id, event)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (target url, incident id, error)

    @property
    def ok(self) -> bool:
        return not self.failed


def event_of(inc: Incident) -> str | None:
    """The event an incident's state is, against the state last sent (None: nothing to send)."""
    if inc.suppressed or inc.state == inc.notified:
        return None
    if inc.status == RESOLVED:
        return "resolved" if inc.notified else None  # never announced: its end is not news either
    if inc.notified is None or inc.notified == RESOLVED:
        return "opened"
    return "worsened" if _rank(inc.severity) > _rank(inc.notified.split(":", 1)[1]) else None


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def payload(target: Target, inc: Incident, event: str, *, audit: str, run_url: str | None) -> dict[str, Any]:
    """The body a target receives for one incident event."""
    summary = f"[{inc.severity.upper()}] {audit}: {inc.title()} {event}"
    detail = {"incident_id": inc.incident_id, "event": event, "audit": audit, "status": inc.status,
              "severity": inc.severity, "title": inc.title(), "model_version": inc.cause.model_version,
              "slice": inc.cause.slice, "first_window": inc.first_window, "last_window": inc.last_window,
              "windows": len([w for w in inc.window_findings if w]), "findings": inc.finding_count,
              "slices": inc.slices, "message": inc.message, "run_url": run_url}
    if target.kind == "slack":
        link = f" <{run_url}|MLflow run>" if run_url and run_url.startswith("http") else ""
        text = f"*{summary}*\n{inc.text()}\n> {inc.message}{link}"
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    if target.kind == "pagerduty":
        body: dict[str, Any] = {"routing_key": target.routing_key, "dedup_key": inc.incident_id,
                                "event_action": "resolve" if event == "resolved" else "trigger"}
        if event != "resolved":
            body["payload"] = {"summary": summary[:1024], "source": audit, "severity": PD_SEVERITY[inc.severity],
                               "component": inc.cause.subject or inc.cause.family, "custom_details": detail}
        if run_url and run_url.startswith("http"):
            body["links"] = [{"href": run_url, "text": "MLflow run"}]
        return body
    return {"event": event, "incident": detail}


def post(url: str, body: dict[str, Any], timeout: float) -> None:
    """POST ``body`` as JSON; raises on a transport error or a status outside 2xx."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the spec's own URL
        if not 200 <= resp.status < 300:
            raise urllib.error.HTTPError(url, resp.status, resp.reason, resp.headers, None)


def send(targets: list[Target], incidents: list[Incident], *, audit: str, run_url: str | None,
         sleep: Callable[[float], None] = time.sleep, poster: Callable[..., None] = post) -> Delivery:
    """Send every incident's event to every target that hears of it; each delivered incident's
    ``notified`` becomes its state (only if every target that should hear of it did)."""
    out = Delivery()
    for inc in incidents:
        event = event_of(inc)
        if event is None:
            continue
        delivered = True
        for t in targets:
            if SEVERITIES.index(inc.severity) < SEVERITIES.index(t.min_severity):
                continue
            error = None
            for attempt in range(t.retries + 1):
                try:
                    poster(t.url, payload(t, inc, event, audit=audit, run_url=run_url), t.timeout)
                    error = None
                    break
                except (OSError, urllib.error.URLError, ValueError) as e:
                    error = f"{type(e).__name__}: {e}"
                    if attempt < t.retries:
                        sleep(0.5 * 2**attempt)
            if error is None:
                out.sent.append((t.url, inc.incident_id, event))
            else:
                out.failed.append((t.url, inc.incident_id, error))
                delivered = False
        if delivered:
            inc.notified = inc.state
    return out
