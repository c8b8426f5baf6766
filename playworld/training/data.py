"""`BatchedDataset`: a map-style torch Dataset that gathers whole batches in one call.

A subclass implements `__len__` and `__getitems__(indices) -> {key: (B, ...) tensor}`; the
training loop (loop.py) then asks for whole batches at once and `collate` passes them through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class BatchedDataset(torch.utils.data.Dataset):
    """Batches gathered by `__getitems__` (one vectorised read), single items derived from it."""

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}

    @staticmethod
    def collate(batch: Any) -> Any:
        """Batches arrive whole from `__getitems__`: nothing to stack."""
        return batch

    def random_batch(self, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
        """A batch of `size` items drawn uniformly (with replacement)."""
        return self.__getitems__(rng.integers(0, len(self), size))
