"""Goals for goal-conditioned policies: what a scripted expert reaches from the same start.

Play-trained policies (GCBC, Play-LMP) take a goal observation, not a task name. As in the
Play-LMP and CALVIN evaluations, the goal of an episode is the observation at the end of a
scripted expert's rollout of the task from the very same state, run in a copy of the twin (the
evaluated twin is not touched): the copy is reset with the episode's seed (the same physics
randomisation), then set to the evaluated twin's full physics state.

    goals = ExpertGoals(robot.twin)
    goal = goals(robot.twin, seed, "turn_on_light")    # {"state": (40,), "keypoints": (33, 3)}

A cache folder (`ExpertGoals(twin, cache=DIR)`, `evaluate(..., goal_cache=DIR)`) keeps each goal
as an `.npz` named by a hash of the task, seed, twin config and full physics state it starts
from, so that evaluating several policies on the same seeds rolls each expert out once (a
chain's later goals start from states the policy reached, so they hit only when two policies
reach the same state). It holds for one version of the experts: use a fresh folder per run.

`GOAL_MODES`: "task" passes the task's name to `policy.reset` (task-conditioned and scripted
policies), "expert" this goal observation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError

GOAL_MODES = ("task", "expert")
#: Steps the expert keeps its last command after its plan ends (the world settles).
SETTLE_STEPS = 3


def check_goal_mode(goals: str) -> str:
    if goals not in GOAL_MODES:
        raise ConfigError(f"expected goals among {GOAL_MODES}, found {goals!r}")
    return goals


class ExpertGoals:
    """Goal observations from scripted-expert rollouts in a private copy of a twin."""

    def __init__(self, twin: Any, max_steps: int = 200, cache: str | Path | None = None) -> None:
        from playworld.sim.experts import ScriptedExpert
        from playworld.sim.twin import Twin

        self.copy = Twin(dataclasses.replace(twin.config, action_space="ee_delta"))
        self.expert = ScriptedExpert()
        self.max_steps = max_steps
        self.cache = Path(cache) if cache is not None else None

    def __call__(self, twin: Any, seed: int, task: str) -> dict[str, np.ndarray]:
        """The copy's observation (`state` (40,), `keypoints` (K, 3)) after the expert ran
        `task` from `twin`'s current state (until its plan ends, or `max_steps`)."""
        if self.cache is None:
            return self._rollout(twin, seed, task)
        path = self.cache / f"{task}-{self._key(twin, seed, task)}.npz"
        try:
            with np.load(path, allow_pickle=False) as saved:
                return {k: np.array(saved[k]) for k in saved.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # not there yet, or damaged: rolled out (again) and saved
        goal = self._rollout(twin, seed, task)
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.partial")
        with open(tmp, "wb") as f:
            np.savez(f, **goal)
        os.replace(tmp, path)  # whole or absent: workers may write the same goal at once
        return goal

    def _key(self, twin: Any, seed: int, task: str) -> str:
        """What the goal depends on: task, seed, the copy's config, the start's physics state."""
        h = hashlib.sha256()
        config = json.dumps(self.copy.config.to_dict(), sort_keys=True, default=str)
        h.update(json.dumps([task, int(seed), self.max_steps, SETTLE_STEPS, config]).encode())
        h.update(np.ascontiguousarray(twin.get_sim_state(), dtype=np.float64).tobytes())
        return h.hexdigest()[:32]

    def _rollout(self, twin: Any, seed: int, task: str) -> dict[str, np.ndarray]:
        copy = self.copy
        copy.reset(seed=seed)
        copy.set_sim_state(twin.get_sim_state())
        self.expert.reset(task)
        action = None
        for _ in range(self.max_steps):
            action = self.expert.act(copy.observe())
            copy.step(action)
            if self.expert.done:
                break
        if action is not None:
            for _ in range(SETTLE_STEPS):
                copy.step(np.r_[np.zeros(6), action[6:]].astype(np.float32))
        return {k: np.array(v) for k, v in copy.observe().items()}
