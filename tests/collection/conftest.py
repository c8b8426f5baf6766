"""Fixtures of the collection tests: the twin's robot, camera frames, and a thread-leak check."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import playworld.sim  # noqa: F401 - picks the headless GL backend before mujoco loads
from playworld.hardware.profiles import robot_from_profile

# Threads each object must stop. Not in the list: the process-wide pools started once and kept,
# zarr's ("zarr_pool") and the shard codec pool ("playworld-codec", datasets/shards.py).
OURS = ("standin", "store-writer", "watchdog", "playstore", "capture", "keyboard", "autoplay")


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every test stops the threads it started."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        leaked = [
            t
            for t in set(threading.enumerate()) - before
            if t.is_alive() and any(k in t.name for k in OURS)
        ]
        if not leaked:
            return
        time.sleep(0.05)
    pytest.fail(f"threads left running: {[t.name for t in leaked]}")


@pytest.fixture
def sim_robot():
    """The twin's Panda (joint targets, no cameras of its own), connected."""
    robot = robot_from_profile("sim_panda", cameras={}, action_space="joint_pos")
    robot.connect()
    yield robot
    robot.disconnect()


@pytest.fixture
def hold():
    """A source that holds the arm where it is: (8,) joint targets + gripper."""

    def source(obs: dict) -> np.ndarray:
        return np.concatenate([obs["joint_pos"], obs["gripper"]]).astype(np.float32)

    return source


@pytest.fixture(scope="session")
def frames() -> np.ndarray:
    """Eight distinct (48, 64, 3) uint8 frames (noise: each is recognisable by its content)."""
    return np.random.default_rng(0).integers(0, 256, (8, 48, 64, 3), dtype=np.uint8)
