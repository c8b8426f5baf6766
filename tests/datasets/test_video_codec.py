"""The lossy ``h264`` camera codec: quality, random access, chunks written once from raw frames,
readable by a plain zarr reader, shown by `store info`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numcodecs
import numpy as np
import pytest

pytest.importorskip("av")

from playworld.datasets import Feature, PlayStore  # noqa: E402
from playworld.errors import FeatureError  # noqa: E402

H, W = 64, 96
# PSNR floor on these small synthetic frames: a saturated block's sharp edges lose to yuv420
# chroma subsampling (~36-41 dB); bench/store.py measures the 480x640 renders (~42 dB).
MIN_DB = 35


def frames(n: int, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8: a smooth gradient background and a moving block, like a render."""
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([xx * 2.0, yy * 3.0, (xx + yy) * 1.2], axis=-1) + 20
    out = np.empty((n, H, W, 3), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    color = rng.integers(60, 250, 3)
    for t in range(n):
        img = base.copy()
        x0, y0 = (3 * t + seed) % (W - 16), (2 * t) % (H - 16)
        img[y0 : y0 + 16, x0 : x0 + 16] = color
        out[t] = np.clip(img, 0, 255)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


FEATURES = {
    "cam": Feature((H, W, 3), "uint8", "image", codec="h264"),
    "state": Feature((2,)),
}


def write(path: Path, lengths: list[int], shard: int = 32, seed: int = 0) -> np.ndarray:
    video = frames(sum(lengths), seed)
    with PlayStore.create(path, FEATURES, fps=30, image_shard_frames=shard) as store:
        start = 0
        for n in lengths:
            store.add_episode(
                {"cam": video[start : start + n], "state": np.zeros((n, 2), np.float32)}
            )
            start += n
    return video


def test_quality_size_and_layout(tmp_path: Path) -> None:
    video = write(tmp_path / "s", [50, 30])
    store = PlayStore.open(tmp_path / "s")
    got = store.read("cam", 0, 80)
    assert psnr(video, got) >= MIN_DB
    arr = store.array("cam")
    assert arr.chunks == (16, H, W, 3) and arr.shards == (32, H, W, 3)
    stored = sum(p.stat().st_size for p in (tmp_path / "s/data/cam").rglob("*") if p.is_file())
    assert stored * 20 < video.nbytes  # lossless zstd stores these frames ~3-5x smaller only
    # statistics count every frame once (chunks are rewritten whole, see episode_buffer.py)
    assert store.stats["cam"]["count"] == 80
    np.testing.assert_allclose(
        store.stats["cam"]["mean"], video[:, ::16, ::16].reshape(-1, 3).mean(0) / 255, atol=2e-3
    )


def test_random_access_matches_a_full_read(tmp_path: Path) -> None:
    write(tmp_path / "s", [37, 40, 23])
    store = PlayStore.open(tmp_path / "s")
    full = store.read("cam", 0, 100)
    rng = np.random.default_rng(1)
    for a in [0, 15, 16, 31, 32, 63, 84, *rng.integers(0, 99, 10).tolist()]:
        b = min(100, a + int(rng.integers(1, 20)))
        np.testing.assert_array_equal(store.read("cam", a, b), full[a:b])
    np.testing.assert_array_equal(store.episode(1)["cam"][3:9], full[40:46])


def test_episodes_ending_mid_chunk_do_not_reencode_decoded_frames(tmp_path: Path) -> None:
    """16 one-frame episodes fill one chunk: each commit rewrites it from the raw frames kept in
    the writer's buffer, so frame 0 is as good as when written in one go (re-encoding decoded
    frames 15 times would lose several dB)."""
    once = write(tmp_path / "once", [16])
    many = write(tmp_path / "many", [1] * 16)
    np.testing.assert_array_equal(once, many)
    a = PlayStore.open(tmp_path / "once").read("cam", 0, 16)
    b = PlayStore.open(tmp_path / "many").read("cam", 0, 16)
    assert abs(psnr(once[:1], a[:1]) - psnr(many[:1], b[:1])) < 0.5
    # Reopened for appending mid-chunk: the committed rows come back decoded, once.
    with PlayStore.open(tmp_path / "many", mode="a") as store:
        more = frames(8, seed=3)
        store.add_episode({"cam": more, "state": np.zeros((8, 2), np.float32)})
    c = PlayStore.open(tmp_path / "many").read("cam", 0, 24)
    assert psnr(many, c[:16]) >= MIN_DB and psnr(more, c[16:]) >= MIN_DB
    assert len(PlayStore.open(tmp_path / "many")) == 17


def test_discarded_episode_leaves_committed_frames(tmp_path: Path) -> None:
    video = write(tmp_path / "s", [10])
    with PlayStore.open(tmp_path / "s", mode="a") as store:
        store.begin_episode()
        for t in range(12):
            store.append({"cam": frames(12, 5)[t], "state": np.zeros(2, np.float32)})
        store.discard()
    store = PlayStore.open(tmp_path / "s")
    assert store.num_steps == 10 and psnr(video, store.read("cam", 0, 10)) >= MIN_DB


def test_a_plain_zarr_reader_decodes_it(tmp_path: Path) -> None:
    """Another process with zarr and the registered numcodecs codec only (no PlayStore)."""
    video = write(tmp_path / "s", [20])
    code = (
        "import sys, zarr, numpy as np\n"
        "import playworld.datasets.video_codec  # registers numcodecs.playworld_h264\n"
        f"a = zarr.open_array({str(tmp_path / 's/data/cam')!r}, mode='r')\n"
        "np.save(sys.stdout.buffer, a[3:19])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    import io

    got = np.load(io.BytesIO(r.stdout))
    assert got.shape == (16, H, W, 3) and psnr(video[3:19], got) >= MIN_DB
    meta = json.loads((tmp_path / "s/data/cam/zarr.json").read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"][0]
    assert inner["name"] == "numcodecs.playworld_h264"


def test_numcodecs_codec_round_trip() -> None:
    codec = numcodecs.get_codec({"id": "playworld_h264", "crf": 18})
    video = frames(8)
    out = codec.decode(codec.encode(video))
    assert out.shape == video.shape and psnr(video, out) >= MIN_DB
    with pytest.raises(ValueError, match="corrupt|no frame"):
        codec.decode(b"\x00\x00\x00\x01garbage")


def test_feature_rules() -> None:
    with pytest.raises(FeatureError, match="even"):
        Feature((63, 96, 3), "uint8", "image", codec="h264")
    with pytest.raises(FeatureError, match="image features only"):
        Feature((3,), codec="h264")


def test_store_info_shows_the_codec(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from playworld.cli import main

    write(tmp_path / "s", [20])
    with pytest.raises(SystemExit) as e:
        main(["store", "info", str(tmp_path / "s"), "--json"])
    assert e.value.code in (0, None)
    info = json.loads(capsys.readouterr().out)
    assert info["features"]["cam"]["codec"] == "h264" and "h264" in info["codecs"]
    assert info["features"]["cam"]["compression_ratio"] > 20


def test_direct_reader_matches_zarr(tmp_path: Path) -> None:
    """`PlayStore.read` decodes h264 shards itself (only the frames asked for, a reused decoder
    per thread): the same pixels as zarr's own read through the numcodecs codec."""
    from playworld.datasets.video_shards import VideoShardReader

    write(tmp_path / "s", [37, 40, 23])
    store = PlayStore.open(tmp_path / "s")
    arr = store.array("cam")
    assert VideoShardReader.for_array(arr) is not None
    rng = np.random.default_rng(2)
    ranges = [(0, 100), (0, 1), (15, 17), (16, 32), (31, 33), (30, 66), (99, 100)]
    ranges += [(int(a), int(a) + int(rng.integers(1, 40))) for a in rng.integers(0, 99, 12)]
    for a, b in ranges:
        b = min(b, 100)
        np.testing.assert_array_equal(store.read("cam", a, b), arr[a:b])


def test_a_damaged_chunk_names_its_episode(tmp_path: Path) -> None:
    """Garbage in the chunk of episode 1: reading it names the episode; episode 0, in the same
    shard, stays readable."""
    from playworld.errors import StoreFormatError

    video = write(tmp_path / "s", [16, 16])
    shard = tmp_path / "s/data/cam/c/0/0/0/0"
    raw = bytearray(shard.read_bytes())
    index = np.frombuffer(bytes(raw[-(16 * 2 + 4) : -4]), "<u8").reshape(2, 2)
    offset, length = (int(v) for v in index[1])
    raw[offset : offset + length] = bytes(length)  # zeros: no H.264 start code, no frame
    shard.write_bytes(bytes(raw))
    store = PlayStore.open(tmp_path / "s")
    assert psnr(video[:16], store.read("cam", 0, 16)) >= MIN_DB
    with pytest.raises(StoreFormatError, match="episode 1") as e:
        store.read("cam", 20, 24)
    assert "\n" not in str(e.value)


def test_reused_decoder_matches_a_new_one() -> None:
    """Each thread reuses one decoder from chunk to chunk (flushed in between), also after a
    chunk decoded only in part and after a corrupt one: frames equal a new decoder's."""
    import av

    from playworld.datasets.video_codec import H264, decode_into

    def fresh(data: bytes) -> np.ndarray:
        cc = av.CodecContext.create("h264", "r")
        packets = [*cc.parse(data), *cc.parse(None), None]
        return np.stack([f.to_ndarray(format="rgb24") for p in packets for f in cc.decode(p)])

    codec = H264()
    a, b = codec.encode(frames(16, seed=1)), codec.encode(frames(12, seed=2))
    ref_a, ref_b = fresh(a), fresh(b)
    part = np.empty((3, H, W, 3), np.uint8)
    decode_into(a, part, first=2)  # stops after frame 4 of 16
    np.testing.assert_array_equal(part, ref_a[2:5])
    np.testing.assert_array_equal(codec.decode(b), ref_b)
    with pytest.raises(ValueError, match="corrupt|no frame"):
        codec.decode(b"\x00\x00\x00\x01garbage")
    rest = np.empty((9, H, W, 3), np.uint8)
    decode_into(a, rest, first=7)
    np.testing.assert_array_equal(rest, ref_a[7:16])
    with pytest.raises(ValueError, match="holds 12 frames"):
        decode_into(b, np.empty((4, H, W, 3), np.uint8), first=10)
