"""`SimRobot` and `SimCamera`: the MuJoCo twin behind the `Robot` and `Camera` interfaces.

The twin runs in simulated time: each `send_action` advances it by one control period
(`TwinConfig.dt`), and the guard reads the simulation clock, so runs are deterministic.
Actions are joint targets (8,) (`action_space: joint_pos`) or end-effector deltas (7,)
(`ee_delta`, as teleop devices produce them: turned into joint targets by the `Robot` base
class's kinematics, exactly as on a rosbridge arm, then guarded in joint space like every
other command).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from playworld.features import Feature
from playworld.hardware.camera import CAMERAS, Camera, CameraConfig, Frame
from playworld.hardware.ee import KinematicsConfig
from playworld.hardware.errors import ConfigError, HardwareError, NotConnectedError
from playworld.hardware.guard import Command, SafetyGuard
from playworld.hardware.kinematics import Pose
from playworld.hardware.robot import ROBOTS, Robot, RobotConfig
from playworld.sim.state import STATE_LAYOUT

FINGER_OPENING = 0.08  # m, gripper width at opening 1.0
_STATE_SLICES = STATE_LAYOUT.slices


@dataclass(frozen=True)
class SimCameraConfig(CameraConfig):
    """A camera of the twin's scene (`front` or `wrist`), rendered at height x width pixels."""

    camera: str = "front"


@dataclass(frozen=True)
class SimRobotConfig(RobotConfig):
    """The twin as a robot: `twin` is a TwinConfig YAML path (None: defaults); `seed` for reset.

    `kinematics` defaults to the twin's own Panda (gymnasium-robotics' MJCF).
    """

    twin: str | None = None
    seed: int = 0
    kinematics: KinematicsConfig | None = KinematicsConfig()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.joints) != 7:
            raise ConfigError(f"expected the Panda's 7 joints, found {len(self.joints)}")


def privileged_features() -> dict[str, Feature]:
    """What only the twin knows: `state` (40,) f64 and `keypoints` (K, 3) f32 m, world frame.

    A policy reading these cannot run on a real arm (`Feature.privileged`).
    """
    from playworld.sim.scene import KEYPOINTS
    from playworld.sim.state import STATE_LAYOUT

    return {
        "state": Feature(
            (STATE_LAYOUT.size,), "float64", names=tuple(STATE_LAYOUT.names), privileged=True
        ),
        "keypoints": Feature(
            (len(KEYPOINTS), 3), "float32", units="m, world", names=KEYPOINTS, privileged=True
        ),
    }


