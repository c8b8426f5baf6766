"""Kinematics from the arm's MJCF: FK against MuJoCo's scene, Jacobian against finite
differences, IK round trips, the DLS formula and the ee-delta target integration."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="kinematics need mujoco (pip install 'playworld[sim]')")

from playworld.hardware.ee import (  # noqa: E402
    PANDA_HOME,
    TARGET_SLACK,
    WORKSPACE,
    KinematicsConfig,
)
from playworld.hardware.errors import ConfigError  # noqa: E402
from playworld.hardware.kinematics import (  # noqa: E402
    ArmKinematics,
    EEDeltaController,
    Pose,
    dls_step,
    integrate_target,
    quat_error,
    rotate_quat,
)

HOME_QPOS = np.array(PANDA_HOME)


@pytest.fixture(scope="module")
def kin() -> ArmKinematics:
    return ArmKinematics(KinematicsConfig())


def test_fk_matches_the_twins_mujoco_scene(kin):
    pytest.importorskip("playworld.sim")
    from playworld.sim import Twin, TwinConfig

    tw = Twin(TwinConfig())
    rng = np.random.default_rng(0)
    for seed in range(5):
        tw.reset(seed=seed)
        q = np.clip(HOME_QPOS + rng.normal(0, 0.4, 7), tw.ik.lower, tw.ik.upper)
        tw.data.qpos[tw.arm_qadr] = q
        import mujoco

        mujoco.mj_kinematics(tw.model, tw.data)
        pos, quat = tw.ee_pose()
        pose = kin.fk(q)
        np.testing.assert_allclose(pose.pos, pos, atol=1e-12)
        np.testing.assert_allclose(pose.quat, quat, atol=1e-12)


def test_site_jacobian_matches_finite_differences(kin):
    ik = kin.ik
    q = kin.full(HOME_QPOS + np.random.default_rng(0).normal(0, 0.2, 7))
    pos0, quat0, jac = ik.forward(q)
    eps = 1e-6
    fd = np.zeros_like(jac)
    for i, adr in enumerate(ik.qadr):
        qp, qm = q.copy(), q.copy()
        qp[adr] += eps
        qm[adr] -= eps
        pp, quatp, _ = ik.forward(qp)
        pm, quatm, _ = ik.forward(qm)
        fd[:3, i] = (pp - pm) / (2 * eps)
        fd[3:, i] = quat_error(quatp, quatm) / (2 * eps)
    np.testing.assert_allclose(jac, fd, atol=1e-6)
    np.testing.assert_allclose(kin.jacobian(q[ik.qadr]), jac, atol=1e-15)


def test_dls_step_solves_small_problems_and_stays_bounded():
    rng = np.random.default_rng(1)
    jac = rng.normal(size=(6, 7))
    err = rng.normal(size=6) * 1e-3
    dq = dls_step(jac, err, damping=1e-6)
    np.testing.assert_allclose(jac @ dq, err, atol=1e-9)
    # it minimises |J dq - e|^2 + l^2 |dq|^2: the gradient vanishes at dq
    lam = 0.3
    dq = dls_step(jac, err, lam)
    grad = jac.T @ (jac @ dq - err) + lam**2 * dq
    np.testing.assert_allclose(grad, 0, atol=1e-12)
    singular = np.vstack([jac[:5], jac[4:5]])  # rank 5
    assert np.linalg.norm(dls_step(singular, np.ones(6), 0.05)) < 1e3


def test_quaternion_helpers_invert_each_other():
    q = np.array([0.0, 1.0, 0.0, 0.0])
    rot = np.array([0.1, -0.2, 0.3])
    np.testing.assert_allclose(quat_error(rotate_quat(q, rot), q), rot, atol=1e-12)


def test_ik_reaches_a_reachable_target(kin):
    pos, quat = kin.fk(HOME_QPOS)
    target = pos + np.array([0.05, -0.08, -0.1])
    q = kin.full(HOME_QPOS)
    for _ in range(10):
        res = kin.ik.solve(q, target, quat, iterations=20)
        q[kin.ik.qadr] = res.qpos
    assert res.error < 1e-3
    assert np.all(res.qpos >= kin.ik.lower) and np.all(res.qpos <= kin.ik.upper)


def test_ik_round_trip_recovers_poses_from_random_joints(kin):
    """FK of random joints, IK from home back to that pose, FK again: the same pose."""
    rng = np.random.default_rng(4)
    for _ in range(10):
        q_true = np.clip(HOME_QPOS + rng.normal(0, 0.3, 7), kin.ik.lower, kin.ik.upper)
        goal = kin.fk(q_true)
        res = kin.solve(HOME_QPOS, goal, iterations=200)
        got = kin.fk(res.qpos)
        assert np.linalg.norm(got.pos - goal.pos) < 1e-3
        assert np.linalg.norm(quat_error(got.quat, goal.quat)) < 1e-2


def test_ik_step_matches_the_damped_least_squares_formula(kin):
    # solve() computes p + J+ (e - J p); the textbook form is J+ e + (I - J+ J) p.
    ik = kin.ik
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = kin.full(HOME_QPOS + rng.normal(0, 0.1, 7))
        pos, quat, jac = ik.forward(q)
        target_pos = pos + rng.normal(0, 0.02, 3)
        target_quat = rotate_quat(quat, rng.normal(0, 0.05, 3))
        err = np.concatenate([target_pos - pos, quat_error(target_quat, quat)])
        pinv = jac.T @ np.linalg.inv(jac @ jac.T + ik.damping**2 * np.eye(6))
        pull = ik.posture_gain * (ik.posture - q[ik.qadr])
        dq = pinv @ err + (np.eye(7) - pinv @ jac) @ pull
        expected = np.clip(q[ik.qadr] + dq, ik.lower, ik.upper)
        res = ik.solve(q, target_pos, target_quat)
        np.testing.assert_allclose(res.qpos, expected, atol=1e-12)
        assert res.iterations == 1 and res.error == pytest.approx(np.linalg.norm(err))
        np.testing.assert_allclose(dls_step(jac, err, ik.damping), pinv @ err, atol=1e-12)


def test_target_integration_continues_restarts_and_clamps():
    down = np.array([0.0, 1.0, 0.0, 0.0])
    measured = Pose(np.array([0.4, 0.0, 0.3]), down)
    step = np.array([0.01, 0.0, 0.0, 0.0, 0.0, 0.0])
    first, follows = integrate_target(None, measured, step)
    assert not follows and np.allclose(first.pos, [0.41, 0.0, 0.3])
    second, follows = integrate_target(first, measured, step)  # arm still behind: continue
    assert follows and np.allclose(second.pos, [0.42, 0.0, 0.3])
    far = Pose(measured.pos + [TARGET_SLACK[0] * 1.5, 0, 0], down)
    third, _ = integrate_target(far, measured, step)  # position lagging: restart at the arm
    assert np.allclose(third.pos, [0.41, 0.0, 0.3])
    turned = Pose(first.pos, rotate_quat(down, np.array([0.0, 0.0, TARGET_SLACK[1] * 1.5])))
    fourth, _ = integrate_target(turned, measured, step)  # only the rotation restarts
    assert np.allclose(fourth.pos, [0.42, 0.0, 0.3]) and np.allclose(fourth.quat, down)
    both = Pose(far.pos, turned.quat)
    assert not integrate_target(both, measured, step)[1]
    low, _ = integrate_target(
        None, Pose(np.array([0.4, 0.0, 0.01]), down), -step[[1, 2, 0, 3, 4, 5]] * 5
    )
    assert low.pos[2] == WORKSPACE[4]


def test_controller_tracks_a_straight_line(kin):
    """Deltas applied with the arm following its targets exactly: the end effector follows."""
    ctrl = EEDeltaController(kin.ik)
    q = HOME_QPOS.copy()
    start = kin.fk(q).pos
    for _ in range(10):
        q = ctrl.joint_target(kin.full(q), np.array([0.0, 0.02, -0.01, 0, 0, 0]), warm=q).qpos
    np.testing.assert_allclose(kin.fk(q).pos - start, [0.0, 0.2, -0.1], atol=2e-3)


def test_bad_kinematics_configs_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="no file"):
        ArmKinematics(KinematicsConfig(mjcf=str(tmp_path / "none.xml")))
    with pytest.raises(ConfigError, match="kinematics.site"):
        KinematicsConfig(site=None)
    with pytest.raises(ConfigError, match="site and joints"):
        ArmKinematics(KinematicsConfig(site="nope"))
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body/></mujoco>")
    with pytest.raises(ConfigError, match="valid MJCF"):
        ArmKinematics(KinematicsConfig(mjcf=str(bad)))


def test_body_and_offset_stand_in_for_a_missing_site(kin):
    cfg = KinematicsConfig(site=None, body="panda0_link7", offset=(0.0, 0.0, 0.21))
    other = ArmKinematics(cfg)
    q = HOME_QPOS + 0.1
    np.testing.assert_allclose(other.fk(q).pos, kin.fk(q).pos, atol=1e-9)
