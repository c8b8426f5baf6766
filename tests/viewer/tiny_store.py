"""Tiny play stores for the viewer and export tests, built with `PlayStore.create` directly
(imported by tests/viewer and tests/datasets; `pythonpath` in pyproject.toml)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from playworld.datasets import Feature, PlayStore

H, W = 24, 32
FEATURES = {
    "front": Feature((H, W, 3), "uint8", "image"),
    "front_t": Feature((1,), "float64", "time", units="s (capture)"),
    "joint_pos": Feature((7,), units="rad", names=tuple(f"j{i}" for i in range(7))),
    "ee_pos": Feature((3,), units="m", names=("x", "y", "z")),
    "keypoints": Feature((4, 3), "float64", units="m"),
    "t": Feature((1,), "float64", "time", units="s"),
    "action": Feature((7,), kind="action"),
    "command": Feature((8,), kind="action", units="rad, 0..1"),
}
LENGTHS = (12, 9, 15)
FPS = 10.0


def episode_data(rng: np.random.Generator, steps: int, t0: float) -> dict[str, np.ndarray]:
    """Noise frames, normal vectors; robot time from t0 at 10 Hz, cameras 40 ms behind."""
    out = {}
    t = t0 + np.arange(steps) / FPS
    for key, f in FEATURES.items():
        if f.is_image:
            out[key] = rng.integers(0, 256, (steps, *f.shape), dtype=np.uint8)
        elif key == "t":
            out[key] = t[:, None]
        elif f.kind == "time":
            out[key] = (t - 0.04)[:, None]
        else:
            out[key] = rng.normal(size=(steps, *f.shape)).astype(f.dtype)
    return out


def make_store(path: Path, lengths=LENGTHS, restart_clock: bool = True) -> Path:
    """Episodes of `lengths` steps with autoplay-like metadata (segments, success, loop).
    With `restart_clock`, episode 1 restarts its clock at 0 (a twin reset)."""
    rng = np.random.default_rng(0)
    with PlayStore.create(
        path, FEATURES, FPS, info={"keypoints": ["a", "b", "c", "d"]}, image_shard_frames=8
    ) as store:
        t0 = 100.0
        for i, n in enumerate(lengths):
            if restart_clock and i == 1:
                t0 = 0.0
            half = n // 2
            meta = {
                "source": "autoplay",
                "segments": [
                    {"task": "open_drawer", "start": 0, "end": half, "success": True},
                    {"task": "push_block", "start": half, "end": n - 1, "success": False},
                ],
                "tasks": ["open_drawer", "push_block"],
                "success": 0.5,
                "loop": {"rate_hz": 10.0, "jitter_p99_ms": 1.5, "overruns": 0, "dropped_frames": i},
            }
            store.add_episode(episode_data(rng, n, t0), meta)
            t0 += n / FPS + 1.0
    return path


def rows_per_entity(path: Path) -> tuple[Counter, dict[str, np.ndarray]]:
    """(rerun's own reader) Temporal rows per entity, and the `time` values (ns) of each, in file order."""
    rows: Counter = Counter()
    times: dict[str, list[np.ndarray]] = {}
    from rerun.chunk import RrdReader

    for chunk in RrdReader(path).stream():
        if chunk.is_static:
            continue
        rows[chunk.entity_path] += chunk.num_rows
        t = chunk.to_record_batch().column("time").cast("int64").to_numpy()
        times.setdefault(chunk.entity_path, []).append(t)
    return rows, {k: np.concatenate(v) for k, v in times.items()}
