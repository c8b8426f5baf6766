"""The twin as a ROS arm on the rosbridge protocol (`playworld twin serve --port 9090`).

It serves what a rosbridge robot profile (`configs/robots/rosbridge_panda.yaml`) expects:

    publishes   <joint_state_topic>      sensor_msgs/JointState      arm + finger positions and
                                                                      velocities, each tick
                <camera topic>           sensor_msgs/CompressedImage  JPEG, at the camera's fps
    follows     <command_topic>          trajectory_msgs/JointTrajectory | std_msgs/Float64MultiArray
                                                                      (a JointTrajectory without
                                                                      points: brake where it is)
                <gripper_topic>          std_msgs/Float64             opening 0..1
                <perception.topic>       geometry_msgs/PoseArray      object poses (perception.objects
                                                                      order; all-zero: not detected),
                                                                      `<topic>/names` std_msgs/String
    services    <reset_service>          std_srvs/Trigger             home the arm, new objects; with
                                                                      rosapi param /playworld/task set,
                                                                      prepared for that task (seed:
                                                                      /playworld/seed)
                <estop_service>          std_srvs/SetBool             true latches, false releases
                /playworld/task_success  std_srvs/Trigger             the task's predicate on the twin's
                                                                      state now (the referee)

The twin steps in real time at the profile's `fps` (its control rate) on the same `ControlLoop`
that records, evaluates and deploys (the source is the last commanded target, the robot a
`SimRobot`); like a position-controlled arm it keeps going to the last commanded target, through
its own `SafetyGuard` (the profile's limits). Service calls that change the twin (reset) run in
the loop's thread between two ticks, so no tick ever mixes states from before and after them. Commands that
are malformed get a rosbridge status error; commands stamped older than `stale_after` seconds
are refused. When commands stop (a stalled policy, a lost link) for `command_timeout_periods`
control periods, the arm brakes where it is instead of finishing the way to the last target.

Rehearsal: `network` (a `NetworkConfig`) delays and loses messages both ways; `pose_noise` (a
`PoseNoise`) perturbs and drops object detections.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from playworld.collection.loop import ControlLoop, Tick
from playworld.hardware.rosbridge import messages
from playworld.hardware.rosbridge.server import RosBridgeServer

log = logging.getLogger(__name__)


class TwinServer:
    """A `SimRobot` stepped in real time behind a `RosBridgeServer`."""

    def __init__(
        self,
        profile: str = "rosbridge_panda",
        host: str = "127.0.0.1",
        port: int = 9090,
        twin: str | None = None,
        seed: int = 0,
        stale_after: float = 0.5,
        network: Any = None,
        pose_noise: Any = None,
        command_timeout_periods: int = 2,
    ) -> None:
        from playworld.hardware.profiles import read_profile
        from playworld.hardware.rosbridge.netem import NetworkConditions
        from playworld.sim.perception import OBJECTS, PoseNoise
        from playworld.sim.robot import SimRobot, SimRobotConfig

        p = read_profile(profile)
        self.profile = p
        cameras = {
            name: {
                "type": "sim",
                "camera": name if name in ("front", "wrist") else "front",
                **{k: cfg[k] for k in ("height", "width", "fps") if k in cfg},
            }
            for name, cfg in (p.get("cameras") or {}).items()
        }
        self.camera_topics = {n: c["topic"] for n, c in (p.get("cameras") or {}).items()}
        from playworld.registry import build_dataclass

        self.robot = SimRobot(
            build_dataclass(
                SimRobotConfig,
                {
                    "name": "twin",
                    "fps": p.get("fps", 10.0),  # the profile's rate: the twin steps at it
                    "guard": p["guard"],
                    "joints": p["joints"],
                    "cameras": cameras,
                    "twin": twin,
                    "seed": seed,
                },
                where=f"profile {profile}",
            )
        )
        self.joints = tuple(p["joints"])
        self.gripper_joints = tuple(p.get("gripper_joints", ()))
        self.max_width = float(p.get("gripper_max_width", 0.08))
        self.command_type = p.get("command_type", "trajectory_msgs/JointTrajectory")
        self.stale_after = stale_after
        self.network = (
            NetworkConditions(network) if network is not None and network.active else None
        )
        self.server = RosBridgeServer(host=host, port=port, network=self.network)
        perception = p.get("perception") or {}
        self.perception_topic: str | None = perception.get("topic")
        self.objects = tuple(perception.get("objects", OBJECTS))
        self.perception_fps = float(perception.get("fps", p.get("fps", 10.0)))
        self.pose_noise = pose_noise if pose_noise is not None else PoseNoise()
        self._pose_rng = self.pose_noise.rng()
        self.command_timeout_periods = int(command_timeout_periods)
        self._quiet_ticks = 0  # control periods without a new command
        self._task = None  # (Task, start state) after a reset with /playworld/task set
        self.brakes = 0  # times the arm braked because commands stopped
        self._target: np.ndarray | None = None  # (7,) rad
        self._braking = False  # a stop message latched `_target` where the arm was
        self._gripper: float | None = None
        self._commands = 0
        self.stops = 0  # stop messages received
        self._stop = threading.Event()
        self.loop: ControlLoop | None = None
        self.metrics: dict[str, Any] | None = None  # the loop's last summary (one a minute)
        self.metrics_period_s = 60.0  # s of measurements per summary (set before start())
        self._rotate_metrics = False
        self._requests: queue.Queue[tuple[Callable[[], Any], list[Any], threading.Event]] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> TwinServer:
        """Start the websocket server and the simulation thread; returns once both run."""
        p, s = self.profile, self.server
        s.advertise(p.get("joint_state_topic", "/joint_states"), "sensor_msgs/JointState")
        for topic in self.camera_topics.values():
            s.advertise(topic, "sensor_msgs/CompressedImage")
        s.on_publish(p["command_topic"], self.command_type, self._on_command)
        if p.get("gripper_topic"):
            s.on_publish(p["gripper_topic"], "std_msgs/Float64", self._on_gripper)
        if p.get("reset_service"):
            s.add_service(p["reset_service"], "std_srvs/Trigger", self._reset)
        if p.get("estop_service"):
            s.add_service(p["estop_service"], "std_srvs/SetBool", self._estop)
        s.add_service("/playworld/task_success", "std_srvs/Trigger", self._task_success)
        if self.perception_topic:
            s.advertise(self.perception_topic, "geometry_msgs/PoseArray")
            s.advertise(f"{self.perception_topic}/names", "std_msgs/String")
        s.start()
        self._thread = threading.Thread(target=self._run, name="twin-sim", daemon=True)
        self._thread.start()
        self._started.wait(60.0)
        if self._error is not None:
            self.server.stop()
            raise self._error
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.loop is not None:
            self.loop.stop()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self.server.stop()

    def __enter__(self) -> TwinServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int | None:
        return self.server.port

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C), then stop."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # -- handlers (loop / worker threads) -------------------------------------------------------
    def _on_command(self, msg: dict[str, Any], client: int) -> None:
        stamp = messages.stamp_to_float(msg.get("header", {}).get("stamp", {}))
        if stamp > 0 and time.time() - stamp > self.stale_after:
            raise ValueError(f"refused a stale command stamped {time.time() - stamp:.2f} s ago")
        if messages.is_stop_command(self.command_type, msg):
            # Brake where the arm is now; repeated stops keep that point.
            self.stops += 1
            if not self._braking:
                with self.robot._lock:
                    self._target = self.robot._joints()[0]
                self._braking = True
            self._quiet_ticks = 0
            return
        q = messages.parse_joint_command(self.command_type, msg, self.joints)
        self._braking = False
        self._target = q  # NaN entries reach the guard, which refuses them
        self._commands += 1
        self._quiet_ticks = 0

    def _on_gripper(self, msg: dict[str, Any], client: int) -> None:
        value = msg.get("data")
        if not isinstance(value, int | float):
            raise ValueError(f"expected std_msgs/Float64 data as a number, found {value!r}")
        self._gripper = float(value)

    def _reset(self, args: dict[str, Any]) -> dict[str, Any]:
        params = self.server.params
        task = params.get("/playworld/task")
        seed = params.get("/playworld/seed")
        self._in_loop(lambda: self._do_reset(str(task) if task else None, seed))
        return {"success": True, "message": f"twin reset{f' for {task}' if task else ''}"}

    def _do_reset(self, task: str | None, seed: Any) -> None:
        from playworld.sim.tasks import get_task, prepare_task, task_rng

        self._target, self._gripper = None, None
        self.robot.reset(int(seed) if seed is not None else None)
        self._task = None
        if task:
            t = get_task(task)
            start = prepare_task(self.robot.twin, t, task_rng(seed))
            self.robot._observe()
            self._task = (t, start)

    def _in_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run `fn` in the loop's thread between two ticks; its result (or its exception)."""
        box: list[Any] = []
        done = threading.Event()
        self._requests.put((fn, box, done))
        if not done.wait(timeout):
            raise RuntimeError(f"the twin's control loop did not answer within {timeout:g} s")
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    def _task_success(self, args: dict[str, Any]) -> dict[str, Any]:
        if self._task is None:
            return {"success": False, "message": "no task: set rosapi param /playworld/task, reset"}
        task, start = self._task
        with self.robot._lock:
            now = self.robot.twin.get_state()
        return {"success": bool(task.success(start, now)), "message": task.name}

    def _estop(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("data", True):
            self.robot.estop("e-stop service")
            return {"success": True, "message": "e-stop latched"}
        self.robot.release_estop()
        self._target = None  # resume holding where the arm is
        return {"success": True, "message": "e-stop released"}

    # -- simulation thread -----------------------------------------------------------------------
    def _run(self) -> None:
        robot = self.robot
        try:
            robot.connect()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        dt = robot.twin.config.dt
        pose_every = max(1, round(1.0 / (self.perception_fps * dt)))
        frame_every = {
            n: max(1, round(1.0 / (c.config.fps * dt))) for n, c in robot.cameras.items()
        }

        def on_tick(tick: Tick) -> bool:
            self._publish_state()
            if self.perception_topic and tick.index % pose_every == 0:
                self._publish_poses()
            for name, cam in robot.cameras.items():
                if tick.index % frame_every[name] == 0:
                    self._publish_image(name, cam)
            self._serve_requests()
            # A minute of measurements at a time keeps them small on a server that runs for
            # days (`metrics`: the last minute's summary); one run keeps one tick grid, whose
            # phase the clients align to. (Rotated by the next tick's source: this tick's
            # measurement is still being written.)
            self._rotate_metrics = (tick.index + 1) % metrics_ticks == 0
            return not self._stop.is_set()  # (also when `stop()` came before the run began)

        # Cameras are rendered and published by `on_tick` at their own rate, not every tick.
        self.loop = ControlLoop(_ServedArm(robot), self._follow, robot.fps)
        metrics_ticks = max(1, round(self.metrics_period_s * robot.fps))
        self._started.set()
        try:
            self.loop.run(on_tick=on_tick)  # until `stop()`
        except Exception:
            log.exception("the twin simulation thread failed")
        finally:
            self._serve_requests(refuse=True)
            robot.disconnect()

    def _follow(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The loop's source: the last commanded target, or hold (brake) where the arm is."""
        if self._rotate_metrics:
            self.metrics = self.loop.metrics.summary()
            self.loop.reset_metrics()
            self._rotate_metrics = False
        with self.robot._lock:
            q, gripper = self.robot._joints()
        self._quiet_ticks += 1
        if self._target is not None and self._quiet_ticks > self.command_timeout_periods:
            self._target = None  # commands stopped: brake here, do not go on
            self.brakes += 1
        target = self._target if self._target is not None else q
        grip = self._gripper if self._gripper is not None else gripper
        return np.concatenate([target, [grip]])

    def _serve_requests(self, refuse: bool = False) -> None:
        while True:
            try:
                fn, box, done = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                if refuse:
                    raise RuntimeError("the twin's control loop stopped")
                box.append(fn())
            except BaseException as exc:  # handed to the caller's thread
                box.append(exc)
            done.set()

    def _publish_state(self) -> None:
        robot = self.robot
        with robot._lock:
            twin = robot.twin
            q, _ = robot._joints()
            qd = twin.data.qvel[twin.arm_dofs]
            fingers = twin.data.qpos[twin.finger_qadr].copy()
            fingers_d = twin.data.qvel[twin.finger_dofs]
        n = len(self.gripper_joints)
        names = self.joints + self.gripper_joints
        positions = np.concatenate([q, fingers[:n]])
        velocities = np.concatenate([qd, fingers_d[:n]])
        self.server.publish(
            self.profile.get("joint_state_topic", "/joint_states"),
            messages.joint_state(names, positions, time.time(), velocities),
        )

    def _publish_poses(self) -> None:
        from playworld.sim.perception import object_poses

        with self.robot._lock:
            poses = object_poses(self.robot.twin, self.objects)
        poses = self.pose_noise.apply(poses, self._pose_rng)
        now = time.time()
        self.server.publish(self.perception_topic, messages.pose_array(poses, now))
        self.server.publish(f"{self.perception_topic}/names", {"data": ",".join(self.objects)})

    def _publish_image(self, name: str, cam: Any) -> None:
        import cv2

        with self.robot._lock:
            image = cam.read().image
        ok, jpeg = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            msg = messages.compressed_image(jpeg.tobytes(), time.time(), "jpeg", name)
            self.server.publish(self.camera_topics[name], msg)


class _ServedArm:
    """The served `SimRobot` as the server's loop sees it: observations are the joints only.
    Its cameras are rendered when their frames are published, at their own rate, not every
    tick; a tick that rendered them too published its joint state that much later, and a
    client acting on that state met the arm's next tick that much less often."""

    def __init__(self, robot: Any) -> None:
        self.robot = robot

    def __getattr__(self, name: str) -> Any:  # features, guard, send_action, last_command
        return getattr(self.robot, name)

    def get_observation(self) -> dict[str, np.ndarray]:
        with self.robot._lock:
            q, gripper = self.robot._joints()
            t = float(self.robot.twin.data.time)
        return {"joint_pos": q, "gripper": np.array([gripper]), "t": np.array([t])}
