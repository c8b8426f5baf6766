"""Tether's warping math: fits, blends, warps and re-timing, checked against known transforms."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from playworld.policies.tether.warp import (
    Rigid,
    arc_length,
    blend,
    fit_yaw,
    quat_angle,
    quat_error,
    quat_mul,
    retime,
    rotate_quat,
    slerp,
    warp_path,
    yaw_quat,
)

DOWN = np.array([0.0, 1.0, 0.0, 0.0])


def demo_path(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth random path (n, 3) m, pointing-down orientations with some yaw, a gripper
    closing in the middle."""
    t = np.linspace(0, 1, n)[:, None]
    a, b, c = rng.uniform(-0.2, 0.2, (3, 3)) + [0.4, 0.0, 0.15]
    pos = (1 - t) ** 2 * a + 2 * t * (1 - t) * b + t**2 * c
    yaws = np.linspace(0, rng.uniform(-1, 1), n)
    quat = np.stack([quat_mul(yaw_quat(y), DOWN) for y in yaws])
    grip = np.where(np.arange(n) < n // 2, 1.0, 0.0)
    return pos, quat, grip


def test_identity_transforms_return_the_demo_exactly():
    pos, quat, grip = demo_path(np.random.default_rng(0))
    ident = Rigid.identity()
    wp, wq = warp_path(pos, quat, [0, 20, 39], [ident, ident, ident])
    assert np.array_equal(wp, pos) and np.array_equal(wq, quat)
    rp, rq, rg = retime(pos, wp, wq, grip)
    assert np.array_equal(rp, pos) and np.array_equal(rq, quat) and np.array_equal(rg, grip)


@settings(max_examples=30, deadline=None)
@given(
    yaw=st.floats(-math.pi / 4, math.pi / 4),
    shift=st.tuples(*[st.floats(-0.1, 0.1)] * 2),
    seed=st.integers(0, 2**16),
)
def test_a_rigid_scene_transform_carries_the_demo(yaw, shift, seed):
    """Keypoints moved by a known yaw + shift: the fitted transforms warp the demo onto the
    demo moved the same way (within 1 mm / 0.5 degree), and re-timing leaves it unchanged."""
    rng = np.random.default_rng(seed)
    pos, quat, grip = demo_path(rng)
    truth = Rigid.from_yaw(yaw, np.zeros(3), np.array([*shift, 0.0]))
    objects = [rng.uniform([0.3, -0.2, 0.0], [0.5, 0.2, 0.05], (9, 3)) for _ in range(2)]
    fits = [fit_yaw(kp, truth.apply(kp)) for kp in objects]
    for fit in fits:
        probe = rng.uniform(-0.5, 0.5, (5, 3))
        assert np.allclose(fit.apply(probe), truth.apply(probe), atol=1e-9)
    wp, wq = warp_path(pos, quat, [0, 20], fits)
    assert np.abs(wp - truth.apply(pos)).max() < 1e-3
    assert np.degrees(quat_angle(wq, truth.apply_quat(quat))).max() < 0.5
    rp, rq, rg = retime(pos, wp, wq, grip)
    assert rp.shape == pos.shape and np.abs(rp - truth.apply(pos)).max() < 1e-3
    assert np.degrees(quat_angle(rq, truth.apply_quat(quat))).max() < 0.5
    assert np.array_equal(rg, grip)


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.3, 3.0), seed=st.integers(0, 2**16))
def test_retiming_keeps_the_cartesian_speed(scale, seed):
    """A path stretched by `scale` takes `scale` times as many steps at the same speed."""
    pos, quat, grip = demo_path(np.random.default_rng(seed), n=60)
    centre = pos.mean(0)
    stretched = centre + scale * (pos - centre)
    rp, _, rg = retime(pos, stretched, quat, grip)
    duration = len(pos) - 1
    assert abs((len(rp) - 1) - scale * duration) <= 1.0
    speed0 = arc_length(pos)[-1] / duration
    speed1 = arc_length(rp)[-1] / (scale * duration)
    # Resampling cuts corners of a polyline by at most a little: speed within 2 %.
    assert abs(speed1 - speed0) / speed0 < 0.02
    assert np.allclose(rp[-1], stretched[-1]) and np.allclose(rp[0], stretched[0])
    # The gripper switches where the demo's does: at the same point of the (stretched) path.
    switch = int(np.argmax(rg < 0.5))
    demo_switch = int(np.argmax(grip < 0.5))
    assert abs(switch - scale * demo_switch) <= 1.0


