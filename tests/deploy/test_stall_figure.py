"""`stall_stop_periods`: how long the arm took to stand after the last command, from the robot's
own joint-state stream rather than the control loop's once-a-period samples of it."""

from __future__ import annotations

import numpy as np

from playworld.collection.deploy import stall_stop_periods

FPS = 10.0
T_LAST = 1000.0  # wall time the last command went out (s)


def state(dt_periods: float, q: float) -> tuple[float, np.ndarray]:
    return T_LAST + dt_periods / FPS, np.full(7, q)


# The arm moves on to its last target and stands from 1.3 periods on.
STREAM = [state(-0.7, 0.0), state(0.3, 0.1), state(1.3, 0.2), state(2.3, 0.2), state(3.3, 0.2)]


def ticks_seeing(indices: list[int]) -> list[dict]:
    """The loop's ticks: the last one before the stall sent a command; each later tick saw
    STREAM[i] (a tick that sees a state twice, or skips one, aliases the two 10 Hz clocks)."""
    before = {"sent": True, "wall_sent": T_LAST, "t_sent": 0.0, "stamp": STREAM[0][0]}
    before.update(obs_t=0.0, q=STREAM[0][1])
    seen = [
        {"sent": False, "stamp": STREAM[i][0], "obs_t": STREAM[i][0], "q": STREAM[i][1]}
        for i in indices
    ]
    return [before, *seen]


def test_the_arm_stands_at_the_first_of_two_still_states():
    ticks = ticks_seeing([1, 2, 3, 4])
    assert np.isclose(stall_stop_periods(ticks, 1, FPS), 1.3)
    assert np.isclose(stall_stop_periods(ticks, 1, FPS, STREAM), 1.3)


def test_a_state_the_loop_missed_does_not_delay_the_figure():
    ticks = ticks_seeing([1, 1, 3, 4])  # saw 0.3 twice, skipped 1.3
    assert np.isclose(stall_stop_periods(ticks, 1, FPS), 2.3)  # the samples: a period late
    assert np.isclose(stall_stop_periods(ticks, 1, FPS, STREAM), 1.3)  # the arm's own stream


def test_a_stream_that_does_not_reach_back_falls_back_to_the_ticks():
    ticks = ticks_seeing([1, 1, 3, 4])
    assert np.isclose(stall_stop_periods(ticks, 1, FPS, STREAM[2:]), 2.3)


def test_an_arm_that_never_stands_has_no_figure():
    moving = [state(k, 0.01 * k) for k in range(-1, 6)]
    assert stall_stop_periods(ticks_seeing([1, 2, 3]), 1, FPS, moving) is None
