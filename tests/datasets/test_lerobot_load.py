"""Slow: lerobot's own `LeRobotDataset(repo_id, root=OUT)` loads our LeRobot v3.0 export.

lerobot is not a dependency of playworld (its torch pins conflict with ours), so this test makes a
scratch venv under ~/.cache/playworld/lerobot-venv: ``pip install --no-deps`` lerobot and its
light dependencies (HF datasets, pandas, draccus...), with the shared interpreter's packages
(torch, PyAV, pyarrow) reached through a ``.pth`` file rather than reinstalled. It skips, saying
why, where that venv cannot import lerobot. Known case (2026-12, Python 3.11, torch 2.13 CPU):
lerobot >= 0.5 needs Python >= 3.12; lerobot 0.4.x imports torchvision at module level, and
PyPI's torchvision 0.28 wheel is a CUDA build whose ``_C`` extension links libtorch_cuda.so,
absent from the CPU torch wheel (``RuntimeError: operator torchvision::nms does not exist``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

VENV = Path.home() / ".cache" / "playworld" / "lerobot-venv"
LIGHT_DEPS = [
    "datasets",
    "pandas",
    "draccus",
    "dill",
    "multiprocess",
    "xxhash",
    "mergedeep",
    "pyyaml-include",
    "toml",
    "typing-inspect",
    "mypy-extensions",
    "jsonlines",
    "einops",
    "termcolor",
]
LOAD = """
import json, sys
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("playworld/export", root=sys.argv[1], video_backend="pyav")
out = {"len": len(ds), "episodes": ds.num_episodes, "fps": ds.fps, "rows": []}
for i in range(len(ds)):
    item = ds[i]
    row = {k: np.asarray(v).tolist() for k, v in item.items() if k in ("observation.state", "action", "episode_index")}
    row["front"] = (np.asarray(item["observation.images.front"]) * 255).round().astype(int).tolist()
    out["rows"].append(row)
json.dump(out, open(sys.argv[2], "w"))
"""


def lerobot_python() -> Path:
    """The scratch venv's interpreter, made on first use; skips with the reason it fails."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        site = subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # The shared interpreter's packages (torch, av, pyarrow, numpy), after the venv's own.
        Path(site, "zz_playworld_shared.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        spec = "lerobot" if sys.version_info >= (3, 12) else "lerobot<0.5"
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--no-deps", spec, "torchvision", *LIGHT_DEPS],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if r.returncode:
            pytest.skip(f"cannot install lerobot in a scratch venv: {r.stderr.strip()[-300:]}")
    r = subprocess.run(
        [str(py), "-c", "from lerobot.datasets.lerobot_dataset import LeRobotDataset"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"lerobot does not import in the scratch venv {VENV}: {last}")
    return py


def test_lerobot_loads_the_export(tmp_path: Path) -> None:
    from test_interop import make_store, psnr

    py = lerobot_python()
    data = make_store(tmp_path / "play")
    from playworld.datasets.interop import export_store

    export_store("lerobot", tmp_path / "play", tmp_path / "le")
    r = subprocess.run(
        [str(py), "-c", LOAD, str(tmp_path / "le"), str(tmp_path / "out.json")],
        capture_output=True,
        text=True,
        timeout=900,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())
    assert (got["len"], got["episodes"], got["fps"]) == (39, 3, 15)
    rows = got["rows"]
    np.testing.assert_array_equal(
        np.array([r["observation.state"] for r in rows], np.float32), data["observation.state"]
    )
    np.testing.assert_array_equal(np.array([r["action"] for r in rows], np.float32), data["action"])
    front = np.array([r["front"] for r in rows], np.uint8).transpose(0, 2, 3, 1)  # CHW -> HWC
    assert psnr(front, data["observation.images.front"]) >= 35
