"""`playworld report`: one offline HTML page from a run folder, linking only files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from playworld.cli import main
from playworld.datasets import Feature, PlayStore
from playworld.pipeline.report import build_report
from playworld.video import is_h264


def _run_folder(root: Path) -> Path:
    run = root / "run"
    store = PlayStore.create(
        run / "play.zarr",
        {"joint_pos": Feature((7,), "float32"), "action": Feature((7,), "float32", "action")},
        fps=10,
    )
    for e in range(2):
        store.begin_episode()
        for _ in range(5 + e):
            store.append({"joint_pos": np.zeros(7, np.float32), "action": np.ones(7, np.float32)})
        loop = {"ticks": 5 + e, "rate_ratio": 1.0, "jitter_p99_ms": 0.4, "overruns": 0}
        store.commit({"source": "autoplay", "loop": loop})
    store.close()
    ev = run / "policies" / "gcbc" / "eval"
    ev.mkdir(parents=True)
    tasks = {
        "open_drawer": {"success_rate": 0.5, "ci95": [0.1, 0.9], "episodes": 4},
        "press_button": {"success_rate": 1.0, "ci95": [0.5, 1.0], "episodes": 4},
    }
    overall = {"success_rate": 0.75, "ci95": [0.4, 0.93], "episodes": 8}
    chains = {"avg_len": 1.5, "success_at": {"1": 0.75}}
    (ev / "eval.json").write_text(
        json.dumps({"policy": "gcbc", "tasks": tasks, "overall": overall, "chains": chains})
    )
    dep = run / "deploy"
    dep.mkdir()
    latency = list(np.random.default_rng(0).gamma(4.0, 3.0, 200))
    (dep / "deploy.json").write_text(json.dumps({"success": 1.0, "latency_ms": latency}))
    import cv2  # an mp4v file, as OpenCV writes it: the report re-encodes it as H.264

    video = cv2.VideoWriter(str(ev / "ep.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(8):
        video.write(np.full((48, 64, 3), 30 * i, np.uint8))
    video.release()
    return run


def _links(page: str) -> list[str]:
    return re.findall(r"(?:src|href)='([^']+)'", page)


def test_report_links_only_existing_files_and_plays_in_browsers(tmp_path):
    run = _run_folder(tmp_path)
    page_path = build_report(run)
    page = page_path.read_text()
    links = _links(page)
    assert links, "the page shows no figure or video"
    for link in links:
        assert (run / link).is_file(), f"{link} does not exist"
        assert not link.startswith(("http", "/")), "the page must open offline"
    videos = [run / link for link in links if link.endswith(".mp4")]
    assert videos and all(is_h264(v) for v in videos)
    for text in ("play.zarr", "open_drawer", "Deployment", "0.75"):
        assert text in page


def test_report_of_an_empty_folder_and_a_missing_one(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no store" in build_report(empty).read_text()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "nope")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no folder" in err[0]
