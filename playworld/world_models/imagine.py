"""Imagination: batched open-loop rollouts, and a `WorldModelEnv` with the twin's reset/step.

    states = imagine(model, {"state": (B, K, D)}, actions (B, T, A))             # state model
    frames = imagine(model, {"front": (B, K, H, W, 3), "action": (B, K-1, A)}, actions)
    env = WorldModelEnv(model, "play.zarr"); obs = env.reset(episode=3, start=20); env.step(a)

Arrays may be numpy or torch; results are numpy (float32 states in the store's units, uint8
frames). A policy can be run in imagination exactly as in the twin: ``obs = env.step(policy(obs))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from playworld.datasets import PlayStore
from playworld.errors import ConfigError
from playworld.world_models.data import read_arrays, require_features


def is_frame_model(model: Any) -> bool:
    return hasattr(model.cfg, "camera")


def history_keys(model: Any) -> dict[str, str]:
    """Store keys a model's history needs -> why."""
    c = model.cfg
    if is_frame_model(model):
        return {c.camera: "the frame model's camera", c.action_key: "the model's actions"}
    return {c.state_key: "the model's state", c.action_key: "the model's actions"}


def imagine(
    model: Any,
    history: Mapping[str, Any],
    actions: Any,
    *,
    seed: int = 0,
    steps: int | None = None,
) -> np.ndarray:
    """Roll ``model`` forward under ``actions`` (B, T, A) from ``history``; (B, T, ...) numpy."""
    g = torch.Generator().manual_seed(seed)
    acts = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
    if acts.dim() != 3:
        raise ConfigError(
            f"actions must be (batch, steps, action_dim), got shape {tuple(acts.shape)}"
        )
    c = model.cfg
    if is_frame_model(model):
        frames = torch.as_tensor(np.asarray(history[c.camera]))
        past = torch.as_tensor(np.asarray(history[c.action_key]), dtype=torch.float32)
        return model.imagine(frames, past, acts, steps=steps, generator=g).numpy()
    states = torch.as_tensor(np.asarray(history[c.state_key]), dtype=torch.float32)
    return model.imagine(states, acts, generator=g).numpy()


class WorldModelEnv:
    """A world model behind the twin's ``reset``/``step``; starts from recorded histories.

    ``reset(episode, start)`` takes the K recorded steps ending at row ``start`` of the episode
    (default: the first K) as history; ``step(action)`` imagines the next observation. Both
    return ``{key: array}`` with the model's observation key (``state`` or the camera).
    """

    def __init__(self, model: Any, store: str, *, seed: int = 0, steps: int | None = None) -> None:
        self.model, self.steps = model, steps
        self.generator = torch.Generator().manual_seed(seed)
        c = model.cfg
        self.obs_key = c.camera if is_frame_model(model) else c.state_key
        with PlayStore.open(store, "r") as s:
            require_features(s, history_keys(model))
            size = c.image_size if is_frame_model(model) else None
            self._data = read_arrays(s, [self.obs_key, c.action_key], size)
            self._ends = np.asarray(s.episode_ends)
        self._obs: torch.Tensor | None = None
        self._actions: torch.Tensor | None = None

    @property
    def history(self) -> int:
        return self.model.cfg.history

    def reset(self, episode: int = 0, start: int | None = None) -> dict[str, np.ndarray]:
        k = self.history
        if not 0 <= episode < len(self._ends):
            raise ConfigError(
                f"episode {episode} does not exist; the store has 0..{len(self._ends) - 1}"
            )
        a = int(self._ends[episode - 1]) if episode > 0 else 0
        length = int(self._ends[episode]) - a
        start = k - 1 if start is None else int(start)
        if not k - 1 <= start < length:
            raise ConfigError(
                f"start must be in [{k - 1}, {length - 1}] for episode {episode} (history of {k} steps)"
            )
        rows = slice(a + start - k + 1, a + start + 1)
        self._obs = torch.as_tensor(self._data[self.obs_key][rows])[None]  # (1, K, ...)
        self._actions = torch.as_tensor(self._data[self.model.cfg.action_key][rows])[
            None, :-1
        ].float()
        return {self.obs_key: self._obs[0, -1].numpy()}

    def step(self, action: Any) -> dict[str, np.ndarray]:
        if self._obs is None or self._actions is None:
            raise ConfigError("call reset() before step()")
        a = torch.as_tensor(np.asarray(action), dtype=torch.float32).reshape(1, 1, -1)
        if is_frame_model(self.model):
            nxt = self.model.imagine(
                self._obs, self._actions, a, steps=self.steps, generator=self.generator
            )
        else:
            nxt = self.model.imagine(self._obs.float(), a, generator=self.generator).to(
                self._obs.dtype
            )
        self._obs = torch.cat([self._obs[:, 1:], nxt], dim=1)
        self._actions = torch.cat([self._actions, a], dim=1)[:, 1:]
        return {self.obs_key: self._obs[0, -1].numpy()}
