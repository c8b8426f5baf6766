"""`playworld view --web` in Debian's headless chromium: the page loads, a screenshot is kept.

The screenshot goes to `$PLAYWORLD_ARTIFACTS` (default `out/test-artifacts/`) as
`viewer_web.png`. Console errors allowed: WebGL/WebGPU notices (no GPU here: the page falls back
to SwiftShader) and failed fetches of internet hosts (the page asks for a web font; the viewer
checks for updates, loads an examples list and sends analytics; offline all of these fail and the
viewer works without them). Any other console error or exception fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rerun")
pytest.importorskip("websockets")
from chromium import Page, chromium  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium() is None, reason="needs chromium (Debian: apt-get install chromium)"
    ),
]
ROOT = Path(__file__).resolve().parents[2]
OFFLINE = re.compile(r"ERR_NAME_NOT_RESOLVED|ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED")
GPU = re.compile(r"webgl|webgpu|gpuadapter|wgpu|swiftshader|gl_", re.I)


def allowed(entry: dict) -> bool:
    text = entry["text"]
    if entry["level"] not in ("error", "exception"):
        return True
    if GPU.search(text):
        return True
    if OFFLINE.search(text) and "127.0.0.1" not in text.split("(")[-1]:
        return True  # a fetch of an internet host
    return text.startswith("TypeError: Failed to fetch")  # the same fetches, seen from wasm


def test_web_viewer_page_loads_in_chromium(tiny_store: Path) -> None:
    artifacts = Path(os.environ.get("PLAYWORLD_ARTIFACTS", ROOT / "out" / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["view", str(tiny_store), "--web", "--web-port", "0", "--grpc-port", "0"]
    server = subprocess.Popen(
        [sys.executable, "-m", "playworld", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("web viewer: http://127.0.0.1:"), (line, server.stderr.read())
        url = line.split(": ", 1)[1].strip()
        assert "serving 3 episodes" in server.stdout.readline()
        with Page() as page:
            state = page.open(url, timeout=120)
            assert state["ready"], state
            page.wait(8)  # the viewer fetches the data and draws
            shot = artifacts / "viewer_web.png"
            assert page.screenshot(shot) > 10_000
            console = list(page.console)
        bad = [c for c in console if not allowed(c)]
        assert not bad, bad
        from imagecodecs import png_decode

        pixels = png_decode(shot.read_bytes())
        assert pixels.shape[1] == 1280 and pixels.shape[0] > 500, pixels.shape
        # not a blank or loading screen: the viewer's panels draw many distinct colours
        colours = np.unique(pixels[..., :3].reshape(-1, 3), axis=0)
        assert len(colours) > 500, len(colours)
    finally:
        server.terminate()
        server.wait(10)