class SimCamera(Camera):
    """Renders the twin on `read()` (in the caller's thread, which owns the GL context)."""

    on_demand = True

    def __init__(self, config: SimCameraConfig, twin: Any = None) -> None:
        super().__init__(config)
        self.twin = twin
        self._renderer = None

    def _connect(self) -> None:
        if self.twin is None:
            raise HardwareError(
                "expected a twin to render, found none: list sim cameras under a sim robot "
                "profile's `cameras`"
            )

    def _disconnect(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def read(self, timeout: float = 1.0) -> Frame:
        """Render the twin's current state now: Frame((H, W, 3) uint8, sim time s)."""
        if not self._connected:
            raise NotConnectedError("expected a connected camera, found it disconnected")
        if self._renderer is None:
            from playworld.sim.render import TwinRenderer

            self._renderer = TwinRenderer(self.twin, self.config.height, self.config.width)
        image = self._renderer.rgb(self.config.camera)
        self._publish(image, float(self.twin.data.time))
        return self._latest


class SimRobot(Robot):
    """The twin's Panda: observation = joints, gripper, end-effector pose, and (privileged) the
    full twin state and the keypoint sites."""

    def __init__(self, config: SimRobotConfig) -> None:
        # No watchdog thread: the guard reads the simulation clock, which only `send_action`
        # advances, so between commands nothing can go stale. (A thread waking every 20 ms to
        # take the robot's lock cost evaluation ~10% of its steps in lock hand-overs.)
        super().__init__(SafetyGuard(config.guard), watchdog_period=None)
        self.config = config
        self.name = config.name
        self.twin = None
        self.cameras: dict[str, SimCamera] = {
            name: CAMERAS.config_from_dict(cfg) for name, cfg in config.cameras.items()
        }
        for name, cam_cfg in self.cameras.items():
            if not isinstance(cam_cfg, SimCameraConfig):
                raise ConfigError(f"expected camera {name!r} of type 'sim' on a sim robot")
        self.cameras = {name: SimCamera(cfg) for name, cfg in self.cameras.items()}
        self._pending: np.ndarray | None = None  # (8,) joint targets + gripper for the next step

    @property
    def observation_features(self) -> dict[str, Feature]:
        out = {
            "joint_pos": Feature((7,), "float32", units="rad", names=self.config.joints),
            "gripper": Feature((1,), "float32", units="0..1 open"),
            "ee_pos": Feature((3,), "float32", units="m", names=("x", "y", "z")),
            "ee_quat": Feature((4,), "float32", units="wxyz", names=("w", "x", "y", "z")),
            **privileged_features(),
            "t": Feature((1,), "float64", kind="time", units="s"),
        }
        for name, cam in self.cameras.items():
            out[name] = cam.feature
        return out

    # -- connection -----------------------------------------------------------------------
    def _connect(self) -> None:
        from playworld.sim import Twin, TwinConfig

        fps = float(self.config.fps)
        cfg = (
            TwinConfig.from_yaml(self.config.twin, action_space="joint_pos")
            if self.config.twin
            else TwinConfig(action_space="joint_pos", control_hz=fps)
        )
        if abs(cfg.control_hz - fps) > 1e-9:
            raise ConfigError(
                f"expected the twin's control_hz to match the profile's fps ({fps:g} Hz), found "
                f"control_hz={cfg.control_hz:g} in {self.config.twin}; the profile owns the rate: "
                "remove control_hz from the twin YAML"
            )
        self.twin = Twin(cfg)
        self.reset(self.config.seed)
        for cam in self.cameras.values():
            cam.twin = self.twin
            cam.connect()

    def _disconnect(self) -> None:
        for cam in self.cameras.values():
            cam.disconnect()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset the twin (home pose, objects per the twin's randomisation); the state (40,)."""
        with self._lock:
            state = self.twin.reset(seed=seed)
            self.guard.release()
            self._observe()
            self._pending = None
            self.last_command = None  # the next ee delta starts from the measured pose
            if self.ee is not None:
                self.ee.reset()
            return state

    def clock(self) -> float:
        return float(self.twin.data.time) if self.twin is not None else 0.0

    # -- use --------------------------------------------------------------------------------
    def get_observation(self) -> dict[str, np.ndarray]:
        self._require_connected()
        with self._lock:
            tw = self.twin
            # The state vector holds the joints, finger width and end-effector pose already:
            # one gather per step instead of three reads of the same MuJoCo data.
            state = tw.get_state()
            single = state.astype(np.float32)  # one cast; the float32 keys are copies of views
            sl = _STATE_SLICES
            width = float(state[sl["gripper_width"]][0])
            obs = {
                "joint_pos": single[sl["arm_qpos"]].copy(),
                "gripper": np.array([min(max(width / FINGER_OPENING, 0.0), 1.0)], np.float32),
                "ee_pos": single[sl["ee_pos"]].copy(),
                "ee_quat": single[sl["ee_quat"]].copy(),
                "state": state,
                "keypoints": tw.keypoints().astype(np.float32),
                "t": np.array([float(tw.data.time)]),
            }
            for name, cam in self.cameras.items():
                obs[name] = cam.read().image
            return obs

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Guard, then advance the twin by one control period; the action actually sent."""
        with self._lock:
            sent = super().send_action(action)
            if self._pending is not None:
                self.twin.step(self._pending)
            self._observe()
            return sent

    def _measured_pose(self, q: np.ndarray) -> Pose:
        """The twin's own end-effector pose (the same frame and model as FK of `q`, which
        `_observe` has just measured): no second kinematics pass."""
        return Pose(*self.twin.ee_pose())

    def _joints(self) -> tuple[np.ndarray, float]:
        tw = self.twin
        q = tw.data.qpos[tw.arm_qadr]  # fancy indexing: a copy
        width = float(tw.data.qpos[tw.finger_qadr].sum())
        return q, min(max(width / FINGER_OPENING, 0.0), 1.0)

    def _observe(self) -> None:
        q, gripper = self._joints()
        self.guard.observe(q, self.clock(), gripper)

    def _apply(self, command: Command) -> None:
        if command.kind in ("move", "hold"):
            self._pending = command.as_action().astype(np.float64)
        elif command.kind == "stop":  # brake where the arm is
            q, gripper = self._joints()
            self._pending = np.concatenate([q, [gripper]])


ROBOTS.register("sim", SimRobotConfig, SimRobot)
CAMERAS.register("sim", SimCameraConfig, SimCamera)
