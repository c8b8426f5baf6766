"""ShardEncoder writes the bytes zarr would write: checked file by file against zarr itself."""

from __future__ import annotations

import itertools
from pathlib import Path

import google_crc32c
import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from playworld.datasets import Feature, PlayStore
from playworld.datasets.shards import ShardEncoder, ShardReader
from playworld.errors import StoreError

FRAME = (12, 16, 3)


def frames(n: int, seed: int = 0) -> np.ndarray:
    """Smooth images with noise: compressible, but not trivially."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : FRAME[0], 0 : FRAME[1]]
    base = np.stack([x * 9, y * 13, (x + y) * 5], axis=-1)
    return np.stack([(base + t * 7 + rng.integers(0, 6, FRAME)) % 256 for t in range(n)]).astype(
        np.uint8
    )


def make(path: Path, shard: int, compressors=None) -> zarr.Array:
    return zarr.create_array(
        str(path),
        shape=(0, *FRAME),
        dtype="uint8",
        chunks=(1, *FRAME),
        shards=(shard, *FRAME),
        compressors=ZstdCodec(level=1, checksum=True) if compressors is None else compressors,
        config={"write_empty_chunks": True},
    )


def shard_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "c").rglob("*"))
        if p.is_file()
    }


# (start, stop) writes in order: whole shards, a shard in pieces (commits mid-shard), a partial
# last shard, a shard size that is not a power of two
WRITES = [(0, 10), (10, 13), (13, 20), (20, 27), (27, 30), (30, 34)]


@pytest.mark.parametrize("compressors", [None, ()], ids=["zstd", "no-codec"])
@pytest.mark.parametrize("shard", [10, 7])
def test_shards_are_byte_identical_to_zarr(tmp_path: Path, shard: int, compressors) -> None:
    data = frames(34)
    ours, theirs = (
        make(tmp_path / "ours", shard, compressors),
        make(tmp_path / "zarr", shard, compressors),
    )
    writer = ShardEncoder.for_array(ours)
    assert writer is not None
    for a, b in WRITES:
        # split further at shard boundaries: a write lies in one shard
        cuts = sorted({a, b, *range((a // shard + 1) * shard, b, shard)})
        for s, e in itertools.pairwise(cuts):
            ours.resize((max(ours.shape[0], e), *FRAME))
            theirs.resize((max(theirs.shape[0], e), *FRAME))
            writer.write(s, data[s:e])
            theirs[s:e] = data[s:e]
    assert shard_files(tmp_path / "ours") == shard_files(tmp_path / "zarr")
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "ours"))[:], data)


def test_rewrite_after_trim_keeps_earlier_chunks(tmp_path: Path) -> None:
    """A discarded tail is overwritten: rows before the write keep their bytes, later ones go."""
    arr = make(tmp_path / "a", 10)
    writer = ShardEncoder.for_array(arr)
    data, other = frames(10), frames(10, seed=1)
    arr.resize((8, *FRAME))
    writer.write(0, data[:8])
    arr.resize((4, *FRAME))  # discard rows 4..8
    arr.resize((6, *FRAME))
    writer.write(4, other[4:6])
    np.testing.assert_array_equal(arr[:], np.concatenate([data[:4], other[4:6]]))


def test_corrupted_shard_index_is_refused(tmp_path: Path) -> None:
    arr = make(tmp_path / "a", 10)
    writer = ShardEncoder.for_array(arr)
    arr.resize((5, *FRAME))
    writer.write(0, frames(5))
    shard = tmp_path / "a" / "c" / "0" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF  # inside the index
    shard.write_bytes(bytes(raw))
    arr.resize((6, *FRAME))
    with pytest.raises(StoreError, match="checksum"):
        writer.write(5, frames(1))


def test_rows_must_lie_in_one_shard(tmp_path: Path) -> None:
    arr = make(tmp_path / "a", 10)
    arr.resize((12, *FRAME))
    with pytest.raises(ValueError, match="shard boundary"):
        ShardEncoder.for_array(arr).write(8, frames(4))


def test_other_layouts_go_through_zarr(tmp_path: Path) -> None:
    lz4 = make(tmp_path / "lz4", 10, BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"))
    assert ShardEncoder.for_array(lz4) is None
    unsharded = zarr.create_array(
        str(tmp_path / "plain"), shape=(0, 4), dtype="float32", chunks=(16, 4)
    )
    assert ShardEncoder.for_array(unsharded) is None


def test_store_writes_camera_shards_with_shard_writer(tmp_path: Path) -> None:
    """The store's camera arrays take this path, and what they hold reads back exactly."""
    feats = {
        "observation.images.front": Feature(FRAME, "uint8", "image"),
        "action": Feature((2,), "float32", "action"),
    }
    store = PlayStore.create(tmp_path / "s.zarr", feats, fps=10)
    assert ShardEncoder.for_array(store._arrays["observation.images.front"]) is not None
    data = frames(30)
    for n in (7, 23):
        store.begin_episode()
        for t in range(n):
            store.append({"observation.images.front": data[t], "action": np.zeros(2, np.float32)})
        store.commit({})
    store.close()
    back = PlayStore.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(back.episode(0)["observation.images.front"][:], data[:7])
    np.testing.assert_array_equal(back.episode(1)["observation.images.front"][:], data[:23])


