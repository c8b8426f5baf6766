"""`RosBridgeRobot`: a ROS arm behind a rosbridge websocket, through roslibpy.

    robot = robot_from_profile("rosbridge_panda", port=9090)
    with robot:
        obs = robot.get_observation()           # joint_pos (n,) rad, gripper (1,), t (1,) s,
                                                # ee_pos (3,) m, ee_quat (4,) by FK (`kinematics`)
        robot.send_action(np.r_[q, 0.5])        # guarded, then published on the command topic
                                                # (action_space ee_delta: (7,) deltas, IK here)
        robot.probe()                           # {"rtt_s": ..., "clock_offset_s": ...}

Joint names map between the profile's order and the JointState message by name. Commands go out
only while the link is up (roslibpy would otherwise queue them and deliver them late, stale);
JointTrajectory commands carry their send time so the far side can refuse stale ones. When the
link drops, the guard holds, then stops (its watchdog sees no fresh joint state), `send_action`
raises one `RobotConnectionError`, and roslibpy reconnects per the profile's policy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from playworld.features import Feature
from playworld.hardware.camera import CAMERAS, Camera, CameraConfig
from playworld.hardware.errors import ConfigError, HardwareError, RobotConnectionError, require
from playworld.hardware.guard import Command, SafetyGuard
from playworld.hardware.robot import ROBOTS, Robot, RobotConfig
from playworld.hardware.rosbridge import messages

log = logging.getLogger(__name__)
STOP_COPIES = 2  # copies of each stop message (see `_apply`)
JOINT_LOG_LEN = 4096  # joint states kept for `joint_states()` (400 s at 10 Hz, 4 s at 1 kHz)


@dataclass(frozen=True)
class RosBridgeCameraConfig(CameraConfig):
    """A sensor_msgs/CompressedImage topic of the robot's rosbridge connection."""

    topic: str = "/camera/image/compressed"


@dataclass(frozen=True)
class RosBridgeRobotConfig(RobotConfig):
    """Topics, message types, joint-name mapping and reconnect policy of a rosbridge arm."""

    host: str = "127.0.0.1"
    port: int = 9090
    gripper_joints: tuple[str, ...] = ()
    gripper_max_width: float = 0.08  # m at opening 1.0
    joint_state_topic: str = "/joint_states"
    command_topic: str = "/arm_controller/command"
    command_type: str = "trajectory_msgs/JointTrajectory"
    gripper_topic: str | None = None  # std_msgs/Float64, opening 0..1
    reset_service: str | None = None
    estop_service: str | None = None
    connect_timeout: float = 5.0  # s, for the websocket and the first joint state
    reconnect_attempts: int = 5
    reconnect_delay: float = 0.5  # s before the first retry, doubled each time
    #: Object poses from a tracker: {topic: geometry_msgs/PoseArray, objects: [names]} -> the
    #: observation `object_poses` (K, 7) (x y z qw qx qy qz; the last detection of each object).
    perception: dict[str, Any] | None = None
    task_success_service: str | None = None  # std_srvs/Trigger: the far side judges a task
    divergence_threshold: float = 0.1  # rad: twin-follow deployments hold beyond this
    twin_profile: str = "sim_panda"  # the sim profile of this arm's twin (twin-follow mode)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.command_type not in messages.COMMAND_TYPES:
            raise ConfigError(
                f"expected command_type among {sorted(messages.COMMAND_TYPES)}, found {self.command_type!r}"
            )
        if not (0 < self.port < 65536):
            raise ConfigError(f"expected a TCP port 1..65535, found {self.port}")
        p = self.perception
        if p is not None and (
            not isinstance(p, dict)
            or not isinstance(p.get("topic"), str)
            or not isinstance(p.get("objects"), list | tuple)
            or not p["objects"]
        ):
            raise ConfigError(
                f"expected perception as {{topic: /name, objects: [names]}} in the profile of "
                f"{self.name!r}, found {p!r}"
            )
        if not self.divergence_threshold > 0:
            raise ConfigError(
                f"expected divergence_threshold > 0 rad, found {self.divergence_threshold}"
            )


