"""ROS message dicts: round trips and name mapping (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playworld.hardware.rosbridge import messages

NAMES = tuple(f"j{i}" for i in range(7))
finite = st.floats(-10, 10, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(
    q=st.lists(finite, min_size=7, max_size=7), kind=st.sampled_from(sorted(messages.COMMAND_TYPES))
)
def test_command_round_trip(q, kind):
    msg = messages.joint_command(kind, NAMES, np.array(q))
    np.testing.assert_array_equal(messages.parse_joint_command(kind, msg, NAMES), q)


@settings(max_examples=50, deadline=None)
@given(t=st.floats(0, 2e9), perm=st.permutations(range(9)))
def test_joint_state_maps_names_in_any_order(t, perm):
    names = [*NAMES, "finger1", "finger2"]
    q = np.arange(9, dtype=float)
    msg = messages.joint_state([names[i] for i in perm], q[list(perm)], t)
    got, stamp = messages.parse_joint_state(msg, NAMES)
    np.testing.assert_array_equal(got, q[:7])
    assert abs(stamp - t) < 1e-6 * max(1.0, t) + 1e-9


def test_joint_velocities_when_the_state_carries_them():
    names = [*NAMES, "finger1"]
    msg = messages.joint_state(names[::-1], np.arange(8.0), 1.0, velocity=np.arange(8.0) / 10)
    np.testing.assert_allclose(
        messages.parse_joint_velocity(msg, NAMES), np.arange(7.0)[::-1] / 10 + 0.1
    )
    assert (
        messages.parse_joint_velocity(messages.joint_state(names, np.zeros(8), 1.0), NAMES) is None
    )


def test_bad_messages_name_the_problem():
    with pytest.raises(ValueError, match=r"\['j6'\] missing"):
        messages.parse_joint_state(messages.joint_state(NAMES[:6], np.zeros(6), 0.0), NAMES)
    with pytest.raises(ValueError, match="at least one point"):
        messages.parse_joint_command("trajectory_msgs/JointTrajectory", {"points": []}, NAMES)
    stop = messages.stop_command("trajectory_msgs/JointTrajectory", NAMES)
    assert messages.is_stop_command("trajectory_msgs/JointTrajectory", stop)
    ok = messages.joint_command("trajectory_msgs/JointTrajectory", NAMES, np.zeros(len(NAMES)))
    assert not messages.is_stop_command("trajectory_msgs/JointTrajectory", ok)
    assert messages.stop_command("std_msgs/Float64MultiArray", NAMES) is None
    with pytest.raises(ValueError, match="expected 7 values"):
        messages.parse_joint_command("std_msgs/Float64MultiArray", {"data": [1.0]}, NAMES)
    nan = messages.parse_joint_command("std_msgs/Float64MultiArray", {"data": [None] * 7}, NAMES)
    assert np.isnan(nan).all()  # JSON null is NaN: for the guard to refuse, not to crash on


def test_compressed_image_round_trip_and_ros2_stamps():
    msg = messages.compressed_image(b"\xff\xd8jpeg", 12.5)
    raw, t = messages.parse_compressed_image(msg)
    assert raw == b"\xff\xd8jpeg" and t == 12.5
    assert messages.stamp_to_float({"sec": 3, "nanosec": 500_000_000}) == 3.5
