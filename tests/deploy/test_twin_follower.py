"""Twin-follow's local twin (`TwinFollower`): what it syncs from the robot, and the way it notes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("playworld.sim", reason="the twin needs mujoco (pip install 'playworld[sim]')")
import playworld.sim  # noqa: E402, F401 - the headless GL backend before mujoco loads
from playworld.collection.deploy import PATH_POINTS, TwinFollower, path_distance  # noqa: E402
from playworld.hardware.profiles import robot_from_profile  # noqa: E402
from playworld.sim import Twin, TwinConfig  # noqa: E402
from playworld.sim.perception import OBJECTS, object_poses  # noqa: E402


def test_the_noted_way_is_the_same_physics():
    a, b = (Twin(TwinConfig(action_space="joint_pos")) for _ in range(2))
    a.reset(seed=3)
    b.reset(seed=3)
    a.path_every = 7  # does not divide the period's substeps: the last piece is shorter
    action = np.concatenate([a.data.qpos[a.arm_qadr] + 0.2, [0.5]])
    for _ in range(3):
        a.step(action)
        b.step(action)
    np.testing.assert_array_equal(a.data.qpos, b.data.qpos)
    assert len(a.path) == -(-a.config.n_substeps // 7) and not b.path
    np.testing.assert_array_equal(a.path[-1], a.data.qpos[a.arm_qadr])
    # the way is curved in joint space: its points are not all on the chord
    chord = [a.path[0], a.path[-1]]
    assert max(path_distance(p, chord) for p in a.path) > 1e-4


@pytest.fixture
def follower():
    sim = robot_from_profile("sim_panda", action_space="joint_pos", cameras={}, fps=10.0)
    with sim:
        f = TwinFollower(sim, OBJECTS)
        f.start_episode(seed=0, task="open_drawer")
        yield f


def observation(f: TwinFollower, t: float, poses: np.ndarray) -> dict[str, np.ndarray]:
    twin = f.sim.twin
    return {
        "joint_pos": twin.data.qpos[twin.arm_qadr].astype(np.float32),
        "gripper": np.array([1.0], np.float32),
        "t": np.array([t]),
        "object_poses": poses.astype(np.float32),
    }


def test_velocities_are_synced_and_a_repeated_perception_message_is_not(follower):
    import mujoco

    twin = follower.sim.twin
    drawer = twin.qadr["drawer"]
    before = float(twin.data.qpos[drawer])
    twin.data.qpos[drawer] = before + 0.05  # the far side's drawer is 5 cm further out
    mujoco.mj_kinematics(twin.model, twin.data)
    measured = object_poses(twin)
    twin.data.qpos[drawer] = before
    mujoco.mj_kinematics(twin.model, twin.data)
    velocity = np.linspace(-0.3, 0.3, 7)
    follower.observe(observation(follower, 1.0, measured), velocity)
    assert abs(float(twin.data.qpos[drawer]) - (before + 0.05)) < 1e-6
    np.testing.assert_allclose(twin.data.qvel[twin.arm_dofs], velocity)
    moved = float(twin.data.qpos[drawer]) + 0.01  # the twin's drawer goes on by itself
    twin.data.qpos[drawer] = moved
    follower.observe(observation(follower, 1.1, measured), None)  # same poses, a new joint state
    assert float(twin.data.qpos[drawer]) == moved  # not taken back to the old measurement


def test_acting_notes_the_way_to_compare_with(follower):
    obs, divergence = follower.observe(observation(follower, 1.0, object_poses(follower.sim.twin)))
    assert divergence == 0.0  # nothing to compare with yet
    q = obs["joint_pos"].astype(float)
    follower.act(np.concatenate([q + 0.1, [1.0]]))
    assert len(follower.predictions) == PATH_POINTS + 2  # synced, the way, the target
    here = observation(follower, 1.1, object_poses(follower.sim.twin))
    _, divergence = follower.observe(here)
    assert divergence < 1e-6  # the robot is where the twin went
    elsewhere = dict(
        here, joint_pos=here["joint_pos"] + 0.05 * (-1.0) ** np.arange(7), t=np.array([1.2])
    )
    assert follower.observe(elsewhere)[1] > 0.04


def test_a_command_that_reaches_the_robot_a_period_late_is_not_divergence(follower):
    sim = robot_from_profile("sim_panda", action_space="joint_pos", cameras={}, fps=10.0)
    with sim:
        far = TwinFollower(sim, OBJECTS)
        far.start_episode(seed=0, task="open_drawer")  # the robot, set up as the twin is
        robot = far.sim

        def measure(t):
            twin = robot.twin
            obs = observation(far, t, object_poses(twin))
            return follower.observe(obs, twin.data.qvel[twin.arm_dofs].copy())

        obs, _ = measure(1.0)
        first = follower.act(np.concatenate([obs["joint_pos"] + 0.1, [1.0]]))
        robot.send_action(first)  # on time
        obs, divergence = measure(1.1)
        assert divergence < 1e-6
        follower.act(np.concatenate([obs["joint_pos"] + 0.1, [1.0]]))
        robot.send_action(first)  # the second command is late: the robot goes on with the first
        q = robot.twin.data.qpos[robot.twin.arm_qadr].copy()
        own = path_distance(q, list(follower.predictions))
        assert own > 1e-3  # off the twin's own way (the robot's came from a 0.1 rad step)
        _, divergence = measure(1.2)
        assert divergence < 1e-4, (divergence, own)  # on the late way the twin noted
