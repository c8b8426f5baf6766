"""Streaming writes: buffer steps into whole blocks, write each block in one call, off the caller's thread.

Why blocks: a zarr shard (or chunk) written in pieces is rewritten whole for every piece, so
per-step writes cost O(shard) each. Each key buffers rows from a block boundary (a shard of
frames for cameras, a chunk of rows for vectors) and writes the block once it is full. A commit
writes the partial blocks too, so that every step of a committed episode is in the store; the
rows stay buffered and the next write of that block is again a whole-block write.

Why a thread: compressing a block of frames takes a second or so; `append` only copies the step
into the buffer and hands full blocks to one background thread (zarr compresses the chunks of a
block in parallel in its own threads). At most ``max_pending`` blocks wait; beyond that `append`
blocks, so memory stays bounded when the disk is slower than the recording.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import zarr

from playworld.datasets.features import Feature, check_value
from playworld.datasets.stats import IMAGE_STRIDE
from playworld.errors import FeatureError, StoreError


class _KeyBuffer:
    """Rows of one key from the block boundary ``start`` on; ``n`` of them filled."""

    def __init__(self, feature: Feature, block: int, start: int) -> None:
        self.feature = feature
        self.block = block
        self.start = start
        self.n = 0
        self.rows = np.empty((block, *feature.shape), dtype=feature.dtype)

    @property
    def end(self) -> int:
        return self.start + self.n


class EpisodeWriter:
    """Buffers steps of the episode in progress and writes them to the store's data arrays.

    ``committed`` is the row where the episode begins (the end of the last committed one). Each
    key's buffer also holds the committed rows from its block boundary to ``committed``, so that
    a block shared with the previous episode is rewritten whole.
    """

    def __init__(
        self,
        arrays: Mapping[str, zarr.Array],
        features: Mapping[str, Feature],
        blocks: Mapping[str, int],
        committed: int,
        max_pending: int = 4,
    ) -> None:
        self.arrays = dict(arrays)
        self.features = dict(features)
        self.blocks = dict(blocks)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playstore-writer")
        self._pending: list[Future[None]] = []
        self._slots = threading.Semaphore(max_pending)
        self._error: BaseException | None = None
        self.buffers: dict[str, _KeyBuffer] = {}
        self.reset(committed)

    # -- episode lifecycle -------------------------------------------------------------------
    def reset(self, committed: int) -> None:
        """Start a new episode at row ``committed``: on open, after a commit, after a discard.

        Rows past ``committed`` (a discarded episode, an uncommitted tail) are trimmed from the
        arrays; each key's buffer is refilled with its committed rows since the block boundary.
        """
        self.wait()
        for key, arr in self.arrays.items():
            block = self.blocks[key]
            start = committed - committed % block
            old = self.buffers.get(key)
            if old is not None and old.start == start and old.n >= committed - start:
                buf = old  # still holds the committed rows of this block
            else:
                buf = _KeyBuffer(self.features[key], block, start)
                buf.rows[: committed - start] = arr[start:committed]
            buf.n = committed - start
            self.buffers[key] = buf
            if arr.shape[0] > committed:
                arr.resize((committed, *arr.shape[1:]))
        self.committed = committed
        self.steps = 0
        self.image_sums = {k: np.zeros((2, f.shape[2])) for k, f in self.features.items() if f.is_image}

    def append(self, step: Mapping[str, Any]) -> None:
        """Add one step: every feature, each with its per-step shape and dtype."""
        self._raise_background_error()
        if step.keys() != self.features.keys():
            missing = sorted(self.features.keys() - step.keys())
            extra = sorted(step.keys() - self.features.keys())
            raise FeatureError(
                f"step keys do not match the store's features: missing {missing}, unexpected {extra}"
            )
        values = {k: check_value(k, self.features[k], v) for k, v in step.items()}
        for key, value in values.items():
            buf = self.buffers[key]
            buf.rows[buf.n] = value
            buf.n += 1
            if key in self.image_sums:
                px = value[::IMAGE_STRIDE, ::IMAGE_STRIDE].reshape(-1, value.shape[2]) / 255.0
                self.image_sums[key][0] += px.mean(axis=0)
                self.image_sums[key][1] += (px**2).mean(axis=0)
            if buf.n == buf.block:
                self._submit(key, buf.start, buf.rows)
                self.buffers[key] = _KeyBuffer(buf.feature, buf.block, buf.end)
        self.steps += 1

    def flush(self) -> None:
        """Write every buffered row (partial blocks included) and wait until all are written."""
        for key, buf in self.buffers.items():
            if buf.n and buf.end > self.committed:
                # The buffer stays: the next write of this block is again a whole-block write.
                self._submit(key, buf.start, buf.rows[: buf.n].copy())
        self.wait()

    def wait(self) -> None:
        """Block until every submitted write is done; raise the first background error."""
        for fut in self._pending:
            fut.exception()
        self._pending = [f for f in self._pending if not f.done()]
        self._raise_background_error()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    # -- background writes -------------------------------------------------------------------
    def _submit(self, key: str, start: int, rows: np.ndarray) -> None:
        self._slots.acquire()
        self._pending = [f for f in self._pending if not f.done()]
        fut = self._pool.submit(self._write, key, start, rows)
        self._pending.append(fut)

    def _write(self, key: str, start: int, rows: np.ndarray) -> None:
        try:
            if self._error is not None:
                return
            arr = self.arrays[key]
            stop = start + len(rows)
            if arr.shape[0] < stop:
                arr.resize((stop, *arr.shape[1:]))
            arr[start:stop] = rows
        except BaseException as e:  # surfaced on the caller's thread by _raise_background_error
            self._error = e
        finally:
            self._slots.release()

    def _raise_background_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise StoreError(f"writing the episode in progress failed: {err}") from err
