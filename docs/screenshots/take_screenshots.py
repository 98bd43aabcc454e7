"""Screenshots of the demo audit in the MLflow UI, for the README (docs/images/*.png).

    .venv/bin/python docs/screenshots/take_screenshots.py [--home spark-audit-home]

1. runs ``spark-audit demo --home DIR --quiet`` unless DIR already holds a demo (demo_audit.yaml and mlflow.db);
2. starts ``mlflow server`` on the demo's SQLite store, on 127.0.0.1 and a free port (the demo's runs keep their
   artifacts in ``file://DIR/mlartifacts``, which the server reads for the artifact views);
3. finds the experiment, the two audit runs and the registered model through ``MlflowClient``;
4. drives headless Chromium (Debian's ``chromium`` package: ``apt-get install -y chromium``) through the Chrome
   DevTools protocol on a pipe (no extra Python package): each page is loaded, awaited until its content shows,
   and captured as a PNG of a fixed size;
5. renders ``spark-audit compare DIR/demo_audit.yaml`` as a terminal-like PNG with the same browser;
6. stops the server and the browser, and prints the files it wrote.

The browser starts with a new empty profile and MLflow's defaults: nothing is put in its local storage and no
column is widened, so the pictures show what a new user sees when following the links spark-audit prints (they
carry ``?workflowType=machine_learning``, which MLflow 3 reads to open its runs view rather than the GenAI one).
The plain ``chromium --screenshot`` flag renders MLflow's React app too, but cannot wait for a given text nor
click: hence the protocol.
Set SPARK_LOCAL_IP=127.0.0.1 on machines whose hostname does not resolve (the demo starts Spark).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Chromium, MlflowServer, tool  # noqa: E402 - beside this script

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"
EXPERIMENT = "spark-audit-demo"
MODEL = "spark-audit-demo-churn"
AUDIT = "churn-demo"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the demo


def ensure_demo(home: Path) -> None:
    if (home / "demo_audit.yaml").exists() and (home / "mlflow.db").exists():
        log(f"using the demo already in {home}")
        return
    log(f"running the demo into {home} (starts Spark: a few minutes)")
    env = {**os.environ}
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    subprocess.run([tool("spark-audit"), "demo", "--home", str(home), "--quiet"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def find_ids(tracking_uri: str) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        sys.exit(f"no experiment {EXPERIMENT!r}: is this a demo home?")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=200)
    audit_runs = {}
    for version in ("1", "2"):
        prefix = f"{AUDIT} · model {version} ·"
        named = [r for r in runs if (r.info.run_name or "").startswith(prefix)]
        if not named:
            sys.exit(f"no run named {prefix!r}... in {EXPERIMENT!r}")
        audit_runs[version] = named[0]  # the newest
    gates = [r for r in runs if (r.info.run_name or "").startswith(f"{AUDIT} gate ")]
    if not gates:
        sys.exit(f"no gate run {AUDIT} gate ... in {EXPERIMENT!r}")
    versions = client.search_model_versions(f"name='{MODEL}'")
    if not versions:
        sys.exit(f"no registered model {MODEL!r}")
    return {"experiment": exp.experiment_id, "runs": audit_runs, "gate": gates[0],
            "versions": sorted(versions, key=lambda v: int(v.version))}


# --------------------------------------------------------------------------- the pages


def has_text(*texts: str) -> str:
    """A JS test: the page shows all TEXTS and no loading spinner."""
    checks = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
    return f"document.body && {checks} && !document.querySelector('[aria-busy=\"true\"], .anticon-loading')"


def by_text(selector: str, text: str) -> str:
    """A JS expression: the first element matching SELECTOR whose text is TEXT."""
    return (f"[...document.querySelectorAll({json.dumps(selector)})]"
            f".find(e => e.innerText.trim() === {json.dumps(text)})")


def terminal_html(command: str, output: str) -> str:
    return f"""<!doctype html><meta charset="utf-8"><style>
body {{ margin: 0; background: #0d1117; }}
#term {{ display: inline-block; margin: 0; padding: 18px 22px 20px; background: #0d1117; color: #d6dde6;
  font: 14px/1.45 "DejaVu Sans Mono", "Liberation Mono", monospace; white-space: pre; }}
