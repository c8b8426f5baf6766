"""Diffusion policy (Chi et al. 2023), goal-conditioned, sized for a CPU.

    a_{t .. t+H-1} ~ DDIM(eps_theta(a^k, k | s_{t-1}, s_t, g))      H = 16 (horizon)

A small 1-D convolutional UNet over the action chunk (channels 32, 64 by default; FiLM from the
diffusion step and a global condition: the last `n_obs_steps` = 2 normalised observations, the
goal and goal - observation) predicts the noise; `diffusers`' DDPM schedule trains it and its
DDIM scheduler samples with few steps (default 10). `act` executes the first `n_action_steps`
= 8 actions of each chunk (the base class's action queue). Trained on the same hindsight windows
as GCBC (`policies.hindsight`): the chunk starts at the window's second step (its first is the
previous observation), the goal is the observation at the window's end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from playworld.datasets import Normalizer
from playworld.errors import ConfigError
from playworld.policies.base import POLICIES, Observation
from playworld.policies.gcbc import _goals
from playworld.policies.goal import (
    EMA_DECAY,
    GoalPolicy,
    GoalPolicyConfig,
    encode,
    goal_inputs,
    goal_width,
)


@dataclass(frozen=True)
class DiffusionConfig(GoalPolicyConfig):
    """`horizon`: actions per predicted chunk; `channels`: UNet widths per level;
    `train_steps`: diffusion steps of the DDPM schedule; `inference_steps`: DDIM steps."""

    n_obs_steps: int = 2
    n_action_steps: int = 8
    horizon: int = 16
    channels: tuple[int, ...] = (32, 64)
    cond_dim: int = 128
    train_steps: int = 100
    inference_steps: int = 10
    min_window: int = 17
    max_window: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        super().__post_init__()
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ConfigError(
                f"expected 1 <= n_action_steps <= horizon - n_obs_steps + 1, found "
                f"{self.n_action_steps} with horizon {self.horizon}"
            )
        if self.min_window < self.horizon + self.n_obs_steps - 1:
            raise ConfigError(
                f"expected min_window >= horizon + n_obs_steps - 1 = "
                f"{self.horizon + self.n_obs_steps - 1}, found {self.min_window}"
            )
        if self.horizon % 2 ** (len(self.channels) - 1) or not self.channels:
            raise ConfigError(
                f"expected a horizon divisible by 2^(levels - 1), found {self.horizon} with "
                f"{len(self.channels)} levels"
            )
        if not 1 <= self.inference_steps <= self.train_steps:
            raise ConfigError(
                f"expected 1 <= inference_steps <= train_steps, found {self.inference_steps}, "
                f"{self.train_steps}"
            )


class FiLMBlock(nn.Module):
    """Two conv(k=5) + GroupNorm + Mish layers, the second scaled and shifted by the condition,
    with a residual: (B, C_in, T), (B, D) -> (B, C_out, T)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        groups = 8 if c_out % 8 == 0 else 1
        self.conv1 = nn.Sequential(
            nn.Conv1d(c_in, c_out, 5, padding=2), nn.GroupNorm(groups, c_out), nn.Mish()
        )
        self.conv2 = nn.Sequential(
            nn.Conv1d(c_out, c_out, 5, padding=2), nn.GroupNorm(groups, c_out), nn.Mish()
        )
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        scale, shift = self.film(cond)[..., None].chunk(2, 1)
        return self.conv2(h * (1 + scale) + shift) + self.skip(x)


def timestep_embedding(k: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float32) / (half - 1))
    arg = k.float()[:, None] * freqs[None]
    return torch.cat([arg.sin(), arg.cos()], -1)


