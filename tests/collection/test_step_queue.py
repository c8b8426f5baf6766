"""The background store writer: order, errors surfaced on the caller's thread, recovery."""

from __future__ import annotations

import numpy as np
import pytest

from playworld.collection.step_queue import StepQueue
from playworld.datasets import PlayStore
from playworld.errors import StoreError
from playworld.features import Feature

FEATURES = {"x": Feature((3,)), "action": Feature((2,), kind="action")}


def step(i: float, shape: int = 3) -> dict:
    return {"x": np.full(shape, i, np.float32), "action": np.full(2, i, np.float32)}


def test_a_bad_step_loses_its_episode_only(tmp_path):
    store = PlayStore.create(tmp_path / "s.zarr", FEATURES, fps=10)
    with StepQueue(store, max_queue=100) as w:
        w.begin()
        for i in range(5):
            assert w.put(step(i))
        first = w.commit({"n": 1})
        w.begin()
        w.put(step(9))
        w.put(step(9, shape=4))  # the wrong shape: this episode is lost
        w.put(step(9))
        lost = w.commit({"n": 2})
        assert first.result(timeout=30) == 0
        with pytest.raises(Exception, match="shape"):
            lost.result(timeout=30)
        with pytest.raises(StoreError, match="recording failed"):
            w.check()
        w.begin()  # and recording goes on
        for i in range(3):
            w.put(step(i))
        assert w.commit({"n": 3}).result(timeout=30) == 1
    store.close()
    s = PlayStore.open(tmp_path / "s.zarr")
    assert list(s.episode_ends) == [5, 8]
    assert [s.episode_metadata(i)["n"] for i in range(2)] == [1, 3]
    np.testing.assert_array_equal(s.episode(1)["x"][:][:, 0], [0, 1, 2])


def test_close_discards_the_open_episode(tmp_path):
    store = PlayStore.create(tmp_path / "s.zarr", FEATURES, fps=10)
    w = StepQueue(store)
    w.begin()
    w.put(step(1))
    w.close()
    store.close()
    assert len(PlayStore.open(tmp_path / "s.zarr")) == 0
    with pytest.raises(StoreError, match="max_queue"):
        StepQueue(store, max_queue=0)
