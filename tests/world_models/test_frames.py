"""The DIAMOND-style frame model overfits two short episodes: its one-step prediction beats
copying the last frame; imagination yields uint8 frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from playworld.training import load_model
from playworld.world_models.build import train_world_model
from playworld.world_models.data import WindowArrays
from playworld.world_models.frames.model import to_float
from playworld.world_models.frames.score import psnr
from playworld.world_models.imagine import WorldModelEnv

from .conftest import small_frame_run


def test_frame_model_overfits_two_episodes(frame_store: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = train_world_model(small_frame_run(), frame_store, tmp_path / "frames")
    assert np.mean([v for _, v in result.losses[-10:]]) < np.mean(
        [v for _, v in result.losses[:10]]
    )
    model = load_model(tmp_path / "frames")
    data = WindowArrays(frame_store, ["front", "action"], 5, split="all", image_size=(32, 32))
    batch = data.__getitems__(np.arange(len(data)))
    frames, actions = batch["front"], batch["action"][:, :4]
    pred = model.predict_next(
        to_float(frames[:, :4]), actions, steps=1, generator=torch.Generator().manual_seed(0)
    )
    pred = ((pred + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).movedim(1, -1)
    model_psnr, copy_psnr = psnr(pred, frames[:, 4]), psnr(frames[:, 3], frames[:, 4])
    assert model_psnr > copy_psnr + 0.5, (model_psnr, copy_psnr)
    env = WorldModelEnv(model, frame_store)
    obs = env.reset(episode=1)
    obs = env.step(np.zeros(model.cfg.action_dim))
    assert obs["front"].shape == (32, 32, 3) and obs["front"].dtype == np.uint8
