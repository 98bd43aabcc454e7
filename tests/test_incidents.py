"""Incidents from findings (no Spark): one per cause, across windows and slices, carried over, resolved,
suppressed; notifications sent once per state, against a real HTTP server on the loopback address."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from spark_audit import incidents as inc_mod
from spark_audit import notify
from spark_audit.findings import Finding
from spark_audit.incidents import Ack, audit_exit_code, group, latest_acks, suppress, track

DAY = 86_400


def day(d: int) -> str:
    return f"2026-01-{d:02d}T00:00:00Z"


def drift(d: int, column="age", sev="critical", slice_=None, value=0.4, version="1"):
    return Finding(sev, "skew" if column == "age" else "drift", f"{column} moved", column, day(d), slice_, version,
                   "wasserstein", value, 0.1)


def test_the_same_cause_in_consecutive_windows_is_one_incident():
    """The demo's age skew: one critical finding per window, 7 times; one incident."""
    found = track("demo", [drift(d) for d in range(8, 15)], [], window_seconds=DAY, audited_end=day(15),
                  resolve_after=2)
    assert len(found) == 1
    [i] = found
    assert (i.first_window, i.last_window, i.finding_count, i.severity, i.status) == (day(8), day(14), 7,
                                                                                       "critical", "open")
    assert i.title() == "training/serving skew of age" and i.touched


def test_slices_moving_with_the_whole_table_are_listed_inside_it():
    """A canary took half of version 1's traffic: the overall count and each of 4 slices halved, in each
    of 4 windows, was 20 volume warnings; it is one incident naming its slices."""
    fs = []
    for d in range(1, 5):
        fs.append(Finding("warning", "volume", "halved", None, day(d), None, "1", "rows", 2500.0, 5000.0))
        for s in ("a", "b", "c", "d"):
            fs.append(Finding("warning", "volume", "halved", None, day(d), f"dev={s}", "1", "rows", 620.0, 1250.0))
    # a slice that moves alone stays its own incident
    fs.append(Finding("warning", "volume", "tripled", None, day(4), "dev=e", "1", "rows", 3000.0, 1000.0))
    found = track("canary", fs, [], window_seconds=DAY, audited_end=day(5), resolve_after=2)
    assert len(found) == 2
    whole = next(i for i in found if i.cause.slice is None)
    assert whole.finding_count == 20 and whole.slices == ["dev=a", "dev=b", "dev=c", "dev=d"]
    assert next(i for i in found if i.cause.slice == "dev=e").finding_count == 1


def test_consequences_join_the_feature_that_moved():
    fs = [drift(12, "monthly_charges"), drift(12, "churn_score", value=0.3),
          Finding("warning", "multivariate_drift", "pca", None, day(12), None, "1", "pca", 0.2, 0.1),
          Finding("critical", "missing", "NaN", "tenure", day(14), None, "1", "missing_share", 1.0, 0.05),
          Finding("error", "contract", "nanValues", "tenure", day(14), None, "1")]
    found = group(fs, score_columns=("churn_score",))
    assert {c.title() for c in found} == {"data of monthly_charges", "data of tenure"}
    assert len(found[next(c for c in found if c.subject == "monthly_charges")]) == 3


def test_an_incident_continues_in_the_next_audit_and_resolves_after_quiet_windows():
    first = track("a", [drift(1, "x"), drift(2, "x")], [], window_seconds=DAY, audited_end=day(3), resolve_after=2)
    [i] = first
    again = track("a", [drift(3, "x")], first, window_seconds=DAY, audited_end=day(4), resolve_after=2)
    assert [x.incident_id for x in again] == [i.incident_id] and again[0].finding_count == 3
    quiet = track("a", [], again, window_seconds=DAY, audited_end=day(5), resolve_after=2)
    assert quiet[0].status == "open" and not quiet[0].touched  # one quiet window: still open
    done = track("a", [], quiet, window_seconds=DAY, audited_end=day(6), resolve_after=2)
    assert done[0].status == "resolved" and done[0].resolved_window == day(6)
    later = track("a", [drift(9, "x")], done, window_seconds=DAY, audited_end=day(10), resolve_after=2)
    assert later[0].incident_id != i.incident_id  # a new incident of the same cause


def test_a_rerun_of_the_same_audit_gives_the_same_incidents():
    fs = [drift(d, "x") for d in (1, 2, 3)]
    first = track("a", fs, [], window_seconds=DAY, audited_end=day(4), resolve_after=2)
    stored = [inc_mod.from_row(inc_mod.to_row(i, {"audit_name": "a", "audit_key": "k", "audit_run_id": "r"}, None)
                               | {"first_window": None} | _times(i)) for i in first]
    again = track("a", fs, stored, window_seconds=DAY, audited_end=day(4), resolve_after=2)
    assert [(i.incident_id, i.finding_count, i.first_window, i.last_window, i.status) for i in again] == \
        [(i.incident_id, i.finding_count, i.first_window, i.last_window, i.status) for i in first]


