"""Tether's functional play: the task sampler and the UCB picker follow their formulas; a short
play run appends labelled, valid episodes that replay exactly and grows the library."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playworld.errors import ConfigError
from playworld.policies.tether.play import (
    PlayConfig,
    play,
    sample_task,
    task_probabilities,
    ucb_pick,
    ucb_scores,
)

TASK_NAMES = [f"t{i}" for i in range(6)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=6))
def test_task_probabilities_follow_exp_minus_successes_over_ten(successes):
    names = TASK_NAMES[: len(successes)]
    p = task_probabilities(dict(zip(names, successes, strict=True)), names)
    assert math.isclose(p.sum(), 1.0) and np.all(p > 0)
    for i in range(len(names)):
        for j in range(len(names)):
            assert math.isclose(
                p[i] / p[j], math.exp(-(successes[i] - successes[j]) / 10), rel_tol=1e-9
            )


def test_the_sampler_draws_at_those_rates():
    rng = np.random.default_rng(0)
    successes = {"a": 0, "b": 10, "c": 30}
    draws = [sample_task(rng, successes, ["a", "b", "c"]) for _ in range(5000)]
    freq = np.array([draws.count(t) for t in "abc"]) / len(draws)
    expected = np.exp(-np.array([0, 10, 30]) / 10)
    np.testing.assert_allclose(freq, expected / expected.sum(), atol=0.025)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=5))
def test_ucb_scores_follow_their_formula(pairs):
    history = {f"d{i}": (min(k, n), n) for i, (k, n) in enumerate(pairs)}
    scores = ucb_scores(history, c=0.5)
    total = sum(n for _, n in history.values())
    for d, (k, n) in history.items():
        if n == 0:
            assert scores[d] == math.inf
        else:
            assert math.isclose(scores[d], k / n + 0.5 * math.sqrt(math.log(max(total, 1)) / n))
    best = ucb_pick(history)
    assert scores[best] == max(scores.values())
    if any(n == 0 for _, n in history.values()):  # untried demos come first
        assert history[best][1] == 0


def test_ucb_prefers_the_better_demo_once_both_are_known():
    assert ucb_pick({"good": (9, 10), "bad": (1, 10)}) == "good"
    assert ucb_pick({"good": (9, 10), "rare": (1, 1)}) == "rare"  # exploration bonus


def test_play_needs_a_budget():
    with pytest.raises(ConfigError, match="episodes"):
        PlayConfig()


def test_a_short_play_run_appends_labelled_episodes_that_replay_exactly(tmp_path):
    from playworld.collection.replay import replay_episode
    from playworld.datasets import PlayStore
    from playworld.hardware.profiles import robot_from_profile
    from playworld.policies import Policy
    from playworld.policies.tether.library import record_demo
    from playworld.policies.tether.policy import TetherPolicy

    robot = robot_from_profile("sim_panda", cameras={}, action_space="ee_delta")
    robot.connect()
    try:
        demos = [record_demo(robot, t, seed=1) for t in ("turn_on_light", "turn_off_light")]
    finally:
        robot.disconnect()
    TetherPolicy.from_demos(demos).save(tmp_path / "lib")
    attempts = []
    summary = play(
        tmp_path / "lib",
        tmp_path / "play.zarr",
        PlayConfig(episodes=4, seed=3, max_steps=40),
        on_attempt=attempts.append,
    )
    assert summary["attempts"] == 4 and len(attempts) == 4
    store = PlayStore.open(tmp_path / "play.zarr")
    assert len(store) == 4
    for i in range(len(store)):
        meta = store.episode_metadata(i)
        assert meta["source"] == "tether_play" and meta["task"] in (
            "turn_on_light",
            "turn_off_light",
        )
        assert meta["demo"].startswith(meta["task"]) and isinstance(meta["success"], bool)
        assert (meta["reason"] is None) == meta["success"]
        assert meta["segments"][0]["end"] == len(store.episode(i)) - 1
        report = replay_episode(store, i)
        assert report.ok, report
    assert summary["successes"] >= 3
    library = Policy.load(tmp_path / "lib")
    assert len(library.config.demos) == 2 + summary["added"] and summary["added"] >= 1
    # Resuming appends to the same store and counts its history.
    more = play(
        tmp_path / "lib", tmp_path / "play.zarr", PlayConfig(episodes=1, seed=4, max_steps=40)
    )
    assert more["attempts"] == 1 and len(PlayStore.open(tmp_path / "play.zarr")) == 5


def test_play_with_perceived_keypoints(tmp_path):
    pytest.importorskip("open3d", reason="open3d (the `tether` extra) is not installed")
    from playworld.hardware.profiles import robot_from_profile
    from playworld.policies.tether.library import record_demo
    from playworld.policies.tether.policy import TetherPolicy

    robot = robot_from_profile("sim_panda", cameras={}, action_space="ee_delta")
    robot.connect()
    try:
        demos = [record_demo(robot, t, seed=1) for t in ("open_drawer", "close_drawer")]
    finally:
        robot.disconnect()
    TetherPolicy.from_demos(demos).save(tmp_path / "lib")
    config = PlayConfig(episodes=2, seed=2, max_steps=60, keypoints="perceived")
    summary = play(tmp_path / "lib", tmp_path / "play.zarr", config)
    assert summary["attempts"] == 2 and summary["successes"] >= 1
