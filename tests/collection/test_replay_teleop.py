"""`replay:STORE[:EPISODE]`: a teleop that replays stored ee deltas, and `record --episodes`."""

from __future__ import annotations

import numpy as np
import pytest

from playworld.collection.record import RecordConfig
from playworld.collection.replay_teleop import ReplayTeleop, ReplayTeleopConfig
from playworld.collection.rig import open_teleop
from playworld.datasets import PlayStore
from playworld.errors import ConfigError
from playworld.features import Feature
from playworld.hardware.teleop import TeleopEvent


def make_store(path, shape=(7,), episodes=(3, 2)):
    store = PlayStore.create(path, {"action": Feature(shape, "float32", kind="action")}, fps=10)
    for i, n in enumerate(episodes):
        acts = np.full((n, *shape), i, np.float32) + np.arange(n, dtype=np.float32)[:, None]
        store.add_episode({"action": acts})
    store.close()
    return str(path)


def test_replays_each_episode_then_saves_and_holds(tmp_path):
    path = make_store(tmp_path / "src.zarr")
    teleop = open_teleop(f"replay:{path}")
    assert isinstance(teleop, ReplayTeleop)
    with teleop:
        assert teleop.fps == 10
        np.testing.assert_array_equal(teleop.get_action()[:6], 0)  # before an episode: still
        teleop.on_episode_start()
        got = [teleop.get_action()[0] for _ in range(3)]
        assert got == [0, 1, 2] and teleop.events() == [TeleopEvent.SAVE]
        hold = teleop.get_action()
        assert np.all(hold[:6] == 0) and hold[6] == 2  # the last gripper value (the robot clips)
        teleop.on_episode_start()  # the next source episode
        assert [teleop.get_action()[0] for _ in range(2)] == [1, 2]
    with open_teleop(f"replay:{path}:1") as one:
        one.on_episode_start()
        assert one.get_action()[0] == 1 and len(one.episodes) == 1


def test_bad_sources_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="a store path"):
        ReplayTeleopConfig.parse("replay:")
    assert ReplayTeleopConfig.parse("replay:a/b.zarr:3") == ReplayTeleopConfig(
        store="a/b.zarr", episode=3
    )
    with pytest.raises(ConfigError, match="play store to replay"):
        open_teleop(f"replay:{tmp_path / 'none.zarr'}").connect()
    joints = make_store(tmp_path / "joints.zarr", shape=(8,))
    with pytest.raises(ConfigError, match=r"ee_delta actions \(7,\)"):
        open_teleop(f"replay:{joints}").connect()
    path = make_store(tmp_path / "src.zarr")
    with pytest.raises(ConfigError, match="episode 0..1"):
        open_teleop(f"replay:{path}:5").connect()


def test_episodes_need_an_end():
    with pytest.raises(ConfigError, match="--episode-s with --episodes"):
        RecordConfig(store="x.zarr", teleop="keyboard", episodes=2)
    RecordConfig(store="x.zarr", teleop="keyboard", episodes=2, episode_s=3.0)
    RecordConfig(store="x.zarr", teleop="replay:src.zarr", episodes=2, reset_s=1.0)
    with pytest.raises(ConfigError, match="--episodes > 0"):
        RecordConfig(store="x.zarr", teleop="replay:src.zarr", episodes=0)
