"""Autonomous play: labelled segments that agree with the task predicates, exact replay, workers."""

from __future__ import annotations

import numpy as np
import pytest

from playworld.collection.autoplay import AutoplayConfig, autoplay, autoplay_parallel
from playworld.collection.replay import replay_episode
from playworld.datasets import PlayStore
from playworld.datasets.maintenance import validate
from playworld.errors import ConfigError
from playworld.sim import TASKS


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    path = tmp_path_factory.mktemp("autoplay") / "play.zarr"
    cfg = AutoplayConfig(seed=3, cameras=("front",), height=48, width=64, episode_steps=120)
    summary = autoplay(path, cfg, steps=400)
    return path, summary


def test_segments_agree_with_predicates(played):
    path, summary = played
    store = PlayStore.open(path)
    assert len(store) == summary["episodes"] >= 2
    assert store.num_steps == summary["steps"]
    outcomes = []
    for ep in store.episodes():
        meta, state = ep.metadata, ep["state"][:]
        segs = meta["segments"]
        assert meta["source"] == "autoplay" and meta["writer_dropped_steps"] == 0
        # Segments tile the episode; the last row is the state the last segment is judged on.
        assert segs[0]["start"] == 0 and segs[-1]["end"] == len(ep) - 1
        assert all(a["end"] == b["start"] for a, b in zip(segs, segs[1:], strict=False))
        for s in segs:
            task = TASKS[s["task"]]
            assert s["end"] > s["start"]
            assert task.feasible(state[s["start"]]), s
            assert task.success(state[s["start"]], state[s["end"]]) == s["success"], s
            outcomes.append(s["success"])
        assert meta["tasks"] == [s["task"] for s in segs]
        assert meta["loop"]["ticks"] == len(ep)
    assert any(outcomes), "the scripted experts succeed at some tasks"
    assert len(outcomes) >= 4


def test_no_resets_between_episodes(played):
    path, _ = played
    store = PlayStore.open(path)
    for i in range(1, len(store)):
        if store.episode(i).metadata["resets"] == store.episode(i - 1).metadata["resets"]:
            # The next episode starts where the previous one left off (one control step later).
            prev = store.episode(i - 1)["state"][:][:, :7]
            first = store.episode(i)["state"][0]
            # A reset would jump to home; one control step moves at most as far as the
            # steps inside the episode (the ee target integrates, so steps reach ~0.05 rad).
            largest_step = np.abs(np.diff(prev, axis=0)).max()
            assert np.abs(first[:7] - prev[-1]).max() < max(0.05, largest_step)


def test_replay_reproduces_recorded_states(played):
    path, _ = played
    store = PlayStore.open(path)
    report = replay_episode(store, 1)
    assert report.ok and report.max_state_error == 0.0 and report.steps == len(store.episode(1))
    # The check can fail: a twin with other physics (half the time step) drifts away.
    from playworld.sim import Twin, TwinConfig

    other = Twin(TwinConfig(action_space="joint_pos", timestep=0.001))
    assert not replay_episode(store, 1, twin=other).ok


def test_cameras_recorded(played):
    path, _ = played
    store = PlayStore.open(path)
    assert store.features["front"].shape == (48, 64, 3)
    img = store.episode(0)["front"][:5]
    assert img.std() > 5  # a rendered scene, not zeros
    assert store.info["twin"]["action_space"] == "joint_pos"


def test_parallel_workers_merge(tmp_path):
    cfg = AutoplayConfig(
        seed=1,
        cameras=(),
        episode_steps=60,
        tasks=("open_drawer", "close_drawer", "slide_door_left", "slide_door_right"),
    )
    out = autoplay_parallel(tmp_path / "merged.zarr", cfg, steps=240, workers=2)
    store = PlayStore.open(tmp_path / "merged.zarr")
    workers = [ep.metadata["worker"] for ep in store.episodes()]
    assert set(workers) == {0, 1} and workers == sorted(workers)
    assert store.num_steps == out["steps"] and len(store) == out["episodes"]
    assert validate(tmp_path / "merged.zarr").ok
    assert not (tmp_path / "merged.zarr.parts").exists()
    tasks = {t for ep in store.episodes() for t in ep.metadata["tasks"]}
    assert tasks <= set(cfg.tasks)


def test_task_mix_and_errors():
    names, weights = AutoplayConfig.parse_mix("open_drawer:3,lift_red_block:1")
    assert names == ("open_drawer", "lift_red_block") and weights == (3.0, 1.0)
    assert AutoplayConfig.parse_mix("all") == ((), None)
    with pytest.raises(Exception, match="open_drawr"):
        AutoplayConfig(tasks=("open_drawr",))
    with pytest.raises(ConfigError, match="one weight"):
        AutoplayConfig(tasks=("open_drawer",), weights=(1.0, 2.0))
    with pytest.raises(ConfigError, match="cameras among"):
        AutoplayConfig(cameras=("side",))


def test_reset_each_episode_starts_at_home(tmp_path):
    """With `reset_each_episode`, every episode starts from a reset twin: the arm at home."""
    path = tmp_path / "play.zarr"
    cfg = AutoplayConfig(seed=1, cameras=(), episode_steps=10, reset_each_episode=True)
    summary = autoplay(path, cfg, steps=60)
    store = PlayStore.open(path)
    assert len(store) == summary["episodes"] >= 2
    assert summary["resets"] == len(store)
    home = store.episode(0)["state"][0][:7]
    for ep in store.episodes():  # the reset jitters the home pose by a few hundredths of a rad
        np.testing.assert_allclose(ep["state"][0][:7], home, atol=0.1)


def test_noise_moves_the_arm_but_not_the_label(tmp_path):
    """DART: the executed `action` carries the noise, `expert_action` is the expert's own."""
    from playworld.hardware.ee import MAX_POS_STEP

    path = tmp_path / "dart.zarr"
    cfg = AutoplayConfig(tasks=("turn_on_light",), seed=1, cameras=(), noise=0.2, episode_steps=30)
    autoplay(path, cfg, steps=60)
    store = PlayStore.open(path)
    n = store.num_steps
    action, label = store.read("action", 0, n), store.read("expert_action", 0, n)
    diff = action[:, :3] - label[:, :3]
    assert 0.5 < diff.std() / (0.2 * MAX_POS_STEP) < 1.5
    np.testing.assert_array_equal(action[:, 6], label[:, 6])  # the gripper is not noised
    clean = tmp_path / "clean.zarr"
    autoplay(clean, AutoplayConfig(tasks=("turn_on_light",), seed=1, cameras=()), steps=30)
    with PlayStore.open(clean) as s:
        m = s.num_steps
        np.testing.assert_allclose(s.read("action", 0, m), s.read("expert_action", 0, m), atol=1e-6)
