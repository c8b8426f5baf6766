"""`scripted`: the twin's privileged experts (`playworld.sim.experts.ScriptedExpert`) as a Policy.

It reads the twin-only features `state` (40,) f64 and `keypoints` (K, 3) f32 m, so it runs on the
twin alone (`policy.privileged` is True). The goal is a task name (`TASKS`): the expert plans its
waypoints from the first observation after `reset(goal=task)` and emits `ee_delta` actions (7,).

    policy = make_policy("scripted")
    policy.reset(seed=0, goal="open_drawer")
    action = policy.act(obs)           # obs from SimRobot.get_observation(): (7,) float32
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError, PolicyError
from playworld.policies.base import POLICIES, Observation, Policy, PolicyConfig
from playworld.policies.simple import ee_delta_feature


@dataclass(frozen=True)
class ScriptedConfig(PolicyConfig):
    """The expert replans from each newest observation: one observation, one action per step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.n_obs_steps, self.n_action_steps) != (1, 1):
            raise ConfigError(
                f"expected n_obs_steps = n_action_steps = 1 for the scripted expert (it follows "
                f"its waypoints step by step), found {self.n_obs_steps} and {self.n_action_steps}"
            )


class ScriptedPolicy(Policy):
    """The twin's scripted expert for the task named by `reset(goal=...)`."""

    type = "scripted"
    config_class = ScriptedConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from playworld.sim.experts import ScriptedExpert

        super().__init__(*args, **kwargs)
        self.expert = ScriptedExpert()

    def reset(self, seed: int | None = None, goal: str | Observation | None = None) -> None:
        """`goal`: a task name (`playworld.sim.TASKS`); None keeps the previous task."""
        from playworld.sim.errors import SimError

        if goal is not None and not isinstance(goal, str):
            raise PolicyError(
                "expected a task name as the goal of the scripted expert, found a goal "
                "observation (the experts plan from task names)"
            )
        try:
            self.expert.reset(goal)
        except SimError as exc:  # an unknown task: the message lists the valid ones
            raise PolicyError(str(exc)) from None
        super().reset(seed, goal if goal is not None else self.expert.task)

    def act(self, obs: Observation) -> np.ndarray:
        """The expert's next action (7,) float32 (no history or queue: it is 1 step in, 1 out)."""
        try:
            state, keypoints = obs["state"], obs["keypoints"]
        except KeyError:
            raise PolicyError(
                f"expected observation keys 'state' and 'keypoints' for policy 'scripted' (the "
                f"twin's privileged features), found keys {sorted(obs)}"
            ) from None
        return self._expert_act(state, keypoints)

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """obs['state'] (1, 1, 40), obs['keypoints'] (1, 1, K, 3) -> (1, 1, 7) float32.

        The expert keeps one plan (one episode), so the batch holds one observation.
        """
        state, keypoints = np.asarray(obs["state"]), np.asarray(obs["keypoints"])
        if state.shape[0] != 1:
            raise PolicyError(
                f"expected a batch of 1 for the scripted expert (one plan per episode), found "
                f"{state.shape[0]}"
            )
        return self._expert_act(state[0, -1], keypoints[0, -1])[None, None]

    def _expert_act(self, state: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        if self.expert.task is None:
            raise PolicyError(
                "expected reset(goal=<task name>) before act() of the scripted expert"
            )
        return self.expert.act({"state": state, "keypoints": keypoints})

    @classmethod
    def build_default(cls, **overrides: Any) -> ScriptedPolicy:
        from playworld.sim.robot import privileged_features

        return cls(
            ScriptedConfig(**overrides),
            observation_features=privileged_features(),
            action_features={"action": ee_delta_feature()},
        )

    @classmethod
    def example(cls, tmp_path: Path) -> ScriptedPolicy:
        return cls.build_default()


POLICIES.register("scripted", ScriptedConfig, ScriptedPolicy)
