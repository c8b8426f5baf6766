"""Play-LMP: latent motor plans from play (Lynch et al. 2019), sized for a CPU.

    plan recognition  q(z | s_0 .. s_{L-1}, g)  a bidirectional GRU (or a small transformer)
                      over the window's observations and its goal -> a diagonal Gaussian
                      (posterior)
    plan proposal     p(z | s_0, g)             an MLP on the first observation and the goal
                      -> a diagonal Gaussian (prior)
    policy            pi(a_t | s_t, z, g)        an MLP and the logistic-mixture head, every step

    loss = NLL(actions | z ~ q) + beta * KL_balanced(q || p)

KL balancing (DreamerV2, used by HULC): alpha * KL(sg(q) || p) + (1 - alpha) * KL(q || sg(p)),
so the prior moves towards the posterior faster than the posterior is pulled to the prior. At
run time the plan is drawn from the prior (or its mean) every `replan_every` steps.
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
from playworld.policies.gcbc import _goals, mlp
from playworld.policies.goal import (
    EMA_DECAY,
    GoalPolicy,
    GoalPolicyConfig,
    encode,
    goal_inputs,
    goal_width,
)
from playworld.policies.mixture import LogisticMixtureHead

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
#: Plan recognition networks (`PlayLMPConfig.recognition`).
RECOGNITION = ("gru", "transformer")


@dataclass(frozen=True)
class PlayLMPConfig(GoalPolicyConfig):
    """`hidden`/`layers`: the policy's and the proposal's MLPs; `recognition`: plan recognition's
    network, `gru` (bidirectional, `gru` units per direction) or `transformer` (`gru` wide,
    `recognition_layers` layers, one summary token); `latent`: size of z; `beta`: KL weight;
    `kl_balance`: alpha above; `replan_every`: steps between plans at run time; `sample_plan`:
    draw z (else the prior mean).
    """

    hidden: int = 256
    layers: int = 2
    recognition: str = "gru"
    gru: int = 128
    recognition_layers: int = 2
    latent: int = 32
    beta: float = 0.01
    kl_balance: float = 0.8
    replan_every: int = 16
    sample_plan: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.hidden, self.layers, self.gru, self.latent, self.replan_every) < 1:
            raise ConfigError(
                "expected hidden, layers, gru, latent, replan_every >= 1, found "
                f"{self.hidden}, {self.layers}, {self.gru}, {self.latent}, {self.replan_every}"
            )
        if self.recognition not in RECOGNITION:
            raise ConfigError(
                f"expected recognition among {RECOGNITION}, found {self.recognition!r}"
            )
        if self.beta < 0 or not 0.0 <= self.kl_balance <= 1.0:
            raise ConfigError(
                f"expected beta >= 0 and kl_balance in [0, 1], found {self.beta}, {self.kl_balance}"
            )
        if self.n_obs_steps != 1 or self.n_action_steps != 1:
            raise ConfigError(
                f"expected n_obs_steps = n_action_steps = 1 for play-lmp, found "
                f"{self.n_obs_steps}, {self.n_action_steps}"
            )


def gaussian_kl(
    mu_q: torch.Tensor, log_std_q: torch.Tensor, mu_p: torch.Tensor, log_std_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_q, std_q^2) || N(mu_p, std_p^2)) of diagonal Gaussians, summed over the last
    axis: (..., Z) -> (...)."""
    var_q, var_p = torch.exp(2 * log_std_q), torch.exp(2 * log_std_p)
    kl = log_std_p - log_std_q + (var_q + (mu_q - mu_p) ** 2) / (2 * var_p) - 0.5
    return kl.sum(-1)


def balanced_kl(
    post: tuple[torch.Tensor, torch.Tensor],
    prior: tuple[torch.Tensor, torch.Tensor],
    alpha: float = 0.8,
) -> torch.Tensor:
    """alpha KL(sg(q) || p) + (1 - alpha) KL(q || sg(p)); equals KL(q || p) in value: (...)."""
    sg = [t.detach() for t in post], [t.detach() for t in prior]
    return alpha * gaussian_kl(*sg[0], *prior) + (1 - alpha) * gaussian_kl(*post, *sg[1])


class TransformerRecognition(nn.Module):
    """Plan recognition as a small pre-norm transformer over [summary token, goal, s_0 ..
    s_{L-1}] (steps past L masked out); the summary token's output -> the posterior's mean and
    log std (B, 2Z). All steps at once, where the GRU walks the window step by step."""

    def __init__(self, obs_dim: int, goal_dim: int, width: int, layers: int, steps: int, out: int):
        super().__init__()
        self.obs_in = nn.Linear(obs_dim, width)
        self.goal_in = nn.Linear(goal_dim, width)
        self.summary = nn.Parameter(0.02 * torch.randn(1, 1, width))
        self.position = nn.Parameter(0.02 * torch.randn(1, steps, width))
        heads = 4 if width % 4 == 0 else 1
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            2 * width,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """obs (B, T, D) with lengths L (B,), goal (B, G) -> (B, out)."""
        b, t = obs.shape[:2]
        steps = self.obs_in(obs) + self.position[:, :t]
        tokens = torch.cat([self.summary.expand(b, -1, -1), self.goal_in(goal)[:, None], steps], 1)
        pad = torch.arange(t, device=obs.device)[None] >= lengths[:, None]  # (B, T)
        pad = torch.cat([pad.new_zeros(b, 2), pad], 1)
        return self.out(self.norm(self.encoder(tokens, src_key_padding_mask=pad)[:, 0]))


