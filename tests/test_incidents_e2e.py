"""Incidents end to end (Spark, Delta, MLflow on SQLite, the CLI, a webhook on the loopback address): one
incident per cause, a re-run that duplicates neither incidents nor notifications, an acknowledgement that
keeps the exit code at 0 until it is taken back, and a later audit that resolves the incident."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from spark_audit import store
from spark_audit.cli import main
from spark_audit.spec import load_spec

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
DAYS, PER_DAY = 8, 300
NAN_DAYS = (3, 4)


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def setup(spark, tmp_path_factory, hook):
    tmp = tmp_path_factory.mktemp("incidents")
    rows = [(T0 + timedelta(days=d, minutes=3 * i), float("nan") if d in NAN_DAYS else float((i * 37) % 100),
             f"c{i % 3}", "ab"[i % 2]) for d in range(DAYS) for i in range(PER_DAY)]
    spark.createDataFrame(rows, "ts timestamp, x double, c string, s string").write.format("delta").save(
        str(tmp / "t"))
    spec = {"name": "inc-e2e", "source": {"path": str(tmp / "t"), "timestamp_column": "ts"},
            "window": {"size": "1 day"}, "features": ["x", "c"], "slices": ["s"],
            "reference": {"end": (T0 + timedelta(days=2)).isoformat()}, "findings": {"min_rows": 50},
            "output": {"path": str(tmp / "out")}, "mlflow": {"tracking_uri": f"sqlite:///{tmp / 'ml.db'}"},
            "notify": [{"type": "webhook", "url": hook}]}
    path = tmp / "a.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = store_reference(path)
    spec["reference"]["uri"] = uri
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def store_reference(path) -> str:
    from contextlib import redirect_stdout
    from io import StringIO
    out = StringIO()
    with redirect_stdout(out):
        assert main(["--quiet", "reference", "build", str(path)]) == 0
    return out.getvalue().split("reference logged as ")[1].split()[0]


def _audit(path, capsys, start, end) -> tuple[int, dict]:
    code = main(["--quiet", "audit", path, "--start", f"2026-05-0{start + 1}", "--end", f"2026-05-0{end + 1}",
                 "--format", "json"])
    captured = capsys.readouterr()
    assert captured.out, captured.err
    return code, json.loads(captured.out)


def test_an_incident_opens_once_is_acknowledged_and_resolves(setup, capsys, spark):
    path = setup
    capsys.readouterr()
    code, doc = _audit(path, capsys, 2, 5)
    assert code == 1
    live = [i for i in doc["incidents"] if i["in_this_audit"]]
    # x all NaN on two days, overall and in both slices: one incident, its slices inside
    nan = [i for i in live if i["subject"] == "x"]
    assert len(nan) == 1 and nan[0]["severity"] == "critical" and nan[0]["windows"] == 2
    assert sorted(nan[0]["slices"]) == ["s=a", "s=b"] and nan[0]["findings"] >= 6
    assert len(doc["findings"]) > len(live)
    opened = [m for m in Hook.received if m["incident"]["incident_id"] == nan[0]["incident_id"]]
    assert [m["event"] for m in opened] == ["opened"]
    output = load_spec(path).output
    table = store.read(spark, output, "incidents")
    before = table.count()

    # the same audit again: the same incidents, nothing sent again
    assert _audit(path, capsys, 2, 5)[0] == 1
    assert store.read(spark, output, "incidents").count() == before
    assert len([m for m in Hook.received if m["incident"]["incident_id"] == nan[0]["incident_id"]]) == 1

    # acknowledged until a date: listed, quiet, exit 0
    until = (datetime.now(timezone.utc) + timedelta(days=3)).date().isoformat()
    assert main(["--quiet", "incident", "ack", path, nan[0]["incident_id"], "--until", until,
                 "--reason", "backfill of x under way"]) == 0
    assert "acknowledged until" in capsys.readouterr().out
    code, doc = _audit(path, capsys, 2, 5)
    assert code == 0 and doc["status"] == "ok"
    again = next(i for i in doc["incidents"] if i["incident_id"] == nan[0]["incident_id"])
    assert again["suppressed"].startswith("acknowledged until") and "backfill of x" in again["suppressed"]
    assert main(["--quiet", "incident", "list", path]) == 0
    assert nan[0]["incident_id"] in capsys.readouterr().out

    # taken back; two clean days later the incident resolves, and that is sent once
    assert main(["--quiet", "incident", "unack", "--spec", path, nan[0]["incident_id"]]) == 0
    capsys.readouterr()
    code, doc = _audit(path, capsys, 5, 8)
    assert code == 0
    done = next(i for i in doc["incidents"] if i["incident_id"] == nan[0]["incident_id"])
    assert done["status"] == "resolved" and not done["in_this_audit"]
    events = [m["event"] for m in Hook.received if m["incident"]["incident_id"] == nan[0]["incident_id"]]
    assert events == ["opened", "resolved"]
    rows = store.read(spark, output, "incidents").where(f"incident_id = '{nan[0]['incident_id']}'").collect()
    assert len(rows) == 1 and rows[0].status == "resolved" and rows[0].notified == "resolved"


def test_an_unknown_incident_is_a_clear_error(setup, capsys):
    assert main(["--quiet", "incident", "ack", setup, "INC-0000000000"]) == 3
    assert "no incident 'INC-0000000000'" in capsys.readouterr().err
    assert main(["--quiet", "incident", "ack", "INC-0000000000"]) == 2  # no spec given anywhere