def test_retiming_keeps_dwell_steps():
    """Standing still (the gripper closing) lasts as long in the warped path as in the demo."""
    line = np.linspace([0.3, 0.0, 0.2], [0.5, 0.0, 0.2], 11)
    pos = np.concatenate([line, np.repeat(line[-1:], 5, axis=0)])
    quat = np.repeat(DOWN[None], len(pos), axis=0)
    grip = np.r_[np.ones(11), np.zeros(5)]
    rp, _, _ = retime(pos, 2 * pos, quat, grip)
    assert len(rp) == 2 * 10 + 5 + 1


def test_blend_is_exact_at_both_ends_and_slerps_between():
    a = Rigid.from_yaw(0.2, np.array([0.4, 0.0, 0.0]), np.array([0.5, 0.1, 0.0]))
    b = Rigid.from_yaw(-0.6, np.array([0.3, 0.1, 0.0]), np.array([0.3, -0.1, 0.0]))
    assert blend(a, b, 0.0) is a and blend(a, b, 1.0) is b
    mid = blend(a, b, 0.5)
    assert math.isclose(mid.yaw, -0.2, abs_tol=1e-9)
    assert np.allclose(mid.target, [0.4, 0.0, 0.0])


def test_slerp_takes_the_short_way_and_stays_unit():
    q0, q1 = yaw_quat(0.1), -yaw_quat(0.5)  # the same rotation as yaw_quat(0.5)
    for s in np.linspace(0, 1, 11):
        q = slerp(q0, q1, s)
        assert math.isclose(np.linalg.norm(q), 1.0, rel_tol=1e-9)
        assert quat_angle(q, yaw_quat(0.1 + 0.4 * s)) < 1e-6  # arccos near 1


def test_cube_symmetry_folds_the_yaw():
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * 0.025
    turned = Rigid.from_yaw(math.radians(80), np.zeros(3), np.zeros(3)).apply(corners)
    assert math.isclose(fit_yaw(corners, turned).yaw, math.radians(80), abs_tol=1e-9)
    folded = fit_yaw(corners, turned, period=math.pi / 2)
    assert math.isclose(folded.yaw, math.radians(-10), abs_tol=1e-9)


def test_one_keypoint_is_a_translation():
    fit = fit_yaw(np.array([[0.4, 0.1, 0.05]]), np.array([[0.45, 0.0, 0.06]]))
    assert fit.yaw == 0.0
    assert np.allclose(fit.apply([0.4, 0.1, 0.05]), [0.45, 0.0, 0.06])


@settings(max_examples=50, deadline=None)
@given(
    rotvec=st.tuples(*[st.floats(-1.5, 1.5)] * 3),
    yaw=st.floats(-3.0, 3.0),
)
def test_quat_error_inverts_rotate_quat(rotvec, yaw):
    """Checked against MuJoCo's own quaternion routines too."""
    import mujoco

    q = quat_mul(yaw_quat(yaw), DOWN)
    r = np.array(rotvec)
    turned = rotate_quat(q, r)
    np.testing.assert_allclose(quat_error(turned, q), r, atol=1e-9)
    ref = np.empty(4)
    angle = np.linalg.norm(r)
    if angle > 1e-9:
        mujoco.mju_axisAngle2Quat(ref, r / angle, angle)
        expected = np.empty(4)
        mujoco.mju_mulQuat(expected, ref, q)
        assert quat_angle(turned, expected) < 1e-6
