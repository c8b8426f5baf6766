"""Lazy views of one committed episode: ``store.episode(i)[key][a:b]`` reads only rows a..b."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from playworld.features import Feature


class RowSource(Protocol):
    """What an episode view reads from (a `PlayStore`): feature descriptions and row ranges."""

    features: Mapping[str, Feature]

    def array(self, key: str) -> Any: ...

    def read(self, key: str, start: int, stop: int) -> np.ndarray: ...


class Episode:
    """One committed episode; ``episode[key]`` is a lazy view, sliced reads touch only their rows."""

    def __init__(
        self, store: RowSource, index: int, start: int, stop: int, metadata: dict[str, Any]
    ) -> None:
        self.store = store
        self.index = index
        self.start = start
        self.stop = stop
        self.metadata = metadata

    def __len__(self) -> int:
        return self.stop - self.start

    def keys(self) -> list[str]:
        return list(self.store.features)

    def __getitem__(self, key: str) -> EpisodeArray:
        self.store.array(key)  # raises with the valid names
        return EpisodeArray(self, key)

    def to_dict(self, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """Read the whole episode (or ``keys``) into memory."""
        return {k: self[k][:] for k in (keys or self.keys())}

    def __repr__(self) -> str:
        return f"Episode({self.index}, steps={len(self)}, source={self.metadata.get('source')!r})"


class EpisodeArray:
    """Rows of one feature within one episode; index it with an int or a slice."""

    def __init__(self, episode: Episode, key: str) -> None:
        self.episode = episode
        self.key = key
        f = episode.store.features[key]
        self.shape = (len(episode), *f.shape)
        self.dtype = np.dtype(f.dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | slice) -> np.ndarray:
        n = len(self)
        if isinstance(index, slice):
            a, b, step = index.indices(n)
            rows = self.episode.store.read(
                self.key, self.episode.start + a, self.episode.start + max(a, b)
            )
            return rows[::step] if step != 1 else rows
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"step {index} out of range for an episode of {n} steps")
        s = self.episode.start + i % n
        return self.episode.store.read(self.key, s, s + 1)[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out.astype(dtype) if dtype is not None else out
