import mujoco
import numpy as np
import pytest

from playworld.sim import SimError, Twin, TwinConfig
from playworld.sim.controllers import (
    ACTION_SPACES,
    FINGER_MAX,
    WORKSPACE,
    dls_step,
    quat_error,
    rotate_quat,
)
from playworld.sim.scene import HOME_QPOS


def test_site_jacobian_matches_finite_differences(twin):
    ik = twin.ik
    q = np.array(twin.data.qpos)
    q[ik.qadr] = HOME_QPOS + np.random.default_rng(0).normal(0, 0.2, 7)
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


def test_ik_reaches_a_reachable_target(twin):
    twin.reset(seed=0)
    pos, quat = twin.ee_pose()
    target = pos + np.array([0.05, -0.08, -0.1])
    q = np.array(twin.data.qpos)
    for _ in range(10):
        res = twin.ik.solve(q, target, quat, iterations=20)
        q[twin.ik.qadr] = res.qpos
    assert res.error < 1e-3
    assert np.all(res.qpos >= twin.ik.lower) and np.all(res.qpos <= twin.ik.upper)


@pytest.mark.parametrize("space", sorted(ACTION_SPACES))
def test_action_space_contract(space):
    tw = Twin(TwinConfig(action_space=space))
    tw.reset(seed=2)
    a = tw.action_space
    assert a.shape == a.low.shape == a.high.shape and len(a.describe) == a.shape[0]
    rng = np.random.default_rng(0)
    lo, hi = tw.ik.lower, tw.ik.upper
    for _ in range(15):
        wild = rng.uniform(a.low - 1.0, a.high + 1.0)  # past the limits on purpose
        applied = tw.step(wild)
        assert applied.shape == a.shape
        assert np.all(applied >= a.low) and np.all(applied <= a.high)
        state = tw.get_state()
        assert np.all(np.isfinite(state))
        q = tw.data.qpos[tw.arm_qadr]
        assert np.all(q >= lo - 0.02) and np.all(q <= hi + 0.02)
        assert np.all(tw.data.ctrl[:7] >= lo) and np.all(tw.data.ctrl[:7] <= hi)
        fingers = tw.data.qpos[tw.finger_qadr]
        # joint limits are soft constraints in MuJoCo: a few millimetres under fast motion
        assert np.all(fingers >= -3e-3) and np.all(fingers <= FINGER_MAX + 3e-3)
    with pytest.raises(SimError, match="finite"):
        tw.step(np.full(a.shape, np.nan))
    with pytest.raises(SimError, match="shape"):
        tw.step(np.zeros(a.shape[0] + 1))


def test_ee_delta_moves_the_end_effector_and_respects_the_workspace(twin):
    twin.reset(seed=0)
    pos0, _ = twin.ee_pose()
    for _ in range(5):  # down 0.2 m (stays above the table)
        twin.step(np.array([0.0, 0.0, -0.04, 0, 0, 0, 1.0]))
    pos1, _ = twin.ee_pose()
    assert pos1[2] < pos0[2] - 0.12 and np.abs(pos1[:2] - pos0[:2]).max() < 0.01
    for _ in range(25):
        twin.step(np.array([0.05, 0.0, 0.05, 0, 0, 0, 1.0]))
    pos2, _ = twin.ee_pose()
    assert pos2[0] <= WORKSPACE[1] + 0.01 and pos2[2] <= WORKSPACE[5] + 0.01


def test_control_rate_sets_physics_substeps():
    tw = Twin(TwinConfig(control_hz=20))
    t0 = tw.data.time
    tw.step(np.zeros(6).tolist() + [1.0])
    assert tw.data.time - t0 == pytest.approx(0.05)
    assert mujoco.mj_stateSize(tw.model, mujoco.mjtState.mjSTATE_INTEGRATION) > 0


def test_ik_step_matches_the_damped_least_squares_formula(twin):
    # solve() computes p + J+ (e - J p); the textbook form is J+ e + (I - J+ J) p.
    ik = twin.ik
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = np.array(twin.data.qpos)
        q[ik.qadr] = HOME_QPOS + rng.normal(0, 0.1, 7)
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
