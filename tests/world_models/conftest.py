"""Tiny real autoplay stores for the world-model tests (session-scoped: made once)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def state_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """~700 steps of noisy autoplay, state only, ~7 episodes of ~100 steps."""
    from playworld.collection.autoplay import AutoplayConfig, autoplay

    path = tmp_path_factory.mktemp("wm") / "state.zarr"
    autoplay(path, AutoplayConfig(seed=0, noise=0.2, cameras=(), episode_steps=90), 700)
    return str(path)


@pytest.fixture(scope="session")
def frame_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two short episodes with the front camera at 32x32."""
    from playworld.collection.autoplay import AutoplayConfig, autoplay

    path = tmp_path_factory.mktemp("wm") / "front.zarr"
    # Episodes end at task-segment ends: seed 1 gives two (15 + 72 steps) at this budget.
    cfg = AutoplayConfig(
        seed=1, noise=0.2, cameras=("front",), height=32, width=32, episode_steps=10
    )
    autoplay(path, cfg, 80)
    return str(path)


def small_state_run(kind: str = "state_diffusion", steps: int = 150, **train: object) -> dict:
    """A run config for a small, fast state model."""
    return {
        "model": {"kind": kind, "width": 128, "depth": 2, "horizon": 16, "history": 4},
        "data": {"val_ratio": 0.3},
        "train": {"steps": steps, "batch_size": 128, "lr": 2e-3, "warmup_steps": 10,
                  "progress": False, "checkpoint_every": 0, "threads": 1, "ema_decay": 0.9, **train},
    }  # fmt: skip


def small_frame_run(steps: int = 150) -> dict:
    return {
        "model": {"kind": "frame_diffusion", "image_size": [32, 32], "patch": 4, "channels": [16, 32],
                  "emb_dim": 64},
        "data": {"val_ratio": 0.0},
        "train": {"steps": steps, "batch_size": 32, "lr": 2e-3, "warmup_steps": 10, "progress": False,
                  "checkpoint_every": 0, "threads": 1, "ema_decay": 0.9, "schedule": "constant"},
    }  # fmt: skip