class ConditionalUnet1D(nn.Module):
    """eps(a^k, k, c): (B, H, A), (B,), (B, C) -> (B, H, A); one level per entry of
    `channels`, down by stride-2 convs, up by transposed convs, skips concatenated."""

    def __init__(self, action_dim: int, global_dim: int, channels: tuple[int, ...], cond_dim: int):
        super().__init__()
        self.cond_dim = cond_dim
        self.cond = nn.Sequential(
            nn.Linear(cond_dim + global_dim, cond_dim), nn.Mish(), nn.Linear(cond_dim, cond_dim)
        )
        self.down = nn.ModuleList()
        c_prev = action_dim
        for i, c in enumerate(channels):
            last = i == len(channels) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        FiLMBlock(c_prev, c, cond_dim),
                        nn.Identity() if last else nn.Conv1d(c, c, 3, stride=2, padding=1),
                    ]
                )
            )
            c_prev = c
        self.mid = FiLMBlock(c_prev, c_prev, cond_dim)
        self.up = nn.ModuleList()
        for c in reversed(channels[:-1]):
            self.up.append(
                nn.ModuleList(
                    [
                        nn.ConvTranspose1d(c_prev, c_prev, 4, stride=2, padding=1),
                        FiLMBlock(c_prev + c, c, cond_dim),
                    ]
                )
            )
            c_prev = c
        self.out = nn.Conv1d(c_prev, action_dim, 1)

    def forward(self, x: torch.Tensor, k: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        cond = self.cond(torch.cat([timestep_embedding(k, self.cond_dim), global_cond], -1))
        h = x.transpose(1, 2)  # (B, A, H)
        skips = []
        for block, down in self.down:
            h = block(h, cond)
            skips.append(h)
            h = down(h)
        h = self.mid(h, cond)
        skips.pop()  # the deepest level has no upsampling partner
        for up, block in self.up:
            h = block(torch.cat([up(h), skips.pop()], 1), cond)
        return self.out(h).transpose(1, 2)


class DiffusionNet(nn.Module):
    """The denoiser and its schedules; `loss` (DDPM epsilon MSE) and `sample` (DDIM)."""

    def __init__(self, config: DiffusionConfig, obs_dim: int, goal_dim: int, action_dim: int):
        super().__init__()
        from diffusers import DDIMScheduler, DDPMScheduler

        self.config = c = config
        self.action_dim = action_dim
        global_dim = c.n_obs_steps * obs_dim + goal_width(c, goal_dim)
        self.unet = ConditionalUnet1D(action_dim, global_dim, c.channels, c.cond_dim)
        kw = dict(
            num_train_timesteps=c.train_steps,
            beta_schedule="squaredcos_cap_v2",
            clip_sample=True,
            prediction_type="epsilon",
        )
        self.train_schedule = DDPMScheduler(**kw)
        self.sample_schedule = DDIMScheduler(**kw)

    def global_cond(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """obs (B, n_obs_steps, D), goal (B, G) -> (B, n_obs_steps * D + goal width)."""
        return torch.cat([obs.flatten(1), goal_inputs(self.config, obs[:, -1], goal)], -1)

    def loss(
        self, batch: Mapping[str, torch.Tensor], normalizer: Normalizer
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        c = self.config
        n, h = c.n_obs_steps, c.horizon
        now = {k: batch[k][:, :n] for k in c.obs_keys}  # the n_obs_steps observations
        obs, goal = encode(c, normalizer, now, _goals(batch, c.goal_keys), lead=2)
        goal = goal[:, -1]  # (B, G): with relative_keypoints, relative to the newest obs's ee
        actions = normalizer.normalize("action", batch["action"][:, n - 1 : n - 1 + h].float())
        noise = torch.randn_like(actions)
        k = torch.randint(0, c.train_steps, (actions.shape[0],))
        noisy = self.train_schedule.add_noise(actions, noise, k)
        mse = F.mse_loss(self.unet(noisy, k, self.global_cond(obs, goal)), noise)
        return mse, {"mse": mse.detach()}

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """DDIM from noise: (B, H, A) normalised actions in [-1, 1]."""
        sched = self.sample_schedule
        sched.set_timesteps(self.config.inference_steps)
        x = torch.randn((cond.shape[0], self.config.horizon, self.action_dim), generator=generator)
        for k in sched.timesteps:
            eps = self.unet(x, k.expand(x.shape[0]), cond)
            x = sched.step(eps, k, x, generator=generator).prev_sample
        return x.clamp(-1.0, 1.0)


class DiffusionPolicy(GoalPolicy):
    """Goal-conditioned diffusion policy: 2 observations -> 16 actions, 8 executed."""

    type = "diffusion"
    config_class = DiffusionConfig
    net_class = DiffusionNet
    train_defaults = {"steps": 4000, "batch_size": 64, "lr": 1e-3, "ema_decay": EMA_DECAY}
    example_overrides = {"channels": (16, 32), "cond_dim": 32, "inference_steps": 3}

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        c = self.config
        batch = {k: torch.as_tensor(np.asarray(obs[k])) for k in c.obs_keys}  # (B, n, ...)
        b = next(iter(batch.values())).shape[0]
        with torch.no_grad():
            goal = _goals(self.goal_batch(b), c.goal_keys)
            x, g = encode(c, self.normalizer, batch, goal, lead=2)  # (B, n, D), (B, n, G)
            chunk = self.model.sample(self.model.global_cond(x, g[:, -1]), self.generator)
        return self.actions_out(chunk[:, : c.n_action_steps])


POLICIES.register("diffusion", DiffusionConfig, DiffusionPolicy)
