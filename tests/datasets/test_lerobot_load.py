"""Slow: lerobot's own `LeRobotDataset(repo_id, root=OUT)` loads our LeRobot v3.0 export, frames
included.

lerobot is not a dependency of playworld (its torch pins conflict with ours), so this test makes a
scratch venv under ~/.cache/playworld/lerobot-venv: ``pip install --no-deps`` lerobot, its light
dependencies (HF datasets, pandas, draccus...) and the torchvision and torchcodec builds of the
shared interpreter's torch, with the shared interpreter's packages (torch, PyAV, pyarrow) reached
through a ``.pth`` file rather than reinstalled. It skips, saying why, where that cannot work.

What it takes (2026-12, Python 3.11, torch 2.13 CPU, lerobot 0.4.4; lerobot >= 0.5 needs
Python >= 3.12):
- Frames: lerobot 0.4's ``video_backend="pyav"`` goes through ``torchvision.io.VideoReader``,
  which torchvision removed (0.28 has no video decoding), so frames come through its default
  backend, torchcodec: torchcodec >= 0.12 supports torch >= 2.11 (0.13 here), and loads the
  system's FFmpeg shared libraries (Debian 12: FFmpeg 5.1, `libavcodec59`... in the Makefile's
  DEB_PACKAGES_SLOW); PyAV's bundled FFmpeg is not visible to it.
- torchvision must import (lerobot imports it at module level): PyPI's Linux wheels are CUDA
  builds whose C extension needs ``libc10_cuda.so``, absent from the CPU torch wheel. torchvision
  then runs without its C ops (``extension._has_ops()`` is False), except that its
  ``_meta_registrations`` registers fake kernels for ``torchvision::nms`` and ``qnms``
  unconditionally and raises "operator torchvision::nms does not exist". `PRELUDE` declares
  those two operator schemas (as torchvision's C++ would) before the import; nothing here calls
  them. The torchvision version must be the torch version's own (0.28 for 2.13), or its Python
  code meets a torch it was not written for.
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
# See the module docstring: torchvision's C ops cannot load next to the CPU torch wheel, and its
# import registers fake kernels for these two without checking that they exist.
PRELUDE = """
import torch
_torchvision_ops = torch.library.Library("torchvision", "DEF")
for _op in ("nms", "qnms"):
    _torchvision_ops.define(_op + "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
"""
LOAD = (
    PRELUDE
    + """
import json, sys
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("playworld/export", root=sys.argv[1], video_backend="torchcodec")
out = {"len": len(ds), "episodes": ds.num_episodes, "fps": ds.fps, "rows": []}
for i in range(len(ds)):
    item = ds[i]
    row = {k: np.asarray(v).tolist() for k, v in item.items() if k in ("observation.state", "action", "episode_index")}
    row["front"] = (np.asarray(item["observation.images.front"]) * 255).round().astype(int).tolist()
    out["rows"].append(row)
json.dump(out, open(sys.argv[2], "w"))
"""
)
CHECK = (
    PRELUDE
    + """
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from torchcodec.decoders import VideoDecoder
"""
)


def requirements() -> list[str]:
    """lerobot and the torchvision / torchcodec releases built for the shared torch."""
    import torch

    minor = int(torch.__version__.split(".")[1])  # torch 2.N: torchvision 0.(N+15)
    spec = "lerobot" if sys.version_info >= (3, 12) else "lerobot<0.5"
    return [spec, f"torchvision==0.{minor + 15}.*", f"torchcodec==0.{minor}.*", *LIGHT_DEPS]


def lerobot_python() -> Path:
    """The scratch venv's interpreter, made (or brought up to `requirements`) on first use;
    skips with the reason it fails."""
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
    reqs = requirements()
    recipe = VENV / "playworld-requirements.json"
    if not recipe.exists() or json.loads(recipe.read_text()) != reqs:
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--no-deps", *reqs],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if r.returncode:
            pytest.skip(f"cannot install lerobot in a scratch venv: {r.stderr.strip()[-300:]}")
        recipe.write_text(json.dumps(reqs))
    r = subprocess.run([str(py), "-c", CHECK], capture_output=True, text=True, timeout=600)
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        if "libtorchcodec" in r.stderr:
            last = (
                "torchcodec cannot load FFmpeg's shared libraries (Debian 12: apt-get install "
                "libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4)"
            )
        pytest.skip(f"lerobot cannot load videos in the scratch venv {VENV}: {last}")
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
    db = psnr(front, data["observation.images.front"])
    assert db >= 35, f"frames decoded by lerobot (torchcodec) are {db:.1f} dB off the originals"
