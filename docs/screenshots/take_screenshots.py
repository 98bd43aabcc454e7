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

The plain ``chromium --screenshot`` flag renders MLflow's React app too, but cannot close the MLflow Assistant
panel that MLflow opens on a loopback server's first visit, nor wait for a given text: hence the protocol.
Set SPARK_LOCAL_IP=127.0.0.1 on machines whose hostname does not resolve (the demo starts Spark).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"
EXPERIMENT = "spark-audit-demo"
MODEL = "spark-audit-demo-churn"
AUDIT = "churn-demo"

# Before any page script: MLflow's Assistant stays closed (it opens itself once per browser profile on a loopback
# server, and its floating button is hidden too), the UI starts in its "Model training" mode, and the charts'
# Plotly toolbars (shown as if hovered in a headless browser) are hidden.
INIT_SCRIPT = r"""
try {
  localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
  localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
  localStorage.setItem('mlflow.workflowType_v1', '"machine_learning"');
} catch (e) {}
document.addEventListener('DOMContentLoaded', () => {
  const s = document.createElement('style');
  s.textContent = '[data-assistant-ui], .modebar-container { display: none !important; }';
  document.head.appendChild(s);
});
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- Chromium over the DevTools pipe


class Chromium:
    """Headless Chromium driven through ``--remote-debugging-pipe`` (JSON messages separated by NUL on fds 3/4)."""

    def __init__(self, binary: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="spark-audit-shots-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds() -> None:  # runs in the child: its fd 3 reads our commands, fd 4 writes its answers
            import fcntl
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)  # out of the way of 3 and 4 first
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(a, 3)  # inheritable; every other descriptor of ours is close-on-exec
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--mute-audio",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "--window-size=1400,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child_fds, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.page("Page.enable")
            self.page("Page.addScriptToEvaluateOnNewDocument", source=INIT_SCRIPT)
        except Exception:
            self.close()
            raise

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:  # an answer; events are not needed
                    with self._cond:
                        self._answers[msg["id"]] = msg
                        self._cond.notify_all()

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while mid not in self._answers:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise RuntimeError(f"Chromium gave no answer to {method}")
                self._cond.wait(left)
            answer = self._answers.pop(mid)
        if "error" in answer:
            raise RuntimeError(f"Chromium: {method}: {answer['error']}")
        return answer.get("result", {})

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def evaluate(self, expression: str):
        res = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails'].get('text')}: {expression[:80]}")
        return res.get("result", {}).get("value")

    def load(self, url: str, width: int, height: int, ready: str, timeout: float = 60.0, settle: float = 1.5) -> None:
        """Open URL in a fresh document at WIDTHxHEIGHT and wait until the JS expression READY is true."""
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.page("Page.navigate", url="about:blank")
        self.page("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(f"Boolean({ready})"):
                    break
            except RuntimeError:
                pass  # the document is still being replaced
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: not ready after {timeout:.0f}s ({ready})")
            time.sleep(0.5)
        time.sleep(settle)  # charts animate, fonts and images arrive

    def mouse(self, kind: str, x: float, y: float, buttons: int = 1) -> None:
        self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", buttons=buttons, clickCount=1)

    def click(self, x: float, y: float) -> None:
        self.mouse("mouseMoved", x, y, 0)
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y, 0)

    def drag(self, x: float, y: float, to_x: float, to_y: float, steps: int = 10) -> None:
        self.mouse("mouseMoved", x, y, 0)
        self.mouse("mousePressed", x, y)
        for i in range(1, steps + 1):
            self.mouse("mouseMoved", x + (to_x - x) * i / steps, y + (to_y - y) * i / steps)
            time.sleep(0.02)
        self.mouse("mouseReleased", to_x, to_y, 0)

    def center(self, js_element: str) -> tuple[float, float]:
        """The viewport centre of the element that the JS expression JS_ELEMENT finds."""
        box = self.evaluate(f"(() => {{ const e = {js_element}; if (!e) return null;"
                            " e.scrollIntoView({block: 'nearest'}); const r = e.getBoundingClientRect();"
                            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if not box:
            raise RuntimeError(f"no element: {js_element}")
        return box[0], box[1]

    def type_text(self, text: str) -> None:
        self.page("Input.insertText", text=text)

    def screenshot(self, path: Path, clip: dict | None = None) -> None:
        params = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        data = self.page("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 - it may be gone already
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


# --------------------------------------------------------------------------- the demo and the MLflow server


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found (install the package: pip install -e .)")
    return found


def ensure_demo(home: Path) -> None:
    if (home / "demo_audit.yaml").exists() and (home / "mlflow.db").exists():
        log(f"using the demo already in {home}")
        return
    log(f"running the demo into {home} (starts Spark: a few minutes)")
    env = {**os.environ}
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    subprocess.run([tool("spark-audit"), "demo", "--home", str(home), "--quiet"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, home: Path, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "mlflow-server.log"
        self._log = open(self.log_path, "wb")
        # The demo's runs store their artifacts under file://HOME/mlartifacts (the experiment's artifact
        # location), which the server reads directly; --artifacts-destination only serves runs made through it.
        self.proc = subprocess.Popen(
            [tool("mlflow"), "server", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
             "--artifacts-destination", str(home / "mlartifacts"), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"mlflow server on {self.url} did not answer in {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server and its uvicorn worker
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


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
    versions = client.search_model_versions(f"name='{MODEL}'")
    if not versions:
        sys.exit(f"no registered model {MODEL!r}")
    return {"experiment": exp.experiment_id, "runs": audit_runs,
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


# The run's charts: the two injected problems (monthly_charges drift from 01-12, tenure_months all NaN on 01-14),
# the dataset drift share, and the model's accuracy then its label-free estimate.
CHARTS = (r"^(drift\.(monthly_charges|churn_score|share)|profile\.missing_share\.tenure_months"
          r"|quality\.accuracy|quality_estimated\.roc_auc)$")


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

        def widen_run_names() -> None:  # drag the Run Name column's edge so the names show whole
            x, y = browser.center("document.querySelector('.ag-header-cell[col-id=\"attributes.`Run Name`\"]"
                                  " .ag-header-cell-resize')")
            browser.drag(x, y, x + 230, y)

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

        shot("mlflow_runs_table.png", f"{server.url}/#/experiments/{exp}/runs{ml}", (1400, 510),
             has_text(f"{AUDIT} · model 1", f"{AUDIT} · model 2"), widen_run_names)
        shot("mlflow_audit_run_overview.png", f"{run_url}{ml}", (1400, 1800),
             has_text(rname, "Parameters", "drift.statistics"), expand_description)
        shot("mlflow_audit_run_tags.png", f"{run_url}{ml}", (1400, 1000),
             has_text("About this run", "spark_audit.status"), about_panel)
        shot("mlflow_audit_run_metrics.png", f"{run_url}/model-metrics{ml}", (1400, 975),
             has_text("Add chart", "drift.age.drifted"), chart_selection)
        shot("mlflow_audit_run_findings_md.png", f"{run_url}/artifacts/spark_audit/findings.md{ml}", (1400, 900),
             has_text("spark_audit/findings.md", "severity", "CRITICAL"))
        shot("mlflow_audit_run_drift_chart.png", f"{run_url}/artifacts/spark_audit/drift_over_windows.png{ml}",
             (1400, 660), "document.querySelector('img[src^=\"blob:\"]')?.naturalWidth > 0")
        shot("mlflow_model_versions.png", f"{server.url}/#/models/{MODEL}{ml}", (1900, 690),
             has_text("Version 1", "Version 2", "audit_status", "audit_summary"))
        version = run.data.tags.get("model_version", "1")
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
