import mujoco
import numpy as np
import pytest

from playworld.hardware.ee import FINGER_MAX, WORKSPACE
from playworld.sim import SimError, Twin, TwinConfig
from playworld.sim.controllers import ACTION_SPACES


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
