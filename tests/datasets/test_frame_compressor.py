"""Camera frames written by a child process: the same store, and no orphan, whoever dies first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from playworld.datasets import Feature, PlayStore
from playworld.errors import StoreError

FRAME = (12, 16, 3)
FEATURES = {
    "observation.images.front": Feature(FRAME, "uint8", "image"),
    "action": Feature((2,), "float32", "action"),
}


def steps(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : FRAME[0], 0 : FRAME[1]]
    base = np.stack([x * 9, y * 13, (x + y) * 5], axis=-1)
    return [
        {
            "observation.images.front": ((base + t * 7 + rng.integers(0, 6, FRAME)) % 256).astype(
                np.uint8
            ),
            "action": rng.normal(size=2).astype(np.float32),
        }
        for t in range(n)
    ]


def record(path: Path, episodes: list[int], frame_compressor: bool) -> None:
    store = PlayStore.create(path, FEATURES, fps=10, image_shard_frames=8)
    if frame_compressor:
        store.use_frame_compressor()
    for i, n in enumerate(episodes):
        store.begin_episode()
        for s in steps(n, i):
            store.append(s)
        store.commit({"i": i})
    if frame_compressor:
        proc = store._writer.frame_compressor
        assert proc is not None and proc.keys == ["observation.images.front"]
        assert proc.copied_writes == 0, "frames were copied to the child, not read in place"
        store.close()
        assert proc._proc.poll() is not None, "the child outlived the store"
    else:
        store.close()


def shard_bytes(path: Path) -> dict[str, bytes]:
    root = path / "data" / "observation.images.front"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("c/*/0/0/0"))}


def test_same_store_as_in_process(tmp_path: Path) -> None:
    """Episodes ending mid-shard, several shards: the same shard files and statistics."""
    lengths = [5, 13, 2, 9]
    record(tmp_path / "threads.zarr", lengths, frame_compressor=False)
    record(tmp_path / "process.zarr", lengths, frame_compressor=True)
    assert shard_bytes(tmp_path / "threads.zarr") == shard_bytes(tmp_path / "process.zarr")
    a, b = PlayStore.open(tmp_path / "threads.zarr"), PlayStore.open(tmp_path / "process.zarr")
    assert a.stats == b.stats
    for i, n in enumerate(lengths):
        got = b.episode(i)["observation.images.front"][:]
        np.testing.assert_array_equal(
            got, np.stack([s["observation.images.front"] for s in steps(n, i)])
        )


def test_rows_outside_shared_buffers_go_over_the_socket(tmp_path: Path) -> None:
    from playworld.datasets.frame_compressor import FrameCompressor

    record(tmp_path / "s.zarr", [3], frame_compressor=False)
    proc = FrameCompressor(tmp_path / "s.zarr", {"cam": "data/observation.images.front"})
    try:
        shared = proc.shared_buffer("cam", (8, *FRAME))
        frames = np.stack([s["observation.images.front"] for s in steps(8, 5)])
        shared[:] = frames
        np.testing.assert_allclose(
            proc.write("cam", 0, shared[:3]), proc.write("cam", 0, frames[:3])
        )
        assert proc.copied_writes == 1
    finally:
        proc.close()
    back = PlayStore.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(back.episode(0)["observation.images.front"][:], frames[:3])


def test_child_death_fails_the_episode_and_keeps_committed_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    store = PlayStore.create(path, FEATURES, fps=10, image_shard_frames=8)
    store.use_frame_compressor()
    store.begin_episode()
    for s in steps(5, 0):
        store.append(s)
    store.commit({})
    os.kill(store._writer.frame_compressor.pid, signal.SIGKILL)
    store._writer.frame_compressor._proc.wait()
    store.begin_episode()
    with pytest.raises(StoreError, match="frame writer process stopped"):
        for s in steps(20, 1):  # a full shard is sent to the dead child
            store.append(s)
        store.commit({})
    store.close()
    back = PlayStore.open(path)
    assert len(back) == 1
    np.testing.assert_array_equal(
        back.episode(0)["observation.images.front"][:],
        np.stack([s["observation.images.front"] for s in steps(5, 0)]),
    )


def test_child_exits_when_the_recorder_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_frame_compressor import FEATURES, steps
        from playworld.datasets import PlayStore
        store = PlayStore.create({str(tmp_path / "s.zarr")!r}, FEATURES, fps=10, image_shard_frames=8)
        store.use_frame_compressor()
        store.begin_episode()
        for s in steps(3, 0):
            store.append(s)
        print(store._writer.frame_compressor.pid, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child), "the frame writer outlived the killed recorder"
    finally:
        proc.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