class PlayLMPNet(nn.Module):
    """Plan recognition, plan proposal and the latent-conditioned policy (module docstring)."""

    def __init__(self, config: PlayLMPConfig, obs_dim: int, goal_dim: int, action_dim: int):
        super().__init__()
        self.config = c = config
        if c.recognition == "transformer":
            self.recognition: nn.Module = TransformerRecognition(
                obs_dim, goal_dim, c.gru, c.recognition_layers, c.max_window, 2 * c.latent
            )
        else:
            self.recognition = nn.GRU(obs_dim, c.gru, batch_first=True, bidirectional=True)
            self.goal_in = nn.Linear(goal_dim, obs_dim)  # the goal as one more step
            self.posterior = nn.Linear(2 * c.gru, 2 * c.latent)
        self.proposal = nn.Sequential(
            mlp(obs_dim + goal_width(c, goal_dim), c.hidden, c.layers),
            nn.Linear(c.hidden, 2 * c.latent),
        )
        self.trunk = mlp(obs_dim + c.latent + goal_width(c, goal_dim), c.hidden, c.layers)
        self.head = LogisticMixtureHead(c.hidden, action_dim, c.mixtures, c.bins)

    @staticmethod
    def _gaussian(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = x.chunk(2, -1)
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def prior(self, obs: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D), (B, G) -> mean, log std (B, Z)."""
        return self._gaussian(
            self.proposal(torch.cat([obs, goal_inputs(self.config, obs, goal)], -1))
        )

    def recognise(
        self, obs: torch.Tensor, goal: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (B, T, D) with lengths L (B,), goal (B, G) -> posterior mean, log std (B, Z)."""
        if self.config.recognition == "transformer":
            return self._gaussian(self.recognition(obs, goal, lengths))
        b = obs.shape[0]
        seq = torch.cat([obs, torch.zeros_like(obs[:, :1])], 1)  # (B, T + 1, D)
        seq[torch.arange(b), lengths] = self.goal_in(goal)  # the goal right after step L - 1
        packed = nn.utils.rnn.pack_padded_sequence(
            seq, (lengths + 1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.recognition(packed)  # (2, B, H): last forward and last backward states
        return self._gaussian(self.posterior(torch.cat([h[0], h[1]], -1)))

    def features(self, obs: torch.Tensor, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.trunk(torch.cat([obs, z, goal_inputs(self.config, obs, goal)], -1))

    def loss(
        self, batch: Mapping[str, torch.Tensor], normalizer: Normalizer
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """NLL per action (nats, mean over the steps in the windows) + beta x balanced KL."""
        c = self.config
        mask, lengths = batch["mask"], batch["length"]  # (B, T), (B,)
        obs, goal = encode(c, normalizer, batch, _goals(batch, c.goal_keys), lead=2)  # (B, T, D|G)
        actions = normalizer.normalize("action", batch["action"].float())  # (B, T, A)
        post = self.recognise(obs, goal[:, 0], lengths)
        prior = self.prior(obs[:, 0], goal[:, 0])
        z = post[0] + torch.exp(post[1]) * torch.randn_like(post[0])  # (B, Z) reparameterised
        t = obs.shape[1]
        feats = self.features(obs[mask], z[:, None].expand(-1, t, -1)[mask], goal[mask])
        nll = self.head.nll(feats, actions[mask]).mean()
        kl = balanced_kl(post, prior, c.kl_balance).mean()
        return nll + c.beta * kl, {"nll": nll.detach(), "kl": kl.detach()}


class PlayLMPPolicy(GoalPolicy):
    """Play-LMP; `reset(seed, goal=observation)`, a new plan every `replan_every` steps."""

    type = "play-lmp"
    config_class = PlayLMPConfig
    net_class = PlayLMPNet
    train_defaults = {"steps": 3000, "batch_size": 32, "lr": 1e-3, "ema_decay": EMA_DECAY}
    example_overrides = {"hidden": 32, "gru": 16, "latent": 4}

    def reset(self, seed: int | None = None, goal: Any = None) -> None:
        super().reset(seed, goal)
        self._plan: torch.Tensor | None = None
        self._since_plan = 0

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        c = self.config
        batch = {k: torch.as_tensor(np.asarray(obs[k]))[:, -1] for k in c.obs_keys}
        b = next(iter(batch.values())).shape[0]
        with torch.no_grad():
            goal = _goals(self.goal_batch(b), c.goal_keys)
            x, g = encode(c, self.normalizer, batch, goal, lead=1)  # (B, D), (B, G)
            plan = getattr(self, "_plan", None)
            if plan is None or plan.shape[0] != b or self._since_plan >= c.replan_every:
                mu, log_std = self.model.prior(x, g)
                noise = torch.randn(mu.shape, generator=self.generator) if c.sample_plan else 0.0
                self._plan, self._since_plan = mu + torch.exp(log_std) * noise, 0
            self._since_plan += 1
            a = self.model.head.act(self.model.features(x, self._plan, g), c.sample, self.generator)
        return self.actions_out(a[:, None])


POLICIES.register("play-lmp", PlayLMPConfig, PlayLMPPolicy)
