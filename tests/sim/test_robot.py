"""SimRobot: the twin behind the Robot interface, always through the guard; the robot contract."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("playworld.sim", reason="the twin needs mujoco (pip install 'playworld[sim]')")

from playworld.hardware.errors import ConfigError, GuardError, NotConnectedError  # noqa: E402
from playworld.hardware.profiles import load_profile, robot_from_profile  # noqa: E402
from playworld.hardware.robot import ROBOTS  # noqa: E402


@pytest.fixture(scope="module")
def robot():
    r = robot_from_profile("sim_panda")
    with r:
        yield r


def test_features_are_known_while_disconnected():
    r = robot_from_profile("sim_panda")
    assert r.observation_features["joint_pos"].shape == (7,)
    assert r.observation_features["front"].shape == (96, 128, 3)
    assert r.action_features["action"].shape == (8,)
    with pytest.raises(NotConnectedError, match="connect"):
        r.get_observation()


def test_joint_commands_are_guarded(robot):
    robot.reset(0)
    obs = robot.get_observation()
    assert obs["front"].shape == (96, 128, 3) and obs["front"].mean() > 10
    q0 = obs["joint_pos"].astype(float)
    target = np.concatenate([q0 + 0.5, [0.5]])
    sent = robot.send_action(target)
    assert robot.last_command.kind == "move"
    assert np.all(np.abs(sent[:7] - q0) <= 0.25 + 1e-6)  # max_step of the profile
    for _ in range(30):
        sent = robot.send_action(target)
    q = robot.get_observation()["joint_pos"]
    np.testing.assert_allclose(q, np.minimum(target[:7], robot.guard.upper), atol=0.03)
    assert sent[3] <= -0.45 + 1e-6  # joint 4 clipped to its upper limit
    t = robot.clock()
    held = robot.send_action(np.full(8, np.nan))
    assert robot.last_command.kind == "hold" and np.all(np.isfinite(held))
    assert robot.clock() > t  # the twin still advanced one control period
    with pytest.raises(GuardError, match=r"shape \(8,\)"):
        robot.send_action(np.zeros(3))


def test_estop_latches_on_the_twin(robot):
    robot.reset(0)
    q0 = robot.get_observation()["joint_pos"].astype(float)
    robot.estop("test")
    for _ in range(5):
        robot.send_action(np.concatenate([q0 + 0.3, [1.0]]))
        assert robot.last_command.kind == "stop"
    np.testing.assert_allclose(robot.get_observation()["joint_pos"], q0, atol=0.01)
    robot.release_estop()
    robot.send_action(np.concatenate([q0 + 0.1, [1.0]]))
    assert robot.last_command.kind == "move"


def test_ee_delta_actions_through_ik_and_the_workspace_box():
    r = robot_from_profile("sim_panda", action_space="ee_delta", cameras={})
    assert r.action_features["action"].shape == (7,)
    with r:
        p0 = r.get_observation()["ee_pos"].astype(float)
        for _ in range(10):
            sent = r.send_action(np.array([0.0, 0.0, -0.05, 0, 0, 0, 1.0]))  # straight down
        p = r.get_observation()["ee_pos"]
        assert p[2] < p0[2] - 0.1 and p[2] >= 0.005 - 1e-3  # moved down, never below the box
        assert sent.shape == (7,) and sent[2] <= 0
        r.send_action(np.array([np.inf, 0, 0, 0, 0, 0, 1.0]))
        assert r.last_command.kind == "hold"
        for _ in range(20):
            r.send_action(np.array([0.0, 0.0, -0.05, 0, 0, 0, 1.0]))
        assert r.get_observation()["ee_pos"][2] >= 0.005 - 2e-3


def test_profile_errors(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'sim_panda'"):
        load_profile("sim_pnda")
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: sim\nguard: {lower: [0], upper: [1]}\n")
    with pytest.raises(ConfigError, match="one guard limit per joint"):
        load_profile(bad)
    bad.write_text("type: sim\nspeed: 3\n")
    with pytest.raises(ConfigError, match="expected keys among"):
        load_profile(bad)
    bad.write_text("type: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_profile(bad)
    bad.write_text("type: ur5\n")
    with pytest.raises(ConfigError, match="Valid: rosbridge, sim"):
        load_profile(bad)


def test_every_registered_robot_has_a_profile_and_a_contract_test():
    """The contract of the Robot interface runs on every registered type (sim here, rosbridge in
    test_rosbridge_robot.py); a new type must ship a profile and join them."""
    from playworld.hardware.profiles import profile_names, read_profile

    types = {read_profile(n)["type"] for n in profile_names()}
    assert set(ROBOTS.names()) <= types
    for name in profile_names():
        r = robot_from_profile(name)
        feats = r.observation_features
        assert {"joint_pos", "gripper", "t"} <= set(feats)
        assert r.action_features["action"].shape == (len(r.config.joints) + 1,)
        assert not r.is_connected
