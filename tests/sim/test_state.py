import numpy as np
import pytest

from playworld.sim import STATE_LAYOUT, SimError
from playworld.sim.scene import BLOCKS


def _busy_state(twin):
    """A state in motion: random arm targets and an opened drawer mid-way."""
    twin.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        twin.step(rng.uniform(twin.action_space.low, twin.action_space.high))
    return twin.get_state()


def test_layout_names_and_size():
    assert STATE_LAYOUT.size == 40 == len(STATE_LAYOUT.names)
    assert len(set(STATE_LAYOUT.names)) == 40
    parts = STATE_LAYOUT.unpack(np.arange(40.0))
    np.testing.assert_array_equal(STATE_LAYOUT.pack(parts), np.arange(40.0))
    with pytest.raises(SimError, match="size 40"):
        STATE_LAYOUT.unpack(np.zeros(39))
    with pytest.raises(SimError, match="drawer"):
        STATE_LAYOUT.get(np.zeros(40), "drawr")


def test_round_trip_changes_nothing_measurable(twin):
    state = _busy_state(twin)
    keypoints = twin.keypoints()
    twin.set_state(state)
    np.testing.assert_allclose(twin.get_state(), state, atol=1e-12)
    np.testing.assert_allclose(twin.keypoints(), keypoints, atol=1e-9)


def test_set_state_moves_the_world(twin):
    twin.reset(seed=0)
    s = twin.get_state().copy()
    parts = STATE_LAYOUT.unpack(s)
    parts["block_red_pos"][:] = [0.35, 0.05, 0.025]
    parts["drawer"][:] = 0.15
    parts["light"][:] = 1.0
    parts["arm_qpos"][:] += 0.1
    twin.set_state(s)
    np.testing.assert_allclose(twin.keypoint("block_red"), [0.35, 0.05, 0.025], atol=1e-12)
    assert twin.light
    got = twin.get_state()
    np.testing.assert_allclose(STATE_LAYOUT.get(got, "drawer"), 0.15)
    # end-effector fields are derived from the joints, not copied
    assert not np.allclose(STATE_LAYOUT.get(got, "ee_pos"), STATE_LAYOUT.get(s, "ee_pos"))


def test_synced_twin_holds_still(twin):
    """After a sync the arm's targets are the measured joints: holding changes little."""
    state = _busy_state(twin)
    twin.set_state(state)
    hold = np.zeros(7)
    hold[6] = STATE_LAYOUT.get(state, "gripper_width")[0] / 0.08
    twin.step(hold)
    drift = twin.get_state() - state
    assert np.abs(drift[STATE_LAYOUT.slices["arm_qpos"]]).max() < 0.02
    for c in BLOCKS:
        assert np.abs(STATE_LAYOUT.get(drift, f"block_{c}_pos")).max() < 0.02


def test_set_state_rejects_bad_vectors(twin):
    with pytest.raises(SimError):
        twin.set_state(np.zeros(12))
    bad = twin.get_state()
    bad[0] = np.nan
    with pytest.raises(SimError, match="finite"):
        twin.set_state(bad)


def test_sim_state_restores_exactly(twin):
    twin.reset(seed=5)
    saved = twin.get_sim_state()
    action = np.array([0.03, -0.02, -0.03, 0.0, 0.0, 0.1, 0.2])
    for _ in range(4):
        twin.step(action)
    after = twin.get_state()
    twin.set_sim_state(saved)
    for _ in range(4):
        twin.step(action)
    np.testing.assert_array_equal(twin.get_state(), after)
