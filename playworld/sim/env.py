"""The gymnasium environment `playworld/PlayTable-v0` around the twin.

    import gymnasium as gym, playworld.sim
    env = gym.make("playworld/PlayTable-v0", task="open_drawer", cameras=("front",))
    obs, info = env.reset(seed=0)            # obs: state (40,), keypoints (K, 3), front_rgb
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["success"]                          # the task's predicate (start state, current state)

Goal-conditioned mode (`goal_conditioned=True`): `obs["goal"]` (40,) is a state to reach, either
given as `reset(options={"goal": state})` or made by running the scripted expert for the sampled
task from the same start (then undone); success means `tasks.goal_reached(goal, state)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from playworld.sim.config import TwinConfig
from playworld.sim.errors import SimError
from playworld.sim.experts import ScriptedExpert
from playworld.sim.scene import CAMERAS, KEYPOINTS
from playworld.sim.state import STATE_LAYOUT
from playworld.sim.tasks import TASKS, get_task, goal_reached, prepare_task
from playworld.sim.twin import Twin

ENV_ID = "playworld/PlayTable-v0"


class PlayTableEnv(gym.Env):
    """One task per episode (fixed, or sampled from `tasks` at each reset); reward 1 on success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: str | None = None,
        tasks: tuple[str, ...] | None = None,
        config: TwinConfig | None = None,
        action_space: str | None = None,
        cameras: tuple[str, ...] = (),
        image_size: tuple[int, int] = (128, 128),
        depth: bool = False,
        goal_conditioned: bool = False,
        max_episode_steps: int = 100,
        render_mode: str | None = "rgb_array",
    ) -> None:
        config = config or TwinConfig()
        if action_space is not None:
            config = dataclasses.replace(config, action_space=action_space)
        self.tasks = (get_task(task).name,) if task else tuple(tasks or TASKS)
        for name in self.tasks:
            get_task(name)
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise SimError(f"expected cameras among {list(CAMERAS)}, found {bad}")
        self.twin = Twin(config)
        self.cameras, self.depth, self.image_size = tuple(cameras), depth, tuple(image_size)
        self.goal_conditioned = goal_conditioned
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self._renderer = None
        a = self.twin.action_space
        self.action_space = spaces.Box(a.low.astype(np.float32), a.high.astype(np.float32))
        obs: dict[str, spaces.Space] = {
            "state": spaces.Box(-np.inf, np.inf, (STATE_LAYOUT.size,), np.float64),
            "keypoints": spaces.Box(-np.inf, np.inf, (len(KEYPOINTS), 3), np.float64),
        }
        h, w = self.image_size
        for cam in self.cameras:
            obs[f"{cam}_rgb"] = spaces.Box(0, 255, (h, w, 3), np.uint8)
            if depth:
                obs[f"{cam}_depth"] = spaces.Box(0, np.inf, (h, w), np.float32)
        if goal_conditioned:
            obs["goal"] = spaces.Box(-np.inf, np.inf, (STATE_LAYOUT.size,), np.float64)
        self.observation_space = spaces.Dict(obs)
        self.task: str | None = None
        self.start_state: np.ndarray | None = None
        self.goal: np.ndarray | None = None
        self._steps = 0

    # ------------------------------------------------------------------ helpers
    @property
    def renderer(self):
        if self._renderer is None:
            from playworld.sim.render import TwinRenderer

            self._renderer = TwinRenderer(self.twin, *self.image_size)
        return self._renderer

    def _obs(self) -> dict[str, np.ndarray]:
        obs = self.twin.observe()
        for cam in self.cameras:
            obs[f"{cam}_rgb"] = self.renderer.rgb(cam)
            if self.depth:
                obs[f"{cam}_depth"] = self.renderer.depth(cam)
        if self.goal_conditioned:
            obs["goal"] = self.goal.copy()
        return obs

    def _success(self, state: np.ndarray) -> bool:
        if self.goal_conditioned:
            return goal_reached(self.goal, state)
        return bool(get_task(self.task).success(self.start_state, state))

    def _expert_goal(self) -> np.ndarray:
        """Run the scripted expert from the current start, keep the end state, then undo."""
        saved = self.twin.get_sim_state()
        expert, task = ScriptedExpert(self.task), get_task(self.task)
        start = self.twin.get_state()
        for _ in range(self.max_episode_steps):
            self.twin.step(expert.act(self.twin.observe()))
            if task.success(start, self.twin.get_state()):
                break
        goal = self.twin.get_state()
        self.twin.set_sim_state(saved)
        return goal

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        twin_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        self.twin.reset(seed=twin_seed)
        self.task = (
            get_task(options["task"]).name
            if "task" in options
            else (self.tasks[int(self.np_random.integers(len(self.tasks)))])
        )
        if "state" in options:
            self.twin.set_state(options["state"])
            self.start_state = self.twin.get_state()
        else:
            self.start_state = prepare_task(self.twin, get_task(self.task), self.np_random)
        if self.goal_conditioned:
            goal = options.get("goal")
            self.goal = np.asarray(goal, np.float64) if goal is not None else self._expert_goal()
        self._steps = 0
        return self._obs(), {"task": self.task, "success": False}

    def step(self, action: np.ndarray):
        applied = self.twin.step(action)
        self._steps += 1
        obs = self._obs()
        success = self._success(obs["state"])
        truncated = self._steps >= self.max_episode_steps
        info = {"task": self.task, "success": success, "applied_action": applied}
        return obs, float(success), success, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.renderer.rgb("front")

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def register() -> None:
    """Register `playworld/PlayTable-v0` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="playworld.sim.env:PlayTableEnv")


register()
