"""The demo's MLflow pages in a real browser: ``mlflow server`` (the pinned MLflow) on the demo's store and
Debian's headless Chromium with a new empty profile, as a new user has it. MLflow 3's UI picks its GenAI or
its classic runs view from the URL's ``workflowType`` (else from local storage, default GenAI); the links
spark-audit writes carry it, and this checks that they land on the runs view while the bare address does not.

Needs Chromium (``apt-get install -y chromium``; ``.ci/run`` installs it): skipped, saying so, without it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "screenshots"))
from browser import Chromium, MlflowServer, find_chromium  # noqa: E402 - the screenshot script's helpers

from spark_audit.demo import MODEL_NAME, UI_URL  # noqa: E402
from spark_audit.mlflow_text import experiment_link  # noqa: E402

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install -y chromium): "
                                                          "the MLflow UI is not checked in a browser")

TEXT = "document.body ? document.body.innerText : ''"


@pytest.fixture(scope="module")
def ui(demo_both, tmp_path_factory):
    spec, _, audits = demo_both
    home = Path(spec.mlflow.tracking_uri.removeprefix("sqlite:///")).parent
    server = MlflowServer(home, tmp_path_factory.mktemp("mlflow-ui"))
    try:
        server.wait()
        yield server, audits
    finally:
        server.stop()


def fresh_page(url: str, ready: str, search: tuple[str, str] | None = None) -> tuple[str, str]:
    """(the address the page ended on, its text) in a browser with a new empty profile; with SEARCH, (the
    placeholder of a search box, what to type into it) and then wait until the page shows it."""
    browser = Chromium(CHROMIUM)
    try:
        browser.load(url, 1400, 900, ready, timeout=90, settle=1.0)
        if search:
            box, typed = search
            selector = json.dumps(f'input[placeholder="{box}"]')
            browser.click(*browser.center(f"document.querySelector({selector})"))
            browser.type_text(typed)
            browser.wait_for(f"[...document.querySelectorAll('*')].filter(e => e.childElementCount === 0"
                              f" && e.textContent.trim() === {json.dumps(typed)}).length > 0", timeout=30)
        return browser.evaluate("location.href"), browser.evaluate(TEXT)
    finally:
        browser.close()


def shows(*texts: str) -> str:
    return " && ".join(f"({TEXT}).includes({t!r})" for t in texts)


def test_the_experiment_link_opens_the_runs_view_in_a_fresh_browser(ui):
    server, audits = ui
    client = MlflowClient(server.url)
    exp_id = client.get_run(audits[0].result.mlflow_run_id).info.experiment_id
    link = experiment_link(server.url, exp_id)
    href, text = fresh_page(link, shows("Run Name", "churn-demo · model 1"))
    assert "/runs" in href and "workflowType=machine_learning" in href
    assert "churn-demo · model 2" in text and "Send your first trace" not in text
    # the bare address, with nothing in local storage, opens the GenAI overview: why the links carry the query
    href, text = fresh_page(f"{server.url}/#/experiments/{exp_id}", shows("Overview", "Traces"))
    assert "workflowType=genai" in href and "Run Name" not in text


def test_the_registry_links_the_audit_run_in_the_runs_view(ui):
    server, audits = ui
    client = MlflowClient(server.url)
    audit = audits[0]
    tag = client.get_model_version(MODEL_NAME, audit.version).tags["audit_run"]
    assert tag.startswith(UI_URL)  # the demo's mlflow.ui_url; here the test's server stands in for it
    run = client.get_run(audit.result.mlflow_run_id)
    href, text = fresh_page(tag.replace(UI_URL, server.url), shows(run.info.run_name, "Model metrics"))
    assert "workflowType=machine_learning" in href
    assert "Evaluations" not in text  # the GenAI breadcrumb a bare run link gets
    # the description opens with the incidents, one per cause
    assert "INC-" in text and "training/serving skew of age" in text
    # one chart per watched series: the age skew that the findings call critical has its own, and no chart
    # is a flat threshold or a 0/1 flag
    metrics = client.get_run(audit.result.mlflow_run_id).data.metrics
    assert "skew.age" in metrics and not [k for k in metrics if k.endswith((".threshold", ".drifted"))]
    href, text = fresh_page(tag.replace(UI_URL, server.url).replace("?", "/model-metrics?"),
                            shows("Add chart"), search=("Search metric charts", "skew.age"))
    assert f"{run.info.run_name} (skew.age)" in text  # the chart's legend: this run's series