class RosBridgeCamera(Camera):
    """Decodes CompressedImage messages (JPEG/PNG) into RGB frames as they arrive."""

    def __init__(self, config: RosBridgeCameraConfig, ros: Any = None) -> None:
        super().__init__(config)
        self.ros = ros
        self._topic = None

    def _connect(self) -> None:
        if self.ros is None:
            raise HardwareError(
                "expected a rosbridge connection, found none: list rosbridge cameras under a "
                "rosbridge robot profile's `cameras`"
            )
        import roslibpy

        self._topic = roslibpy.Topic(self.ros, self.config.topic, "sensor_msgs/CompressedImage")
        self._topic.subscribe(self._on_image)

    def _disconnect(self) -> None:
        if self._topic is not None and self.ros.is_connected:
            self._topic.unsubscribe()
        self._topic = None

    def _on_image(self, msg: dict[str, Any]) -> None:
        import cv2

        from playworld.hardware.camera import fit_image

        raw, _ = messages.parse_compressed_image(msg)
        bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            self._fail(f"could not decode an image from {self.config.topic}")
            return
        image = fit_image(bgr[:, :, ::-1], self.config.height, self.config.width)
        self._publish(image, time.monotonic())


class RosBridgeRobot(Robot):
    """A rosbridge arm (see the module docstring)."""

    def __init__(self, config: RosBridgeRobotConfig) -> None:
        super().__init__(SafetyGuard(config.guard))
        self.config = config
        self.name = config.name
        self.url = f"ws://{config.host}:{config.port}"
        self.ros = None
        self._cmd_topic = None
        self._grip_topic = None
        self._state_topic = None
        self._latest: tuple[np.ndarray, float, float] | None = None  # q, gripper, receive time
        self._state_event = threading.Event()
        self._link_down_reported = False
        self._poses: np.ndarray | None = None  # (K, 7), NaN until an object is first seen
        self._poses_t = 0.0
        self._poses_seen = 0
        self._pose_event = threading.Event()
        self._pose_topic = None
        self._states_seen = 0  # joint states received since `reset()` started counting
        self.state_stamp = 0.0  # header stamp (s, the robot's clock) of the latest joint state
        self._velocity: np.ndarray | None = None  # its joint velocities (rad/s), when it has them
        self.state_velocity: np.ndarray | None = None  # those of the last observation's state
        # every joint state received, (header stamp s, q (n,)), newest last: what the arm did
        # between two observations (how fast it stopped), whatever the control loop sampled
        self._joint_log: deque[tuple[float, np.ndarray]] = deque(maxlen=JOINT_LOG_LEN)
        self._arrivals: deque[float] = deque(maxlen=16)  # receive times (clock()) of states
        cams = {n: CAMERAS.config_from_dict(c) for n, c in config.cameras.items()}
        for n, c in cams.items():
            if not isinstance(c, RosBridgeCameraConfig):
                raise ConfigError(f"expected camera {n!r} of type 'rosbridge' on a rosbridge robot")
        self.cameras = {n: RosBridgeCamera(c) for n, c in cams.items()}

    @property
    def observation_features(self) -> dict[str, Feature]:
        out = {
            "joint_pos": Feature(
                (len(self.config.joints),), "float32", units="rad", names=self.config.joints
            ),
            "gripper": Feature((1,), "float32", units="0..1 open"),
        }
        if self.config.kinematics is not None:  # by FK of the measured joints
            out["ee_pos"] = Feature((3,), "float32", units="m", names=("x", "y", "z"))
            out["ee_quat"] = Feature((4,), "float32", units="wxyz", names=("w", "x", "y", "z"))
        out["t"] = Feature((1,), "float64", kind="time", units="s")
        if self.config.perception is not None:
            names = tuple(self.config.perception["objects"])
            out["object_poses"] = Feature(
                (len(names), 7), "float32", units="m, wxyz (world)", names=names
            )
        for name, cam in self.cameras.items():
            out[name] = cam.feature
        return out

    # -- connection -----------------------------------------------------------------------
    def _connect(self) -> None:
        roslibpy = require("roslibpy", "ros", "RosBridgeRobot")
        c = self.config
        ros = roslibpy.Ros(c.host, c.port)
        f = ros.factory  # twisted ReconnectingClientFactory: the reconnect policy, per instance
        f.initialDelay = f.delay = c.reconnect_delay
        f.factor, f.maxDelay, f.maxRetries = (
            2.0,
            max(c.reconnect_delay * 8, 5.0),
            c.reconnect_attempts,
        )
        # roslibpy has no handler for the server's `status` op (it prints a traceback per
        # message): log each as one line instead, on every (re)connection's protocol.
        ros.factory.on("ready", self._handle_status)
        try:
            ros.run(timeout=c.connect_timeout)
        except Exception as exc:
            self._close_ros(ros)
            raise RobotConnectionError(
                f"expected a rosbridge server at {self.url}, found none within "
                f"{c.connect_timeout:g} s ({type(exc).__name__}); start one with "
                f"`playworld twin serve --port {c.port}` or check the robot's network"
            ) from None
        self.ros = ros
        self._state_topic = roslibpy.Topic(ros, c.joint_state_topic, "sensor_msgs/JointState")
        self._state_topic.subscribe(self._on_joint_state)
        self._cmd_topic = roslibpy.Topic(ros, c.command_topic, c.command_type)
        self._cmd_topic.advertise()
        if c.gripper_topic:
            self._grip_topic = roslibpy.Topic(ros, c.gripper_topic, "std_msgs/Float64")
            self._grip_topic.advertise()
        if not self._state_event.wait(c.connect_timeout):
            self._disconnect()
            raise RobotConnectionError(
                f"expected sensor_msgs/JointState on {c.joint_state_topic} from {self.url} with "
                f"joints {list(c.joints)}, found none within {c.connect_timeout:g} s"
            )
        if c.perception is not None:
            topic = c.perception["topic"]
            self._poses = np.full((len(c.perception["objects"]), 7), np.nan)
            self._pose_topic = roslibpy.Topic(ros, topic, "geometry_msgs/PoseArray")
            self._pose_topic.subscribe(self._on_poses)
            if not self._pose_event.wait(c.connect_timeout):
                self._disconnect()
                raise RobotConnectionError(
                    f"expected geometry_msgs/PoseArray object poses on {topic} from {self.url} "
                    f"(perception.topic of the profile), found none within "
                    f"{c.connect_timeout:g} s; check the topic name"
                )
        for cam in self.cameras.values():
            cam.ros = ros
            cam.connect()

    def _disconnect(self) -> None:
        for cam in self.cameras.values():
            cam.disconnect()
        if self.ros is not None:
            self._close_ros(self.ros)
        self.ros = None
        self._state_event.clear()
        self._pose_event.clear()
        self._latest = None
        self._pose_topic = None

    @staticmethod
    def _close_ros(ros: Any) -> None:
        ros.factory.maxRetries = 0  # a manual close must not reconnect
        ros.factory.stopTrying()
        try:
            ros.close(timeout=2.0)
        except Exception as exc:  # already gone
            log.debug("closing the rosbridge client: %s", exc)

    @property
    def link_up(self) -> bool:
        return self.ros is not None and bool(self.ros.is_connected)

    def _on_joint_state(self, msg: dict[str, Any]) -> None:
        c = self.config
        try:
            q, stamp = messages.parse_joint_state(msg, c.joints)
            velocity = messages.parse_joint_velocity(msg, c.joints)
            width = 0.0
            if c.gripper_joints:
                width = float(messages.parse_joint_state(msg, c.gripper_joints)[0].sum())
        except (ValueError, TypeError) as exc:
            log.warning("ignoring a joint state from %s: %s", self.url, exc)
            return
        gripper = float(np.clip(width / c.gripper_max_width, 0.0, 1.0))
        now = self.clock()
        with self._lock:
            if self.guard.observe(q, now, gripper):
                self._latest = (q, gripper, now)
                self._velocity = velocity
                self.state_stamp = stamp  # the robot's clock (s, header stamp): timing figures
                self._joint_log.append((stamp, q))
                self._arrivals.append(now)
                self._states_seen += 1
                self._link_down_reported = False
        self._state_event.set()

    def _on_poses(self, msg: dict[str, Any]) -> None:
        try:
            poses, _ = messages.parse_pose_array(msg, len(self._poses))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring object poses from %s: %s", self.url, exc)
            return
        seen = np.all(np.isfinite(poses), axis=1)
        with self._lock:
            self._poses[seen] = poses[seen]  # an undetected object keeps its last pose
            self._poses_t = self.clock()
            self._poses_seen += 1
        self._pose_event.set()

    # -- use --------------------------------------------------------------------------------
    def joint_states(self) -> list[tuple[float, np.ndarray]]:
        """The last JOINT_LOG_LEN joint states received, (header stamp s, q (n,) rad), oldest
        first: what the arm did between two observations, however the loop sampled it."""
        with self._lock:
            return list(self._joint_log)

    def state_phase(self) -> tuple[float, float] | None:
        """When joint states arrive: (a typical arrival time on `clock()`, the period between
        arrivals, s), from the last few; None before there are 4. A control loop ticking just
        after arrivals acts on fresh states and never samples one twice or skips one."""
        with self._lock:
            t = np.array(self._arrivals)
        if len(t) < 4:
            return None
        period = float(np.median(np.diff(t)))
        if not period > 0:
            return None
        # each arrival's offset from the last, on the circle of one period: their mean is the
        # stream's phase whatever the link's jitter did to any one of them
        angle = 2 * np.pi * ((t - t[-1]) / period)
        mean = np.angle(np.exp(1j * angle).mean()) / (2 * np.pi) * period
        return float(t[-1] + mean), period

    def get_observation(self) -> dict[str, np.ndarray]:
        self._require_connected()
        self._check_link()
        with self._lock:
            (q, gripper, t), self.state_velocity = self._latest, self._velocity
        obs = {
            "joint_pos": q.astype(np.float32),
            "gripper": np.array([gripper], np.float32),
            "t": np.array([t]),
        }
        if self._poses is not None:
            with self._lock:
                obs["object_poses"] = self._poses.astype(np.float32)
        if self.kinematics is not None:
            obs.update(self.ee_observation(q))
        for name, cam in self.cameras.items():
            frame = cam.read_latest()
            obs[name] = frame.image if frame is not None else np.zeros(cam.feature.shape, np.uint8)
        return obs

    def send_action(self, action: np.ndarray) -> np.ndarray:
        self._require_connected()
        sent = super().send_action(action)
        self._check_link()
        return sent

    def _check_link(self) -> None:
        """Raise one clear error while the joint states are stale or the link is down."""
        now = self.clock()
        age = now - self._latest[2] if self._latest is not None else float("inf")
        if self.link_up and age <= self.guard.config.state_timeout:
            return
        status = self.guard.status(now)
        message = (
            f"lost the rosbridge link to {self.url}: no joint state for {age:.1f} s "
            f"(link {'up' if self.link_up else 'down'}); the guard is at '{status}' "
            f"(hold, then stop); reconnecting up to {self.config.reconnect_attempts} times"
        )
        if not self._link_down_reported:
            log.error(message)
            self._link_down_reported = True
        raise RobotConnectionError(message)

    def _handle_status(self, proto: Any) -> None:
        proto._message_handlers["status"] = lambda msg: log.warning(
            "rosbridge %s from %s: %s", msg.get("level", "status"), self.url, msg.get("msg")
        )

    def _apply(self, command: Command) -> None:
        if not self.link_up:
            return  # link down: a queued command would arrive stale
        c = self.config
        if command.kind == "stop":  # brake where the arm is (if the command type can say it)
            msg = messages.stop_command(c.command_type, c.joints)
            if msg is not None:
                msg["header"] = messages.header(time.time())
                # Sent STOP_COPIES times: a stop is idempotent, and on a lossy link (a bridge
                # over UDP, a radio) one lost copy would leave the arm going until the next
                # tick's stop or the far side's watchdog.
                for _ in range(STOP_COPIES):
                    self._cmd_topic.publish(msg)
            return
        if command.kind not in ("move", "hold"):
            return
        msg = messages.joint_command(c.command_type, c.joints, command.q)
        if "header" in msg:
            msg["header"] = messages.header(time.time())
        self._cmd_topic.publish(msg)
        if self._grip_topic is not None:
            self._grip_topic.publish({"data": float(command.gripper)})

    # -- services and diagnostics ---------------------------------------------------------------
    def _call(self, service: str | None, srv_type: str, args: dict[str, Any]) -> dict[str, Any]:
        import roslibpy

        if service is None:
            raise ConfigError(f"expected a service name in the profile of {self.name}, found none")
        self._require_connected()
        try:
            return dict(
                roslibpy.Service(self.ros, service, srv_type).call(
                    roslibpy.ServiceRequest(args), timeout=self.config.connect_timeout
                )
            )
        except Exception as exc:
            raise RobotConnectionError(f"service {service} at {self.url} failed: {exc}") from None

    def reset(self) -> dict[str, Any]:
        """Call the profile's reset service (std_srvs/Trigger); the ee target restarts.

        The guard forgets the previous command first, so that no watchdog hold drives the arm
        back to where it was before the reset. Not under the lock: roslibpy's reactor thread
        takes it for every joint state, and it has to be free to deliver the service response.
        """
        with self._lock:
            self.guard.forget_command()
        out = self._call(self.config.reset_service, "std_srvs/Trigger", {})
        # The next action must start from the reset joints: wait for joint states sent after
        # the reset (one already in flight when the service answered may be older).
        self._states_seen = self._poses_seen = 0
        poses_wanted = 2 if self._poses is not None else 0  # object poses after the reset too
        deadline = self.clock() + self.config.connect_timeout
        while (
            self._states_seen < 2 or self._poses_seen < poses_wanted
        ) and self.clock() < deadline:
            time.sleep(0.005)
        with self._lock:
            if self.ee is not None:
                self.ee.reset()
            self.guard.release()  # the next move starts from the measured joints
            self.guard.forget_command()
            self.last_command = None
        return out

    def estop(self, reason: str = "e-stop pressed") -> None:
        """Latch our guard and, if the profile names one, the robot's e-stop service."""
        super().estop(reason)
        if self.config.estop_service and self.link_up:
            self._call(self.config.estop_service, "std_srvs/SetBool", {"data": True})

    def release_estop(self) -> None:
        if self.config.estop_service and self.link_up:
            self._call(self.config.estop_service, "std_srvs/SetBool", {"data": False})
        super().release_estop()

    def task_success(self) -> bool:
        """Ask the far side's referee (the profile's `task_success_service`) whether the task
        prepared at the last reset is done."""
        values = self._call(self.config.task_success_service, "std_srvs/Trigger", {})
        return bool(values.get("success"))

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter through rosapi (e.g. /playworld/task before a reset)."""
        import json

        self._call(
            "/rosapi/set_param", "rosapi/SetParam", {"name": name, "value": json.dumps(value)}
        )

    def probe(self, n: int = 10) -> dict[str, float]:
        """Latency of the link: median round trip (s) and the robot clock's offset (s).

        Calls rosapi's `/rosapi/get_time` `n` times; offset = robot time - local wall time at the
        middle of the round trip (positive: the robot's clock is ahead).
        """
        rtts, offsets = [], []
        for _ in range(n):
            t0 = time.time()
            values = self._call("/rosapi/get_time", "rosapi/GetTime", {})
            t1 = time.time()
            rtts.append(t1 - t0)
            offsets.append(messages.stamp_to_float(values["time"]) - 0.5 * (t0 + t1))
        best = int(np.argmin(rtts))  # the offset from the quickest exchange is the tightest
        return {
            "rtt_s": float(np.median(rtts)),
            "rtt_min_s": float(rtts[best]),
            "clock_offset_s": float(offsets[best]),
        }


ROBOTS.register("rosbridge", RosBridgeRobotConfig, RosBridgeRobot)
CAMERAS.register("rosbridge", RosBridgeCameraConfig, RosBridgeCamera)
