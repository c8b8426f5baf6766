"""Streaming statistics: quantiles merged per episode through KLL sketches saved in the commit
record; reopening, appending and old stores without a sketch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from playworld.datasets import Feature, PlayStore
from playworld.datasets import stats as st
from playworld.datasets.normalize import Normalizer

FEATURES = {
    "state": Feature((3,), units="m"),
    "action": Feature((2,), kind="action", units="m/s"),
}


def episode(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    # Heavy tails, so q01/q99 differ clearly from any neighbouring percentile.
    return {
        "state": rng.normal(size=(n, 3)).astype(np.float32),
        "action": rng.standard_t(3, size=(n, 2)).astype(np.float32),
    }


def record(path: Path) -> dict:
    return json.loads((path / "meta/zarr.json").read_text())


def ranks(x: np.ndarray, q: list[float]) -> np.ndarray:
    """The fraction of ``x`` (N, D) at or below each quantile value, per element."""
    return (x <= np.asarray(q)[None, :]).mean(axis=0)


def test_sketch_is_numpy_while_exact_and_within_rank_error_past_it() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(size=(50, 3))
    assert st.QuantileSketch.of(small).quantiles() == st.quantiles(small)
    big = rng.standard_t(3, size=(40_000, 2))
    sketch = st.QuantileSketch(2)
    for part in np.array_split(big, 40):  # merged piece by piece, as episodes are
        sketch.merge(st.QuantileSketch.of(part))
    back = st.QuantileSketch.from_json(json.loads(json.dumps(sketch.to_json())))
    assert back.count == 40_000
    q = back.quantiles()
    for name, p in (("q01", 0.01), ("q50", 0.5), ("q99", 0.99)):
        assert np.abs(ranks(big, q[name]) - p).max() < 0.006, name  # k=400: ~0.4% rank error


def test_reopen_and_append_continue_the_saved_sketch(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "s.zarr"
    eps = [episode(rng, 1500) for _ in range(4)]
    with PlayStore.create(path, FEATURES, 10, vector_chunk_rows=512) as s:
        for d in eps[:3]:
            s.add_episode(d)
    saved = record(path)["attributes"]["stats"]["action"]["sketch"]
    assert st.QuantileSketch.from_json(saved).count == 4500
    # The commit reads no committed row back: garbage in every full chunk of earlier actions
    # would raise (zstd checksum) if it did.
    for i in range(4500 // 512):  # chunks 0..7; chunk 8 (rows 4096:4608) takes the new rows
        (path / f"data/action/c/{i}/0").write_bytes(b"garbage")
    with PlayStore.open(path, "a") as s:
        s.add_episode(eps[3])
    stats = PlayStore.open(path).stats["action"]
    acts = np.concatenate([d["action"] for d in eps]).astype(np.float64)
    assert stats["count"] == 6000 and "sketch" not in stats
    np.testing.assert_allclose(stats["mean"], acts.mean(0), rtol=1e-9)
    for name, p in (("q01", 0.01), ("q99", 0.99)):
        assert np.abs(ranks(acts, stats["quantiles"][name]) - p).max() < 0.006
    sketch = st.QuantileSketch.from_json(record(path)["attributes"]["stats"]["action"]["sketch"])
    assert sketch.count == 6000
    n = Normalizer.from_stats(PlayStore.open(path).stats, {"action": "quantile"})
    y = np.asarray(n.normalize("action", acts.astype(np.float32)))
    assert 0.97 < (np.abs(y) <= 1).mean() < 0.99  # q01..q99 map to [-1, 1]


def test_a_store_without_sketches_gets_them_rebuilt_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    path = tmp_path / "old.zarr"
    eps = [episode(rng, n) for n in (7, 9, 5)]
    with PlayStore.create(path, FEATURES, 10) as s:
        for d in eps[:2]:
            s.add_episode(d)
    doc = record(path)  # as a store written before sketches were saved
    del doc["attributes"]["stats"]["action"]["sketch"]
    (path / "meta/zarr.json").write_text(json.dumps(doc))
    old = PlayStore.open(path).stats
    assert old["action"]["quantiles"] == st.quantiles(
        np.concatenate([d["action"] for d in eps[:2]])
    )
    with PlayStore.open(path, "a") as s:
        s.add_episode(eps[2])
    acts = np.concatenate([d["action"] for d in eps]).astype(np.float64)
    stats = PlayStore.open(path).stats["action"]
    assert stats["quantiles"] == st.quantiles(acts)  # 21 rows: the sketch still holds them all
    sketch = st.QuantileSketch.from_json(record(path)["attributes"]["stats"]["action"]["sketch"])
    assert sketch.count == 21


@pytest.mark.parametrize("bad", [{"kind": "tdigest", "data": []}, {"kind": "kll_doubles"}])
def test_an_unreadable_sketch_is_rebuilt(tmp_path: Path, bad: dict) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "s.zarr"
    eps = [episode(rng, 6), episode(rng, 4)]
    with PlayStore.create(path, FEATURES, 10) as s:
        s.add_episode(eps[0])
    doc = record(path)
    doc["attributes"]["stats"]["action"]["sketch"] = bad
    (path / "meta/zarr.json").write_text(json.dumps(doc))
    with PlayStore.open(path, "a") as s:
        s.add_episode(eps[1])
    acts = np.concatenate([d["action"] for d in eps])
    assert PlayStore.open(path).stats["action"]["quantiles"] == st.quantiles(acts)
