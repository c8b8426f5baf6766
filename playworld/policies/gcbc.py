"""GCBC: goal-conditioned behaviour cloning from play (Lynch et al. 2019's baseline, CALVIN's).

    pi(a_t | s_t, g): an MLP trunk on [normalised observation, normalised goal] and the
    discretised logistic-mixture head (`playworld.policies.mixture`) over the action (7,),
    gripper included. Trained on hindsight windows (`playworld.policies.hindsight`): every step
    of a 16-32 step window of play towards the observation at the window's end.

Sized for CPU: 3 x 256 hidden units, ~0.2 M parameters, ~5 ms per training step at batch 256.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from playworld.datasets import Normalizer
from playworld.errors import ConfigError
from playworld.policies.base import POLICIES, Observation
from playworld.policies.goal import (
    EMA_DECAY,
    GoalPolicy,
    GoalPolicyConfig,
    encode,
    goal_inputs,
    goal_width,
)
from playworld.policies.mixture import LogisticMixtureHead


@dataclass(frozen=True)
class GCBCConfig(GoalPolicyConfig):
    """`hidden` units in each of `layers` layers of the MLP trunk."""

    hidden: int = 256
    layers: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden < 1 or self.layers < 1:
            raise ConfigError(f"expected hidden, layers >= 1, found {self.hidden}, {self.layers}")
        if self.n_obs_steps != 1 or self.n_action_steps != 1:
            raise ConfigError(
                f"expected n_obs_steps = n_action_steps = 1 for gcbc (one action per "
                f"observation), found {self.n_obs_steps}, {self.n_action_steps}"
            )


def mlp(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """`layers` x (Linear, LayerNorm, GELU): (..., in_dim) -> (..., hidden)."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.GELU()]
    return nn.Sequential(*mods)


class GCBCNet(nn.Module):
    """[obs (D,), goal (G,)] -> mixture parameters over the action (A,)."""

    def __init__(self, config: GCBCConfig, obs_dim: int, goal_dim: int, action_dim: int):
        super().__init__()
        self.config = config
        self.trunk = mlp(obs_dim + goal_width(config, goal_dim), config.hidden, config.layers)
        self.head = LogisticMixtureHead(config.hidden, action_dim, config.mixtures, config.bins)

    def features(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.trunk(torch.cat([obs, goal_inputs(self.config, obs, goal)], -1))

    def loss(
        self, batch: Mapping[str, torch.Tensor], normalizer: Normalizer
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Mean negative log-likelihood (nats per action) over the steps inside the windows."""
        c = self.config
        mask = batch["mask"]  # (B, T)
        obs, goal = encode(c, normalizer, batch, _goals(batch, c.goal_keys), lead=2)  # (B, T, D|G)
        actions = normalizer.normalize("action", batch["action"].float())  # (B, T, A)
        nll = self.head.nll(self.features(obs[mask], goal[mask]), actions[mask])  # (N,)
        return nll.mean(), {"nll": nll.mean().detach()}


def _goals(batch: Mapping[str, torch.Tensor], keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {k: batch[f"goal.{k}"] for k in keys}


class GCBCPolicy(GoalPolicy):
    """Goal-conditioned BC with a logistic-mixture head; `reset(seed, goal=observation)`."""

    type = "gcbc"
    config_class = GCBCConfig
    net_class = GCBCNet
    train_defaults = {"steps": 4000, "batch_size": 32, "lr": 1e-3, "ema_decay": EMA_DECAY}
    example_overrides = {"hidden": 32}

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        c = self.config
        batch = {k: torch.as_tensor(np.asarray(obs[k]))[:, -1] for k in c.obs_keys}
        b = next(iter(batch.values())).shape[0]
        with torch.no_grad():
            goal = _goals(self.goal_batch(b), c.goal_keys)
            x, g = encode(c, self.normalizer, batch, goal, lead=1)  # (B, D), (B, G)
            a = self.model.head.act(self.model.features(x, g), c.sample, self.generator)
        return self.actions_out(a[:, None])  # (B, 1, A)


POLICIES.register("gcbc", GCBCConfig, GCBCPolicy)
