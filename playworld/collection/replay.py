"""Replay a recorded twin episode and check that it reproduces the recorded states.

    report = replay_episode(store, 0)       # ReplayReport(steps, max_state_error, ok)

The twin is rebuilt from the store's `info["twin"]` (its TwinConfig), set to the episode's full
physics state before row 0 (`sim_state0` in the episode metadata, written by autoplay), then
stepped with the recorded `command` rows (the guarded joint targets + gripper the robot
executed). Row t's `state` must equal the twin's state before command t. The twin is
deterministic, so the error is zero unless the twin or MuJoCo changed since the recording (or
the recording randomised masses or friction, which the physics state does not hold).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from playworld.errors import ConfigError


class ReplayReport(NamedTuple):
    """Outcome of a replay: steps compared, the largest absolute state difference."""

    episode: int
    steps: int
    max_state_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_state_error <= self.tolerance


def twin_for(store: Any) -> Any:
    """A twin built like the one that recorded `store` (joint-target actions)."""
    from playworld.sim import Twin, TwinConfig

    cfg = store.info.get("twin")
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"expected a twin recording with info['twin'] (its TwinConfig), found info keys "
            f"{sorted(store.info)} in {store.url}"
        )
    return Twin(TwinConfig(**{**cfg, "action_space": "joint_pos"}))


def replay_episode(
    store: Any, index: int, twin: Any = None, tolerance: float = 1e-9
) -> ReplayReport:
    """Replay episode `index` of `store` in a twin (see the module docstring)."""
    ep = store.episode(index)
    sim_state0 = ep.metadata.get("sim_state0")
    if sim_state0 is None:
        raise ConfigError(
            f"expected episode {index} of {store.url} to carry sim_state0 (recorded by autoplay "
            "in the twin), found none"
        )
    for key in ("state", "command"):
        if key not in store.features:
            raise ConfigError(f"expected a {key!r} feature in {store.url}, found none")
    twin = twin if twin is not None else twin_for(store)
    states = ep["state"][:]  # (T, 40) float64
    commands = ep["command"][:]  # (T, 8) float32
    twin.set_sim_state(np.asarray(sim_state0, dtype=np.float64))
    worst = 0.0
    for t in range(len(ep)):
        worst = max(worst, float(np.abs(twin.get_state() - states[t]).max()))
        twin.step(commands[t].astype(np.float64))
    return ReplayReport(ep.index, len(ep), worst, tolerance)
