"""WindowSampler and split_episodes: index math against a brute-force reference and invariants."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playworld.datasets.sampler import WindowSampler, episode_draws, split_episodes
from playworld.errors import ConfigError, PlayworldError


def reference_windows(ends, window, history, stride, pad_before, pad_after, episodes=None):
    """Frame-by-frame loops, the way diffusion_policy's create_indices spells it."""
    out = []
    for e in range(len(ends)) if episodes is None else episodes:
        start = 0 if e == 0 else ends[e - 1]
        length = ends[e] - start
        for k, s in enumerate(range(-pad_before, length - window + pad_after + 1)):
            if k % stride:
                continue
            rows, pad = [], []
            for t in range(s, s + window):
                pad.append(not 0 <= t < length)
                rows.append(start + min(max(t, 0), length - 1))
            out.append((e, rows, pad))
    return out


@st.composite
def sampler_args(draw):
    lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=6))
    ends = np.cumsum(lengths).tolist()
    window = draw(st.integers(1, 8))
    history = draw(st.integers(1, window))
    stride = draw(st.integers(1, 3))
    pad_before = draw(st.one_of(st.none(), st.integers(0, window - 1)))
    pad_after = draw(st.one_of(st.none(), st.integers(0, window - 1)))
    subset = draw(st.one_of(st.none(), st.lists(st.integers(0, len(ends) - 1), unique=True)))
    return ends, window, history, stride, pad_before, pad_after, subset


@settings(max_examples=200, deadline=None)
@given(sampler_args())
def test_matches_brute_force_reference(args):
    ends, window, history, stride, pad_before, pad_after, subset = args
    s = WindowSampler(
        ends,
        window,
        history=history,
        stride=stride,
        pad_before=pad_before,
        pad_after=pad_after,
        episodes=subset,
    )
    pb = history - 1 if pad_before is None else pad_before
    pa = window - history if pad_after is None else pad_after
    ref = reference_windows(ends, window, history, stride, pb, pa, subset)
    assert len(s) == len(ref)
    for i, (e, rows, pad) in enumerate(ref):
        got_rows, got_pad = s.window_indices(i)
        assert got_rows.dtype == np.int64 and got_rows.shape == (window,)
        assert got_pad.dtype == np.bool_ and got_pad.shape == (window,)
        assert got_rows.tolist() == rows
        assert got_pad.tolist() == pad
        assert s.episode_of(i) == e
        assert s.current_row(i) == rows[history - 1]


