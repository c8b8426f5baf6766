"""A teleop that replays the actions of a stored episode: non-interactive recording.

    playworld record --robot rosbridge_panda --teleop replay:play.zarr:3 --episodes 2 --store out.zarr

`replay:STORE[:EPISODE]` replays the `action`s (ee deltas (7,)) of episode EPISODE of STORE, or of
its episodes in order (cycling) without one. Each recorded episode replays one source episode
from its first action; when the actions run out the device raises `SAVE` (the episode ends) and
then holds still (zero deltas, the last gripper opening) until the next episode starts. Users
re-record a trajectory on another robot with it; tests drive `record` end to end with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playworld.errors import ConfigError
from playworld.hardware.teleop import Teleop, TeleopConfig, TeleopEvent

PREFIX = "replay:"


@dataclass(frozen=True)
class ReplayTeleopConfig(TeleopConfig):
    """The source store and episode (None: every episode, in order)."""

    store: str = ""
    episode: int | None = None

    @classmethod
    def parse(cls, spec: str) -> ReplayTeleopConfig:
        """`replay:STORE[:EPISODE]` -> config (one line naming the fix when malformed)."""
        body = spec[len(PREFIX) :]
        store, sep, episode = body.rpartition(":")
        if not (sep and episode.isdigit()):  # no EPISODE (a Windows drive letter stays whole)
            store, episode = body, ""
        if not store:
            raise ConfigError(
                f"expected --teleop replay:STORE[:EPISODE] (a store path), found {spec!r}"
            )
        return cls(store=store, episode=int(episode) if episode else None)


class ReplayTeleop(Teleop):
    """Replays a stored episode's ee-delta actions (see the module docstring)."""

    def __init__(self, config: ReplayTeleopConfig) -> None:
        super().__init__(config)
        self.episodes: list[np.ndarray] = []  # each (T, 7) float32
        self.fps: float | None = None  # of the source store: must equal the robot's rate
        self._actions: np.ndarray | None = None
        self._row = 0
        self._next = 0
        self._gripper = 1.0

    def _connect(self) -> None:
        from playworld.datasets import PlayStore

        c = self.config
        try:
            store = PlayStore.open(c.store)
        except Exception as exc:  # missing, not a store, damaged
            raise ConfigError(
                f"expected a play store to replay at {c.store}, found: {exc}"
            ) from None
        with store:
            feature = store.features.get("action")
            if feature is None or tuple(feature.shape) != (7,):
                found = None if feature is None else tuple(feature.shape)
                raise ConfigError(
                    f"expected ee_delta actions (7,) in {c.store} to replay, found {found}"
                )
            if not len(store):
                raise ConfigError(f"expected episodes in {c.store} to replay, found none")
            indices = range(len(store)) if c.episode is None else [c.episode]
            for i in indices:
                if not 0 <= i < len(store):
                    raise ConfigError(
                        f"expected an episode 0..{len(store) - 1} of {c.store}, found {i}"
                    )
                self.episodes.append(np.asarray(store.episode(i)["action"][:], np.float32))
            self.fps = float(store.fps)

    def _disconnect(self) -> None:
        self.episodes = []

    def on_episode_start(self) -> None:
        """Start replaying the next source episode from its first action."""
        self._actions = self.episodes[self._next % len(self.episodes)]
        self._next += 1
        self._row = 0

    def get_action(self) -> np.ndarray:
        with self._lock:
            acts = self._actions
            if acts is not None and self._row < len(acts):
                action = acts[self._row].copy()
                self._row += 1
                self._gripper = float(action[6])
                if self._row == len(acts):
                    self._emit(TeleopEvent.SAVE)
                    self._actions = None
                return action
            return np.array([0, 0, 0, 0, 0, 0, self._gripper], np.float32)
