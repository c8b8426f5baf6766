"""The perception stream: object poses out of a twin, back into another, and over the bridge."""

from __future__ import annotations

import numpy as np
import pytest

from playworld.sim import Twin
from playworld.sim.perception import OBJECTS, PoseNoise, apply_object_poses, object_poses
from playworld.sim.state import STATE_LAYOUT

OBJECT_FIELDS = [
    f
    for f, _, _ in STATE_LAYOUT.fields
    if f.startswith("block") or f in ("drawer", "door", "button")
]


def test_poses_carry_the_objects_into_another_twin():
    a, b = Twin(), Twin()
    a.reset(seed=1)
    b.reset(seed=2)
    s_a, s_b = STATE_LAYOUT.unpack(a.get_state()), STATE_LAYOUT.unpack(b.get_state())
    assert any(not np.allclose(s_a[f], s_b[f], atol=1e-3) for f in OBJECT_FIELDS)
    apply_object_poses(b, OBJECTS, object_poses(a))
    s_b = STATE_LAYOUT.unpack(b.get_state())
    for f in OBJECT_FIELDS:
        np.testing.assert_allclose(np.abs(s_b[f]), np.abs(s_a[f]), atol=1e-6, err_msg=f)
    import mujoco

    b.data.qpos[b.arm_qadr] = a.data.qpos[a.arm_qadr]  # the arm comes from joint states
    b.data.qpos[b.finger_qadr] = a.data.qpos[a.finger_qadr]
    mujoco.mj_kinematics(b.model, b.data)
    np.testing.assert_allclose(b.keypoints(), a.keypoints(), atol=1e-6)


def test_undetected_objects_keep_their_pose_and_noise_is_seeded():
    a = Twin()
    poses = object_poses(a)
    noise = PoseNoise(noise_m=0.01, dropout=0.5, seed=0)
    n1, n2 = noise.apply(poses, noise.rng()), noise.apply(poses, noise.rng())
    np.testing.assert_array_equal(n1, n2)
    lost = ~np.isfinite(n1).all(axis=1)
    assert lost.any() and (~lost).any()
    err = np.abs(n1[~lost, :3] - poses[~lost, :3])
    assert 0 < err.max() < 0.06
    before = object_poses(a)
    apply_object_poses(a, OBJECTS, np.full_like(poses, np.nan))
    np.testing.assert_array_equal(object_poses(a), before)


def test_bad_names_and_shapes_are_one_line():
    from playworld.sim.errors import SimError

    with pytest.raises(SimError, match="known objects"):
        object_poses(Twin(), ("block_purple",))
    with pytest.raises(SimError, match=r"shape \(6, 7\)"):
        apply_object_poses(Twin(), OBJECTS, np.zeros((2, 7)))
