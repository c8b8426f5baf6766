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


def test_action_guidance_needs_dropout_and_amplifies_the_action_effect(
    frame_store: str, tmp_path: Path
) -> None:
    """Classifier-free guidance on actions: a config error without action dropout; trained with
    dropout, guidance 1 is the plain conditional prediction and guidance 3 moves the prediction
    further from the action-free one than guidance 1 does."""
    import dataclasses

    import pytest

    from playworld.errors import ConfigError
    from playworld.world_models.frames.model import FrameModelConfig

    with pytest.raises(ConfigError, match="action_dropout"):
        FrameModelConfig(guidance=2.0)
    torch.manual_seed(0)
    run = small_frame_run(steps=40)
    run["model"].update(action_dropout=0.2, p_sigma_max=0.5)
    train_world_model(run, frame_store, tmp_path / "frames")
    model = load_model(tmp_path / "frames")
    data = WindowArrays(frame_store, ["front", "action"], 5, split="all", image_size=(32, 32))
    batch = data.__getitems__(np.arange(16))
    past, actions = to_float(batch["front"][:, :4]), batch["action"][:, :4]

    def predict(w: float, keep: float = 1.0) -> torch.Tensor:
        model.cfg = dataclasses.replace(model.cfg, guidance=w)
        if keep == 0:  # the action-free (null condition) prediction, sampled directly
            net = model._denoiser(past, actions, torch.zeros(len(past)))
            return model.edm.sample(
                net, (16, 3, 32, 32), generator=torch.Generator().manual_seed(0)
            )
        return model.predict_next(past, actions, generator=torch.Generator().manual_seed(0))

    free = past[:, -1] + predict(1.0, keep=0) / model.cfg.delta_gain
    plain, guided = predict(1.0), predict(3.0)
    assert not torch.equal(plain, guided)
    assert (guided - free).abs().mean() > (plain - free).abs().mean()
