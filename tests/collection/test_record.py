"""`playworld record` through a real pseudo-terminal, with keyboard teleop driving the twin.

Each test runs the recorder as its own process (`recorder.Recorder`), types keys into its
terminal, and checks the store it leaves: episode lengths and metadata, SIGKILL mid-episode
(saved episodes intact, valid after repair, resume works) and SIGINT (as documented in
`playworld.collection.record`: the episode in progress is dropped, exit status 130).
"""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from recorder import Recorder  # tests/collection, on pytest's pythonpath

from playworld.datasets import PlayStore
from playworld.datasets.maintenance import repair, validate

pytestmark = pytest.mark.timeout(180)


def record_one(r: Recorder, index: int, keys: str = "") -> None:
    """Start an episode, type `keys` while it records, wait until the 1 s limit saves it."""
    r.keys("\r")
    r.wait_for(f"recording episode {index}")
    for k in keys:
        r.keys(k)
        time.sleep(0.08)
    r.wait_for(rf"saved episode {index} \(10 steps")


def test_record_with_keyboard_through_a_pty(tmp_path):
    store = tmp_path / "play.zarr"
    r = Recorder("--store", str(store), "--fps", "10", "--episode-s", "1", "--task", "push")
    try:
        r.wait_for("Enter starts")
        record_one(r, 0, keys="wwwwwww")  # +x for most of the episode
        r.keys("\r")
        r.wait_for("recording episode 1")
        time.sleep(0.3)
        r.keys("x")  # discard and re-record at once
        r.wait_for("discarded episode 1")
        r.wait_for(r"saved episode 1 \(10 steps")
        r.keys("q")
        assert r.wait() == 0
    finally:
        r.close()
    assert "session: 2 episodes saved (20 steps, 2.0 s), 1 discarded" in r.text
    s = PlayStore.open(store)
    assert len(s) == 2 and list(s.episode_ends) == [10, 20]
    assert validate(store).ok
    for ep in s.episodes():
        m = ep.metadata
        assert m["source"] == "teleop" and m["task"] == "push" and m["ended_by"] == "limit"
        assert m["teleop"] == "KeyboardTeleop" and m["writer_dropped_steps"] == 0
        assert m["loop"]["ticks"] == 10 and m["loop"]["rate_ratio"] > 0.9
    assert s.features["front"].shape == (96, 128, 3)
    assert s.features["action"].shape == (7,)  # ee deltas, as the keyboard drives
    x = s.episode(0)["ee_pos"][:][:, 0]
    assert x[-1] - x[0] > 0.02, x  # w moved the hand forward
    assert np.abs(np.diff(s.episode(1)["ee_pos"][:], axis=0)).max() < 0.01  # no keys: still
    assert s.info["robot"] == "sim_panda" and "twin" in s.info


def test_sigkill_mid_episode_then_repair_and_resume(tmp_path):
    store = tmp_path / "play.zarr"
    r = Recorder("--store", str(store), "--fps", "10", "--episode-s", "1")
    try:
        r.wait_for("Enter starts")
        record_one(r, 0, keys="ddd")
        saved = PlayStore.open(store).episode(0).to_dict()
        r.keys("\r")
        r.wait_for("recording episode 1")
        time.sleep(0.5)
        r.signal(signal.SIGKILL)
        assert r.wait() == -signal.SIGKILL
    finally:
        r.close()
    s = PlayStore.open(store)
    assert len(s) == 1
    for key, value in s.episode(0).to_dict().items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)
    rep = repair(store)
    assert not rep.remaining, rep.lines()
    assert validate(store).ok
    r = Recorder("--store", str(store), "--fps", "10", "--episode-s", "1", "--resume")
    try:
        r.wait_for("1 episodes there")
        record_one(r, 1)
        r.keys("q")
        assert r.wait() == 0
    finally:
        r.close()
    s = PlayStore.open(store)
    assert len(s) == 2 and list(s.episode_ends) == [10, 20]
    for key, value in s.episode(0).to_dict().items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)
    assert validate(store).ok


def test_sigint_drops_the_episode_in_progress(tmp_path):
    store = tmp_path / "play.zarr"
    r = Recorder("--store", str(store), "--fps", "10", "--episode-s", "1")
    try:
        r.wait_for("Enter starts")
        record_one(r, 0)
        r.keys("\r")
        r.wait_for("recording episode 1")
        time.sleep(0.4)
        r.signal(signal.SIGINT)
        assert r.wait() == 130
    finally:
        r.close()
    assert "discarded episode 1" in r.text
    assert "session: 1 episodes saved (10 steps, 1.0 s), 1 discarded" in r.text
    report = validate(store)
    assert report.ok and report.uncommitted_rows == 0, report.lines()
    assert len(PlayStore.open(store)) == 1


def test_fps_that_disagrees_with_the_robot_is_refused(tmp_path):
    r = Recorder("--store", str(tmp_path / "play.zarr"), "--fps", "30")
    try:
        r.wait_for(r"error: expected --fps to match robot 'sim_panda'.s rate 10 Hz .*--fps 30")
        assert r.wait() == 2
    finally:
        r.close()
    errors = [line for line in r.text.splitlines() if line.strip()]
    assert len(errors) == 1 and "Traceback" not in r.text, r.text
    assert not (tmp_path / "play.zarr").exists()


def profile_at(tmp_path, fps: float):
    """sim_panda at another control rate (the profile owns the rate)."""
    from playworld.hardware.profiles import resolve_profile

    text = resolve_profile("sim_panda").read_text()
    path = tmp_path / f"sim_{fps:g}hz.yaml"
    path.write_text(text.replace("\nfps: 10 ", f"\nfps: {fps:g} "))
    return str(path)


def test_resume_checks_what_differs(tmp_path):
    store = tmp_path / "play.zarr"
    r = Recorder("--store", str(store), "--fps", "10", "--episode-s", "1")
    try:
        r.wait_for("Enter starts")
        record_one(r, 0)
        r.keys("q")
        assert r.wait() == 0
    finally:
        r.close()
    fast = profile_at(tmp_path, 20)
    r = Recorder("--store", str(store), "--robot", fast)
    try:
        r.wait_for("error: .*pass --resume")
        assert r.wait() == 2
    finally:
        r.close()
    r = Recorder("--store", str(store), "--robot", fast, "--resume")
    try:
        r.wait_for(r"error: cannot resume .*fps: store 10, session 20")
        assert r.wait() == 2
    finally:
        r.close()
    assert len(PlayStore.open(store)) == 1