@settings(max_examples=200, deadline=None)
@given(sampler_args())
def test_invariants(args):
    ends, window, history, stride, pad_before, pad_after, subset = args
    s = WindowSampler(
        ends,
        window,
        history=history,
        stride=stride,
        pad_before=pad_before,
        pad_after=pad_after,
        episodes=subset,
    )
    starts = np.concatenate([[0], ends[:-1]])
    eps = range(len(ends)) if subset is None else subset
    lengths = np.diff(ends, prepend=0)
    # len formula: ceil((L - T + pad_before + pad_after + 1) / stride) per episode, 0 if negative
    n = sum(-(-max(lengths[e] - window + s.pad_before + s.pad_after + 1, 0) // stride) for e in eps)
    assert len(s) == n
    if n == 0:
        return
    rows, pad = s.batch_indices(np.arange(n))
    ep = s.sample_episode
    lo, hi = starts[ep][:, None], np.asarray(ends)[ep][:, None]
    assert ((rows >= lo) & (rows < hi)).all(), "every row inside its episode"
    raw = s.sample_start[:, None] + np.arange(window)
    assert np.array_equal(pad, (raw < lo) | (raw >= hi)), "pad exactly where the window leaves"
    assert np.array_equal(rows[~pad], raw[~pad]), "real steps are consecutive rows"
    assert (np.diff(rows, axis=1) >= 0).all(), "rows are non-decreasing (one slice read each)"
    assert (~pad).any(axis=1).all(), "every window holds a real step"
    assert (pad[:, : s.pad_before + 1].sum(axis=1) <= s.pad_before).all()
    assert set(ep.tolist()) <= set(eps)
    # stride: consecutive windows of one episode start `stride` rows apart
    same = ep[1:] == ep[:-1]
    assert (np.diff(s.sample_start)[same] == stride).all()


def test_default_padding_keeps_the_current_step_inside():
    s = WindowSampler([10, 25], 8, history=3)
    rows, pad = s.batch_indices(np.arange(len(s)))
    assert not pad[:, 2].any()  # with pad_before = history - 1 the current step is real
    assert pad[0].tolist() == [True, True] + [False] * 6
    assert rows[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5]
    assert len(s) == (10 - 8 + 2 + 5 + 1) + (15 - 8 + 2 + 5 + 1)


def test_no_padding_and_negative_index():
    s = WindowSampler([5, 12], 4, history=2, pad_before=0, pad_after=0)
    assert len(s) == 2 + 4
    rows, pad = s.window_indices(-1)
    assert rows.tolist() == [8, 9, 10, 11] and not pad.any()
    with pytest.raises(IndexError):
        s.window_indices(len(s))
    with pytest.raises(IndexError):
        s.window_indices(-len(s) - 1)


def test_short_episodes_yield_no_windows():
    s = WindowSampler([3, 20], 10, pad_before=0, pad_after=0)
    assert set(s.sample_episode.tolist()) == {1}
    assert len(WindowSampler([3], 10, pad_before=0, pad_after=0)) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"window": 4, "history": 5},
        {"window": 4, "history": 0},
        {"window": 4, "stride": 0},
        {"window": 4, "pad_before": 4},
        {"window": 4, "pad_after": -1},
        {"window": 4, "episodes": [2]},
    ],
)
def test_bad_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        WindowSampler([5, 9], **kwargs)


def test_bad_episode_ends():
    with pytest.raises(PlayworldError, match="increasing"):
        WindowSampler([5, 5], 2)


def test_builds_a_large_store_instantly():
    ends = np.cumsum(np.full(1000, 100))  # 100k steps
    t = time.perf_counter()
    s = WindowSampler(ends, 16, history=2)
    rows, pad = s.batch_indices(np.arange(len(s)))
    assert time.perf_counter() - t < 0.5
    assert len(s) == 1000 * (100 - 16 + 1 + 14 + 1)
    assert rows.max() == 99_999


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.floats(0, 0.99), st.integers(0, 2**31))
def test_split_is_deterministic_disjoint_and_complete(n, ratio, seed):
    train, val = split_episodes(n, ratio, seed)
    again = split_episodes(n, ratio, seed)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert len(train) >= 1
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(n))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    if ratio == 0 or n == 1:
        assert len(val) == 0
    else:
        assert 1 <= len(val) <= n - 1


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 300), st.integers(1, 300), st.floats(0.01, 0.5), st.integers(0, 2**31))
def test_split_is_stable_as_episodes_are_added(n, more, ratio, seed):
    """Recording more episodes never moves an earlier one to the other side (outside the
    small-store rules: at least one episode on each side)."""
    natural = lambda m: set(np.flatnonzero(episode_draws(m, seed) < ratio).tolist())  # noqa: E731
    _, val = split_episodes(n, ratio, seed)
    _, val_more = split_episodes(n + more, ratio, seed)
    if 0 < len(natural(n)) < n and 0 < len(natural(n + more)) < n + more:
        assert set(val.tolist()) == natural(n)
        assert set(val_more.tolist()) & set(range(n)) == set(val.tolist())


def test_split_holds_out_about_the_ratio():
    _, val = split_episodes(10_000, 0.1, 0)
    assert 900 < len(val) < 1100


def test_split_depends_on_seed_and_validates():
    splits = {tuple(split_episodes(50, 0.2, seed)[1]) for seed in range(5)}
    assert len(splits) > 1
    with pytest.raises(ConfigError):
        split_episodes(10, 1.0, 0)
    with pytest.raises(ConfigError):
        split_episodes(0, 0.1, 0)
