"""validate / repair / info / merge / drop on real zarr stores on disk."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import google_crc32c  # zarr's own dependency, for its shard index checksums
import numpy as np
import pytest
import zarr

from playworld.datasets import Feature, PlayStore
from playworld.datasets import maintenance as m
from playworld.errors import (
    ConfigError,
    FeatureError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    StoreNotFoundError,
)

H, W = 24, 32
FEATURES = {
    "cam": Feature((H, W, 3), "uint8", "image"),
    "state": Feature((3,), units="m"),
    "action": Feature((2,), kind="action", units="m/s"),
    "t": Feature((), "float64", "time", units="s"),
}


def episode_data(rng: np.random.Generator, steps: int, features=FEATURES) -> dict[str, np.ndarray]:
    """Random steps for every feature: noise frames, normal vectors, timestamps at 10 Hz."""
    out = {}
    for key, f in features.items():
        if f.is_image:
            out[key] = rng.integers(0, 256, (steps, *f.shape), dtype=np.uint8)
        elif f.kind == "time":
            out[key] = (np.arange(steps) / 10.0).astype(f.dtype)
        else:
            out[key] = rng.normal(size=(steps, *f.shape)).astype(f.dtype)
    return out


def make_store(path: Path, lengths=(5, 7, 6), seed=0, fps=10.0, features=FEATURES):
    """A store with episodes of ``lengths`` steps, 4-frame shards and 8-row chunks; returns
    (path, [episode data], [metadata])."""
    rng = np.random.default_rng(seed)
    episodes, metas = [], []
    with PlayStore.create(
        path, features, fps, info={"robot": "panda"}, image_shard_frames=4, vector_chunk_rows=8
    ) as store:
        for i, steps in enumerate(lengths):
            data = episode_data(rng, steps, features)
            meta = {"source": "teleop" if i % 2 == 0 else "autoplay", "tasks": [f"task{i}"]}
            store.add_episode(data, meta)
            episodes.append(data)
            metas.append(meta)
    return path, episodes, metas


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_episode_equal(store: PlayStore, index: int, data: dict[str, np.ndarray]) -> None:
    ep = store.episode(index)
    for key, want in data.items():
        got = ep[key][:]
        assert got.dtype == want.dtype and np.array_equal(got, want), (index, key)


def without_time(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != "committed_at"}


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return make_store(tmp_path / "play")[0]


# -- validate ----------------------------------------------------------------------------------
def test_validate_good_store(store_path: Path) -> None:
    for deep in (True, False):
        report = m.validate(store_path, deep=deep)
        assert report.ok, report.problems
        assert report.uncommitted_rows == 0
        assert (report.episodes, report.steps) == (3, 18)
        assert len(report.lines()) == 1 and "valid" in report.lines()[0]


def test_chunk_key_matches_the_files(store_path: Path) -> None:
    store = PlayStore.open(store_path)
    assert m.chunk_key(store, "cam", 9) == "data/cam/c/2/0/0/0"
    assert m.chunk_key(store, "state", 9) == "data/state/c/1/0"
    assert m.chunk_key(store, "t", 17) == "data/t/c/2"
    for key in FEATURES:
        assert (store_path / m.chunk_key(store, key, 17)).is_file()


def test_validate_finds_missing_shard(store_path: Path) -> None:
    (store_path / "data/cam/c/1/0/0/0").unlink()  # rows 4:8: the end of episode 0, start of 1
    report = m.validate(store_path, deep=False)
    assert not report.ok
    (line,) = report.problems
    assert "missing file data/cam/c/1/0/0/0" in line and "episodes 0-1" in line


@pytest.mark.parametrize("how", ["half", "empty"])
def test_validate_finds_truncated_shard(store_path: Path, how: str) -> None:
    f = store_path / "data/cam/c/2/0/0/0"  # rows 8:12, all in episode 1
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) // 2] if how == "half" else b"")
    (line,) = m.validate(store_path).problems
    assert line.startswith("corrupt file data/cam/c/2/0/0/0") and "episode 1" in line
    if how == "empty":  # zarr alone would read an empty shard as black frames: caught even quick
        assert "0 bytes" in m.validate(store_path, deep=False).problems[0]


def test_validate_finds_shard_with_unwritten_frames(store_path: Path) -> None:
    # A shard whose index lists a frame as never written (zarr reads it silently as zeros).
    arr = zarr.open_array(store_path / "data/cam", mode="r")
    f = store_path / "data/cam/c/0/0/0/0"
    raw = bytearray(f.read_bytes())
    n = 4 * 16 + 4
    index = np.frombuffer(bytes(raw[-n:-4]), "<u8").reshape(4, 2).copy()
    index[2] = 2**64 - 1
    body = index.astype("<u8").tobytes()
    raw[-n:] = body + np.uint32(google_crc32c.value(body)).tobytes()  # the checksum zarr verifies
    f.write_bytes(bytes(raw))
    assert np.array_equal(arr[2], np.zeros((H, W, 3), np.uint8))  # what zarr alone returns
    (line,) = m.validate(store_path).problems
    assert "data/cam/c/0/0/0/0" in line and "no data" in line and "episode 0" in line


def test_validate_finds_truncated_vector_chunk_even_quick(store_path: Path) -> None:
    f = store_path / "data/state/c/1/0"  # rows 8:16
    f.write_bytes(f.read_bytes()[:-9])
    (line,) = m.validate(store_path, deep=False).problems
    assert "corrupt file data/state/c/1/0" in line and "episodes 1-2" in line


def test_validate_finds_partial_temp_file(store_path: Path) -> None:
    (store_path / "data/cam/c/1/0/0/0.0123abcd.partial").write_bytes(b"half a shard")
    (line,) = m.validate(store_path).problems
    assert "data/cam/c/1/0/0/0.0123abcd.partial" in line


def test_validate_finds_uncommitted_tail(store_path: Path) -> None:
    arr = zarr.open_array(store_path / "data/action", mode="r+")
    arr.resize((23, 2))
    arr[18:23] = 1.0
    report = m.validate(store_path)
    assert report.uncommitted_rows == 5
    (line,) = report.problems
    assert "data/action has 5 uncommitted rows" in line and "row 18" in line


def test_validate_finds_short_array(store_path: Path) -> None:
    zarr.open_array(store_path / "data/state", mode="r+").resize((15, 3))
    with pytest.raises(StoreFormatError, match="data/state has 15 rows"):
        PlayStore.open(store_path)
    problems = m.validate(store_path).problems
    assert any(
        "data/state has 15 rows, the commit record needs 18" in p and "episode 2" in p
        for p in problems
    )


def test_validate_finds_nan_in_action(store_path: Path) -> None:
    arr = zarr.open_array(store_path / "data/action", mode="r+")
    arr[13] = [np.nan, 0.0]  # episode 2 (rows 12:18), step 1
    arr[16] = [np.inf, np.inf]
    (line,) = m.validate(store_path, deep=False).problems
    assert "'action'" in line and "3 NaN/inf" in line and "row 13 (episode 2, step 1)" in line


def test_validate_wrong_version_and_non_store(store_path: Path, tmp_path: Path) -> None:
    root = json.loads((store_path / "zarr.json").read_text())
    root["attributes"]["playworld"]["version"] = 99
    (store_path / "zarr.json").write_text(json.dumps(root))
    with pytest.raises(StoreFormatError, match="version 99"):
        m.validate(store_path)
    (tmp_path / "notes").mkdir()
    with pytest.raises(StoreNotFoundError, match="not a play store"):
        m.validate(tmp_path / "notes")
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        m.validate(tmp_path / "nothing")


def test_validate_on_an_fsspec_url() -> None:
    url = "memory://test-maintenance/validate"
    rng = np.random.default_rng(1)
    with PlayStore.create(url, FEATURES, 10, overwrite=True, image_shard_frames=4) as store:
        store.add_episode(episode_data(rng, 6))
    assert m.validate(url).ok
    assert m.info(url)["files"] == len(m.list_files(url)) > 0


# -- repair ------------------------------------------------------------------------------------
def test_repair_trims_tail_and_partials_then_validates(tmp_path: Path) -> None:
    path, episodes, _ = make_store(tmp_path / "play")
    for key, rows in (("cam", 11), ("action", 3)):  # cam: 3 new shards past the committed end
        arr = zarr.open_array(path / f"data/{key}", mode="r+")
        arr.resize((18 + rows, *arr.shape[1:]))
        arr[18:] = 7
    (path / "meta/zarr.json.deadbeef.partial").write_bytes(b"{")
    committed = {
        f: h for f, h in file_hashes(path).items() if f.startswith(("data/cam/c/0", "data/cam/c/1"))
    }
    assert m.validate(path).uncommitted_rows == 11

    report = m.repair(path)
    assert report.removed_rows == 11 and report.trimmed == {"cam": 11, "action": 3}
    assert "meta/zarr.json.deadbeef.partial" in report.removed_files
    assert "data/cam/c/7/0/0/0" in report.removed_files  # rows 28:29, wholly uncommitted
    assert not report.remaining
    assert any("trimmed 11 uncommitted rows" in line for line in report.lines())
    assert m.validate(path).ok
    assert {f: h for f, h in file_hashes(path).items() if f in committed} == committed
    store = PlayStore.open(path)
    for i, data in enumerate(episodes):
        assert_episode_equal(store, i, data)
    assert m.repair(path).lines() == [
        f"{path}: nothing to repair (no uncommitted rows, no leftover temp files)"
    ]


def test_repair_needs_the_writer_lock(store_path: Path) -> None:
    with PlayStore.open(store_path, "a"), pytest.raises(StoreLockedError):
        m.repair(store_path)


def test_repair_lists_what_it_cannot_fix(store_path: Path) -> None:
    (store_path / "data/state/c/0/0").unlink()
    report = m.repair(store_path)
    assert report.removed_rows == 0 and report.removed_files == []
    assert report.remaining and "data/state/c/0/0" in report.remaining[0]


# -- info --------------------------------------------------------------------------------------
def test_info(store_path: Path) -> None:
    d = m.info(store_path)
    assert (d["episodes"], d["steps"], d["fps"], d["duration_s"]) == (3, 18, 10.0, 1.8)
    assert d["sources"] == {"autoplay": 1, "teleop": 2}
    assert d["files"] == len(list(p for p in store_path.rglob("*") if p.is_file()))
    assert d["size_bytes"] == sum(p.stat().st_size for p in store_path.rglob("*") if p.is_file())
    cam = d["features"]["cam"]
    assert cam["shape"] == [H, W, 3] and cam["kind"] == "image" and cam["codec"] == "zstd"
    stored = sum(p.stat().st_size for p in (store_path / "data/cam/c").rglob("*") if p.is_file())
    assert cam["stored_bytes"] == stored and cam["raw_bytes"] == 18 * H * W * 3
    assert cam["compression_ratio"] == pytest.approx(18 * H * W * 3 / stored, rel=1e-3)
    assert d["features"]["action"]["units"] == "m/s" and d["codecs"] == ["zstd"]
    assert d["info"] == {"robot": "panda"}
    json.dumps(d)  # JSON-native


# -- merge -------------------------------------------------------------------------------------
def test_merge_is_bit_identical_with_metadata_and_stats(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(m, "READ_BUDGET", 3 * H * W * 3)  # copy in spans of ~3 steps
    a, eps_a, meta_a = make_store(tmp_path / "a", (5, 7), seed=1)
    b, eps_b, meta_b = make_store(tmp_path / "b", (6, 9, 2), seed=2)
    merged = m.merge(a, b, tmp_path / "c")
    assert len(merged) == 5 and merged.num_steps == 29
    assert merged.info == {"robot": "panda"} and merged.fps == 10.0
    for i, (data, meta) in enumerate(zip(eps_a + eps_b, meta_a + meta_b, strict=True)):
        assert_episode_equal(merged, i, data)
        assert without_time(merged.episode_metadata(i)) == meta
    everything = {k: np.concatenate([e[k] for e in eps_a + eps_b]) for k in FEATURES}
    stats = merged.stats
    for key in ("state", "action", "t"):
        x = everything[key].reshape(29, -1).astype(np.float64)
        assert stats[key]["count"] == 29
        np.testing.assert_allclose(stats[key]["mean"], x.mean(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(stats[key]["std"], x.std(0), rtol=1e-6)
    np.testing.assert_allclose(
        stats["action"]["quantiles"]["q50"], np.quantile(everything["action"], 0.5, axis=0)
    )
    sa, sb = PlayStore.open(a).stats["cam"], PlayStore.open(b).stats["cam"]
    np.testing.assert_allclose(
        stats["cam"]["mean"], (12 * np.array(sa["mean"]) + 17 * np.array(sb["mean"])) / 29
    )
    assert m.validate(merged.url).ok


def test_copy_episodes_commits_whole_batches(tmp_path: Path, monkeypatch) -> None:
    """Batches of ~2 episodes (one record write each), rows read in spans of 8 across
    episodes: the copy equals the source episode by episode; a bad index copies nothing; a
    read failing mid-batch leaves the store at the last whole batch."""
    row = sum(f.nbytes for f in FEATURES.values())
    monkeypatch.setattr(m, "COPY_BATCH_BYTES", 10 * row)
    monkeypatch.setattr(m, "READ_BUDGET", 8 * row)
    path, episodes, metas = make_store(tmp_path / "a", (5, 7, 6, 4, 3), seed=3)
    src = PlayStore.open(path)
    with PlayStore.create(tmp_path / "b", FEATURES, 10.0) as dst:
        m.copy_episodes(src, [0, 1, 2, 3, 4, 1], dst)
        assert len(dst) == 6 and dst.episode_ends.tolist() == [5, 12, 18, 22, 25, 32]
        for i, j in enumerate([0, 1, 2, 3, 4, 1]):
            assert_episode_equal(dst, i, episodes[j])
            assert without_time(dst.episode_metadata(i)) == metas[j]
        with pytest.raises(StoreError, match="episode 9"):
            m.copy_episodes(src, [0, 9], dst)
        assert len(dst) == 6
        (path / "data/state/c/2/0").unlink()  # rows 16:24: episodes 2 and 3
        with pytest.raises(StoreError, match="data/state/c/2/0 of feature 'state' is missing"):
            m.copy_episodes(PlayStore.open(path), [0, 1, 2, 3], dst)  # [0, 1] is a batch
        assert len(dst) == 8 and dst.num_steps == 44
        assert_episode_equal(dst, 7, episodes[1])
        assert dst.stats["state"]["count"] == 44
    assert m.validate(tmp_path / "b").ok


def test_merge_refuses_different_features_naming_each_difference(tmp_path: Path) -> None:
    a = make_store(tmp_path / "a", (3,))[0]
    other = dict(FEATURES, state=Feature((4,), units="m"))
    del other["t"]
    b = make_store(tmp_path / "b", (3,), fps=15.0, features=other)[0]
    with pytest.raises(FeatureError) as e:
        m.merge(a, b, tmp_path / "c")
    msg = str(e.value)
    assert "\n" not in msg
    assert "features only in" in msg and "t" in msg
    assert "feature 'state' shape [3] vs [4]" in msg and "fps 10 vs 15" in msg
    assert not (tmp_path / "c").exists()


def test_merge_into_an_existing_store_changes_nothing(tmp_path: Path) -> None:
    a = make_store(tmp_path / "a", (3,))[0]
    before = file_hashes(a)
    with pytest.raises(StoreError, match="not empty"):
        m.merge(a, a, a)
    assert file_hashes(a) == before


# -- drop --------------------------------------------------------------------------------------
def test_drop_into_a_new_store(tmp_path: Path) -> None:
    path, episodes, metas = make_store(tmp_path / "play", (5, 7, 6, 4))
    before = file_hashes(path)
    out = m.drop(path, -1, out=tmp_path / "out")
    assert file_hashes(path) == before
    assert len(out) == 3 and out.num_steps == 18
    for i in range(3):
        assert_episode_equal(out, i, episodes[i])
        assert without_time(out.episode_metadata(i)) == metas[i]
    assert out.stats["state"]["count"] == 18


def test_drop_in_place(tmp_path: Path) -> None:
    path, episodes, metas = make_store(tmp_path / "play", (5, 7, 6))
    store = m.drop(path, 1)
    assert len(store) == 2 and list(store.episode_ends) == [5, 11]
    for i, j in ((0, 0), (1, 2)):
        assert_episode_equal(store, i, episodes[j])
        assert without_time(store.episode_metadata(i)) == metas[j]
    x = np.concatenate([episodes[0]["action"], episodes[2]["action"]]).astype(np.float64)
    np.testing.assert_allclose(store.stats["action"]["mean"], x.mean(0), rtol=1e-9)
    assert sorted(os.listdir(tmp_path)) == ["play"]  # the temp store and the old one are gone
    assert m.validate(path).ok


def test_drop_is_atomic_when_the_rewrite_fails(tmp_path: Path) -> None:
    path = make_store(tmp_path / "play", (5, 7, 6))[0]
    f = path / "data/cam/c/3/0/0/0"  # rows 12:16, episode 2: the copy fails late
    f.write_bytes(f.read_bytes()[:100])
    before = file_hashes(path)
    with pytest.raises(StoreFormatError, match="'cam'.*episode 2"):
        m.drop(path, 0)
    assert file_hashes(path) == before
    assert sorted(os.listdir(tmp_path)) == ["play"]
    PlayStore.open(path, "a").close()  # the writer lock was released


def test_drop_bad_index_and_url(store_path: Path) -> None:
    with pytest.raises(StoreError, match="has 3 episodes; episode 3 does not exist"):
        m.drop(store_path, 3)
    with pytest.raises(ConfigError, match="needs a local path"):
        m.drop("memory://test-maintenance/nothing", 0)
