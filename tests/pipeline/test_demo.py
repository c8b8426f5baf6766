"""`python -m playworld.pipeline.demo` (`make demo`): every stage on tiny budgets, and its report
in Debian's headless chromium (the page loads, every image and video resolves and loads, no
console error).

The run (`DemoConfig.quick()`, ~45 s on 2 shared cores) is shared by the slow tests of this
module. The chromium screenshot is kept in the test's tmp_path (and copied to
`$PLAYWORLD_ARTIFACTS` when that is set) as `demo_report.png`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from playworld.errors import ConfigError, PlayworldError
from playworld.pipeline.demo import DemoConfig, run
from playworld.pipeline.report import links
from playworld.video import is_h264

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("play", "world", "policies", "eval", "deploy", "report")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    pytest.importorskip("roslibpy", reason="the deploy stage needs roslibpy (the ros extra)")
    out = tmp_path_factory.mktemp("demo")
    (out / "summary.png").write_bytes(b"left by the demo before the pipeline")
    (out / "notes.txt").write_text("a file of the user's: kept")
    lines: list[str] = []
    summary = run(out, DemoConfig.quick(), say=lines.append)
    return out, summary, lines


@pytest.mark.slow
def test_every_stage_runs_and_writes_what_the_report_reads(demo_run):
    out, summary, lines = demo_run
    heads = [line for line in lines if re.match(r"\[\d/6\] ", line)]
    assert [h.split()[1].rstrip(":") for h in heads] == list(STAGES)
    assert set(STAGES) < set(summary["timings_s"]) and summary["timings_s"]["total"] > 0
    assert json.loads((out / "demo.json").read_text())["timings_s"] == summary["timings_s"]
    assert not (out / "summary.png").exists() and (out / "notes.txt").is_file()
    play = summary["play"]
    assert play["steps"] >= 1200 and play["replay_max_state_error"] == 0.0
    assert 0.9 < play["camera_rate_ratio"] < 1.1  # the camera episode is paced at 10 Hz
    world = summary["world"]
    assert world["horizons"][0] == 1 and len(world["rmse"]["all"]) == len(world["horizons"])
    assert {"scripted", "gcbc", "tether"} == set(summary["eval"])
    assert summary["eval"]["scripted"]["success_rate"] == 1.0  # the reference
    assert summary["deploy"]["policy"] == "tether"  # gcbc needs goal observations
    assert summary["deploy"]["latency_ms_p99"] > 0
    for path in (
        "play.zarr/zarr.json",
        "camera/episode_0.mp4",
        "world_model/score.json",
        "world_model/imagined.png",
        "policies/gcbc/policy/model.safetensors",
        "policies/tether/config.json",
        "eval/gcbc/eval.json",
        "deploy/deploy.json",
        "deploy/episode_0.mp4",
    ):
        assert (out / path).is_file(), path
    page = (out / "report.html").read_text()
    shown = links(page)
    assert all((out / link).is_file() for link in shown)
    assert all(is_h264(out / v) for v in shown if v.endswith(".mp4"))
    for text in ("World models", "Policies in the twin", "Deployment", "Videos", "tether"):
        assert text in page


# Every <img> decoded and every <video> with its metadata (readyState >= 1: duration and size
# known, so the browser parsed the H.264 mp4); `ready` once the page and all media are done.
MEDIA_JS = """(() => {
  const imgs = [...document.images].map(i => ({src: i.getAttribute('src'),
      ok: i.complete && i.naturalWidth > 0, done: i.complete}));
  const vids = [...document.querySelectorAll('video')].map(v => ({src: v.getAttribute('src'),
      ok: v.readyState >= 1 && v.videoWidth > 0 && v.duration > 0,
      done: v.readyState >= 1 || !!v.error,
      error: v.error ? v.error.code : null}));
  const all = imgs.concat(vids);
  return JSON.stringify({ready: document.readyState === 'complete' && all.every(m => m.done),
                         imgs, vids, title: document.title});
})()"""


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs chromium (Debian: apt-get install chromium)"
)
def test_report_opens_in_headless_chromium(demo_run, tmp_path):
    pytest.importorskip("websockets")
    from chromium import Page

    out, _, _ = demo_run
    with Page(width=1280, height=2400) as page:
        state = page.open((out / "report.html").as_uri(), ready_js=MEDIA_JS, timeout=60)
        page.wait(1)
        shot = tmp_path / "demo_report.png"
        assert page.screenshot(shot) > 10_000
        console = list(page.console)
    if os.environ.get("PLAYWORLD_ARTIFACTS"):
        dest = Path(os.environ["PLAYWORLD_ARTIFACTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "demo_report.png")
    assert state["ready"], state
    assert state["title"] == "playworld demo"
    assert len(state["imgs"]) >= 5 and len(state["vids"]) >= 2, state
    for media in state["imgs"] + state["vids"]:
        assert media["ok"], media
        assert (out / media["src"]).is_file(), media
    errors = [c for c in console if c["level"] in ("error", "exception")]
    assert not errors, errors


def test_config_and_a_failing_stage_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="counts >= 1"):
        DemoConfig(play_steps=0)
    with pytest.raises(ConfigError, match="evaluation task"):
        DemoConfig(eval_tasks=())
    with pytest.raises(PlayworldError, match="open_drawr"):
        DemoConfig(eval_tasks=("open_drawr",))
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")  # the run folder cannot be made: the demo stops at once
    proc = subprocess.run(
        [sys.executable, "-m", "playworld.pipeline.demo", "--out", str(blocked), "--quick"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: demo stage setup failed:"), proc.stderr
