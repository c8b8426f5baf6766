"""Malformed stores and malformed steps: one clear error naming the key / episode / file, and
nothing committed changes (every file of the store hashes the same before and after)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from playworld.datasets import Feature, PlayStore
from playworld.datasets import maintenance as m
from playworld.errors import FeatureError, PlayworldError, StoreFormatError, StoreNotFoundError

H, W = 24, 32
FEATURES = {
    "cam": Feature((H, W, 3), "uint8", "image"),
    "state": Feature((3,), units="m"),
    "action": Feature((2,), kind="action", units="m/s"),
}


def steps(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "cam": rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8),
        "state": rng.normal(size=(n, 3)).astype(np.float32),
        "action": rng.normal(size=(n, 2)).astype(np.float32),
    }


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Episodes of 5, 7 and 6 steps (rows 0:5, 5:12, 12:18); 4-frame shards, 8-row chunks."""
    rng = np.random.default_rng(0)
    path = tmp_path / "play"
    with PlayStore.create(path, FEATURES, 10, image_shard_frames=4, vector_chunk_rows=8) as store:
        for n in (5, 7, 6):
            store.add_episode(steps(rng, n))
    return path


def hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert isinstance(e.value, PlayworldError) and msg and "\n" not in msg
    return msg


def test_missing_chunk(store_path: Path) -> None:
    (store_path / "data/cam/c/2/0/0/0").unlink()  # rows 8:12, episode 1
    before = hashes(store_path)
    store = PlayStore.open(store_path)
    assert store.episode(0)["cam"][:].shape == (5, H, W, 3)  # other episodes still read
    with pytest.raises(StoreFormatError) as e:
        store.episode(1)["cam"][:]
    msg = one_line(e)
    assert "data/cam/c/2/0/0/0" in msg and "'cam'" in msg and "episode 1" in msg
    assert any(
        "data/cam/c/2/0/0/0" in p and "episode 1" in p for p in m.validate(store_path).problems
    )
    assert hashes(store_path) == before


def test_truncated_chunk(store_path: Path) -> None:
    f = store_path / "data/cam/c/3/0/0/0"  # rows 12:16, episode 2
    f.write_bytes(f.read_bytes()[:-50])
    before = hashes(store_path)
    store = PlayStore.open(store_path)
    with pytest.raises(StoreFormatError) as e:
        store.episode(2)["cam"][0:2]
    msg = one_line(e)
    assert "'cam'" in msg and "episode 2" in msg and "data/cam/c/3/" in msg
    (problem,) = m.validate(store_path).problems
    assert "data/cam/c/3/0/0/0" in problem and "episode 2" in problem
    assert hashes(store_path) == before


def test_truncated_vector_chunk(store_path: Path) -> None:
    f = store_path / "data/action/c/0/0"  # rows 0:8
    f.write_bytes(f.read_bytes()[:10])
    before = hashes(store_path)
    with pytest.raises(StoreFormatError) as e:
        PlayStore.open(store_path).episode(0)["action"][:]
    assert "'action'" in one_line(e) and "episode 0" in str(e.value)
    (problem,) = m.validate(store_path, deep=False).problems
    assert "data/action/c/0/0" in problem and "episodes 0-1" in problem
    assert hashes(store_path) == before


def test_wrong_format_version(store_path: Path) -> None:
    meta = json.loads((store_path / "zarr.json").read_text())
    meta["attributes"]["playworld"]["version"] = 7
    (store_path / "zarr.json").write_text(json.dumps(meta))
    before = hashes(store_path)
    for call in (
        lambda: PlayStore.open(store_path),
        lambda: PlayStore.open(store_path, "a"),
        lambda: m.validate(store_path),
        lambda: m.repair(store_path),
        lambda: m.info(store_path),
    ):
        with pytest.raises(StoreFormatError) as e:
            call()
        assert "version 7" in one_line(e) and "reads versions 1, 2" in str(e.value)
    assert hashes(store_path) == before


def test_non_store_path(tmp_path: Path) -> None:
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "file.txt").write_text("hi")
    before = hashes(tmp_path)
    for path in (other, tmp_path / "file.txt", tmp_path / "missing"):
        for call in (PlayStore.open, m.validate, m.repair, m.info):
            with pytest.raises(StoreNotFoundError) as e:
                call(path)
            assert str(path) in one_line(e)
    assert hashes(tmp_path) == before
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("state", np.zeros(4, np.float32), "expected shape (3,), got (4,)"),
        ("cam", np.zeros((H, W, 3), np.float32), "expected dtype uint8, got float32"),
        ("cam", np.zeros((W, H, 3), np.uint8), f"expected shape ({H}, {W}, 3)"),
        ("action", np.array([np.nan, 0.0], np.float32), "contains NaN"),
        ("action", np.array([0.0, np.inf], np.float32), "contains inf"),
    ],
)
def test_bad_step_on_append(store_path: Path, key: str, value: np.ndarray, expected: str) -> None:
    before = hashes(store_path)
    rng = np.random.default_rng(1)
    good = {k: v[0] for k, v in steps(rng, 1).items()}
    with PlayStore.open(store_path, "a") as store:
        store.begin_episode()
        store.append(good)
        with pytest.raises(FeatureError) as e:
            store.append({**good, key: value})
        msg = one_line(e)
        assert f"'{key}'" in msg and expected in msg
        with pytest.raises(FeatureError) as e:
            store.add_episode({k: np.stack([v, v]) for k, v in {**good, key: value}.items()})
        assert f"'{key}'" in one_line(e)
    assert hashes(store_path) == before
    assert len(PlayStore.open(store_path)) == 3 and m.validate(store_path).ok
