"""AsyncActor: chunks by tick, stale actions dropped, temporal ensembling, stalls, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from playworld.collection.async_actor import AsyncActor


def chunk_of(tick_values, n=3):
    """A predictor whose chunk from obs {"k": k} holds actions [k, k + 0.1, k + 0.2] (A = 1)."""

    def predict(obs):
        k = float(obs["k"][0])
        tick_values.append(k)
        return np.array([[k + 0.1 * i] for i in range(n)])

    return predict


def test_chunks_cover_the_following_ticks_and_late_ones_are_dropped():
    seen: list[float] = []
    actor = AsyncActor(chunk_of(seen), budget_s=0.5).start()
    try:
        actor.submit(0, {"k": np.array([0.0])})
        assert actor.take(0)[0] == pytest.approx(0.0)
        assert actor.take(1)[0] == pytest.approx(0.1)  # from the same chunk, no new prediction
        assert actor.take(5) is None  # nothing covers tick 5: the rest of the chunk is stale
        assert actor.stale == 1
    finally:
        actor.close()


def test_temporal_ensembling_weights_the_oldest_most():
    seen: list[float] = []
    actor = AsyncActor(chunk_of(seen), budget_s=0.5, ensemble=1.0).start()
    try:
        actor.submit(0, {"k": np.array([0.0])})
        actor.take(0)
        actor.submit(1, {"k": np.array([10.0])})
        time.sleep(0.2)  # the second chunk lands: tick 1 has 0.1 (old) and 10.0 (new)
        got = actor.take(1)[0]
        w = np.exp(-np.arange(2))
        assert got == pytest.approx((w[0] * 0.1 + w[1] * 10.0) / w.sum())
    finally:
        actor.close()


def test_a_stall_returns_none_within_the_budget_and_errors_reach_the_loop():
    seen: list[float] = []
    actor = AsyncActor(chunk_of(seen), budget_s=0.05).start()
    try:
        actor.stall(0.5)
        actor.submit(0, {"k": np.array([0.0])})
        t0 = time.monotonic()
        assert actor.take(0) is None and time.monotonic() - t0 < 0.3
    finally:
        actor.close()

    def broken(obs):
        raise ValueError("the policy failed")

    actor = AsyncActor(broken, budget_s=0.5).start()
    try:
        actor.submit(0, {})
        with pytest.raises(ValueError, match="the policy failed"):
            actor.take(0)
    finally:
        actor.close()
