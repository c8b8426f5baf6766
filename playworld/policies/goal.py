"""What goal-conditioned policies (GCBC, Play-LMP) share: observation and goal encoding, the
goal given at `reset`, building from a hindsight dataset, and the training adapter.

A goal is an observation (a mapping holding the policy's `goal_keys`, e.g. `state` (40,)): the
world the policy should bring about. A task name is not a goal for these policies: evaluation
passes the final observation of a scripted expert's rollout from the same seed instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from playworld.datasets import Normalizer
from playworld.errors import ConfigError, PolicyError
from playworld.features import Feature
from playworld.policies.base import Observation, Policy, PolicyConfig
from playworld.policies.hindsight import HindsightConfig, HindsightWindows, feature_dims

#: EMA decay of the policies' training runs: an average over ~200 steps. The loop's 0.999
#: (~1000 steps) drags in the untrained weights of the minutes-long runs this CPU allows.
EMA_DECAY = 0.995
#: torch threads of a process that builds one of these policies (evaluation workers, deploy).
ACT_THREADS = 1
#: Normalised inputs are clipped to this many standard deviations (a state far outside play).
INPUT_CLIP = 10.0
#: The twin's keypoint sites (K, 3) m, world frame; site 0 is the end effector.
KEYPOINTS_KEY = "keypoints"
#: Length (m) that end-effector-relative keypoints are divided by: a site 10 cm away is 1.
RELATIVE_SCALE = 0.1


@dataclasses.dataclass(frozen=True)
class GoalPolicyConfig(PolicyConfig):
    """Fields every goal-conditioned policy has (see `HindsightConfig` for the windows).

    `sample`: draw actions from the mixture at run time, as Play-LMP and CALVIN do (else the
    most probable bin: play holds still often enough that "no motion" can be the mode while
    most of the mass moves). `goal_delta`: also feed goal - observation (normalised; needs the
    same observation and goal keys), which an MLP otherwise has to learn to compute.
    `action_key`: the store key the policy clones: `action` (what the robot received) or, on
    autoplay stores, `expert_action` (the expert's action before autoplay's noise: DART labels).
    `relative_keypoints`: also feed every keypoint site relative to the end effector, now and in
    the goal (`relative_inputs`; needs `keypoints` among the observation keys). Where to move is
    then a choice among inputs (the site whose goal differs), not a difference of two
    normalised coordinates the MLP must learn to compute for every object.
    """

    obs_keys: tuple[str, ...] = ("state",)
    goal_keys: tuple[str, ...] = ("state",)
    min_window: int = 16
    max_window: int = 32
    tail_windows: bool = False
    mixtures: int = 10
    bins: int = 256
    sample: bool = True
    goal_delta: bool = True
    action_key: str = "action"
    relative_keypoints: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "obs_keys", tuple(self.obs_keys))
        object.__setattr__(self, "goal_keys", tuple(self.goal_keys))
        self.hindsight()  # validates the window fields
        if self.goal_delta and self.obs_keys != self.goal_keys:
            raise ConfigError(
                f"expected the same obs_keys and goal_keys with goal_delta, found "
                f"{self.obs_keys} and {self.goal_keys}; set goal_delta: false"
            )
        if self.relative_keypoints and KEYPOINTS_KEY not in self.obs_keys:
            raise ConfigError(
                f"expected {KEYPOINTS_KEY!r} among obs_keys with relative_keypoints, found "
                f"{self.obs_keys}"
            )
        if self.mixtures < 1 or self.bins < 2:
            raise ConfigError(
                f"expected mixtures >= 1 and bins >= 2, found {self.mixtures}, {self.bins}"
            )

    def hindsight(self, **overrides: Any) -> HindsightConfig:
        return HindsightConfig(
            obs_keys=self.obs_keys,
            goal_keys=self.goal_keys,
            action_key=self.action_key,
            min_window=self.min_window,
            max_window=self.max_window,
            tail_windows=self.tail_windows,
            **overrides,
        )


def flat_inputs(
    normalizer: Normalizer, batch: Mapping[str, torch.Tensor], keys: tuple[str, ...], lead: int
) -> torch.Tensor:
    """Normalised, clipped and concatenated `keys` of `batch`: (*lead dims, D) float32."""
    parts = []
    for k in keys:
        x = normalizer.normalize(k, batch[k].float())
        parts.append(x.reshape(*x.shape[:lead], -1))
    return torch.cat(parts, -1).clamp(-INPUT_CLIP, INPUT_CLIP)


def relative_width(enabled: bool, features: Mapping[str, Feature]) -> int:
    """Size of `relative_inputs`' output for the observation or the goal (0 when not
    `enabled`: a config's `relative_keypoints`)."""
    if not enabled:
        return 0
    shape = features[KEYPOINTS_KEY].shape
    if len(shape) != 2 or shape[1] != 3 or shape[0] < 2:
        raise PolicyError(f"expected keypoints of shape (K >= 2, 3), found {shape}")
    return 3 * (shape[0] - 1)


