"""`scripted_perception`: the twin's scripted experts, reading only what a real lab measures.

The `scripted` policy reads the twin's privileged `state` and `keypoints`; this variant reads
`joint_pos` (7,) rad, `gripper` (1,) and the perception stream's `object_poses` (K, 7) (the
objects of `playworld.sim.perception.OBJECTS`, x y z qw qx qy qz, world frame), so it runs over
the ROS bridge in direct mode. Each step it writes them into a private kinematic copy of the
twin (`sync_twin`), reads back the state vector and the keypoint sites, and asks the expert.
What poses cannot tell (the light) is taken from the task's setup: the experts do not need it.

    policy = make_policy("scripted_perception")
    policy.reset(seed=0, goal="turn_on_light")
    action = policy.act({"joint_pos": q, "gripper": g, "object_poses": poses})   # ee_delta (7,)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError, PolicyError
from playworld.features import Feature
from playworld.policies.base import POLICIES, Observation, Policy, PolicyConfig


@dataclass(frozen=True)
class ScriptedPerceptionConfig(PolicyConfig):
    """One observation in, one action out (the expert follows its waypoints step by step)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.n_obs_steps, self.n_action_steps) != (1, 1):
            raise ConfigError(
                f"expected n_obs_steps = n_action_steps = 1 for the scripted expert, found "
                f"{self.n_obs_steps} and {self.n_action_steps}"
            )


def perception_features() -> dict[str, Feature]:
    """What the policy reads: joints, gripper and the perception stream's object poses."""
    from playworld.hardware.robot import PANDA_JOINTS
    from playworld.sim.perception import OBJECTS

    return {
        "joint_pos": Feature((7,), "float32", units="rad", names=PANDA_JOINTS),
        "gripper": Feature((1,), "float32", units="0..1 open"),
        "object_poses": Feature(
            (len(OBJECTS), 7), "float32", units="m, wxyz (world)", names=OBJECTS
        ),
    }


class ScriptedPerceptionPolicy(Policy):
    """The expert for the task named by `reset(goal=...)`, planning from measured poses."""

    type = "scripted_perception"
    config_class = ScriptedPerceptionConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from playworld.sim.experts import ScriptedExpert

        super().__init__(*args, **kwargs)
        self.expert = ScriptedExpert()
        self._twin = None  # built on first use (MuJoCo model: ~0.1 s)

    def reset(self, seed: int | None = None, goal: str | Observation | None = None) -> None:
        from playworld.sim.errors import SimError
        from playworld.sim.tasks import get_task, prepare_task, task_rng

        if goal is not None and not isinstance(goal, str):
            raise PolicyError("expected a task name as the goal of the scripted expert")
        try:
            self.expert.reset(goal)
        except SimError as exc:
            raise PolicyError(str(exc)) from None
        twin = self._get_twin()
        twin.reset(seed=seed)
        if self.expert.task is not None:  # the light as the task's setup leaves it
            prepare_task(twin, get_task(self.expert.task), task_rng(seed))
        super().reset(seed, goal if goal is not None else self.expert.task)

    def _get_twin(self) -> Any:
        if self._twin is None:
            from playworld.sim import Twin

            self._twin = Twin()
        return self._twin

    def act(self, obs: Observation) -> np.ndarray:
        missing = [k for k in self.observation_features if k not in obs]
        if missing:
            raise PolicyError(
                f"expected observation keys {missing} for policy 'scripted_perception' (a "
                f"rosbridge profile with `perception` gives object_poses), found {sorted(obs)}"
            )
        return self._expert_act(obs["joint_pos"], obs["gripper"], obs["object_poses"])

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """obs[key] (1, 1, ...) -> (1, 1, 7): one plan per episode, so a batch of one."""
        q = np.asarray(obs["joint_pos"])
        if q.shape[0] != 1:
            raise PolicyError(f"expected a batch of 1 for the scripted expert, found {q.shape[0]}")
        last = {k: np.asarray(obs[k])[0, -1] for k in self.observation_features}
        return self._expert_act(last["joint_pos"], last["gripper"], last["object_poses"])[
            None, None
        ]

    def _expert_act(self, q: np.ndarray, gripper: np.ndarray, poses: np.ndarray) -> np.ndarray:
        from playworld.sim.perception import OBJECTS, sync_twin

        if self.expert.task is None:
            raise PolicyError("expected reset(goal=<task name>) before act() of the expert")
        twin = self._get_twin()
        sync_twin(twin, q, float(np.asarray(gripper).reshape(-1)[0]), poses, OBJECTS)
        return self.expert.act({"state": twin.get_state(), "keypoints": twin.keypoints()})

    @classmethod
    def build_default(cls, **overrides: Any) -> ScriptedPerceptionPolicy:
        from playworld.hardware.ee import EE_ACTION_NAMES as ACTION_NAMES

        return cls(
            ScriptedPerceptionConfig(**overrides),
            observation_features=perception_features(),
            action_features={
                "action": Feature(
                    (7,), "float32", kind="action", units="m, rad, 0..1", names=ACTION_NAMES
                )
            },
        )

    @classmethod
    def example(cls, tmp_path: Path) -> ScriptedPerceptionPolicy:
        return cls.build_default()


POLICIES.register("scripted_perception", ScriptedPerceptionConfig, ScriptedPerceptionPolicy)