def _times(i):
    return {"first_window": i.first_window, "last_window": i.last_window, "checked_until": i.checked_until,
            "resolved_window": i.resolved_window}


def test_an_acknowledged_incident_stays_quiet_until_its_date():
    [i] = track("a", [drift(1, "x")], [], window_seconds=DAY, audited_end=day(2), resolve_after=2)
    assert audit_exit_code([i]) == 1
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    acks = latest_acks([Ack(i.incident_id, "ack", now + timedelta(days=3), "known upstream bug", "ana", now)])
    suppress([i], acks, now)
    assert i.suppressed == "acknowledged until 2026-01-05 by ana: known upstream bug"
    assert audit_exit_code([i]) == 0
    suppress([i], acks, now + timedelta(days=4))
    assert i.suppressed is None and audit_exit_code([i]) == 1
    suppress([i], latest_acks([Ack(i.incident_id, "not_an_issue", None, "seasonal", "bo", now)]), now)
    assert i.suppressed.startswith("marked not an issue") and audit_exit_code([i]) == 0


# --------------------------------------------------------------------------- notifications


class Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_next = 0

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Hook.fail_next > 0:
            Hook.fail_next -= 1
            self.send_response(503)
            self.end_headers()
            return
        Hook.received.append((self.path, body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def hook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    Hook.received, Hook.fail_next = [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_each_state_is_sent_once_in_every_format(hook):
    targets = [notify.Target("webhook", hook + "/plain"), notify.Target("slack", hook + "/slack"),
               notify.Target("pagerduty", hook + "/pd", routing_key="rk")]
    found = track("a", [drift(1, "x", sev="warning")], [], window_seconds=DAY, audited_end=day(2), resolve_after=1)
    out = notify.send(targets, found, audit="a", run_url="http://mlflow/#/experiments/1/runs/r")
    assert out.ok and len(Hook.received) == 3 and found[0].notified == "open:warning"
    by = dict(Hook.received)
    assert by["/plain"]["event"] == "opened" and by["/plain"]["incident"]["incident_id"] == found[0].incident_id
    assert "MLflow run" in by["/slack"]["text"]
    assert by["/pd"]["event_action"] == "trigger" and by["/pd"]["dedup_key"] == found[0].incident_id
    assert by["/pd"]["payload"]["severity"] == "warning" and by["/pd"]["links"][0]["href"].startswith("http")
    assert notify.send(targets, found, audit="a", run_url=None).sent == []  # the same state: nothing again
    worse = track("a", [drift(2, "x", sev="critical")], found, window_seconds=DAY, audited_end=day(3),
                  resolve_after=1)
    notify.send(targets[:1], worse, audit="a", run_url=None)
    assert Hook.received[-1][1]["event"] == "worsened"
    gone = track("a", [], worse, window_seconds=DAY, audited_end=day(4), resolve_after=1)
    notify.send(targets, gone, audit="a", run_url=None)
    assert [b["event_action"] for p, b in Hook.received[-3:] if p == "/pd"] == ["resolve"]


def test_a_failing_target_is_retried_reported_and_tried_again_later(hook):
    target = notify.Target("webhook", hook + "/plain", retries=2)
    found = track("a", [drift(1, "x")], [], window_seconds=DAY, audited_end=day(2), resolve_after=2)
    Hook.fail_next = 2  # fails twice, then recovers: the third attempt lands
    waits = []
    out = notify.send([target], found, audit="a", run_url=None, sleep=waits.append)
    assert out.ok and waits == [0.5, 1.0] and len(Hook.received) == 1
    found2 = track("a", [drift(1, "y")], [], window_seconds=DAY, audited_end=day(2), resolve_after=2)
    Hook.fail_next = 10  # down for good: reported, the incident not marked sent
    out = notify.send([target], found2, audit="a", run_url=None, sleep=lambda s: None)
    assert not out.ok and "503" in out.failed[0][2] and found2[0].notified is None
    Hook.fail_next = 0  # back up: the next audit sends it
    assert notify.send([target], found2, audit="a", run_url=None).sent and found2[0].notified == "open:critical"


def test_a_suppressed_incident_sends_nothing(hook):
    found = track("a", [drift(1, "x")], [], window_seconds=DAY, audited_end=day(2), resolve_after=2)
    found[0].suppressed = "marked not an issue"
    assert notify.send([notify.Target("webhook", hook)], found, audit="a", run_url=None).sent == []
    assert Hook.received == []
