"""The safety guard: nothing outside the limits ever reaches a robot (property-based)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playworld.hardware.errors import ConfigError, GuardError
from playworld.hardware.guard import Command, GuardConfig, SafetyGuard

LOWER = (-1.0, -2.0, -0.5)
UPPER = (1.0, 0.5, 2.0)
BOX = (0.2, 0.75, -0.5, 0.5, 0.1, 0.45)
CONFIG = GuardConfig(
    lower=LOWER,
    upper=UPPER,
    max_step=(0.2, 0.1, 0.3),
    max_velocity=(1.0, 2.0, 0.5),
    workspace=BOX,
    state_timeout=0.3,
    action_timeout=0.5,
    hold_time=0.4,
)
EPS = 1e-9


def fk(q: np.ndarray) -> np.ndarray:
    """A planar two-link arm on a prismatic lift: end-effector position (3,) m."""
    q = np.asarray(q, float)
    x = 0.5 * np.cos(q[0]) + 0.3 * np.cos(q[0] + q[1])
    y = 0.5 * np.sin(q[0]) + 0.3 * np.sin(q[0] + q[1])
    return np.array([x, y, 0.2 + 0.1 * q[2]])


def inside(p: np.ndarray) -> bool:
    w = np.asarray(BOX)
    return bool(np.all(p >= w[0::2] - EPS) and np.all(p <= w[1::2] + EPS))


anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
moderate = st.floats(-3.0, 3.0)
joint_value = st.one_of(moderate, anything)
#: Joint states near a pose inside the box, so that many actions become moves worth checking.
plausible = st.tuples(st.floats(-0.3, 0.3), st.floats(-1.1, -0.5), st.floats(-0.5, 2.0))
near = st.lists(st.floats(-1.2, 1.2), min_size=4, max_size=4)
small_dt = st.one_of(*[st.floats(0.0, 0.05)] * 4, st.floats(0.0, 0.8))
#: Kinds by weight: mostly plausible states and actions, now and then garbage, an e-stop, a release.
KINDS = (
    ["action"] * 8 + ["state"] * 6 + ["bad_state", "bad_action", "tick", "estop"] + ["release"] * 3
)
PAYLOAD = {
    "action": near,
    "state": plausible.map(list),
    "bad_state": st.lists(joint_value, min_size=3, max_size=3),
    "bad_action": st.lists(joint_value, min_size=4, max_size=4),
    "tick": st.none(),
    "estop": st.none(),
    "release": st.none(),
}
event = st.sampled_from(KINDS).flatmap(
    lambda k: st.tuples(st.just(k.removeprefix("bad_")), small_dt, PAYLOAD[k])
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, min_size=1, max_size=60))
def test_nothing_outside_the_limits_reaches_a_robot(events):
    run_stream(events)


def run_stream(events) -> int:
    """Feed `events` to a guard, check every command it emits; return the number of moves."""
    guard = SafetyGuard(CONFIG, fk=fk)
    lower, upper = np.array(LOWER), np.array(UPPER)
    step, vmax = np.array(CONFIG.max_step), np.array(CONFIG.max_velocity)
    t, meas, meas_t, latched = 0.0, None, -np.inf, False
    prev: tuple[np.ndarray, float] | None = None  # last position command since the last stop
    moves = 0
    for kind, delta, values in events:
        t += delta
        if kind == "state":
            if guard.observe(np.array(values), t):
                meas, meas_t = np.array(values), t
            else:
                assert not np.all(np.isfinite(values))
            continue
        if kind == "estop":
            guard.estop("test")
            latched = True
            continue
        if kind == "release":
            guard.release()
            latched, prev = False, None
            continue
        cmd = guard.filter(np.array(values), t) if kind == "action" else guard.tick(t)
        assert isinstance(cmd, Command) and cmd.kind in ("move", "hold", "stop", "ok")
        if latched or meas is None:
            assert cmd.kind == "stop", cmd
        if t - meas_t > CONFIG.state_timeout + CONFIG.hold_time:
            assert cmd.kind == "stop", cmd
        elif t - meas_t > CONFIG.state_timeout:
            assert cmd.kind in ("hold", "stop"), cmd
        if cmd.kind == "stop":
            prev = None
            continue
        if cmd.kind == "ok":
            continue
        # Every command that reaches the robot: finite, within joint limits, gripper in [0, 1].
        assert np.all(np.isfinite(cmd.q)) and np.isfinite(cmd.gripper)
        assert np.all(cmd.q >= lower) and np.all(cmd.q <= upper)
        assert 0.0 <= cmd.gripper <= 1.0
        if prev is not None:  # velocity between successive commands
            assert np.all(np.abs(cmd.q - prev[0]) <= vmax * (t - prev[1]) + EPS)
        if cmd.kind == "move":
            assert kind == "action" and np.all(np.isfinite(values))
            assert np.all(np.abs(cmd.q - meas) <= step + EPS)
            assert inside(fk(cmd.q))
        else:  # hold: the previous command, never a new target
            if prev is not None:
                np.testing.assert_array_equal(cmd.q, prev[0])
        prev = (cmd.q, t)
        moves += cmd.kind == "move"
    return moves


def test_the_property_stream_exercises_moves():
    """Guard against a vacuous property test: generated streams do produce checked moves."""
    total = []

    # derandomize: the same 50 streams every run, so the count is a fact about the strategy,
    # not a draw (random draws gave 98 moves once, under the bound)
    @settings(max_examples=50, deadline=None, database=None, derandomize=True)
    @given(events=st.lists(event, min_size=20, max_size=60))
    def count(events):
        total.append(run_stream(events))

    count()
    print(f"moves over the 50 streams: {sum(total)}")
    # Hypothesis mixes constants found in the modules already imported into its draws, so the
    # count depends on which tests ran before (measured 100-233); a vacuous strategy gives ~0.
    assert sum(total) > 50


@settings(max_examples=100, deadline=None)
@given(target=st.lists(st.floats(-0.15, 0.15), min_size=3, max_size=3), grip=st.floats(0, 1))
def test_a_feasible_action_passes_unchanged(target, grip):
    """The guard is not merely conservative: small moves inside every limit go through exactly."""
    guard = SafetyGuard(CONFIG, fk=fk)
    home = np.array([0.0, -1.0, 0.5])
    assert inside(fk(home))
    guard.observe(home, 0.0)
    q = home + np.array(target) * np.array([0.5, 0.5, 0.5])
    if not inside(fk(q)):
        return
    cmd = guard.filter(np.concatenate([q, [grip]]), 0.1)
    assert cmd.kind == "move" and cmd.reason == "" and cmd.gripper == grip
    np.testing.assert_array_equal(cmd.q, q)


def test_clips_out_of_limit_and_refuses_nan():
    guard = SafetyGuard(CONFIG)
    guard.observe(np.zeros(3), 0.0)
    cmd = guard.filter(np.array([5.0, -5.0, 0.05, 3.0]), 0.1)
    assert cmd.kind == "move" and "clipped" in cmd.reason
    np.testing.assert_allclose(cmd.q, [0.2, -0.1, 0.05])
    assert cmd.gripper == 1.0
    guard.observe(cmd.q, 0.1)
    nan = guard.filter(np.array([np.nan, 0.0, 0.0, 0.5]), 0.15)
    assert nan.kind == "hold" and "non-finite" in nan.reason
    np.testing.assert_array_equal(nan.q, cmd.q)
    inf = guard.filter(np.array([0.0, np.inf, 0.0, 0.5]), 0.2)
    assert inf.kind == "hold"
    with pytest.raises(GuardError, match=r"shape \(4,\)"):
        guard.filter(np.zeros(7), 0.25)


def test_workspace_box_pulls_the_target_back():
    guard = SafetyGuard(CONFIG, fk=fk)
    start = np.array([0.0, -0.65, 0.5])
    assert inside(fk(start))
    guard.observe(start, 0.0)
    cmd = guard.filter(np.array([0.0, 0.0, 0.5, 1.0]), 0.1)  # straightens the elbow: x > 0.75
    assert cmd.kind == "move" and "workspace" in cmd.reason
    assert not inside(fk(np.array([0.0, -0.55, 0.5])))  # the rate-limited target was outside
    assert inside(fk(cmd.q)) and fk(cmd.q)[0] > 0.749  # as close to the wall as bisection gets


def test_watchdog_holds_then_stops_and_recovers():
    guard = SafetyGuard(CONFIG)
    guard.observe(np.zeros(3), 0.0)
    first = guard.filter(np.array([0.1, 0.0, 0.0, 1.0]), 0.2)
    assert first.kind == "move"
    assert guard.tick(0.25).kind == "ok"
    held = guard.tick(0.4)  # joint state older than state_timeout=0.3
    assert held.kind == "hold" and "joint state" in held.reason
    np.testing.assert_array_equal(held.q, first.q)
    assert guard.tick(0.3 + 0.4 - 0.01).kind == "hold"
    stopped = guard.tick(0.3 + 0.4 + 0.01)
    assert stopped.kind == "stop" and "stopped" in stopped.reason
    assert guard.filter(np.array([0.1, 0.0, 0.0, 1.0]), 0.8).kind == "stop"
    guard.observe(np.array([0.1, 0.0, 0.0]), 1.0)  # fresh state: moves again, rate limited
    assert guard.filter(np.array([0.5, 0.0, 0.0, 1.0]), 1.05).kind == "move"
    # No new action for action_timeout: hold, then stop.
    assert guard.status(1.05 + 0.2) == "ok"
    guard.observe(np.array([0.3, 0.0, 0.0]), 1.5)
    assert guard.tick(1.05 + 0.5 + 0.1).kind == "hold"
    guard.observe(np.array([0.3, 0.0, 0.0]), 2.0)
    assert guard.tick(1.05 + 0.5 + 0.45).kind == "stop"


def test_estop_latches_until_released():
    guard = SafetyGuard(CONFIG)
    guard.observe(np.zeros(3), 0.0)
    guard.estop("big red button")
    for t in (0.01, 0.02, 0.03):
        guard.observe(np.zeros(3), t)
        cmd = guard.filter(np.array([0.1, 0.0, 0.0, 1.0]), t)
        assert cmd.kind == "stop" and "big red button" in cmd.reason
        assert guard.tick(t).kind == "stop"
    guard.release()
    assert guard.filter(np.array([0.1, 0.0, 0.0, 1.0]), 0.04).kind == "move"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lower": (0, 0), "upper": (1,)}, "equal length"),
        ({"lower": (1.0,), "upper": (0.0,)}, "lower < upper"),
        ({"lower": (0.0,), "upper": (1.0,), "max_step": -1}, "max_step"),
        ({"lower": (0.0,), "upper": (1.0,), "max_velocity": (1, 2)}, "max_velocity"),
        ({"lower": (0.0,), "upper": (1.0,), "workspace": (0, 1)}, "workspace"),
        ({"lower": (0.0,), "upper": (1.0,), "hold_time": 0}, "hold_time"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GuardConfig(**kwargs)
