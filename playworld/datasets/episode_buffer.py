"""Streaming writes: buffer steps into whole blocks, write each block in one call, off the caller's thread.

Why blocks: a zarr shard (or chunk) written in pieces is rewritten whole for every piece, so
per-step writes cost O(shard) each. Each key buffers rows from a block boundary (a shard of
frames for cameras, a chunk of rows for vectors) and writes the block once it is full. A commit
also writes the rows of partial blocks, so that every step of a committed episode is in the
store; the next write of that block sends only the rows written since, which are merged into the
shard at the byte level (frames already on disk are not compressed again).

Why threads: compressing a block of frames takes a second or so; `append` only copies the step
into the buffer and hands full blocks to a background thread per key (writes of one key stay in
order; the frames of a block are compressed in parallel by a shared pool, see shards.py, or by
a child process, see frame_compressor.py; one key's fsync overlaps another key's compression). At
most ``max_pending`` blocks per key are in flight; beyond that `append` waits, so memory stays
bounded when the disk is slower than the recording.
Block buffers are recycled: a fresh 256-frame buffer costs ~0.8 ms per frame in page faults.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import zarr

from playworld.datasets.frame_compressor import FrameCompressor
from playworld.datasets.shards import ShardEncoder
from playworld.datasets.stats import QuantileSketch, merge, moments, pixel_sums
from playworld.errors import FeatureError, StoreError
from playworld.features import Feature, check_value


class _KeyBuffer:
    """Rows of one key from the block boundary ``start`` on; ``n`` of them filled, those before
    ``flushed`` (an absolute row) already in the store."""

    def __init__(
        self, feature: Feature, block: int, start: int, rows: np.ndarray | None = None
    ) -> None:
        self.feature = feature
        self.block = block
        self.start = start
        self.n = 0
        self.flushed = start
        self.rows = np.empty((block, *feature.shape), dtype=feature.dtype) if rows is None else rows

    @property
    def end(self) -> int:
        return self.start + self.n


class EpisodeBuffer:
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
        max_pending: int = 1,
        frame_compressor: FrameCompressor | None = None,
    ) -> None:
        self.arrays = dict(arrays)
        self.features = dict(features)
        self.blocks = dict(blocks)
        self.max_pending = max_pending
        # Camera shards are encoded and written by ShardEncoder (same bytes as zarr, a fraction
        # of zarr's per-chunk CPU); other arrays and layouts go through zarr.
        self._shard_writers = {k: ShardEncoder.for_array(a) for k, a in self.arrays.items()}
        # Or by a child process (real-time recording): see frame_compressor.py.
        self.frame_compressor = frame_compressor
        # Rows per chunk: > 1 for codecs of groups of frames (h264), whose chunks are always
        # rewritten from their first row with the raw frames buffered here (no re-encoding of
        # decoded frames, see video_codec.py).
        self._group = {
            k: (int(a.chunks[0]) if self.features[k].is_image else 1)
            for k, a in self.arrays.items()
        }
        self._pools = {
            k: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"playstore-{k}")
            for k in arrays
        }
        self._pending: dict[str, deque[Future[None]]] = {k: deque() for k in arrays}
        self._free: dict[str, list[np.ndarray]] = {k: [] for k in arrays}
        if frame_compressor is not None:
            # Real-time recording: the block buffers it will cycle through, in memory the child
            # process maps (it reads the frames in place), allocated and touched now, before the
            # loop starts, not page-faulted in while it runs.
            for key in frame_compressor.keys:
                for _ in range(max_pending + 1):
                    shape = (self.blocks[key], *self.features[key].shape)
                    self._free[key].append(frame_compressor.shared_buffer(key, shape))
        self._error: BaseException | None = None
        self.buffers: dict[str, _KeyBuffer] = {}
        self.reset(committed)

    # -- episode lifecycle -------------------------------------------------------------------
    def reset(self, committed: int) -> None:
        """Start a new episode at row ``committed``: on open, after a commit, after a discard.

        Rows past ``committed`` (a discarded episode, an uncommitted tail) are trimmed from the
        arrays, so the store is exactly its committed episodes again.
        """
        self.wait()
        for key, arr in self.arrays.items():
            start = committed - committed % self.blocks[key]
            buf = self.buffers.get(key)
            fresh = buf is None or buf.start != start
            if fresh:
                buf = self._new_buffer(key, start)
            buf.n = committed - start
            group = self._group[key]
            if fresh and committed % group and arr.shape[0] >= committed:
                # A store reopened mid-chunk: the committed rows of that chunk, decoded, so that
                # the chunk can be rewritten whole (the one place a frame is encoded twice).
                lo = committed - committed % group
                buf.rows[lo - start : committed - start] = arr[lo:committed]
            buf.flushed = committed
            self.buffers[key] = buf
            if arr.shape[0] > committed:
                arr.resize((committed, *arr.shape[1:]))
        self.committed = committed
        self.steps = 0
        self.image_sums = {
            k: np.zeros((2, f.shape[2])) for k, f in self.features.items() if f.is_image
        }
        # The episode's own statistics, gathered as its rows are written (each row once), so a
        # commit merges them into the store's without reading committed rows back.
        self.moments: dict[str, dict[str, Any] | None] = {
            k: None for k, f in self.features.items() if not f.is_image
        }
        self.sketches = {
            k: QuantileSketch(int(np.prod(f.shape, dtype=int)))
            for k, f in self.features.items()
            if f.kind == "action" and not f.is_image
        }

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
            if buf.n == buf.block:
                self._submit(key, buf, recycle=True)
                self.buffers[key] = self._new_buffer(key, buf.end)
        self.steps += 1

    def flush(self) -> None:
        """Write every buffered row (partial blocks included) and wait until all are written."""
        for key, buf in self.buffers.items():
            if buf.end > buf.flushed:
                self._submit(key, buf, recycle=False)
        self.wait()

    def wait(self) -> None:
        """Block until every submitted write is done; raise the first background error."""
        for pending in self._pending.values():
            while pending:
                pending[0].exception()  # pop only once done: an interrupt leaves it tracked
                pending.popleft()
        # A Ctrl-C between a pool's submit() and the append to `pending` leaves a write running
        # untracked (it then re-extended an array that a discard had just trimmed). Each key's
        # pool runs its writes in order on one thread: an empty task done means all are done.
        for pool in self._pools.values():
            pool.submit(_nothing).result()
        self._raise_background_error()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            for pool in self._pools.values():
                pool.shutdown(wait=True)
            if self.frame_compressor is not None:
                self.frame_compressor.close()

    # -- background writes -------------------------------------------------------------------
    def _new_buffer(self, key: str, start: int) -> _KeyBuffer:
        free = self._free[key]
        rows = free.pop() if free else None
        return _KeyBuffer(self.features[key], self.blocks[key], start, rows)

    def _submit(self, key: str, buf: _KeyBuffer, recycle: bool) -> None:
        """Write rows ``[buf.flushed, buf.end)`` in the background (a whole block when the
        block had nothing on disk yet, else zarr merges them into it)."""
        pending = self._pending[key]
        while len(pending) >= self.max_pending:
            pending[0].exception()  # waits; errors surface through self._error
            pending.popleft()
        new = buf.flushed
        # From the first row of the chunk holding ``new``: buf.start is a block (shard)
        # boundary, a multiple of the chunk rows.
        start = new - (new - buf.start) % self._group[key]
        rows = buf.rows[start - buf.start : buf.n]
        buf.flushed = buf.end
        recycled = buf.rows if recycle else None
        pending.append(
            self._pools[key].submit(self._write, key, start, rows, recycled, new - start)
        )

    def _write(
        self,
        key: str,
        start: int,
        rows: np.ndarray,
        recycled: np.ndarray | None,
        rewritten: int = 0,
    ) -> None:
        """Write ``rows`` at ``start``; the first ``rewritten`` of them are already in the
        store (the head of a chunk of several frames, rewritten whole)."""
        try:
            if self._error is not None:
                return
            arr = self.arrays[key]
            stop = start + len(rows)
            if arr.shape[0] < stop:
                arr.resize((stop, *arr.shape[1:]))
            if self.frame_compressor is not None and key in self.frame_compressor.keys:
                self.image_sums[key] += self.frame_compressor.write(key, start, rows)
                return
            shard_writer = self._shard_writers[key]
            if shard_writer is not None:
                shard_writer.write(start, rows)
            else:
                arr[start:stop] = rows
            if key in self.image_sums:  # per-channel pixel statistics, off the caller's thread
                self.image_sums[key] += pixel_sums(rows[rewritten:])
            if key in self.moments:
                new_rows = rows[rewritten:]
                flat = new_rows.reshape(len(new_rows), -1)
                self.moments[key] = merge(self.moments[key], moments(flat))
                if key in self.sketches:
                    self.sketches[key].update(flat)
        except BaseException as e:  # surfaced on the caller's thread by _raise_background_error
            self._error = e
        finally:
            if recycled is not None:
                self._free[key].append(recycled)

    def _raise_background_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise StoreError(f"writing the episode in progress failed: {err}") from err


def _nothing() -> None:
    pass
