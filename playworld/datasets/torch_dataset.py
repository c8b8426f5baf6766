"""A torch Dataset of fixed-length windows from a play store.

What it reads, and how: non-image keys (small) are read into RAM once, at construction; image
keys are read lazily, one contiguous slice per key per window (``store.read(key, a, b)``, which
zarr decodes in parallel), then edge-padded by indexing. The dataset keeps the store's URL, not
its zarr objects: each process (each DataLoader worker) opens its own read-only store on first
use, because zarr's objects and its I/O threads do not survive a fork. So the dataset pickles
and works with ``DataLoader(num_workers>0)``, fork or spawn.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from playworld.datasets.sampler import WindowSampler, split_episodes
from playworld.datasets.store import PlayStore
from playworld.errors import ConfigError, FeatureError, did_you_mean
from playworld.features import Feature

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as e:  # pragma: no cover - depends on the extra
    raise ConfigError("PlayWindowDataset needs torch: pip install 'playworld[train]'") from e

SPLITS = ("train", "val", "all")


class PlayWindowDataset(Dataset[dict[str, torch.Tensor]]):
    """Windows of ``window`` steps from a play store, as dicts of torch tensors.

    Args:
        store: a store path or URL, or an open `PlayStore` (only its URL is kept).
        window: steps per window (T).
        history: observation steps (the current step is window step ``history - 1``).
        stride: keep every ``stride``-th window start within each episode.
        keys: features to return; default all.
        split: ``train``, ``val`` (episode-level split by `split_episodes`) or ``all``.
        val_ratio: fraction of episodes held out for ``val`` (ignored for ``all``).
        seed: seed of the split.
        image_keys_history_only: read image keys for the first ``history`` steps only (what a
            policy conditions on); vectors still cover the whole window.
        image_size: ``(h, w)`` to resize frames to (cv2 INTER_AREA, in the worker).
        pad_before, pad_after: see `WindowSampler` (defaults ``history - 1``, ``window - history``).

    Items: ``{key: (T_k, *shape)}`` with images uint8 ``(T_k, H, W, C)`` and other keys float32
    (``T_k`` is ``history`` for images when ``image_keys_history_only``, else ``window``);
    ``pad`` (window,) bool, True where a step repeats the episode edge; ``episode_index`` and
    ``index`` (the absolute row of the current step) int64 scalars.

    Raises:
        FeatureError: an unknown key. ConfigError: a bad argument, or no window fits (train/all).
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | PlayStore,
        window: int,
        *,
        history: int = 1,
        stride: int = 1,
        keys: Sequence[str] | None = None,
        split: str = "all",
        val_ratio: float = 0.1,
        seed: int = 0,
        image_keys_history_only: bool = False,
        image_size: tuple[int, int] | None = None,
        pad_before: int | None = None,
        pad_after: int | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        if image_size is not None:
            if len(image_size) != 2 or min(int(s) for s in image_size) < 1:
                raise ConfigError(
                    f"image_size must be (height, width) in pixels, got {image_size!r}"
                )
            image_size = (int(image_size[0]), int(image_size[1]))
        opened = store if isinstance(store, PlayStore) else PlayStore.open(store, "r")
        try:
            self.url = opened.url
            self.fps = opened.fps
            ends = opened.episode_ends
            all_features = dict(opened.features)
            keys = list(all_features) if keys is None else list(keys)
            for k in keys:
                if k not in all_features:
                    raise FeatureError(
                        f"no feature {k!r} in {self.url}.{did_you_mean(k, list(all_features))}"
                    )
            if not keys or len(set(keys)) != len(keys):
                raise ConfigError(f"keys must be distinct feature names, at least one; got {keys}")
            store_stats = opened.stats
            # Small keys once, as float32: every window then indexes RAM, never the store.
            n = opened.num_steps
            self._vectors = {
                k: opened.read(k, 0, n).astype(np.float32, copy=False)
                for k in keys
                if not all_features[k].is_image
            }
        finally:
            if opened is not store:
                opened.close()
        if len(ends) == 0:
            raise ConfigError(f"{self.url} has no committed episodes to sample windows from")
        if split == "all":
            episodes = np.arange(len(ends), dtype=np.int64)
        else:
            train, val = split_episodes(len(ends), val_ratio, seed)
            episodes = train if split == "train" else val
        self.sampler = WindowSampler(
            ends,
            window,
            history=history,
            stride=stride,
            pad_before=pad_before,
            pad_after=pad_after,
            episodes=episodes,
        )
        if len(self.sampler) == 0 and split != "val":
            longest = int(np.diff(ends, prepend=0)[episodes].max())
            raise ConfigError(
                f"no window of {window} steps fits in the {len(episodes)} {split} episodes of "
                f"{self.url} (longest: {longest} steps, padding {self.sampler.pad_before} before "
                f"and {self.sampler.pad_after} after); use a shorter window or record longer episodes"
            )
        self.keys = keys
        self.split = split
        self.episodes = episodes
        self.window, self.history = self.sampler.window, self.sampler.history
        self.image_keys_history_only = bool(image_keys_history_only)
        self.image_size = image_size
        self._image_keys = [k for k in keys if all_features[k].is_image]
        self.features: dict[str, Feature] = {}
        for k in keys:
            f = all_features[k]
            if f.is_image and image_size is not None:
                f = dataclasses.replace(f, shape=(*image_size, f.shape[2]))
            self.features[k] = f
        # Statistics over every committed episode (not only this split), of the stored frames.
        self.stats = {k: store_stats[k] for k in keys if k in store_stats}
        self._store: PlayStore | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.sampler)

    def _open(self) -> PlayStore:
        """This process's read-only store (a forked worker opens its own)."""
        if self._store is None or self._pid != os.getpid():
            self._store = PlayStore.open(self.url, "r")
            self._pid = os.getpid()
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"] = None  # zarr objects never leave their process
        state["_pid"] = None
        return state

    def _frames(self, store: PlayStore, key: str, rows: np.ndarray) -> np.ndarray:
        """Frames at ``rows`` (non-decreasing, edge-repeated): (len(rows), H, W, C) uint8."""
        a, b = int(rows[0]), int(rows[-1]) + 1
        frames = store.read(key, a, b)  # one slice read; the unique rows only
        if self.image_size is not None:
            frames = _resize(frames, self.image_size)
        if b - a == len(rows):  # no padding: rows == a..b-1, no copy needed
            return frames
        return frames[rows - a]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rows, pad = self.sampler.window_indices(index)  # raises IndexError past the end
        out: dict[str, torch.Tensor] = {}
        if self._image_keys:
            store = self._open()
            image_rows = rows[: self.history] if self.image_keys_history_only else rows
            for key in self._image_keys:
                out[key] = torch.from_numpy(self._frames(store, key, image_rows))
        for key, data in self._vectors.items():
            out[key] = torch.from_numpy(data[rows])  # fancy index: a copy, never a view of RAM
        out = {k: out[k] for k in self.keys}  # the caller's key order
        out["pad"] = torch.from_numpy(pad)
        out["episode_index"] = torch.tensor(self.sampler.sample_episode[index], dtype=torch.int64)
        out["index"] = torch.tensor(rows[self.history - 1], dtype=torch.int64)
        return out

    def __repr__(self) -> str:
        return (
            f"PlayWindowDataset({self.url!r}, split={self.split!r}, windows={len(self)}, "
            f"window={self.window}, history={self.history}, keys={self.keys})"
        )


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, h, w, C), cv2 INTER_AREA, written in place into one array."""
    import cv2

    h, w = size
    n, height, width, c = frames.shape
    if (height, width) == (h, w):
        return frames
    out = np.empty((n, h, w, c), dtype=frames.dtype)
    for i in range(n):  # cv2 takes one image (<= 4 channels) per call; no copy per frame
        cv2.resize(frames[i], (w, h), dst=out[i], interpolation=cv2.INTER_AREA)
    return out
