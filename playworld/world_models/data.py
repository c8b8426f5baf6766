"""Training windows for world models, held in RAM and gathered a whole batch at a time.

World-model stores are small (a few thousand steps; 64x64 frames are 12 KB each), so every key
is read once and a batch is one fancy index per key, far cheaper than per-item reads. Windows
lie entirely inside one episode (no edge padding: an imagined future never crosses a reset).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from playworld.datasets import PlayStore, WindowSampler, split_episodes
from playworld.errors import ConfigError, FeatureError
from playworld.training.data import BatchedDataset

SPLITS = ("train", "val", "all")


def split_of(num_episodes: int, split: str, val_ratio: float, seed: int) -> np.ndarray:
    """Episode indices of ``split`` (``train``/``val`` via `split_episodes`, or ``all``)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if split == "all":
        return np.arange(num_episodes, dtype=np.int64)
    train, val = split_episodes(num_episodes, val_ratio, seed)
    return train if split == "train" else val


def require_features(store: PlayStore, needs: Mapping[str, str]) -> None:
    """One line naming every missing feature: ``needs`` maps key -> why it is needed."""
    missing = [f"{k!r} ({why})" for k, why in needs.items() if k not in store.features]
    if missing:
        raise FeatureError(
            f"{store.url} lacks {', '.join(missing)}; it has {', '.join(sorted(store.features))}. "
            "Record the store with those features (e.g. autoplay --cameras front) or change the config"
        )


def read_arrays(
    store: PlayStore, keys: Sequence[str], image_size: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """Every committed row of ``keys``: images uint8 (N, h, w, 3) resized, vectors float32."""
    n = store.num_steps
    out = {}
    for k in keys:
        data = store.read(k, 0, n)
        if store.features[k].is_image:
            if image_size is not None and data.shape[1:3] != tuple(image_size):
                from playworld.datasets.torch_dataset import _resize

                data = _resize(data, tuple(image_size))
            out[k] = data
        else:
            out[k] = data.astype(np.float32, copy=False)
    return out


class WindowArrays(BatchedDataset):
    """All windows of ``window`` steps of ``keys`` in one split of a store.

    Items (and batches from ``__getitems__``): ``{key: (window, *shape)}`` float32 vectors and
    uint8 images (batches get a leading B), plus ``episode_index``. ``stats`` are the store's.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | PlayStore,
        keys: Sequence[str],
        window: int,
        *,
        split: str = "train",
        val_ratio: float = 0.2,
        seed: int = 0,
        stride: int = 1,
        image_size: tuple[int, int] | None = None,
        needs: Mapping[str, str] | None = None,
    ) -> None:
        opened = store if isinstance(store, PlayStore) else PlayStore.open(store, "r")
        try:
            require_features(opened, needs or {k: "needed by the model" for k in keys})
            self.url, self.fps = opened.url, opened.fps
            self.features = {k: opened.features[k] for k in keys}
            self.stats = {k: opened.stats[k] for k in keys if k in opened.stats}
            ends = np.asarray(opened.episode_ends)
            if len(ends) == 0:
                raise ConfigError(f"{self.url} has no committed episodes")
            self.arrays = read_arrays(opened, keys, image_size)
        finally:
            if opened is not store:
                opened.close()
        self.episodes = split_of(len(ends), split, val_ratio, seed)
        self.sampler = WindowSampler(
            ends, window, stride=stride, pad_before=0, pad_after=0, episodes=self.episodes
        )
        if len(self.sampler) == 0:
            lengths = np.diff(ends, prepend=0)[self.episodes]
            raise ConfigError(
                f"no window of {window} steps fits in the {len(self.episodes)} {split} episodes of "
                f"{self.url} (longest {int(lengths.max()) if len(lengths) else 0} steps); "
                "record longer episodes or shorten the model's history/horizon"
            )
        self.episode_ends = ends
        self.keys, self.window = list(keys), int(window)

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        rows, _ = self.sampler.batch_indices(indices)  # (B, T)
        batch = {k: torch.from_numpy(a[rows]) for k, a in self.arrays.items()}
        batch["episode_index"] = torch.from_numpy(self.sampler.sample_episode[np.asarray(indices)])
        return batch

    def episode(self, e: int) -> dict[str, np.ndarray]:
        """The rows of episode ``e`` for every key (views into RAM)."""
        a = int(self.episode_ends[e - 1]) if e > 0 else 0
        b = int(self.episode_ends[e])
        return {k: v[a:b] for k, v in self.arrays.items()}
