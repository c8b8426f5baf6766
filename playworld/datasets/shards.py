"""Writing and reading shards of camera frames directly, compressed in parallel, without zarr's
per-chunk machinery.

zarr 3.1 writes a shard of one-frame chunks through an asyncio task per chunk, a thread hop per
compression and a fill-value array plus a copy per chunk: about 0.8-1.3 ms of CPU per 480x640
frame on top of the 1.7 ms the compression itself costs, so the writer's own work cost more than
the compression. `ShardEncoder` produces the same bytes (the zarr v3 ``sharding_indexed`` format:
the compressed chunks back to back, then an index of ``(offset, nbytes)`` little-endian uint64
pairs and its crc32c) by calling the codec directly from a thread pool, and writes the shard
through the array's own zarr store (atomic and fsynced for local stores, see backend.py); tests
check that the shards are byte-identical to those zarr writes itself. `ShardReader` reads a range
of frames with one read of each shard's index and one of the bytes of those frames, decoding them
in parallel straight into the result (and, unlike zarr, refuses a frame missing from its shard
instead of returning zeros). Everything else (metadata, resizing, validation, maintenance) stays
with zarr, and any zarr reader opens what this module writes.

Only the layout the store creates for images is handled here: one frame per chunk, the index at
the end with crc32c, uint8, and a lossless codec of the zarr spec (``zstd`` or none).
``for_array`` returns ``None`` for anything else, and the caller goes through zarr.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import google_crc32c
import numcodecs
import numpy as np
import zarr
from zarr.abc.store import ByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
from zarr.codecs.bytes import Endian
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from playworld.datasets.backend import DurableLocalStore, put_durable
from playworld.errors import StoreError

EMPTY = np.uint64(2**64 - 1)  # offset and length of a chunk missing from a shard


class FrameError(StoreError):
    """A frame that cannot be read: ``key`` (the shard file), ``row`` (the array row) and
    ``reason`` say which and why, so that callers can name the episode."""

    def __init__(self, key: str, row: int, reason: str, in_shard: int) -> None:
        super().__init__(f"{key}: frame {in_shard} of the shard {reason} (array row {row})")
        self.key, self.row, self.reason = key, row, reason


def default_threads() -> int:
    """The thread count zarr compresses with (its pool: ``threading.max_workers`` or
    min(32, cores + 4)); the shard writer uses the same."""
    n = zarr.config.get("threading.max_workers")
    return int(n) if n else min(32, (os.cpu_count() or 1) + 4)


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One compression pool per process, shared by every key (as zarr shares its own)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(default_threads(), thread_name_prefix="playworld-codec")
    return _POOL


def _reset_pool_after_fork() -> None:
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_reset_pool_after_fork)


def frame_codec(
    array: zarr.Array,
) -> tuple[Callable[[np.ndarray], bytes], Callable[[bytes, np.ndarray], None]] | None:
    """``(encode, decode_into)`` for one frame of ``array``, if its layout is the one this module
    handles (see the module docstring), else ``None``."""
    meta = array.metadata
    if getattr(meta, "zarr_format", None) != 3 or len(meta.codecs) != 1 or array.shards is None:
        return None
    shard = meta.codecs[0]
    if not isinstance(shard, ShardingCodec):
        return None
    if tuple(shard.chunk_shape) != (1, *array.shape[1:]):
        return None
    if tuple(array.shards[1:]) != tuple(array.shape[1:]):
        return None
    if shard.index_location != ShardingCodecIndexLocation.end:
        return None
    if [type(c) for c in shard.index_codecs] != [BytesCodec, Crc32cCodec]:
        return None
    if shard.index_codecs[0].endian not in (None, Endian.little):
        return None
    inner = list(shard.codecs)
    if not inner or type(inner[0]) is not BytesCodec or array.dtype.itemsize != 1:
        return None  # camera frames are uint8: no byte order to get wrong

    def copy_into(data: bytes, out: np.ndarray) -> None:
        if len(data) != out.nbytes:
            raise ValueError(f"chunk holds {len(data)} bytes, a frame is {out.nbytes}")
        out.reshape(-1)[:] = np.frombuffer(data, dtype=np.uint8)

    if len(inner) == 1:
        return (lambda frame: frame.tobytes()), copy_into
    if len(inner) == 2 and type(inner[1]) is ZstdCodec:
        zstd = numcodecs.Zstd(level=inner[1].level, checksum=inner[1].checksum)

        def decode_into(data: bytes, out: np.ndarray) -> None:
            size = zstd_content_size(data)
            if size != out.nbytes:  # zstd itself only refuses a frame larger than ``out``
                raise ValueError(f"chunk decodes to {size} bytes, a frame is {out.nbytes}")
            zstd.decode(data, out=out.reshape(-1))  # raises on a checksum mismatch

        return zstd.encode, decode_into
    return None


def zstd_content_size(data: bytes) -> int | None:
    """The decompressed size a zstd frame declares in its header (RFC 8878, 3.1.1.1), or
    ``None`` where it declares none or the bytes are not a zstd frame."""
    if len(data) < 6 or data[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = data[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    pos = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    width = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if width == 0 or len(data) < pos + width:
        return None
    size = int.from_bytes(data[pos : pos + width], "little")
    return size + 256 if width == 2 else size


class _Shards:
    """The shard files of one array: their keys and indexes (one index entry per inner chunk of
    ``chunk_rows`` rows: 1 for the lossless layout, a group of frames for ``h264``)."""

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self.rows_per_shard = int(array.shards[0])  # type: ignore[index]
        self.chunk_rows = int(array.chunks[0])
        self.chunks_per_shard = self.rows_per_shard // self.chunk_rows
        self.frame_shape = tuple(array.shape[1:])
        self.index_size = 16 * self.chunks_per_shard + 4
        self._store = array.store_path.store
        self._prefix = array.store_path.path
        self._proto = default_buffer_prototype()

    def key(self, shard: int) -> str:
        coords = (shard, *([0] * (self.array.ndim - 1)))
        key = self.array.metadata.encode_chunk_key(coords)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        buf = sync(self._store.get(key, prototype=self._proto, byte_range=byte_range))
        if buf is None:
            raise StoreError(f"{key}: shard file missing")
        return buf.to_bytes()

    def parse_index(self, key: str, tail: bytes, data_size: int | None) -> np.ndarray:
        """``(chunks_per_shard, 2)`` offsets and lengths from the last bytes of a shard, checked."""
        if len(tail) != self.index_size:
            raise StoreError(f"{key}: shard truncated (its index alone is {self.index_size} bytes)")
        index_bytes, crc = tail[:-4], tail[-4:]
        if int(np.frombuffer(crc, "<u4")[0]) != google_crc32c.value(index_bytes):
            raise StoreError(f"{key}: shard index checksum mismatch (the file is corrupted)")
        index = np.frombuffer(index_bytes, "<u8").reshape(self.chunks_per_shard, 2)
        present = index[:, 0] != EMPTY
        if data_size is not None and (index[present, 0] + index[present, 1] > data_size).any():
            raise StoreError(f"{key}: shard index points past the end of its chunks (corrupted)")
        return index

    @staticmethod
    def check_present(key: str, index: np.ndarray, first: int) -> None:
        missing = np.flatnonzero(index[:, 0] == EMPTY)
        if len(missing):
            raise StoreError(f"{key}: frame {first + int(missing[0])} of the shard is missing")


class ShardEncoder(_Shards):
    """Writes rows ``[start, stop)`` of a sharded one-frame-per-chunk array, all in one shard.

    Chunks of the shard before ``start`` (rows of earlier writes, e.g. the previous episode's
    tail after a commit) are kept byte for byte, at the same offsets; chunks at and after
    ``stop`` are left out of the rewritten shard (they are past the array's committed length).
    """

    def __init__(self, array: zarr.Array, encode: Callable[[np.ndarray], bytes]) -> None:
        super().__init__(array)
        self.encode = encode

    @classmethod
    def for_array(cls, array: zarr.Array) -> ShardEncoder | None:
        """A writer for ``array`` if its layout is one this module handles, else ``None``."""
        codec = frame_codec(array)
        return None if codec is None else cls(array, codec[0])

    def write(self, start: int, rows: np.ndarray) -> None:
        """Write ``rows`` at ``start``; the rows must lie in one shard and the array must be at
        least ``start + len(rows)`` long (resize it first)."""
        n = self.rows_per_shard
        shard, first = divmod(start, n)
        if first + len(rows) > n:
            raise ValueError(f"rows {start}..{start + len(rows)} cross a shard boundary")
        rows = np.ascontiguousarray(rows)
        futures = [_pool().submit(self.encode, rows[i]) for i in range(len(rows))]
        kept = self._read_chunks(shard, first) if first else []
        chunks = kept + [f.result() for f in futures]

        index = np.full((n, 2), EMPTY, dtype="<u8")
        lengths = np.fromiter((len(c) for c in chunks), dtype="<u8", count=len(chunks))
        index[: len(chunks), 1] = lengths
        index[: len(chunks), 0] = np.cumsum(lengths) - lengths
        index_bytes = index.tobytes()
        crc = np.uint32(google_crc32c.value(index_bytes)).astype("<u4").tobytes()
        value = self._proto.buffer.from_bytes(b"".join([*chunks, index_bytes, crc]))
        if isinstance(self._store, DurableLocalStore):
            self._store._check_writable()
            # In this thread, not zarr's I/O pool: a recorder lowers its writer threads' priority,
            # and a 25 MB write plus fsync at full priority stalled its control loop ~15 ms.
            put_durable(self._store.root / self.key(shard), value, exclusive=False)
        else:
            sync(self._store.set(self.key(shard), value))

    def _read_chunks(self, shard: int, count: int) -> list[bytes]:
        """The encoded bytes of the shard's first ``count`` chunks, as stored."""
        key = self.key(shard)
        data = self._get(key)
        index = self.parse_index(key, data[-self.index_size :], len(data) - self.index_size)
        index = index[:count]
        self.check_present(key, index, 0)
        return [data[int(o) : int(o) + int(k)] for o, k in index]


class ShardReader(_Shards):
    """Reads rows ``[start, stop)``: per shard one read of its index and one of the byte range
    holding the rows' chunks, then the frames decoded in parallel straight into the result.

    A frame missing from a shard raises (zarr would return the fill value, zeros). Reads are
    safe while a writer appends: a shard is replaced by an atomic rename, and rows already
    committed keep their offsets in every later version of the file (see `ShardEncoder`).
    """

    def __init__(self, array: zarr.Array, decode_into: Callable[[bytes, np.ndarray], None]) -> None:
        super().__init__(array)
        self.decode_into = decode_into

    @classmethod
    def for_array(cls, array: zarr.Array) -> ShardReader | None:
        """A reader for ``array`` if its layout is one this module handles, else ``None``."""
        codec = frame_codec(array)
        return None if codec is None else cls(array, codec[1])

    def read(self, start: int, stop: int) -> np.ndarray:
        n = self.rows_per_shard
        out = np.empty((max(stop - start, 0), *self.frame_shape), dtype=self.array.dtype)
        futures = []
        for shard in range(start // n, (stop - 1) // n + 1 if stop > start else start // n):
            lo, hi = max(start, shard * n), min(stop, (shard + 1) * n)
            key = self.key(shard)
            tail = self._get(key, SuffixByteRequest(self.index_size))
            index = self.parse_index(key, tail, None)[lo - shard * n : hi - shard * n]
            missing = np.flatnonzero(index[:, 0] == EMPTY)
            if len(missing):
                raise FrameError(
                    key, lo + int(missing[0]), "is missing", lo - shard * n + int(missing[0])
                )
            first, last = int(index[:, 0].min()), int((index[:, 0] + index[:, 1]).max())
            data = self._get(key, RangeByteRequest(first, last))
            if len(data) != last - first:
                past = np.flatnonzero(index[:, 0] + index[:, 1] > first + len(data))
                raise FrameError(
                    key,
                    lo + int(past[0]),
                    "lies past the end of the file (truncated)",
                    lo % n + int(past[0]),
                )
            for row, (o, k) in zip(range(lo, hi), index, strict=True):
                chunk = data[int(o) - first : int(o) - first + int(k)]
                futures.append(_pool().submit(self._decode, key, row, chunk, out[row - start]))
        for f in futures:
            f.result()
        return out

    def _decode(self, key: str, row: int, chunk: bytes, out: np.ndarray) -> None:
        try:
            self.decode_into(chunk, out)
        except Exception as e:
            raise FrameError(key, row, f"cannot decode ({e})", row % self.rows_per_shard) from None

    def check(self, shard: int, used: int) -> tuple[str | None, list[tuple[int, str]]]:
        """Check the first ``used`` frames of shard file ``shard`` frame by frame, without zarr.

        Returns ``(problem, frames)``: a problem of the whole file (missing, shorter than its
        index, index checksum mismatch: no frame can be located) or ``None``, and the damaged
        frames as ``(row, reason)``: missing from the index, lying past the end of the file, or
        not decoding (zstd checksum, wrong size). A frame of an intact index is found alone.
        """
        key = self.key(shard)
        try:
            data = self._get(key)
        except StoreError:
            return "the file is missing", []
        if len(data) == 0:
            return "empty file (0 bytes)", []
        if len(data) < self.index_size:
            return (
                f"{len(data)} bytes, shorter than its {self.index_size}-byte shard index (truncated)",
                [],
            )
        try:
            index = self.parse_index(key, data[-self.index_size :], None)
        except StoreError as e:
            return str(e).removeprefix(f"{key}: "), []
        body = len(data) - self.index_size
        first_row = shard * self.rows_per_shard

        def decode(chunk: bytes) -> str | None:
            try:
                self.decode_into(chunk, np.empty(self.frame_shape, dtype=self.array.dtype))
            except Exception as e:
                return f"cannot decode ({e})"
            return None

        reasons: list[Any] = []
        for o, k in index[:used]:
            if o == EMPTY:
                reasons.append("no data (its shard index lists it as never written)")
            elif int(o) + int(k) > body:
                reasons.append("lies past the end of the file (truncated)")
            else:  # decoded in parallel, as reads are
                reasons.append(_pool().submit(decode, data[int(o) : int(o) + int(k)]))
        reasons = [r.result() if isinstance(r, Future) else r for r in reasons]
        return None, [(first_row + i, r) for i, r in enumerate(reasons) if r is not None]