.prompt {{ color: #7ee787; }} .cmd {{ color: #ffffff; }}
</style><div id="term"><span class="prompt">$</span> <span class="cmd">{html.escape(command)}</span>
{html.escape(output.rstrip())}
<span class="prompt">$</span></div>"""


# The run's charts: the injected problems (monthly_charges drift from 01-12, tenure_months all NaN on 01-14, age
# bucketed in training), the dataset drift share, and the model's accuracy then its label-free estimate.
CHARTS = (r"^(drift\.(monthly_charges|share)|missing_share\.tenure_months|skew\.age"
          r"|quality\.accuracy|quality_estimated\.accuracy)$")


def take(home: Path, shown_home: str, chromium: str, out_dir: Path) -> tuple[list[Path], list[str]]:
    written: list[Path] = []
    failed: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="spark-audit-shots-"))
    server = browser = None
    try:
        # the version comparison first: it reads the result tables, not MLflow
        compare = subprocess.run([tool("spark-audit"), "compare", str(home / "demo_audit.yaml")], check=True,
                                 capture_output=True, text=True).stdout
        server = MlflowServer(home, work)
        browser = Chromium(chromium)
        server.wait()
        log(f"mlflow server on {server.url}")
        ids = find_ids(server.url)
        exp, run = ids["experiment"], ids["runs"]["1"]
        rid, rname = run.info.run_id, run.info.run_name
        run_url = f"{server.url}/#/experiments/{exp}/runs/{rid}"
        ml = "?workflowType=machine_learning"  # the UI's "Model training" mode

        def shot(name: str, url: str, size: tuple[int, int], ready: str, act=None) -> None:
            """Load URL at SIZE, wait for READY, do ACT (clicks, typing; may return a clip), save docs/images/NAME."""
            path = out_dir / name
            try:
                browser.load(url, *size, ready)
                clip = act() if act else None
                browser.mouse("mouseMoved", 1, size[1] - 1, 0)  # no hover effects
                time.sleep(1.0)
                browser.screenshot(path, clip)
            except Exception as e:  # noqa: BLE001 - one page failing leaves the others
                failed.append(f"{name}: {e}")
                log(f"  FAILED {name}: {e}")
                return
            written.append(path)
            log(f"  {name}: {url}")

        def expand_description() -> None:
            browser.click(*browser.center("document.querySelector('[data-testid=\"show-comment-toggle\"]')"))
            time.sleep(1.0)

        def about_panel() -> dict:
            """Scroll the run page sideways to the "About this run" panel (the summary's long lines push it past
            the window's right edge) and clip it, down to its "Registered models"."""
            return browser.evaluate("""(() => {
              const heading = [...document.querySelectorAll('*')].find(e => e.childElementCount === 0
                && e.textContent.trim() === 'About this run');
              let box = heading;
              while (box && !box.innerText.includes('Registered models')) box = box.parentElement;
              let scroller = box.parentElement;
              while (scroller && scroller.scrollWidth <= scroller.clientWidth + 2) scroller = scroller.parentElement;
              if (scroller) scroller.scrollLeft = scroller.scrollWidth;
              const r = box.getBoundingClientRect();
              const bottom = Math.min(r.bottom, window.innerHeight);
              return {x: Math.max(0, r.x - 16), y: Math.max(0, r.y - 16), width: r.width + 32,
                      height: bottom - Math.max(0, r.y - 16) + 8};
            })()""")

        def chart_selection() -> None:
            browser.click(*browser.center("document.querySelector('button[aria-label=\"Configure charts\"]')"))
            time.sleep(0.7)
            browser.click(*browser.center(by_text("[role=menuitemcheckbox]", "Time (wall)")))  # dates, not steps
            time.sleep(0.7)
            for kind in ("keyDown", "keyUp"):
                browser.page("Input.dispatchKeyEvent", type=kind, key="Escape", code="Escape",
                             windowsVirtualKeyCode=27)
            time.sleep(0.5)
            browser.click(*browser.center("document.querySelector('input[placeholder=\"Search metric charts\"]')"))
            browser.type_text(CHARTS)
            time.sleep(2.0)

        shot("mlflow_runs_table.png", f"{server.url}/#/experiments/{exp}{ml}", (1400, 510),
             has_text(f"{AUDIT} · model 1", f"{AUDIT} · model 2"))
        shot("mlflow_audit_run_overview.png", f"{run_url}{ml}", (1400, 1800),
             has_text(rname, "Parameters", "drift.statistics", "INC-"), expand_description)
        shot("mlflow_audit_run_tags.png", f"{run_url}{ml}", (1400, 1000),
             has_text("About this run", "spark_audit.status"), about_panel)
        shot("mlflow_audit_run_metrics.png", f"{run_url}/model-metrics{ml}", (1400, 975),
             has_text("Add chart", "drift.age"), chart_selection)
        shot("mlflow_audit_run_findings_md.png", f"{run_url}/artifacts/spark_audit/findings.md{ml}", (1400, 900),
             has_text("spark_audit/findings.md", "severity", "CRITICAL"))
        shot("mlflow_audit_run_drift_chart.png", f"{run_url}/artifacts/spark_audit/drift_over_windows.png{ml}",
             (1400, 660), "document.querySelector('img[src^=\"blob:\"]')?.naturalWidth > 0")
        gate = ids["gate"]
        shot("mlflow_gate_run.png", f"{server.url}/#/experiments/{exp}/runs/{gate.info.run_id}{ml}", (1400, 1100),
             has_text(gate.info.run_name, "FAIL: model 2 may not replace"), expand_description)
        shot("mlflow_model_versions.png", f"{server.url}/#/models/{MODEL}{ml}", (1900, 690),
             has_text("Version 1", "Version 2", "audit_status", "audit_summary"))
        version = "2"  # the version the gate failed: its description links its audit and its gate
        shot("mlflow_model_version.png", f"{server.url}/#/models/{MODEL}/versions/{version}{ml}", (1400, 820),
             has_text(f"Version {version}", "audit_status", "audit_summary"))

        page = work / "compare.html"
        page.write_text(terminal_html(f"spark-audit compare {shown_home}/demo_audit.yaml", compare))
        shot("spark_audit_compare.png", page.as_uri(), (2000, 1000), "document.fonts.status === 'loaded'",
             lambda: browser.evaluate("(() => { const r = document.getElementById('term').getBoundingClientRect();"
                                      " return {x: 0, y: 0, width: Math.ceil(r.width), height: Math.ceil(r.height)};"
                                      " })()"))
    finally:
        if browser:
            browser.close()
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return written, failed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", default="spark-audit-home", help="the demo's folder (made by the demo if missing)")
    p.add_argument("--out", default=str(IMAGES), help="where the PNGs go (default: docs/images)")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium",
                   help="Chromium binary (Debian: apt-get install -y chromium)")
    args = p.parse_args()
    if not Path(args.chromium).exists():
        sys.exit(f"no Chromium at {args.chromium}: apt-get install -y chromium")
    home = Path(args.home).resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ensure_demo(home)
    written, failed = take(home, args.home.rstrip("/"), args.chromium, out)
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    for f in failed:
        print(f"not written: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
