"""The play store (zarr v3) and training access to it.

PlayStore.create / PlayStore.open   the store: streaming and whole-episode writes, lazy reads
Feature                             what one per-step key holds (shape, dtype, kind, units, codec)
WindowSampler, split_episodes       window index math over episode ends (numpy, no I/O)
PlayWindowDataset                   random windows for training (torch Dataset; needs torch)
Normalizer                          per-key normalisation from store stats, saved as JSON
"""

from typing import Any

from playworld.datasets.normalize import Normalizer
from playworld.datasets.sampler import WindowSampler, split_episodes
from playworld.datasets.store import Episode, PlayStore
from playworld.features import Feature

__all__ = [
    "Episode",
    "Feature",
    "Normalizer",
    "PlayStore",
    "PlayWindowDataset",
    "WindowSampler",
    "split_episodes",
]


def __getattr__(name: str) -> Any:
    # torch is an optional extra and costs ~2 s to import: load the Dataset module on first use.
    if name == "PlayWindowDataset":
        from playworld.datasets.torch_dataset import PlayWindowDataset

        return PlayWindowDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
