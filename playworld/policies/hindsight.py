"""Hindsight-goal windows from a play store: what GCBC and Play-LMP train on.

Play has no task labels. As in Play-LMP and CALVIN, any stretch of play is a demonstration of
reaching wherever it ended: a window of L actions (L drawn in [min_window, max_window], default
16..32) starting at row t of an episode is labelled with the goal ``obs[t + L]``, the observation
L steps after the window's first one, in the same episode. Every step of the window is trained
towards that goal (so the first step's goal lies L steps ahead, the last step's one step ahead).
Windows start where ``max_window + 1`` steps fit in the episode; with ``tail_windows`` they also
start closer to its end, L capped at the steps left (never below ``min_window``), so episodes
shorter than ``max_window + 1`` steps count too and long windows (long tasks) need no long
episodes.

    data = HindsightWindows("play.zarr", HindsightConfig(), split="train")
    batch = data.__getitems__([0, 5, 9])   # what `playworld.training.train` gathers in one call

The vector features are read into RAM once (a play store's low-dimensional keys are small) and a
batch is a few numpy fancy-index operations over `WindowSampler` rows. A window's length is a
fixed function of its index (so batches, and resumed runs, are reproducible); lengths mix within
a batch, and ``mask`` marks the steps inside each window.

Batch (B windows, T = max_window):
    <key>        (B, T, *shape) float32   each observation key, steps t .. t + T - 1
    goal.<key>   (B, *shape)    float32   each goal key at step t + L
    action       (B, T, A)      float32   actions at steps t .. t + T - 1
    mask         (B, T)         bool      True for the first L steps (steps past an episode's
                                          end, with tail_windows, repeat its last row)
    length       (B,)           int64     L
Values are in the store's units; the model normalises them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from playworld.datasets import Normalizer, PlayStore, WindowSampler, split_episodes
from playworld.errors import ConfigError, FeatureError, did_you_mean
from playworld.features import Feature
from playworld.training.data import BatchedDataset

#: The normalisation of each kind of key: states to zero mean and unit variance, actions
#: min/max to [-1, 1] (the range of the mixture head's bins).
STATE_MODE, ACTION_MODE = "mean_std", "min_max"
#: Floor of a state's std (its units): a dimension that never moved in play (a block that was
#: never turned) must not blow up when it moves a little at run time.
STD_FLOOR = 1e-2


@dataclass(frozen=True)
class HindsightConfig:
    """What a goal-conditioned policy reads from the store, and how windows are cut."""

    obs_keys: tuple[str, ...] = ("state",)
    goal_keys: tuple[str, ...] = ("state",)
    action_key: str = "action"
    min_window: int = 16
    max_window: int = 32
    tail_windows: bool = False
    val_ratio: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "obs_keys", tuple(self.obs_keys))
        object.__setattr__(self, "goal_keys", tuple(self.goal_keys))
        if not self.obs_keys or not self.goal_keys:
            raise ConfigError("expected at least one observation key and one goal key, found none")
        if not 1 <= self.min_window <= self.max_window:
            raise ConfigError(
                f"expected 1 <= min_window <= max_window, found {self.min_window}, "
                f"{self.max_window}"
            )
        if not 0.0 <= self.val_ratio < 1.0:
            raise ConfigError(f"expected val_ratio in [0, 1), found {self.val_ratio}")


def window_length(index: np.ndarray, lo: int, hi: int, seed: int = 0) -> np.ndarray:
    """The length L in [lo, hi] of each window index (a hash of index and seed)."""
    with np.errstate(over="ignore"):
        x = (np.asarray(index, np.uint64) + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(29)
    return lo + (x % np.uint64(hi - lo + 1)).astype(np.int64)


class HindsightWindows(BatchedDataset):
    """Hindsight-labelled windows of a play store (see the module docstring).

    Raises:
        FeatureError: the store lacks a key the config names (one line, listing its keys).
        ConfigError: no episode is long enough for a window of ``max_window + 1`` steps
            (``min_window + 1`` with ``tail_windows``).
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | PlayStore,
        config: HindsightConfig | None = None,
        split: str = "all",
    ) -> None:
        self.config = config = config or HindsightConfig()
        opened = store if isinstance(store, PlayStore) else PlayStore.open(store, "r")
        try:
            self.url = opened.url
            features = dict(opened.features)
            keys = list(dict.fromkeys([*config.obs_keys, *config.goal_keys, config.action_key]))
            for k in keys:
                if k not in features:
                    raise FeatureError(
                        f"expected feature {k!r} in the store {self.url}, found "
                        f"{sorted(features)}.{did_you_mean(k, list(features))}"
                    )
                if features[k].is_image:
                    raise FeatureError(
                        f"expected vector features for hindsight windows, found image key {k!r}"
                    )
            ends = np.asarray(opened.episode_ends, np.int64)
            n = opened.num_steps
            self.arrays = {k: opened.read(k, 0, n).astype(np.float32, copy=False) for k in keys}
            self.stats = {k: opened.stats[k] for k in keys if k in opened.stats}
        finally:
            if opened is not store:
                opened.close()
        if len(ends) == 0:
            raise ConfigError(f"{self.url} has no committed episodes to train on")
        self.features: dict[str, Feature] = {k: features[k] for k in keys}
        if split == "all":
            episodes = np.arange(len(ends))
        elif split in ("train", "val"):
            train, val = split_episodes(len(ends), config.val_ratio, config.seed)
            episodes = train if split == "train" else val
        else:
            raise ConfigError(f"expected split train, val or all, found {split!r}")
        tail = config.max_window - config.min_window if config.tail_windows else 0
        self.sampler = WindowSampler(
            ends, config.max_window + 1, pad_before=0, pad_after=tail, episodes=episodes
        )
        if len(self.sampler) == 0 and split != "val":
            longest = int(np.diff(ends, prepend=0).max())
            need = config.max_window + 1 - tail
            raise ConfigError(
                f"expected episodes of at least {need} steps in {self.url}, found at most "
                f"{longest}; record longer play or lower min_window and max_window"
            )

    def __len__(self) -> int:
        return len(self.sampler)

    def normalizer(self) -> Normalizer:
        """The normaliser of every key, from the store's statistics (see STATE_MODE); the
        action's (whichever `action_key` it is read from) is named `action`, as in a batch."""
        c = self.config
        modes = {k: STATE_MODE for k in (*c.obs_keys, *c.goal_keys)}
        modes["action"] = ACTION_MODE
        stats = {**self.stats, "action": self.stats[c.action_key]}
        features = {**self.features, "action": self.features[c.action_key]}
        return Normalizer.from_stats(stats, modes, features=features, eps=STD_FLOOR)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        c = self.config
        idx = np.asarray(indices, np.int64)
        rows, pad = self.sampler.batch_indices(idx)  # (B, T + 1), pad past the episode's end
        lengths = window_length(idx % max(len(self), 1), c.min_window, c.max_window, c.seed)
        lengths = np.minimum(lengths, (~pad).sum(1) - 1)  # the goal inside the episode
        steps = rows[:, : c.max_window]  # (B, T)
        goal_rows = rows[np.arange(len(idx)), lengths]  # (B,)
        out: dict[str, torch.Tensor] = {}
        for k in c.obs_keys:
            out[k] = torch.from_numpy(self.arrays[k][steps])
        for k in c.goal_keys:
            out[f"goal.{k}"] = torch.from_numpy(self.arrays[k][goal_rows])
        out["action"] = torch.from_numpy(self.arrays[c.action_key][steps])
        out["mask"] = torch.from_numpy(np.arange(c.max_window)[None] < lengths[:, None])
        out["length"] = torch.from_numpy(lengths)
        return out


def feature_dims(features: Mapping[str, Feature], keys: Sequence[str]) -> int:
    """Total flattened size of `keys`."""
    return int(sum(int(np.prod(features[k].shape)) for k in keys))
