"""The `Robot` interface: joints or end-effector deltas in, guarded joint commands out.

    robot = ROBOTS.build(config)          # or robot_from_profile("configs/robots/sim_panda.yaml")
    robot.observation_features            # works while disconnected
    with robot:                           # connect() ... disconnect()
        obs = robot.get_observation()     # {"joint_pos": (n,), "gripper": (1,), "t": (1,), ...}
        sent = robot.send_action(action)  # the action actually sent, after the safety guard

Every `send_action` passes through the robot's `SafetyGuard` (playworld.hardware.guard); a
watchdog thread holds, then stops, the robot when joint states or actions stop arriving.

Actions (`action_space` in the profile): `joint_pos` (n + 1,) joint targets + gripper, or
`ee_delta` (7,) end-effector deltas (see playworld.hardware.kinematics), turned into joint
targets here, on the client side, by the profile's `kinematics` (FK/IK from the arm's MJCF), then
guarded like every joint command. The action a step stores is the ee delta as clipped to its
bounds, computed once per tick (no IK -> FK round trip); the guarded joint target is
`last_command`.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playworld.features import Feature
from playworld.hardware.ee import EE_ACTION_NAMES, EE_DELTA_HIGH, EE_DELTA_LOW, KinematicsConfig
from playworld.hardware.errors import ConfigError, GuardError, NotConnectedError
from playworld.hardware.guard import Command, GuardConfig, SafetyGuard
from playworld.registry import Registry

PANDA_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
ACTION_SPACES = ("joint_pos", "ee_delta")


@dataclass(frozen=True)
class RobotConfig:
    """What every robot profile says: its name, control rate, joint names (our order), limits
    and cameras.

    `fps` is THE control rate of everything that drives this robot (record, autoplay, eval,
    deploy, the twin's control period): one source, the profile. `cameras` maps a camera name
    to a camera config dict with a `type` key (see `CAMERAS`). `action_space`: `joint_pos` or
    `ee_delta`; `kinematics` (the arm's MJCF, see `KinematicsConfig`) gives ee deltas, the
    `ee_pos`/`ee_quat` observation and the guard's workspace box.
    """

    guard: GuardConfig
    name: str = "panda"
    fps: float = 10.0
    joints: tuple[str, ...] = PANDA_JOINTS
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)
    action_space: str = "joint_pos"
    kinematics: KinematicsConfig | None = None

    def __post_init__(self) -> None:
        if self.action_space not in ACTION_SPACES:
            raise ConfigError(
                f"expected action_space in {ACTION_SPACES}, found {self.action_space!r}"
            )
        if self.action_space == "ee_delta" and self.kinematics is None:
            raise ConfigError(
                f"expected `kinematics` (the arm's MJCF) in the profile of {self.name!r} for "
                "action_space ee_delta, found none"
            )
        if self.kinematics is not None and len(self.kinematics.joints) != len(self.joints):
            raise ConfigError(
                f"expected kinematics.joints to name the {len(self.joints)} joints of "
                f"{self.name!r}, found {len(self.kinematics.joints)}"
            )
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

    Subclasses implement `_connect`, `_disconnect` and `_apply`, and feed measured joints to
    `guard.observe`; the base class runs the guard, its watchdog and the ee-delta controller so
    that no implementation can skip or copy them.
    """

    name: str = "robot"
    config: RobotConfig

    def __init__(self, guard: SafetyGuard, watchdog_period: float | None = 0.02) -> None:
        """`watchdog_period`: s between watchdog checks; None for a robot whose guard clock only
        advances when it is commanded (a simulation stepped by `send_action`), where no stale
        state or action can ever be seen between commands."""
        self.guard = guard
        self.kinematics: Any = None  # ArmKinematics, built on connect from the profile
        self.ee: Any = None  # its EEDeltaController
        self._step_action: np.ndarray | None = None  # the ee delta of this tick, as clipped
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
    def action_space(self) -> str:
        return self.config.action_space

    @property
    def action_features(self) -> dict[str, Feature]:
        """`action`: ee_delta (7,) dx dy dz m, rx ry rz rad, gripper 0..1; or joint_pos (n + 1,)."""
        if self.action_space == "ee_delta":
            return {"action": Feature((7,), "float32", kind="action", names=EE_ACTION_NAMES)}
        names = (*self.config.joints, "gripper")
        return {
            "action": Feature(
                (len(names),), "float32", kind="action", units="rad, 0..1", names=names
            )
        }

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
        if self.config.kinematics is not None and self.kinematics is None:
            from playworld.hardware.kinematics import ArmKinematics, EEDeltaController

            self.kinematics = ArmKinematics(self.config.kinematics)
            self.ee = EEDeltaController(self.kinematics.ik)
            self.guard.fk = self.kinematics.fk_pos
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

    def brake(self, reason: str = "no action this tick") -> None:
        """Stop now where the arm is, its own controller braking (a rosbridge arm: the stop
        message of its command type); nothing latches: the next action moves again.

        For a sender that knows it has no action (a stalled policy): unlike sending nothing,
        the watchdog does not hold at the last target first, and unlike a target at the
        measured joints, a moving arm is not sent back to where the link last saw it.
        """
        self._require_connected()
        with self._lock:
            if self.ee is not None:
                self.ee.reset()
            self._execute(self.guard.halt(self.clock(), reason))

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

    def ee_observation(self, q: np.ndarray) -> dict[str, np.ndarray]:
        """`ee_pos` (3,) m and `ee_quat` (4,) wxyz float32 by FK of joints `q` (n,)."""
        pose = self.kinematics.fk(q)
        return {"ee_pos": pose.pos.astype(np.float32), "ee_quat": pose.quat.astype(np.float32)}

    #: The pose an ee-delta target is checked against for lag (`TARGET_SLACK`): "measured" (the
    #: measured joints, as the twin's own `ee_delta` space does: the target restarts there when
    #: contact or the guard holds the arm back; the scripted experts are tuned on it, and a
    #: stored episode then replays the same on the twin and over the bridge, measured 0.0 mm
    #: apart) or "command" (the last guarded command: for a link whose joint states lag by
    #: more than a control step's motion, where the measured pose would restart the target).
    ee_reference = "measured"

    def _to_joint_target(self, action: np.ndarray) -> np.ndarray:
        """Map an action to (n + 1,) joint targets + gripper; identity for joint actions.

        ee_delta (7,): clipped to its bounds, integrated into the pose target, solved by one IK
        step warm-started at the last guarded command. The integrated target continues while
        it stays within `TARGET_SLACK` of the `ee_reference` pose (see there) and restarts at
        that pose when the arm lags further. Before any command, or after a stop or reset, the
        reference is the measured joints. A non-finite delta becomes a NaN target, which the
        guard refuses (hold).
        """
        if self.action_space == "joint_pos":
            return action
        a = action.reshape(-1)
        if a.shape != (7,):
            raise GuardError(f"expected an ee_delta action of shape (7,), found {a.shape}")
        n = len(self.config.joints)
        last = self.last_command
        meas_q = self.guard.measured
        ref = last.q if last is not None and last.kind in ("move", "hold") else meas_q
        if not np.all(np.isfinite(a)) or ref is None:
            self._step_action = np.where(np.isfinite(a), a, 0.0).astype(np.float32)
            return np.full(n + 1, np.nan)  # refused by the guard (hold, or stop with no state)
        a = np.minimum(np.maximum(a, EE_DELTA_LOW), EE_DELTA_HIGH)
        self._step_action = a.astype(np.float32)
        base = meas_q if self.ee_reference == "measured" and meas_q is not None else ref
        qpos = self.kinematics.full(base)
        measured = self._measured_pose(meas_q) if base is meas_q else None
        q = self.ee.joint_target(qpos, a[:6], warm=ref, measured=measured).qpos
        return np.concatenate([q, a[6:]])

    def _measured_pose(self, q: np.ndarray) -> Any:
        """The end-effector `Pose` at the measured joints `q` (n,): FK from the profile's MJCF.

        A robot that measures its pose itself (the twin; an arm driver publishing it) returns
        that instead of computing it again.
        """
        return self.kinematics.fk(q)

    def _from_command(self, command: Command, action: Any) -> np.ndarray:
        """The returned action: the ee delta as clipped, or the guarded joint target + gripper."""
        if self.action_space == "ee_delta":
            return self._step_action
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
