"""Debian's headless chromium, driven over the DevTools protocol: open a page, wait until it is
up, collect console messages and take a screenshot (a test helper, imported by test_web.py).

`chromium --screenshot` alone shoots at the load event, before a WebAssembly app such as rerun's
viewer has started (and `--virtual-time-budget` does not wait for wasm compilation), hence CDP.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

# rerun's page: the wasm app shows `#the_canvas_id` (class "visible") once it runs, and puts
# loading progress or a load error in `#center_text`.
READY_JS = """(() => {
  const c = document.getElementById('the_canvas_id');
  const t = document.getElementById('center_text');
  return JSON.stringify({canvas: !!c && c.classList.contains('visible') && c.width > 0,
                         loading: !!t && !t.classList.contains('hidden'),
                         text: t ? t.innerText.slice(0, 300) : ''});
})()"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    """One headless chromium tab over CDP (websockets' sync client)."""

    def __init__(self, width: int = 1280, height: int = 800) -> None:
        from websockets.sync.client import connect

        exe = chromium()
        if exe is None:
            raise RuntimeError("chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        port = _free_port()
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--no-first-run",
                # software WebGL (SwiftShader): there is no GPU here
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                f"--remote-debugging-port={port}",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        target = None
        while target is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    target = next((t for t in json.load(r) if t["type"] == "page"), None)
            except OSError:
                pass
            if target is None:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("headless chromium did not start its DevTools endpoint")
                time.sleep(0.2)
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(
            connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        )
        self.ids = itertools.count(1)
        self.console: list[dict[str, Any]] = []  # {level, text}
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(method)

    def _event(self, msg: dict[str, Any]) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            self.console.append({"level": p["type"], "text": text})
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "")
            self.console.append({"level": "exception", "text": text})
        elif method == "Log.entryAdded":
            e = p["entry"]
            text = e["text"] + (f" ({e['url']})" if e.get("url") else "")
            self.console.append({"level": e["level"], "text": text})

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def evaluate(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    def open(self, url: str, ready_js: str = READY_JS, timeout: float = 90.0) -> dict[str, Any]:
        """Navigate and poll `ready_js` until ready: a JSON object with `ready`, or with
        `canvas` and `loading` (rerun's page); returns the last poll, with `ready` and
        `seconds`."""
        t0 = time.monotonic()
        self.call("Page.navigate", url=url)
        state: dict[str, Any] = {}
        while time.monotonic() - t0 < timeout:
            state = json.loads(self.evaluate(ready_js) or "{}")
            if state.get("ready") or (state.get("canvas") and not state.get("loading")):
                state["ready"] = True
                break
            time.sleep(0.5)
        state.setdefault("ready", False)
        state["seconds"] = round(time.monotonic() - t0, 1)
        return state

    def wait(self, seconds: float) -> None:
        """Let the page run (collecting console events) for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.evaluate("1")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> int:
        data = base64.b64decode(
            self.call("Page.captureScreenshot", timeout=120.0, format="png")["data"]
        )
        path.write_bytes(data)
        return len(data)

    def close(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
