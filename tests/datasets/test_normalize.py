"""Normalizer: ranges per mode, exact round trips (numpy and torch), JSON round trip, guards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from playworld.datasets import stats as store_stats
from playworld.datasets.normalize import Normalizer
from playworld.errors import ConfigError
from playworld.features import Feature

RNG = np.random.default_rng(0)
STATE = RNG.normal([0.5, -2.0, 10.0], [0.1, 3.0, 0.01], size=(500, 3))
STATE[:, 0] = 0.25  # a joint that never moved: zero std, zero range
ACTION = np.concatenate([RNG.uniform(-1, 1, size=(500, 2)), [[40.0, -40.0]]])  # one outlier


def stats_of(x, quantiles=False):
    s = store_stats.finalize(store_stats.moments(x))
    if quantiles:
        s["quantiles"] = store_stats.quantiles(x)
    return s


STATS = {
    "state": stats_of(STATE),
    "action": stats_of(ACTION, quantiles=True),
    "cam": store_stats.finalize(
        store_stats.image_moments(np.full(3, 0.5 * 10), np.full(3, 0.3 * 10), 10)
    ),
}
FEATURES = {
    "state": Feature((3,)),
    "action": Feature((2,), kind="action"),
    "cam": Feature((4, 6, 3), "uint8", "image"),
}


def make(modes):
    return Normalizer.from_stats(STATS, modes, features=FEATURES)


def test_min_max_maps_the_data_range_to_minus_one_one():
    n = make({"state": "min_max"})
    y = n.normalize("state", STATE.astype(np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[:, 1:].min(axis=0), -1, atol=1e-5)
    np.testing.assert_allclose(y[:, 1:].max(axis=0), 1, atol=1e-5)
    assert np.isfinite(y).all() and np.allclose(y[:, 0], 0)  # constant column: 0, no NaN


def test_mean_std_standardises():
    n = make({"state": "mean_std"})
    y = n.normalize("state", STATE)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(y[:, 1:].std(axis=0), 1, rtol=1e-6)
    assert np.isfinite(y).all() and np.allclose(y[:, 0], 0)


def test_quantile_ignores_outliers():
    n = make({"action": "quantile"})
    y = n.normalize("action", ACTION)
    q = np.quantile(y, [0.01, 0.99], axis=0)
    np.testing.assert_allclose(q, [[-1, -1], [1, 1]], atol=1e-6)
    assert np.abs(y[-1]).max() > 10  # the outlier stays out, unclipped
    # min_max squeezes the same data into a sliver of [-1, 1] because of the outlier
    assert np.ptp(make({"action": "min_max"}).normalize("action", ACTION[:-1]), axis=0).max() < 0.1


def test_images_map_uint8_with_the_stats_in_unit_range():
    n = make({"cam": "min_max"})
    frames = np.array([0, 255], np.uint8).reshape(2, 1, 1, 1) * np.ones((1, 4, 6, 3), np.uint8)
    y = n.normalize("cam", frames)
    assert y.dtype == np.float32 and y.shape == (2, 4, 6, 3)
    np.testing.assert_allclose(y[0], -1, atol=1e-6)
    np.testing.assert_allclose(y[1], 1, atol=1e-6)
    m = make({"cam": "mean_std"}).normalize("cam", np.full((4, 6, 3), 0.5 * 255, np.float32))
    np.testing.assert_allclose(m, 0, atol=1e-6)


@pytest.mark.parametrize("mode", ["mean_std", "min_max", "quantile", "identity"])
def test_round_trip_numpy_and_torch(mode):
    n = make({"action": mode})
    x = ACTION.reshape(-1, 1, 2)  # (N, T=1, 2): parameters broadcast over leading axes
    np.testing.assert_allclose(
        n.unnormalize("action", n.normalize("action", x)), x, rtol=1e-12, atol=1e-12
    )
    t = torch.from_numpy(x.astype(np.float32))
    y = n.normalize("action", t)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), n.normalize("action", x.astype(np.float32)), rtol=1e-6)
    torch.testing.assert_close(n.unnormalize("action", y), t, rtol=1e-5, atol=1e-4)


def test_json_round_trip_is_exact_and_plain_json():
    n = make({"state": "mean_std", "action": "quantile", "cam": "min_max"})
    text = json.dumps(n.to_json())
    m = Normalizer.from_json(text)
    assert m.modes == n.modes
    batch = {
        "state": STATE,
        "action": ACTION,
        "cam": np.full((2, 4, 6, 3), 7, np.uint8),
        "pad": "kept",
    }
    a, b = n.normalize_batch(batch), m.normalize_batch(batch)
    for k in ("state", "action", "cam"):
        assert np.array_equal(a[k], b[k])
    assert b["pad"] == "kept"
    back = m.unnormalize_batch(b)
    np.testing.assert_allclose(back["state"], STATE, rtol=1e-12)


def test_errors_name_the_options():
    with pytest.raises(ConfigError, match="min_max"):
        make({"state": "minmax"})
    with pytest.raises(ConfigError, match="q01"):
        make({"state": "quantile"})  # states carry no quantiles
    with pytest.raises(ConfigError, match="state"):
        make({"stat": "mean_std"})
    with pytest.raises(ConfigError, match="state"):
        make({"state": "mean_std"}).normalize("stat", STATE)
    with pytest.raises(ConfigError, match="format"):
        Normalizer.from_json({"keys": {}})
