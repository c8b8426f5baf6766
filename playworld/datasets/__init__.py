"""The play store (zarr v3) and training access to it.

    PlayStore.create / PlayStore.open   the store: streaming and whole-episode writes, lazy reads
    Feature                             what one per-step key holds (shape, dtype, kind, units, codec)
    WindowSampler, PlayWindowDataset    random windows for training (torch Dataset)
"""

from playworld.datasets.features import Feature
from playworld.datasets.store import Episode, PlayStore

__all__ = ["Episode", "Feature", "PlayStore"]
