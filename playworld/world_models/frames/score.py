"""Scoring a frame model on held-out episodes: PSNR vs horizon, moving-pixel error, actions.

- ``psnr`` / ``psnr_copy``: PSNR (dB, 8-bit frames) of frames imagined h steps ahead with the
  recorded actions, and of copying the last real frame, for each h.
- ``frame_err_vs_copy``: one-step RMSE of the model over *moving pixels* (those where the true
  next frame differs from the last frame by more than ``MOVING`` levels in some channel),
  divided by the RMSE of copying the last frame on the same pixels. Below 1: the model predicts
  motion, not just the static scene.
- ``frame_action_sensitivity``: the model's moving-pixel RMSE with the true actions divided by
  its RMSE with the actions shuffled across the batch (same frames). Below 1: it uses actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from playworld.world_models.data import WindowArrays
from playworld.world_models.frames.model import FrameDiffusion, to_float

MOVING = 8  # uint8 levels


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two uint8 frame tensors."""
    mse = (a.float() - b.float()).pow(2).mean().clamp_min(1e-10)
    return float(10 * torch.log10(255.0**2 / mse))


def score_frames(
    model: FrameDiffusion,
    store: str,
    *,
    split: str = "val",
    val_ratio: float = 0.2,
    seed: int = 0,
    horizons: Sequence[int] = (1, 4, 16),
    one_step_starts: int = 256,
    rollout_starts: int = 16,
    steps: int | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Frame metrics of ``model`` on ``split`` episodes (see the module docstring)."""
    cfg = model.cfg
    k, hmax = cfg.history, max(horizons)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    keys = [cfg.camera, cfg.action_key]
    one = WindowArrays(
        store,
        keys,
        k + 1,
        split=split,
        val_ratio=val_ratio,
        seed=seed,
        image_size=cfg.image_size,
        needs={cfg.camera: "the frame model's camera", cfg.action_key: "the frame model's actions"},
    )
    idx = np.arange(len(one))
    idx = np.sort(rng.choice(idx, min(one_step_starts, len(idx)), replace=False))
    se_model = se_copy = se_shuf = 0.0
    count = 0
    for i in range(0, len(idx), batch_size):
        batch = one.__getitems__(idx[i : i + batch_size])
        frames, actions = batch[cfg.camera], batch[cfg.action_key][:, :k]
        past, truth = to_float(frames[:, :k]), frames[:, k].float()
        last = frames[:, k - 1].float()
        mask = ((truth - last).abs().amax(-1, keepdim=True) > MOVING).expand_as(truth)
        pred = _uint8(model.predict_next(past, actions, steps=steps, generator=g))
        perm = torch.roll(torch.randperm(len(actions), generator=g), 1)
        shuffled = _uint8(model.predict_next(past, actions[perm], steps=steps, generator=g))
        se_model += float(((pred - truth) ** 2)[mask].sum())
        se_copy += float(((last - truth) ** 2)[mask].sum())
        se_shuf += float(((shuffled - truth) ** 2)[mask].sum())
        count += int(mask.sum())
    out: dict[str, Any] = {
        "kind": model.kind,
        "starts": int(len(idx)),
        "moving_fraction": count / max(len(idx) * int(np.prod(frames.shape[2:])), 1),
        "frame_err_vs_copy": float(np.sqrt(se_model / max(se_copy, 1e-9))),
        "frame_action_sensitivity": float(np.sqrt(se_model / max(se_shuf, 1e-9))),
    }
    roll = WindowArrays(
        store,
        keys,
        k + hmax,
        split=split,
        val_ratio=val_ratio,
        seed=seed,
        image_size=cfg.image_size,
    )
    ridx = np.sort(rng.choice(len(roll), min(rollout_starts, len(roll)), replace=False))
    batch = roll.__getitems__(ridx)
    frames, actions = batch[cfg.camera], batch[cfg.action_key]
    imagined = model.imagine(
        frames[:, :k],
        actions[:, : k - 1],
        actions[:, k - 1 : k - 1 + hmax],
        steps=steps,
        generator=g,
    )
    truth, last = frames[:, k : k + hmax], frames[:, k - 1]
    out["horizons"] = list(horizons)
    out["psnr"] = {"model": [psnr(imagined[:, h - 1], truth[:, h - 1]) for h in horizons]}
    out["psnr_copy"] = {"copy": [psnr(last, truth[:, h - 1]) for h in horizons]}
    out["rollout_starts"] = int(len(ridx))
    return out


def _uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (B, 3, H, W) -> the uint8 levels as float (B, H, W, 3), as stored frames are."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().movedim(1, -1)