@pytest.mark.parametrize("compressors", [None, ()], ids=["zstd", "no-codec"])
def test_reader_matches_zarr_on_any_range(tmp_path: Path, compressors) -> None:
    arr = make(tmp_path / "a", 7, compressors)
    data = frames(30)
    arr.resize((30, *FRAME))
    arr[:] = data  # written by zarr itself
    reader = ShardReader.for_array(arr)
    assert reader is not None
    rng = np.random.default_rng(0)
    for a, b in [(0, 30), (0, 1), (6, 8), (7, 14), (29, 30), (5, 5)] + [
        tuple(sorted(rng.integers(0, 31, 2))) for _ in range(20)
    ]:
        np.testing.assert_array_equal(reader.read(int(a), int(b)), data[a:b])


def written(tmp_path: Path, n: int = 5) -> tuple[zarr.Array, Path]:
    arr = make(tmp_path / "a", 10)
    arr.resize((n, *FRAME))
    arr[:] = frames(n)
    return arr, tmp_path / "a" / "c" / "0" / "0" / "0" / "0"


def test_reader_refuses_a_frame_missing_from_its_shard(tmp_path: Path) -> None:
    """zarr reads a chunk missing from a shard as zeros; the reader names it instead."""
    arr, _ = written(tmp_path, 3)
    arr.resize((5, *FRAME))  # rows 3, 4 exist in the array's shape, never written
    np.testing.assert_array_equal(arr[4], 0)
    with pytest.raises(StoreError, match="frame 3 of the shard is missing"):
        ShardReader.for_array(arr).read(0, 5)


def test_reader_refuses_corrupted_and_truncated_shards(tmp_path: Path) -> None:
    arr, shard = written(tmp_path)
    raw = shard.read_bytes()
    reader = ShardReader.for_array(arr)
    shard.write_bytes(raw[:40] + bytes([raw[40] ^ 0xFF]) + raw[41:])  # inside frame 0's bytes
    with pytest.raises(StoreError, match="cannot decode"):
        reader.read(0, 1)
    np.testing.assert_array_equal(reader.read(1, 5), frames(5)[1:])  # other frames still read
    shard.write_bytes(raw[: len(raw) // 2] + raw[-(16 * 10 + 4) :])  # chunks cut, index kept
    with pytest.raises(StoreError, match="truncated"):
        reader.read(0, 5)
    shard.write_bytes(raw[:100])
    with pytest.raises(StoreError, match="truncated"):
        reader.read(0, 1)


def test_reader_refuses_a_frame_of_the_wrong_size(tmp_path: Path) -> None:
    """A chunk that decodes to fewer bytes than a frame (zstd alone would half-fill the frame)."""
    arr, shard = written(tmp_path, 1)
    raw = shard.read_bytes()
    small = numcodecs.Zstd(level=1, checksum=True).encode(np.zeros(10, np.uint8))
    index = np.full((10, 2), 2**64 - 1, dtype="<u8")
    index[0] = (0, len(small))
    index_bytes = index.tobytes()
    crc = np.uint32(google_crc32c.value(index_bytes)).astype("<u4").tobytes()
    assert len(raw) > len(small)
    shard.write_bytes(small + index_bytes + crc)
    with pytest.raises(StoreError, match="decodes to 10 bytes"):
        ShardReader.for_array(arr).read(0, 1)


def test_store_reads_name_the_episode_of_a_bad_frame(tmp_path: Path) -> None:
    feats = {"observation.images.front": Feature(FRAME, "uint8", "image")}
    store = PlayStore.create(tmp_path / "s.zarr", feats, fps=10)
    store.add_episode({"observation.images.front": frames(4)})
    store.close()
    shard = tmp_path / "s.zarr" / "data" / "observation.images.front" / "c" / "0" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[30] ^= 0xFF
    shard.write_bytes(bytes(raw))
    back = PlayStore.open(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="episode 0"):
        back.episode(0)["observation.images.front"][:]
