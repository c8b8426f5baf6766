"""The safety guard: the only way an action reaches a robot.

Between every source of actions (teleop, policy, autoplay) and every robot. Given joint targets
(n,) rad plus a gripper opening in [0, 1], it emits one `Command`:

    move   q (n,) within [lower, upper], within `max_step` of the measured joints, within
           `max_velocity * dt` of the previous command, end effector (if `fk` is given) inside the
           `workspace` box: the target is clipped (and pulled back along the segment from the
           previous command until the box holds), never passed through.
    hold   q = the previous command (or the measured joints clipped to the limits): NaN/inf
           actions are refused this way, and the watchdog holds while it waits.
    stop   send nothing: the e-stop is latched, or the watchdog held for `hold_time` without a
           fresh joint state / a fresh action.
    ok     (from `tick` only) nothing to do.

Time is passed in (seconds, monotonic), so the guard is a pure state machine that tests drive
with any clock. The e-stop latches until `release()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from playworld.hardware.errors import ConfigError, GuardError

KINDS = ("move", "hold", "stop", "ok")


class Command(NamedTuple):
    """What the guard lets through: `kind` in KINDS, joint target `q` (n,) rad, `gripper` 0..1."""

    kind: str
    q: np.ndarray  # (n,) rad; for stop: the last known position, informational only
    gripper: float
    reason: str = ""

    def as_action(self) -> np.ndarray:
        """(n + 1,) float32: joint targets then gripper."""
        return np.concatenate([self.q, [self.gripper]]).astype(np.float32)


@dataclass(frozen=True)
class GuardConfig:
    """Limits of one robot. Lengths in metres, angles in radians, times in seconds.

    `max_step` and `max_velocity` are scalars or one value per joint.
    `workspace` is the end-effector box (x0, x1, y0, y1, z0, z1), checked when the robot gives
    the guard a forward-kinematics function.
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    max_step: float | tuple[float, ...] = 0.1  # rad per command, from the measured joints
    max_velocity: float | tuple[float, ...] = 1.0  # rad/s between successive commands
    workspace: tuple[float, ...] | None = None
    state_timeout: float = 0.5  # no fresh joint state for this long: hold
    action_timeout: float = 1.0  # no new action for this long: hold
    hold_time: float = 1.0  # hold this long, then stop

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
            raise ConfigError(
                f"expected lower and upper of equal length n > 0, found {lo.shape} and {hi.shape}"
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise ConfigError(
                f"expected finite joint limits with lower < upper, found {self.lower} .. {self.upper}"
            )
        for name in ("max_step", "max_velocity"):
            v = np.asarray(getattr(self, name), float)
            if v.size not in (1, lo.size) or not np.all(np.isfinite(v)) or not np.all(v > 0):
                raise ConfigError(
                    f"expected {name} > 0 (a scalar or {lo.size} values), found {getattr(self, name)}"
                )
        if self.workspace is not None:
            w = np.asarray(self.workspace, float)
            if w.shape != (6,) or not np.all(w[0::2] < w[1::2]):
                raise ConfigError(
                    f"expected workspace (x0, x1, y0, y1, z0, z1) with x0 < x1..., found {self.workspace}"
                )
        for name in ("state_timeout", "action_timeout", "hold_time"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"expected {name} > 0 s, found {getattr(self, name)}")

    @property
    def n(self) -> int:
        return len(self.lower)


class SafetyGuard:
    """Limits, rate limits, workspace box, watchdog and a latched e-stop (see the module doc)."""

    def __init__(
        self, config: GuardConfig, fk: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> None:
        self.config = config
        self.fk = fk  # q (n,) -> end-effector position (3,) m
        c = config
        self.lower = np.asarray(c.lower, float)
        self.upper = np.asarray(c.upper, float)
        self.max_step = np.broadcast_to(np.asarray(c.max_step, float).reshape(-1), self.lower.shape)
        self.max_velocity = np.broadcast_to(
            np.asarray(c.max_velocity, float).reshape(-1), self.lower.shape
        )
        self.workspace = None if c.workspace is None else np.asarray(c.workspace, float)
        self._box = None if c.workspace is None else tuple(float(v) for v in c.workspace)
        self._meas_q: np.ndarray | None = None
        self._meas_t = -np.inf
        self._meas_gripper = 1.0
        self._prev_q: np.ndarray | None = None
        self._prev_t = -np.inf
        self._prev_gripper = 1.0
        self._action_t: float | None = None
        self._estop: str | None = None

    # -- inputs -----------------------------------------------------------------------------
    def observe(self, q: np.ndarray, t: float, gripper: float | None = None) -> bool:
        """Record a measured joint state (n,) rad at time t; non-finite states are ignored."""
        q = np.asarray(q, float).reshape(-1)
        # Array methods and float min/max below: this runs every control step (cheaper than
        # the np.all / np.clip wrappers, same results on the finite values that reach them).
        if q.shape != self.lower.shape or not np.isfinite(q).all() or not math.isfinite(t):
            return False
        self._meas_q, self._meas_t = q.copy(), float(t)
        if gripper is not None and math.isfinite(gripper):
            self._meas_gripper = min(max(float(gripper), 0.0), 1.0)
        return True

    def estop(self, reason: str = "e-stop pressed") -> None:
        """Latch the e-stop: every command is `stop` until `release()`."""
        self._estop = reason

    def release(self) -> None:
        """Release the e-stop; the next move starts from the measured joints."""
        self._estop = None
        self._prev_q = None

    def forget_command(self) -> None:
        """A new episode (the robot was reset): no previous command to hold or to rate-limit
        from, and no action expected until the next one arrives. The e-stop stays as it is."""
        self._prev_q = None
        self._action_t = None

    @property
    def measured(self) -> np.ndarray | None:
        """The last measured joints (n,) rad (a copy), None before the first joint state."""
        return None if self._meas_q is None else self._meas_q.copy()

    @property
    def estopped(self) -> bool:
        return self._estop is not None

    # -- outputs ----------------------------------------------------------------------------
    def filter(self, action: np.ndarray, t: float) -> Command:
        """The command for `action` (n + 1,): joint targets rad then gripper 0..1, at time t."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.config.n + 1,):
            raise GuardError(
                f"expected an action of {self.config.n} joint targets + gripper, shape "
                f"({self.config.n + 1},), found shape {np.shape(action)}"
            )
        blocked = self._watchdog(t, check_action=False)
        if blocked is not None:
            return blocked
        if not np.isfinite(a).all():
            return self._hold(t, "refused a non-finite action (NaN or inf)")
        self._action_t = t
        meas = self._meas_q
        lo = np.maximum(self.lower, meas - self.max_step)
        hi = np.minimum(self.upper, meas + self.max_step)
        if self._prev_q is not None:
            dt = max(t - self._prev_t, 0.0)
            lo = np.maximum(lo, self._prev_q - self.max_velocity * dt)
            hi = np.minimum(hi, self._prev_q + self.max_velocity * dt)
        if (lo > hi).any():
            return self._hold(t, "the measured joints lag the previous command: holding")
        target = a[:-1]
        q = np.minimum(np.maximum(target, lo), hi)  # = np.clip: lo <= hi, target finite
        reason = "" if np.array_equal(q, target) else "clipped to joint / step / velocity limits"
        if self.workspace is not None and self.fk is not None and not self._inside(q):
            start = np.clip(self._prev_q if self._prev_q is not None else meas, lo, hi)
            if not self._inside(start):
                return self._hold(t, "the end effector is outside the workspace box: holding")
            q = np.clip(self._pull_back(start, q), lo, hi)
            if not self._inside(q):
                q = start
            reason = "pulled back into the workspace box"
        gripper = min(max(float(a[-1]), 0.0), 1.0)
        self._prev_q, self._prev_t, self._prev_gripper = q, t, gripper
        return Command("move", q.copy(), gripper, reason)

    def halt(self, t: float, reason: str = "halted") -> Command:
        """A deliberate stop at time t (the sender knows it has no action): `stop`, the arm
        brakes where it is; nothing latches, the watchdog counts it as a command, and the next
        move starts from the measured joints."""
        self._action_t = t
        return self._stop(reason)

    def tick(self, t: float) -> Command:
        """Watchdog check between actions: `ok`, or the hold / stop command to carry out."""
        blocked = self._watchdog(t, check_action=True)
        if blocked is not None:
            return blocked
        return Command("ok", self._hold_q(), self._prev_gripper)

    def status(self, t: float) -> str:
        """One word: the kind `tick(t)` would return, without changing state."""
        if self._estop is not None or self._meas_q is None:
            return "stop"
        for since in self._stale_since(t, check_action=True):
            return "hold" if t - since <= self.config.hold_time else "stop"
        return "ok"

    # -- internals --------------------------------------------------------------------------
    def _stale_since(self, t: float, check_action: bool) -> list[float]:
        c, out = self.config, []
        if t - self._meas_t > c.state_timeout:
            out.append(self._meas_t + c.state_timeout)
        if check_action and self._action_t is not None and t - self._action_t > c.action_timeout:
            out.append(self._action_t + c.action_timeout)
        return sorted(out)

    def _watchdog(self, t: float, check_action: bool) -> Command | None:
        if self._estop is not None:
            return self._stop(f"e-stop latched ({self._estop}); release it to move")
        if self._meas_q is None:
            return self._stop("no joint state received yet")
        c = self.config
        if t - self._meas_t <= c.state_timeout and (
            not check_action or self._action_t is None or t - self._action_t <= c.action_timeout
        ):
            return None  # all fresh: the common case, every control step
        stale = self._stale_since(t, check_action)
        if not stale:
            return None
        what = "joint state" if t - self._meas_t > self.config.state_timeout else "action"
        if t - stale[0] <= self.config.hold_time:
            return self._hold(t, f"watchdog: no fresh {what}: holding")
        return self._stop(
            f"watchdog: no fresh {what} for {self.config.hold_time:g} s after holding: stopped"
        )

    def _hold_q(self) -> np.ndarray:
        if self._prev_q is not None:
            return self._prev_q.copy()
        if self._meas_q is not None:
            return np.clip(self._meas_q, self.lower, self.upper)
        return np.clip(np.zeros_like(self.lower), self.lower, self.upper)

    def _hold(self, t: float, reason: str) -> Command:
        q = self._hold_q()
        gripper = self._prev_gripper if self._prev_q is not None else self._meas_gripper
        self._prev_q, self._prev_t, self._prev_gripper = q, t, gripper
        return Command("hold", q.copy(), gripper, reason)

    def _stop(self, reason: str) -> Command:
        q = self._hold_q()
        self._prev_q = None
        return Command("stop", q, self._meas_gripper, reason)

    def _inside(self, q: np.ndarray) -> bool:
        x, y, z = (float(v) for v in self.fk(q))
        w = self._box  # comparisons of Python floats: NaN is never inside
        return w[0] <= x <= w[1] and w[2] <= y <= w[3] and w[4] <= z <= w[5]

    def _pull_back(self, start: np.ndarray, q: np.ndarray, iterations: int = 12) -> np.ndarray:
        """The point on start -> q farthest from `start` found inside the box (start is inside)."""
        good, bad = 0.0, 1.0
        for _ in range(iterations):
            mid = 0.5 * (good + bad)
            if self._inside(start + mid * (q - start)):
                good = mid
            else:
                bad = mid
        out = start + good * (q - start)
        return out if good > 0 else start.copy()
