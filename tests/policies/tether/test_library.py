"""Tether's demo library and policy on the real twin: segmentation, warping into a moved scene,
save / load, stores as the demo source, and execution through the evaluation loop."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from playworld.errors import PolicyError
from playworld.hardware.profiles import robot_from_profile
from playworld.policies import Policy, make_policy
from playworld.policies.base import WEIGHTS_FILE
from playworld.policies.tether.library import (
    keypoint_index,
    make_demo,
    record_demo,
    scene_objects,
    task_objects,
)
from playworld.policies.tether.policy import TetherPolicy, warp_demo
from playworld.policies.tether.warp import Rigid, quat_angle


@pytest.fixture(scope="module")
def robot():
    robot = robot_from_profile("sim_panda", cameras={}, action_space="ee_delta", seed=0)
    robot.connect()
    yield robot
    robot.disconnect()


@pytest.fixture(scope="module")
def lift_demo(robot):
    demo = record_demo(robot, "lift_red_block", seed=3)
    assert demo is not None
    return demo


def test_a_demo_is_cut_at_its_gripper_event_and_anchored_to_its_block(lift_demo):
    info = lift_demo.info
    assert len(info.events) == 1  # the grasp: open -> closed
    event = info.events[0]
    assert lift_demo.gripper[event - 1] > 0.5 > lift_demo.gripper[event]
    assert info.keyframes[0] == event and set(info.anchors) == {"block_red"}
    block = lift_demo.keypoints[keypoint_index(("block_red",))][0]
    assert np.linalg.norm(lift_demo.pos[event, :2] - block[:2]) < 0.01


def test_a_segment_is_anchored_to_an_object_its_task_acts_on(lift_demo):
    """A short light demo that starts beside a block anchors on the button, not the block."""
    kp = lift_demo.keypoints
    block = kp[keypoint_index(("block_red",))][0]
    button = kp[keypoint_index(("button_top",))][0]
    pos = block + np.linspace(0, 0.3, 5)[:, None] * (button - block)  # never nearer the button
    quat = np.tile([0.0, 1.0, 0.0, 0.0], (5, 1))
    demo = make_demo("light", "turn_on_light", pos, quat, np.ones(5), kp)
    assert demo.info.anchors == ("button",)
    assert task_objects("push_green_block_left") == ("block_green",)
    assert task_objects("open_drawer") == ("drawer",) and task_objects(None) is None
    assert set(task_objects("stack_blocks")) == {"block_red", "block_green", "block_blue"}


def test_the_warped_demo_follows_a_rigidly_moved_block(lift_demo):
    """Block moved by 30 deg yaw and (8, -6) cm: the plan is the demo moved the same way."""
    truth = Rigid.from_yaw(
        math.radians(30),
        lift_demo.keypoints[keypoint_index(("block_red",))][0],
        lift_demo.keypoints[keypoint_index(("block_red",))][0] + [0.08, -0.06, 0],
    )
    scene = lift_demo.keypoints.copy()
    idx = keypoint_index(scene_objects()["block_red"].names)
    scene[idx] = truth.apply(scene[idx])
    start = truth.apply(lift_demo.pos[0])
    plan = warp_demo(lift_demo, scene, start, truth.apply_quat(lift_demo.quat[0]), 0.03)
    n = len(plan.pos) - len(lift_demo.pos)
    assert n == 4  # the reach from the (already moved) start: up 5 cm (2 steps), back down
    assert np.abs(plan.pos[n:] - truth.apply(lift_demo.pos)).max() < 1e-3
    assert np.degrees(quat_angle(plan.quat[n:], truth.apply_quat(lift_demo.quat))).max() < 0.5
    np.testing.assert_array_equal(plan.gripper[n:], lift_demo.gripper)


def test_the_library_saves_and_loads_and_refuses_damage(lift_demo, tmp_path):
    policy = TetherPolicy.from_demos([lift_demo])
    path = policy.save(tmp_path / "lib")
    loaded = make_policy(path)
    assert isinstance(loaded, TetherPolicy) and loaded.config == policy.config
    for key, value in lift_demo.arrays().items():
        np.testing.assert_array_equal(getattr(loaded.demos[lift_demo.info.id], key), value)
    (path / WEIGHTS_FILE).write_bytes((path / WEIGHTS_FILE).read_bytes()[:100])
    with pytest.raises(PolicyError) as err:
        Policy.load(path)
    assert "\n" not in str(err.value) and WEIGHTS_FILE in str(err.value)


def test_a_task_without_demo_holds_still_and_says_why(lift_demo, robot):
    policy = TetherPolicy.from_demos([lift_demo])
    policy.reset(seed=0, goal="open_drawer")
    assert policy.failure and "open_drawer" in policy.failure
    action = policy.act(robot.get_observation())
    np.testing.assert_array_equal(action[:6], 0.0)
    with pytest.raises(PolicyError, match="task name"):
        policy.reset(goal="no_such_task")


def test_demos_from_an_autoplay_store_run_in_new_scenes(tmp_path):
    """Autoplay records labelled segments; their demos warp to other scenes and succeed.
    Segments that start in contact (the button still pressed by the previous task) are left
    out: their keypoints do not show the scene at rest."""
    from playworld.collection.autoplay import AutoplayConfig, autoplay
    from playworld.collection.evaluation import evaluate
    from playworld.policies.tether.library import demos_from_store, starts_in_contact

    tasks = ("open_drawer", "turn_on_light", "turn_off_light")
    autoplay(tmp_path / "play.zarr", AutoplayConfig(tasks=tasks, cameras=(), seed=1), steps=80)
    demos = demos_from_store(str(tmp_path / "play.zarr"))
    assert demos and {d.info.task for d in demos} <= set(tasks)
    assert not any(starts_in_contact(d) for d in demos)
    assert {d.info.anchors for d in demos} <= {("drawer",), ("button",)}
    TetherPolicy.from_demos(demos).save(tmp_path / "lib")
    names = sorted({d.info.task for d in demos})
    report = evaluate(
        functools.partial(make_policy, tmp_path / "lib"), names, episodes=3, seed=5, max_steps=80
    )
    assert report["overall"]["success_rate"] >= 2 / 3, report["tasks"]


def test_a_lift_demo_lifts_blocks_elsewhere(lift_demo, tmp_path):
    from playworld.collection.evaluation import evaluate

    TetherPolicy.from_demos([lift_demo]).save(tmp_path / "lib")
    report = evaluate(
        functools.partial(make_policy, tmp_path / "lib"), "lift_red_block", episodes=4, seed=2
    )
    assert report["overall"]["success_rate"] >= 0.75


def test_a_store_without_keypoints_is_refused_in_one_line(tmp_path):
    from playworld.datasets import PlayStore
    from playworld.features import Feature
    from playworld.policies.tether.library import DemoError, demos_from_store

    features = {
        "ee_pos": Feature((3,), "float32"),
        "ee_quat": Feature((4,), "float32"),
        "action": Feature((7,), "float32", kind="action"),
    }
    PlayStore.create(tmp_path / "s.zarr", features, fps=10).close()
    with pytest.raises(DemoError) as err:
        demos_from_store(str(tmp_path / "s.zarr"))
    assert "keypoints" in str(err.value) and "\n" not in str(err.value)


def test_a_demo_finishes_the_motion_it_succeeded_in(robot) -> None:
    """The expert pulls the drawer to 0.17 m and success comes at 0.12: the demo goes on to the
    end of the pull (not into the retreat), so that a warp into a scene that needs a little
    more pull still opens it; `finish_steps=0` cuts at the first tick of success."""
    from playworld.sim.state import STATE_LAYOUT

    cut = record_demo(robot, "open_drawer", seed=2, finish_steps=0)
    done = record_demo(robot, "open_drawer", seed=2)
    assert cut is not None and done is not None
    n = len(cut.pos)
    assert len(done.pos) > n
    np.testing.assert_array_equal(done.pos[: n - 1], cut.pos[: n - 1])  # the same run, longer
    assert done.pos[-1, 0] < cut.pos[-1, 0] - 0.01  # pulled further (-x is out)
    assert done.pos[-1, 2] < cut.pos[-1, 2] + 0.01  # still at the handle, not lifted away
    assert float(STATE_LAYOUT.get(robot.get_observation()["state"], "drawer")[0]) > 0.12


def test_transfers_counts_the_scenes_a_warped_demo_succeeds_in(robot) -> None:
    from playworld.policies.tether.policy import transfers

    demo = record_demo(robot, "open_drawer", seed=2)
    assert transfers(robot, demo, [11, 12], max_steps=80) == 2
    # the same motion 12 cm to the side of the handle pulls nothing
    off = make_demo(
        "off", "open_drawer", demo.pos + [0.0, 0.12, 0.0], demo.quat, demo.gripper, demo.keypoints
    )
    assert transfers(robot, off, [11, 12], max_steps=80) == 0
