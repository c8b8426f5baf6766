"""The `Robot` interface: joints in, guarded joint commands out.

    robot = ROBOTS.build(config)          # or robot_from_profile("configs/robots/sim_panda.yaml")
    robot.observation_features            # works while disconnected
    with robot:                           # connect() ... disconnect()
        obs = robot.get_observation()     # {"joint_pos": (n,), "gripper": (1,), "t": (1,), ...}
        sent = robot.send_action(action)  # the action actually sent, after the safety guard

Every `send_action` passes through the robot's `SafetyGuard` (playworld.hardware.guard); a
watchdog thread holds, then stops, the robot when joint states or actions stop arriving.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playworld.features import Feature
from playworld.hardware.errors import ConfigError, NotConnectedError
from playworld.hardware.guard import Command, GuardConfig, SafetyGuard
from playworld.registry import Registry

PANDA_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))


@dataclass(frozen=True)
class RobotConfig:
    """What every robot profile says: its name, control rate, joint names (our order), limits
    and cameras.

    `fps` is THE control rate of everything that drives this robot (record, autoplay, eval,
    deploy, the twin's control period): one source, the profile. `cameras` maps a camera name
    to a camera config dict with a `type` key (see `CAMERAS`).
    """

    guard: GuardConfig
    name: str = "panda"
    fps: float = 10.0
    joints: tuple[str, ...] = PANDA_JOINTS
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ConfigError(
                f"expected a control rate fps > 0 Hz in the profile of {self.name!r}, found {self.fps}"
            )
        if len(self.joints) != self.guard.n:
            raise ConfigError(
                f"expected one guard limit per joint ({len(self.joints)} joints), found "
                f"{self.guard.n} limits in the profile of {self.name!r}"
            )
        for cam, cfg in self.cameras.items():
            if not isinstance(cfg, dict) or "type" not in cfg:
                raise ConfigError(
                    f"expected camera {cam!r} as a mapping with a 'type', found {cfg!r}"
                )


class Robot(abc.ABC):
    """A robot arm with a gripper, commanded in joint positions (or end-effector deltas).

    Subclasses implement `_connect`, `_disconnect`, `_read_joints` and `_apply`; the base class
    runs the guard and its watchdog so that no implementation can skip them.
    """

    name: str = "robot"

    def __init__(self, guard: SafetyGuard, watchdog_period: float | None = 0.02) -> None:
        """`watchdog_period`: s between watchdog checks; None for a robot whose guard clock only
        advances when it is commanded (a simulation stepped by `send_action`), where no stale
        state or action can ever be seen between commands."""
        self.guard = guard
        self.last_command: Command | None = None
        self._connected = False
        self._lock = threading.RLock()  # one command at a time: the loop or the watchdog
        self._watchdog_period = watchdog_period
        self._stop_watchdog = threading.Event()
        self._watchdog: threading.Thread | None = None

    # -- descriptions (available while disconnected) -------------------------------------
    @property
    @abc.abstractmethod
    def observation_features(self) -> dict[str, Feature]:
        """Per-key feature of `get_observation()` (shapes, dtypes, units)."""

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, Feature]:
        """The single key `action` with its shape and names, e.g. (8,): q1..q7 rad, gripper 0..1."""

    @property
    def fps(self) -> float:
        """The control rate (Hz) from the robot's profile: every loop driving it runs at this rate."""
        return float(self.config.fps)

    # -- connection -----------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Open the link, read a first joint state and start the watchdog."""
        if self._connected:
            return
        self._connect()
        self._connected = True
        if self._watchdog_period is None:
            return
        self._stop_watchdog.clear()
        self._watchdog = threading.Thread(
            target=self._watchdog_loop, name=f"{self.name}-watchdog", daemon=True
        )
        self._watchdog.start()

    def disconnect(self) -> None:
        """Stop the watchdog and close the link (idempotent)."""
        if not self._connected:
            return
        self._stop_watchdog.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=2.0)
        self._connected = False
        self._disconnect()

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.disconnect()

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError(
                f"expected {self.name} connected, found it disconnected; call connect()"
            )

    # -- use --------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_observation(self) -> dict[str, np.ndarray]:
        """The latest observation; every key of `observation_features`, `t` in seconds."""

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Guard `action`, send it, and return what was sent (shape of `action_features`).

        A refused, held or stopped action returns the joint target the robot is actually held at.
        """
        self._require_connected()
        with self._lock:
            target = self._to_joint_target(np.asarray(action, dtype=np.float64))
            command = self.guard.filter(target, self.clock())
            self._execute(command)
            return self._from_command(command, action)

    def estop(self, reason: str = "e-stop pressed") -> None:
        """Latch the guard's e-stop and stop the robot now."""
        with self._lock:
            self.guard.estop(reason)
            if self._connected:
                self._execute(self.guard.tick(self.clock()))

    def release_estop(self) -> None:
        """Release a latched e-stop; the next action moves from the measured position."""
        self.guard.release()

    def probe(self) -> dict[str, float] | None:
        """Link latency (round trip, clock offset, in s) for robots behind a network; else None."""
        return None

    # -- for implementations ------------------------------------------------------------
    def clock(self) -> float:
        """Seconds on the clock the guard uses (monotonic)."""
        import time

        return time.monotonic()

    def _to_joint_target(self, action: np.ndarray) -> np.ndarray:
        """Map an action to (n + 1,) joint targets + gripper; identity for joint actions."""
        return action

    def _from_command(self, command: Command, action: Any) -> np.ndarray:
        """The returned action: the guarded joint target + gripper (n + 1,) float32."""
        return command.as_action()

    def _execute(self, command: Command) -> None:
        self.last_command = command
        self._apply(command)

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...

    @abc.abstractmethod
    def _apply(self, command: Command) -> None:
        """Carry out a guarded command: move/hold to `command.q`, or stop (send nothing)."""

    def _watchdog_loop(self) -> None:
        while not self._stop_watchdog.wait(self._watchdog_period):
            with self._lock:
                command = self.guard.tick(self.clock())
                last = self.last_command.kind if self.last_command is not None else None
                if command.kind == "hold" or (command.kind == "stop" and last != "stop"):
                    self._execute(command)


ROBOTS: Registry[Robot] = Registry("robot", plugins={"sim": "playworld.sim.robot"})