def relative_inputs(keypoints: torch.Tensor, ee: torch.Tensor) -> torch.Tensor:
    """Sites 1..K-1 of `keypoints` (..., K, 3) relative to the end effector `ee` (..., 3), m,
    divided by RELATIVE_SCALE and clipped like the other inputs: (..., 3 (K - 1))."""
    rel = (keypoints[..., 1:, :] - ee[..., None, :]) / RELATIVE_SCALE
    return rel.flatten(-2).clamp(-INPUT_CLIP, INPUT_CLIP)


def encode(
    config: GoalPolicyConfig,
    normalizer: Normalizer,
    obs: Mapping[str, torch.Tensor],
    goal: Mapping[str, torch.Tensor],
    lead: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The observation (*lead, ...) and goal (B, ...) as the networks see them: normalised
    `obs_keys` / `goal_keys`, plus with `relative_keypoints` the keypoints relative to the
    end effector now (the goal's sites too, relative to the ee of each observation). Returns
    obs (*lead, D) and goal (*lead, G), the goal broadcast over the observation's lead dims."""
    c = config
    x = flat_inputs(normalizer, obs, c.obs_keys, lead)  # (*lead, D)
    g = flat_inputs(normalizer, goal, c.goal_keys, 1)  # (B, G)
    g = g.view(g.shape[0], *([1] * (lead - 1)), g.shape[-1]).expand(*x.shape[:-1], -1)
    if c.relative_keypoints:
        kp = obs[KEYPOINTS_KEY].float()  # (*lead, K, 3)
        ee = kp[..., 0, :]  # (*lead, 3)
        gk = goal[KEYPOINTS_KEY].float()  # (B, K, 3)
        gk = gk.view(gk.shape[0], *([1] * (lead - 1)), *gk.shape[1:])
        x = torch.cat([x, relative_inputs(kp, ee)], -1)
        g = torch.cat([g, relative_inputs(gk, ee)], -1)
    return x, g


def goal_width(config: GoalPolicyConfig, goal_dim: int) -> int:
    """Size of what `goal_inputs` returns."""
    return 2 * goal_dim if config.goal_delta else goal_dim


def goal_inputs(config: GoalPolicyConfig, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """The goal as the networks see it: (..., G) or, with `goal_delta`, [goal, goal - obs]."""
    if not config.goal_delta:
        return goal
    return torch.cat([goal, goal.expand_as(obs) - obs], -1)


class GoalPolicy(Policy):
    """Base of policies that reach a goal observation; subclasses set `net_class`."""

    config_class = GoalPolicyConfig
    net_class: type[nn.Module]
    #: Evaluation resets it with a goal observation (`goals="expert"`), not a task name.
    goal_conditioned = True
    #: The training loop's settings for this policy (`playworld.policies.train`).
    train_defaults: dict[str, Any] = {}

    def __init__(self, config: GoalPolicyConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if self.normalizer is None:
            raise PolicyError(f"policy {self.type!r} needs its normaliser (none was given)")
        c = self.config
        for k in (*c.obs_keys, *c.goal_keys):
            if k not in self.observation_features:
                raise PolicyError(
                    f"expected observation feature {k!r} for policy {self.type!r}, found "
                    f"{sorted(self.observation_features)}"
                )
        rel = relative_width(c.relative_keypoints, self.observation_features)
        self.obs_dim = feature_dims(self.observation_features, c.obs_keys) + rel
        self.goal_dim = feature_dims(self.observation_features, c.goal_keys) + rel
        self.model = self.net_class(c, self.obs_dim, self.goal_dim, self.action_dim)
        self._goal: dict[str, np.ndarray] | None = None
        self.generator = torch.Generator().manual_seed(0)
        # One action at batch 1 gains nothing from intra-op threads, and on shared cores the
        # extra threads spin (GCBC act: ~1 ms alone, tens of ms with 2 threads at load ~15).
        torch.set_num_threads(ACT_THREADS)

    def reset(self, seed: int | None = None, goal: str | Observation | None = None) -> None:
        super().reset(seed, goal)
        self.generator.manual_seed(0 if seed is None else int(seed) % 2**63)
        if goal is None or isinstance(goal, str):
            raise PolicyError(
                f"policy {self.type!r} is goal-conditioned: expected a goal observation with keys "
                f"{list(self.config.goal_keys)}, found {goal!r} (evaluate with goals='expert')"
            )
        missing = [k for k in self.config.goal_keys if k not in goal]
        if missing:
            raise PolicyError(
                f"expected goal keys {list(self.config.goal_keys)} for policy {self.type!r}, "
                f"found {sorted(goal)}"
            )
        self._goal = {k: np.asarray(goal[k], np.float32) for k in self.config.goal_keys}

    def goal_batch(self, batch_size: int) -> dict[str, torch.Tensor]:
        """The reset goal, repeated: {goal.<key>: (B, *shape)}."""
        if self._goal is None:
            raise PolicyError(
                f"call reset(seed, goal=observation) before acting with {self.type!r}"
            )
        return {
            f"goal.{k}": torch.from_numpy(v).expand(batch_size, *v.shape)
            for k, v in self._goal.items()
        }

    def actions_out(self, normalised: torch.Tensor) -> np.ndarray:
        """(B, n, A) in [-1, 1] -> the action's units, float32."""
        return np.asarray(self.normalizer.unnormalize("action", normalised.numpy()), np.float32)

    # -- building and training --------------------------------------------------------------------
    @classmethod
    def from_dataset(
        cls, data: HindsightWindows, config: GoalPolicyConfig | None = None, **info: Any
    ) -> GoalPolicy:
        """An untrained policy shaped by `data`'s features, with its normaliser."""
        config = config or cls.config_class()
        obs_keys = list(dict.fromkeys([*config.obs_keys, *config.goal_keys]))
        action = data.features[data.config.action_key]
        return cls(
            config,
            observation_features={k: data.features[k] for k in obs_keys},
            action_features={"action": dataclasses.replace(action, kind="action")},
            normalizer=data.normalizer(),
            info=info,
        )

    @classmethod
    def dataset(
        cls, store: Any, config: GoalPolicyConfig, data: Mapping[str, Any]
    ) -> HindsightWindows:
        """The training windows of `store` (`data`: `val_ratio`, `seed`)."""
        return HindsightWindows(store, config.hindsight(**data), split="train")

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        """The training loss of a hindsight batch (see `playworld.policies.hindsight`)."""
        return self.model.loss(batch, self.normalizer)

    @classmethod
    def example(cls, tmp_path: Any) -> GoalPolicy:
        """A small untrained instance over the twin's `state` (40,) with identity statistics."""
        state = Feature((40,), "float64", kind="state", privileged=True)
        action = Feature((7,), "float32", kind="action")
        norm = Normalizer(
            {
                "state": {"mode": "identity", "center": [0.0], "scale": [1.0]},
                "action": {"mode": "identity", "center": [0.0], "scale": [1.0]},
            }
        )
        small = cls.config_class(**cls.example_overrides)
        return cls(
            small,
            observation_features={"state": state},
            action_features={"action": action},
            normalizer=norm,
        )

    #: Config fields of the small instance `example` builds.
    example_overrides: dict[str, Any] = {}
