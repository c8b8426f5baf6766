"""Baselines without weights: `zero` (hold still) and `random` (uniform end-effector deltas).

Both emit `ee_delta` actions (7,): dx dy dz (m), rx ry rz (rad), gripper opening 0..1, and read
nothing, so they run on any robot. They are the floor a trained policy has to beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from playworld.errors import ConfigError
from playworld.features import Feature
from playworld.hardware.ee import EE_ACTION_NAMES as ACTION_NAMES
from playworld.policies.base import POLICIES, Observation, Policy, PolicyConfig

#: Largest end-effector step of the twin's action space (m, rad per control step).
MAX_POS_STEP, MAX_ROT_STEP = 0.05, 0.3


def ee_delta_feature() -> Feature:
    """The `action` feature of end-effector delta actions (7,)."""
    return Feature((7,), "float32", kind="action", units="m, rad, 0..1", names=ACTION_NAMES)


@dataclass(frozen=True)
class ZeroConfig(PolicyConfig):
    """`gripper`: the opening it keeps (1 open, 0 closed)."""

    gripper: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.gripper <= 1.0:
            raise ConfigError(f"expected a gripper opening in [0, 1], found {self.gripper}")


class ZeroPolicy(Policy):
    """No motion, the gripper held at `config.gripper`."""

    type = "zero"
    config_class = ZeroConfig

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        batch = _batch_size(obs)
        out = np.zeros((batch, self.n_action_steps, 7), np.float32)
        out[..., 6] = self.config.gripper
        return out

    @classmethod
    def build_default(cls, **overrides: Any) -> ZeroPolicy:
        return cls(
            ZeroConfig(**overrides),
            observation_features={},
            action_features={"action": ee_delta_feature()},
        )


@dataclass(frozen=True)
class RandomConfig(PolicyConfig):
    """`scale`: deltas uniform in +-scale x the largest step; `gripper_flip`: chance per step
    that the gripper command toggles. The generator is seeded by `reset(seed)`."""

    scale: float = 0.5
    gripper_flip: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0.0 < self.scale <= 1.0 and 0.0 <= self.gripper_flip <= 1.0):
            raise ConfigError(
                f"expected 0 < scale <= 1 and 0 <= gripper_flip <= 1, found {self.scale}, "
                f"{self.gripper_flip}"
            )


class RandomPolicy(Policy):
    """Uniform random end-effector deltas; reproducible for a given `reset(seed)`."""

    type = "random"
    config_class = RandomConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rng = np.random.default_rng(0)
        self._gripper = 1.0

    def reset(self, seed: int | None = None, goal: Any = None) -> None:
        super().reset(seed, goal)
        self.rng = np.random.default_rng(seed)
        self._gripper = 1.0

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        batch, n = _batch_size(obs), self.n_action_steps
        limit = np.array([MAX_POS_STEP] * 3 + [MAX_ROT_STEP] * 3) * self.config.scale
        out = np.empty((batch, n, 7), np.float32)
        out[..., :6] = self.rng.uniform(-limit, limit, (batch, n, 6))
        for i in range(n):
            if self.rng.random() < self.config.gripper_flip:
                self._gripper = 1.0 - self._gripper
            out[:, i, 6] = self._gripper
        return out

    @classmethod
    def build_default(cls, **overrides: Any) -> RandomPolicy:
        return cls(
            RandomConfig(**overrides),
            observation_features={},
            action_features={"action": ee_delta_feature()},
        )


def _batch_size(obs: Observation) -> int:
    """B of a batched observation (1 when the policy reads no key)."""
    return int(next(iter(obs.values())).shape[0]) if obs else 1


POLICIES.register("zero", ZeroConfig, ZeroPolicy)
POLICIES.register("random", RandomConfig, RandomPolicy)
