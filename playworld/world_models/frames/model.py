"""DIAMOND-style frame world model: next-frame EDM diffusion conditioned on past frames + actions.

The denoiser sees the noisy next frame (c_in-scaled) concatenated on channels with the last
``history`` frames, and a conditioning vector: the noise level's embedding plus the embedding of
the last ``history`` actions (DIAMOND adds the action embedding to the noise embedding). EDM
preconditioning and loss, 1-3 deterministic Euler steps at inference (`EDM`).

Two changes from DIAMOND, for CPU budgets. ``patch`` (default 4): the UNet runs on
``patch x patch`` space-to-depth blocks (64x64x15 -> 16x16x240, pixel-shuffled back at the
output), which makes a training step several times cheaper at 64x64 on a CPU; ``patch: 1``,
``channels: [64, 64, 64, 64]``, ``blocks: 2`` is DIAMOND's own network size. ``predict_delta``
(default on): the diffusion runs over the *change* from the last frame, scaled by
``delta_gain`` so that its spread matches EDM's ``sigma_data``; "nothing moves" is then the
zero sample and capacity goes to what moves. ``action_planes`` (default on): the normalised
actions also enter the UNet's input as constant planes, so the first convolution can tie an
action to the pixels it moves (the embedding path alone learns that slowly on a CPU budget).
``guidance`` (with ``action_dropout``): classifier-free guidance on the actions, which a small,
briefly trained denoiser otherwise under-uses (its prediction stays close to the action-free one).

Frames: uint8 (…, H, W, 3) outside, float in [-1, 1] channels-first inside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from playworld.datasets import Normalizer
from playworld.errors import ConfigError
from playworld.training import Trainable, build_dataclass, register_model
from playworld.world_models.edm import EDM, EDMConfig
from playworld.world_models.frames.unet import UNet
from playworld.world_models.nn import FourierEmbedding


@dataclass(frozen=True)
class FrameModelConfig:
    """camera key, frame size, history frames, UNet channels per level and blocks per level,
    EDM settings; ``action_dim``, ``normalizer`` (actions) and ``delta_gain`` come from `fit`.

    ``ada_norms``: 2 = the conditioning (noise level + actions) modulates both group norms of
    every UNet block (DIAMOND), 1 = only the second. ``p_sigma_max``: fraction of training
    samples at the sampler's first noise level (`EDMConfig`). ``action_dropout``: fraction of
    training samples without their actions (a learned null condition); ``guidance``: classifier-
    free guidance scale on the actions at sampling (1: off; needs ``action_dropout`` > 0), which
    costs a second network evaluation per step."""

    camera: str = "front"
    action_key: str = "action"
    image_size: tuple[int, int] = (64, 64)
    history: int = 4
    patch: int = 4
    channels: tuple[int, ...] = (64, 128)
    blocks: int = 1
    emb_dim: int = 128
    sigma_data: float = 0.5
    sigma_max: float = 5.0
    sample_steps: int = 3
    predict_delta: bool = True
    action_planes: bool = True
    ada_norms: int = 2
    p_sigma_max: float = 0.0
    action_dropout: float = 0.0
    guidance: float = 1.0
    action_dim: int = 0
    normalizer: dict[str, Any] | None = None
    delta_gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", tuple(int(x) for x in self.image_size))
        object.__setattr__(self, "channels", tuple(int(x) for x in self.channels))
        down = self.patch * 2 ** (len(self.channels) - 1)
        if len(self.image_size) != 2 or any(s % down or s < down for s in self.image_size):
            raise ConfigError(
                f"model.image_size {self.image_size} must be two sizes divisible by {down} "
                f"(patch {self.patch} x 2^(levels-1) for {len(self.channels)} UNet levels)"
            )
        if self.ada_norms not in (1, 2):
            raise ConfigError(f"model.ada_norms must be 1 or 2, got {self.ada_norms}")
        if self.patch < 1:
            raise ConfigError(f"model.patch must be >= 1, got {self.patch}")
        if not 0 <= self.action_dropout < 1:
            raise ConfigError(f"model.action_dropout must be in [0, 1), got {self.action_dropout}")
        if self.guidance != 1 and self.action_dropout == 0:
            raise ConfigError(
                f"model.guidance {self.guidance} needs a model trained without its actions at "
                "times: set model.action_dropout > 0 (e.g. 0.1), or guidance 1"
            )
        if self.history < 1 or self.blocks < 1 or not self.channels or min(self.channels) < 4:
            raise ConfigError("model.history and blocks must be >= 1, channels >= 4 each")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_size"], d["channels"] = list(self.image_size), list(self.channels)
        return d


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    return frames.float().movedim(-1, -3) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1)


@register_model("frame_diffusion")
class FrameDiffusion(Trainable):
    """Next-frame diffusion; see the module docstring."""

    def __init__(self, config: FrameModelConfig) -> None:
        super().__init__()
        if not config.action_dim or config.normalizer is None:
            raise ConfigError("a frame model needs action_dim and a normalizer: use fit()")
        self.cfg = config
        self.normalizer = Normalizer.from_json(config.normalizer)
        k, e = config.history, config.emb_dim
        self.edm = EDM(
            EDMConfig(
                sigma_data=config.sigma_data,
                sigma_max=config.sigma_max,
                sample_steps=config.sample_steps,
                p_sigma_max=config.p_sigma_max,
            )
        )
        self.noise_emb = torch.nn.Sequential(FourierEmbedding(e), torch.nn.Linear(e, e))
        # with action dropout, one more input: 1 = actions given, 0 = none (CFG's null condition)
        self.a_in = k * config.action_dim + (config.action_dropout > 0)
        self.action_emb = torch.nn.Linear(self.a_in, e)
        self.cond = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(e, e), torch.nn.SiLU())
        p2 = config.patch**2
        planes = self.a_in if config.action_planes else 0
        self.unet = UNet(
            (3 + 3 * k) * p2 + planes,
            3 * p2,
            config.channels,
            config.blocks,
            e,
            ada_in=config.ada_norms == 2,
        )

    @property
    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FrameDiffusion:
        return cls(build_dataclass(FrameModelConfig, config, "model"))

    @property
    def window(self) -> int:
        return self.cfg.history + 1

    def _denoiser(
        self, past: torch.Tensor, actions: torch.Tensor, keep: torch.Tensor | None = None
    ):
        """past (B, K, 3, H, W) in [-1, 1], actions (B, K, A) raw, keep (B,) 1 = use the actions,
        0 = the null condition (default all 1) -> net(x, c_noise)."""
        b = past.shape[0]
        cond_frames = past.flatten(1, 2)  # (B, 3K, H, W)
        a = self.normalizer.normalize(self.cfg.action_key, actions).flatten(1)
        if self.cfg.action_dropout > 0:
            keep = torch.ones(b, device=a.device) if keep is None else keep.to(a.dtype)
            a = torch.cat([a * keep[:, None], keep[:, None]], dim=1)
        a_emb = self.action_emb(a)
        p = self.cfg.patch

        def net(x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
            emb = self.cond(self.noise_emb(c_noise.reshape(b)) + a_emb)
            h = torch.nn.functional.pixel_unshuffle(torch.cat([x, cond_frames], dim=1), p)
            if self.cfg.action_planes:  # actions as constant input planes, beside the embedding
                planes = a.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])
                h = torch.cat([h, planes], dim=1)
            return torch.nn.functional.pixel_shuffle(self.unet(h, emb), p)

        return net

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        k = self.cfg.history
        frames = to_float(batch[self.cfg.camera])  # (B, K+1, 3, H, W)
        past, nxt = frames[:, :k], frames[:, k]
        x0 = (nxt - past[:, -1]) * self.cfg.delta_gain if self.cfg.predict_delta else nxt
        keep = None
        if self.cfg.action_dropout > 0:
            keep = torch.rand(frames.shape[0], device=frames.device) >= self.cfg.action_dropout
        net = self._denoiser(past, batch[self.cfg.action_key][:, :k], keep)
        return self.edm.loss(net, x0).mean(), {}

    @torch.no_grad()
    def predict_next(
        self,
        past: torch.Tensor,
        actions: torch.Tensor,
        *,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """past (B, K, 3, H, W) in [-1, 1], actions (B, K, A) (the last is the one taken after the
        last frame) -> next frame (B, 3, H, W) in [-1, 1]."""
        net = self._denoiser(past, actions)
        w = self.cfg.guidance
        if w != 1:  # classifier-free guidance: from the action-free prediction, w x towards
            # the one with the actions (Ho & Salimans 2022)
            free = self._denoiser(past, actions, torch.zeros(past.shape[0], device=past.device))
            net = _guided(net, free, w)
        shape = (past.shape[0], *past.shape[2:])
        x = self.edm.sample(net, shape, steps=steps, generator=generator, device=past.device)
        if self.cfg.predict_delta:
            x = past[:, -1] + x / self.cfg.delta_gain
        return x.clamp(-1, 1)

    @torch.no_grad()
    def imagine(
        self,
        frames: torch.Tensor,
        past_actions: torch.Tensor,
        actions: torch.Tensor,
        *,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """frames (B, K, H, W, 3) uint8, past_actions (B, K-1, A) (recorded with all but the last
        frame), actions (B, T, A) -> imagined frames (B, T, H, W, 3) uint8, one per action."""
        k = self.cfg.history
        if frames.shape[1] < k or past_actions.shape[1] < k - 1:
            raise ConfigError(f"imagine needs {k} frames and {k - 1} past actions")
        if actions.shape[-1] != self.cfg.action_dim:
            raise ConfigError(
                f"actions have {actions.shape[-1]} dims, the model was trained on {self.cfg.action_dim}"
            )
        past = to_float(frames[:, -k:])
        acts = torch.cat(
            [past_actions[:, past_actions.shape[1] - (k - 1) :].float(), actions.float()], 1
        )
        out = []
        for i in range(actions.shape[1]):
            nxt = self.predict_next(past, acts[:, i : i + k], steps=steps, generator=generator)
            out.append(to_uint8(nxt))
            past = torch.cat([past[:, 1:], nxt[:, None]], dim=1)
        return torch.stack(out, dim=1)


def _guided(cond, free, w: float):
    """net(x, c_noise) = free + w * (cond - free): two network evaluations per call."""

    def net(x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        out_c, out_f = cond(x, c_noise), free(x, c_noise)
        return out_f + w * (out_c - out_f)

    return net


def fit(config: FrameModelConfig, dataset: Any) -> FrameDiffusion:
    """A frame model sized and normalised for ``dataset`` (a `WindowArrays` of ``history + 1``
    steps of the camera and action keys): action dims, action normaliser, delta gain."""
    a_key = config.action_key
    norm = Normalizer.from_stats(dataset.stats, {a_key: "mean_std"}, eps=1e-3)
    frames = dataset.arrays[config.camera]
    ends = dataset.episode_ends
    starts = np.concatenate([[0], ends[:-1]])
    rows = np.concatenate([np.arange(starts[e] + 1, ends[e]) for e in dataset.episodes])
    rows = rows[:: max(len(rows) // 2000, 1)]  # a subsample is plenty for one spread
    delta = (frames[rows].astype(np.float32) - frames[rows - 1].astype(np.float32)) / 127.5
    gain = float(np.clip(config.sigma_data / max(float(delta.std()), 1e-6), 1.0, 8.0))
    return FrameDiffusion(
        dataclasses.replace(
            config,
            action_dim=int(dataset.features[a_key].shape[0]),
            normalizer=norm.to_json(),
            delta_gain=gain if config.predict_delta else 1.0,
        )
    )
