"""Reading rows of an ``h264`` camera array straight from its shards, decoding only what a read
needs.

zarr reads rows ``[a, b)`` of an ``h264`` array by decoding every chunk (16 frames) they touch
whole, into a new array per chunk, then copying the rows out: a random 16-step window decoded
and converted 32 frames to return 16. `VideoShardReader` reads each shard's index and the byte
range of the chunks it needs (as `shards.ShardReader` does for lossless frames), then decodes
the chunks in parallel (one per pool thread, each with its own reused decoder, see
video_codec.py), each only up to the last row asked for and converting only the rows asked for,
straight into the result. The bytes are the zarr layout's own: any zarr reader still decodes the
array through the registered numcodecs codec.
"""

from __future__ import annotations

import numpy as np
import zarr
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.bytes import Endian
from zarr.codecs.sharding import ShardingCodecIndexLocation

from playworld.datasets import video_codec
from playworld.datasets.shards import EMPTY, FrameError, _pool, _Shards


def is_video_layout(array: zarr.Array) -> bool:
    """Whether ``array`` has the layout the store creates for an ``h264`` camera: sharded,
    chunks of whole ``(F, H, W, 3)`` uint8 frames through the ``playworld_h264`` codec, the
    shard index at the end with crc32c."""
    meta = array.metadata
    if getattr(meta, "zarr_format", None) != 3 or len(meta.codecs) != 1 or array.shards is None:
        return False
    shard = meta.codecs[0]
    if not isinstance(shard, ShardingCodec) or array.dtype != np.uint8 or array.ndim != 4:
        return False
    inner = list(shard.codecs)
    if len(inner) != 1 or video_codec.ZarrH264 is None:
        return False
    if not isinstance(inner[0], video_codec.ZarrH264):
        return False
    if tuple(shard.chunk_shape[1:]) != tuple(array.shape[1:]) or array.shape[-1] != 3:
        return False
    if tuple(array.shards[1:]) != tuple(array.shape[1:]):
        return False
    if array.shards[0] % shard.chunk_shape[0]:
        return False
    if shard.index_location != ShardingCodecIndexLocation.end:
        return False
    if [type(c) for c in shard.index_codecs] != [BytesCodec, Crc32cCodec]:
        return False
    return shard.index_codecs[0].endian in (None, Endian.little)


class VideoShardReader(_Shards):
    """Reads rows ``[start, stop)`` of an ``h264`` camera array (see the module docstring).

    Errors name the shard file and the first row of the chunk that could not be used
    (`shards.FrameError`), as `shards.ShardReader` does for one-frame chunks.
    """

    @classmethod
    def for_array(cls, array: zarr.Array) -> VideoShardReader | None:
        """A reader for ``array`` if it has the ``h264`` layout (`is_video_layout`), else None."""
        return cls(array) if is_video_layout(array) else None

    def read(self, start: int, stop: int) -> np.ndarray:
        n, f = self.rows_per_shard, self.chunk_rows
        out = np.empty((max(stop - start, 0), *self.frame_shape), dtype=np.uint8)
        futures = []
        for shard in range(start // n, (stop - 1) // n + 1 if stop > start else start // n):
            lo, hi = max(start, shard * n), min(stop, (shard + 1) * n)
            key = self.key(shard)
            c0, c1 = (lo - shard * n) // f, (hi - 1 - shard * n) // f + 1  # chunks in the shard
            tail = self._get(key, SuffixByteRequest(self.index_size))
            index = self.parse_index(key, tail, None)[c0:c1]
            missing = np.flatnonzero(index[:, 0] == EMPTY)
            if len(missing):
                row = shard * n + (c0 + int(missing[0])) * f
                raise FrameError(key, max(row, lo), "is missing", max(row, lo) - shard * n)
            first, last = int(index[:, 0].min()), int((index[:, 0] + index[:, 1]).max())
            data = self._get(key, RangeByteRequest(first, last))
            if len(data) != last - first:
                past = int(np.flatnonzero(index[:, 0] + index[:, 1] > first + len(data))[0])
                row = max(shard * n + (c0 + past) * f, lo)
                raise FrameError(key, row, "lies past the end of the file (truncated)", row % n)
            for c, (o, k) in zip(range(c0, c1), index, strict=True):
                chunk_row = shard * n + c * f  # the array row of the chunk's first frame
                a, b = max(lo, chunk_row), min(hi, chunk_row + f)
                chunk = data[int(o) - first : int(o) - first + int(k)]
                dest = out[a - start : b - start]
                futures.append(_pool().submit(self._decode, key, a, chunk, dest, a - chunk_row))
        for fut in futures:
            fut.result()
        return out

    def _decode(self, key: str, row: int, chunk: bytes, out: np.ndarray, first: int) -> None:
        try:
            video_codec.decode_into(chunk, out, first)
        except Exception as e:
            raise FrameError(key, row, f"cannot decode ({e})", row % self.rows_per_shard) from None
