"""PlayWindowDataset on a real zarr store: values, padding, workers, splits, resizing."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from playworld.datasets import Feature, PlayStore, PlayWindowDataset, split_episodes
from playworld.errors import ConfigError, FeatureError

LENGTHS = [13, 7, 20, 9, 11, 6]
H, W = 24, 32
FEATURES = {
    "cam": Feature((H, W, 3), "uint8", "image"),
    "wrist": Feature((H, W, 1), "uint8", "image", codec="lz4"),
    "state": Feature((3,), "float32"),
    "action": Feature((2,), "float64", kind="action"),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store of 6 episodes (66 steps); shards of 8 frames so that windows cross shard files.

    state = (absolute row, episode, step in episode): the test can check rows without the sampler.
    """
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("play") / "store"
    n = sum(LENGTHS)
    data = {
        "cam": rng.integers(0, 256, size=(n, H, W, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, size=(n, H, W, 1), dtype=np.uint8),
        "state": np.zeros((n, 3), np.float32),
        "action": rng.normal(size=(n, 2)),
    }
    with PlayStore.create(
        path, FEATURES, fps=10, image_shard_frames=8, vector_chunk_rows=16, durable=False
    ) as s:
        row = 0
        for e, length in enumerate(LENGTHS):
            data["state"][row : row + length] = np.stack(
                [np.arange(row, row + length), np.full(length, e), np.arange(length)], axis=1
            )
            s.add_episode({k: v[row : row + length] for k, v in data.items()})
            row += length
    return str(path), data


def test_items_equal_the_episode_data_at_the_window_rows(store):
    path, data = store
    ds = PlayWindowDataset(path, window=6, history=2)
    assert len(ds) == sum(L - 6 + 1 + 1 + 4 for L in LENGTHS)
    ends = np.cumsum(LENGTHS)
    for i in range(len(ds)):
        item = ds[i]
        assert list(item) == ["cam", "wrist", "state", "action", "pad", "episode_index", "index"]
        assert item["cam"].dtype == torch.uint8 and item["cam"].shape == (6, H, W, 3)
        assert item["wrist"].shape == (6, H, W, 1)
        assert item["state"].dtype == torch.float32 and item["action"].dtype == torch.float32
        assert item["pad"].dtype == torch.bool and item["pad"].shape == (6,)
        state, pad = item["state"].numpy(), item["pad"].numpy()
        rows = state[:, 0].astype(np.int64)  # independent of the sampler: the store says which row
        e = int(item["episode_index"])
        assert (state[:, 1] == e).all(), "every step from the window's episode"
        assert ends[e] - LENGTHS[e] <= rows.min() and rows.max() < ends[e]
        steps = state[:, 2]
        assert np.array_equal(np.diff(steps[~pad]), np.ones((~pad).sum() - 1)), (
            "real steps consecutive"
        )
        assert (steps[pad & (np.cumsum(~pad) == 0)] == 0).all(), (
            "front padding repeats the first step"
        )
        assert (steps[pad & (np.cumsum(~pad) > 0)] == LENGTHS[e] - 1).all(), "back padding the last"
        assert int(item["index"]) == rows[1] and not pad[1]  # current step = history - 1, real
        assert np.array_equal(item["cam"].numpy(), data["cam"][rows])
        assert np.array_equal(item["wrist"].numpy(), data["wrist"][rows])
        np.testing.assert_array_equal(
            item["action"].numpy(), data["action"][rows].astype(np.float32)
        )
    assert ds[-1]["index"] == ds[len(ds) - 1]["index"]
    with pytest.raises(IndexError):
        ds[len(ds)]


def _batches(ds, num_workers):
    loader = DataLoader(ds, batch_size=5, shuffle=False, num_workers=num_workers)
    return list(loader)


def test_workers_give_the_same_samples(store):
    path, _ = store
    ds = PlayWindowDataset(
        path, window=4, history=2, keys=["cam", "state"], stride=2, image_size=(12, 16)
    )
    ds[0]  # the parent opens the store (and uses cv2) before the fork: workers must reopen
    assert ds._store is not None
    serial, parallel = _batches(ds, 0), _batches(ds, 2)
    assert len(serial) == len(parallel) == -(-len(ds) // 5)
    for a, b in zip(serial, parallel, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert serial[0]["cam"].shape == (5, 4, 12, 16, 3)


def test_pickles_without_zarr_objects(store):
    path, _ = store
    ds = PlayWindowDataset(path, window=3, keys=["wrist", "state"])
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._store is None
    for k, v in ds[7].items():
        assert torch.equal(v, clone[7][k])


def test_image_keys_history_only(store):
    path, data = store
    ds = PlayWindowDataset(path, window=8, history=3, image_keys_history_only=True)
    for i in (0, 5, len(ds) - 1):
        item = ds[i]
        rows = item["state"][:, 0].numpy().astype(np.int64)
        assert item["state"].shape == (8, 3) and item["pad"].shape == (8,)
        assert item["cam"].shape == (3, H, W, 3) and item["wrist"].shape == (3, H, W, 1)
        assert np.array_equal(item["cam"].numpy(), data["cam"][rows[:3]])
        assert np.array_equal(item["wrist"].numpy(), data["wrist"][rows[:3]])


def test_image_size_resizes_with_inter_area(store):
    path, data = store
    ds = PlayWindowDataset(
        path, window=5, history=1, keys=["cam", "wrist", "state"], image_size=(12, 16)
    )
    assert ds.features["cam"].shape == (12, 16, 3) and ds.features["wrist"].shape == (12, 16, 1)
    assert ds.features["state"].shape == (3,)
    item = ds[len(ds) - 1]  # the last window: padded at the back
    assert item["pad"].any()
    rows = item["state"][:, 0].numpy().astype(np.int64)
    want = np.stack(
        [cv2.resize(data["cam"][r], (16, 12), interpolation=cv2.INTER_AREA) for r in rows]
    )
    assert item["cam"].shape == (5, 12, 16, 3) and np.array_equal(item["cam"].numpy(), want)
    wrist = cv2.resize(data["wrist"][rows[0]], (16, 12), interpolation=cv2.INTER_AREA)
    assert item["wrist"].shape == (5, 12, 16, 1) and np.array_equal(
        item["wrist"][0, ..., 0].numpy(), wrist
    )


def test_splits_are_episode_level_disjoint_and_deterministic(store):
    path, _ = store
    kw = {"window": 4, "keys": ["state"], "val_ratio": 0.34, "seed": 3}
    train, val = (
        PlayWindowDataset(path, split="train", **kw),
        PlayWindowDataset(path, split="val", **kw),
    )
    everything = PlayWindowDataset(path, split="all", **kw)
    assert len(train) + len(val) == len(everything)
    ep_train = {int(train[i]["episode_index"]) for i in range(len(train))}
    ep_val = {int(val[i]["episode_index"]) for i in range(len(val))}
    assert ep_val and not ep_train & ep_val and ep_train | ep_val == set(range(len(LENGTHS)))
    assert ep_val == set(split_episodes(len(LENGTHS), 0.34, 3)[1].tolist())
    assert set(train.episodes.tolist()) == ep_train
    again = PlayWindowDataset(path, split="val", **kw)
    assert np.array_equal(again.episodes, val.episodes)
    empty = PlayWindowDataset(path, split="val", window=4, keys=["state"], val_ratio=0.0)
    assert len(empty) == 0


def test_open_store_input_stats_and_features(store):
    path, _ = store
    with PlayStore.open(path) as s:
        ds = PlayWindowDataset(s, window=2, keys=["action", "cam"])
        assert ds.url == s.url
        assert ds.stats == {k: s.stats[k] for k in ("action", "cam")}
        assert "quantiles" in ds.stats["action"]
    assert list(ds.features) == ["action", "cam"] and ds.features["cam"] == FEATURES["cam"]
    assert ds.fps == 10


def test_user_errors(store):
    path, _ = store
    with pytest.raises(FeatureError, match="state"):
        PlayWindowDataset(path, window=4, keys=["stat"])
    with pytest.raises(ConfigError, match="split"):
        PlayWindowDataset(path, window=4, split="test")
    with pytest.raises(ConfigError, match="no window of 30 steps"):
        PlayWindowDataset(path, window=30, pad_before=0, pad_after=0)
    with pytest.raises(ConfigError, match="image_size"):
        PlayWindowDataset(path, window=4, image_size=(0, 16))
