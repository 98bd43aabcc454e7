"""A headless Chromium driven through the Chrome DevTools protocol on a pipe (no Python package needed), and
``mlflow server`` on a demo's SQLite store: shared by the README's screenshot script and the browser test.

Chromium is Debian's package (``apt-get install -y chromium``). It starts with a new empty profile, as a new
user's browser does, and without background networking (on a closed network Chromium's own connections to
Google's hosts are refused, many at a time, and slow every page down).
"""

from __future__ import annotations

import base64
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

# Before any page script: the charts' Plotly toolbars (shown as if hovered in a headless browser) are hidden.
# Nothing else is set: MLflow's local storage stays as a fresh browser has it.
INIT_SCRIPT = r"""
document.addEventListener('DOMContentLoaded', () => {
  const s = document.createElement('style');
  s.textContent = '.modebar-container { display: none !important; }';
  document.head.appendChild(s);
});
"""

FLAGS = ("--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--mute-audio", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-sync", "--disable-quic",
         "--disable-background-networking", "--disable-component-update")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


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
            [binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "--window-size=1400,900",
             "about:blank"],
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
        self.wait_for(ready, timeout, url)
        time.sleep(settle)  # charts animate, fonts and images arrive

    def wait_for(self, ready: str, timeout: float = 60.0, what: str = "the page") -> None:
        """Wait until the JS expression READY is true."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(f"Boolean({ready})"):
                    break
            except RuntimeError:
                pass  # the document is still being replaced
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not ready after {timeout:.0f}s ({ready})")
            time.sleep(0.5)

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


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found (install the package: pip install -e .)")
    return found


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
