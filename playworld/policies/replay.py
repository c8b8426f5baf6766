"""`replay`: the actions of one stored episode, played back open loop.

The actions (T, A) are the policy's only tensor (`actions` in model.safetensors), so a saved
replay policy runs without the store. It reads no observation. After the last stored action it
keeps still: zero deltas with the last gripper opening for `ee_delta` actions (7,), the last
target for `joint_pos` actions (8,).

    policy = make_policy("replay", store="play.zarr", episode=3)
    policy.reset()
    action = policy.act({})            # the episode's action t, t = steps since reset
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError, PolicyError
from playworld.features import Feature
from playworld.policies.base import POLICIES, Observation, Policy, PolicyConfig

EE_DELTA_DIM = 7  # dx dy dz rx ry rz gripper: hold still = zero deltas


@dataclass(frozen=True)
class ReplayConfig(PolicyConfig):
    """`steps`: the number of stored actions (T); `store`, `episode`: where they came from."""

    steps: int = 1
    store: str = ""
    episode: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1:
            raise ConfigError(f"expected a replay of steps >= 1 actions, found {self.steps}")


class ReplayPolicy(Policy):
    """Emits action t of the stored episode at the t-th call after `reset` (see the module doc)."""

    type = "replay"
    config_class = ReplayConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actions = np.zeros((self.config.steps, self.action_dim), np.float32)  # (T, A)
        self.t = 0

    def reset(self, seed: int | None = None, goal: Any = None) -> None:
        """Back to the episode's first action (the goal is ignored: the replay is open loop)."""
        super().reset(seed, goal)
        self.t = 0

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """-> (B, n_action_steps, A): the next actions of the episode, the same for every row."""
        batch = int(next(iter(obs.values())).shape[0]) if obs else 1
        n, last = self.n_action_steps, len(self.actions) - 1
        rows = [self._action(self.t + i, last) for i in range(n)]
        self.t += n
        return np.broadcast_to(np.stack(rows), (batch, n, self.action_dim)).copy()

    def _action(self, t: int, last: int) -> np.ndarray:
        if t <= last:
            return self.actions[t]
        hold = self.actions[last].copy()
        if self.action_dim == EE_DELTA_DIM:
            hold[:-1] = 0.0
        return hold

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"actions": self.actions}

    def _load_tensors(self, tensors: Any) -> None:
        self.actions = np.array(tensors["actions"], np.float32)

    @classmethod
    def from_actions(
        cls, actions: np.ndarray, action_feature: Feature, **config: Any
    ) -> ReplayPolicy:
        """A replay of `actions` (T, A) described by `action_feature` (A,)."""
        actions = np.asarray(actions, np.float32)
        if actions.ndim != 2 or actions.shape[1:] != action_feature.shape:
            raise PolicyError(
                f"expected actions (T, {action_feature.shape[0]}), found {actions.shape}"
            )
        policy = cls(
            ReplayConfig(steps=len(actions), **config),
            observation_features={},
            action_features={"action": action_feature},
        )
        policy.actions = actions.copy()
        return policy

    @classmethod
    def build_default(cls, store: str | Path | None = None, episode: int = 0, **overrides: Any):
        """The `action`s of episode `episode` of the store at `store`."""
        from playworld.datasets import PlayStore

        if store is None:
            raise PolicyError(
                "expected a store for the replay policy, found none: "
                "make_policy('replay', store='play.zarr', episode=0)"
            )
        src = PlayStore.open(store)
        try:
            if "action" not in src.features:
                raise PolicyError(f"expected an 'action' feature in {store}, found none")
            ep = src.episode(episode)
            actions = ep["action"][:]
            feature = src.features["action"]
        finally:
            src.close()
        return cls.from_actions(
            actions, feature, store=str(store), episode=int(ep.index), **overrides
        )

    @classmethod
    def example(cls, tmp_path: Path) -> ReplayPolicy:
        """A replay of a 2-episode store written here (ee_delta actions)."""
        from playworld.datasets import PlayStore
        from playworld.policies.simple import ee_delta_feature

        feature = ee_delta_feature()
        rng = np.random.default_rng(0)
        path = tmp_path / "replay_example.zarr"
        store = PlayStore.create(path, {"action": feature}, fps=10.0)
        try:
            for steps in (5, 8):
                store.add_episode({"action": rng.uniform(-0.01, 0.01, (steps, 7))})
        finally:
            store.close()
        return cls.build_default(store=path, episode=1)


POLICIES.register("replay", ReplayConfig, ReplayPolicy)
