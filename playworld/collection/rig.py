"""The devices of a session: a robot (from a profile) and the cameras the control loop reads.

    with open_rig("sim", action_space="ee_delta") as rig:
        loop = ControlLoop(rig.robot, source, fps, cameras=rig.cameras)

Robot names are profile names or YAML paths (`configs/robots/`); a robot type name (`sim`,
`rosbridge`) stands for its default profile (`DEFAULT_PROFILES`). The twin's cameras are taken
out of the robot and given to the loop, so that their rendering is timed as the loop's camera
stage (and not inside the robot's read); cameras that live on the robot's link (rosbridge) stay
in its observation. Teleop devices are named by type (`keyboard`) or by a YAML file with `type`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playworld.errors import ConfigError

#: A robot type name -> the profile it stands for.
DEFAULT_PROFILES = {"sim": "sim_panda", "rosbridge": "rosbridge_panda"}
#: Robot types whose cameras the loop renders itself (they need the robot's twin).
LOOP_CAMERA_TYPES = {"sim"}


class Rig:
    """A robot and the loop's cameras, connected and disconnected together (robot first)."""

    def __init__(self, robot: Any, camera_configs: dict[str, Any], profile: dict[str, Any]) -> None:
        self.robot = robot
        self.profile = profile
        self._camera_configs = camera_configs
        self.cameras: dict[str, Any] = {}

    def connect(self) -> None:
        from playworld.hardware.camera import CAMERAS

        self.robot.connect()
        for name, cfg in self._camera_configs.items():
            _, cls = CAMERAS.entry(cfg["type"])
            cam = cls(CAMERAS.config_from_dict(cfg))
            cam.twin = getattr(self.robot, "twin", None)
            cam.connect()
            self.cameras[name] = cam

    def disconnect(self) -> None:
        for cam in self.cameras.values():
            cam.disconnect()
        self.cameras = {}
        self.robot.disconnect()

    def __enter__(self) -> Rig:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


def robot_profile(name: str, **overrides: Any) -> dict[str, Any]:
    """The profile mapping of a robot name / profile name / YAML path, with overrides."""
    from playworld.hardware.profiles import read_profile

    name = DEFAULT_PROFILES.get(name, name)
    return read_profile(name, **overrides)


def open_rig(name: str, action_space: str | None = None, **overrides: Any) -> Rig:
    """A disconnected `Rig` for robot `name` (see the module docstring).

    `action_space` (`ee_delta` / `joint_pos`) overrides the profile's (every robot type takes
    both; ee_delta needs the profile's `kinematics`).
    """
    import playworld.hardware  # noqa: F401  (registers every robot and camera type)
    from playworld.hardware.robot import ROBOTS

    data = robot_profile(name, **overrides)
    if action_space is not None:
        data["action_space"] = action_space
    cams: dict[str, Any] = {}
    if data.get("type") in LOOP_CAMERA_TYPES:
        cams, data["cameras"] = dict(data.get("cameras") or {}), {}
    robot = ROBOTS.build(ROBOTS.config_from_dict(data))
    return Rig(robot, cams, data)


def open_teleop(name: str) -> Any:
    """A disconnected teleop device from a type name (`keyboard`), a YAML file with `type`, or
    `replay:STORE[:EPISODE]` (the actions of a stored episode, playworld.collection.replay_teleop).
    """
    import playworld.hardware  # noqa: F401
    from playworld.collection.replay_teleop import PREFIX, ReplayTeleop, ReplayTeleopConfig
    from playworld.hardware.teleop import TELEOPS

    if name.startswith(PREFIX):
        return ReplayTeleop(ReplayTeleopConfig.parse(name))

    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        if not path.is_file():
            raise ConfigError(f"expected a teleop YAML file, found no file at {path}")
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping in {path}, found {type(data).__name__}")
        return TELEOPS.from_dict(data)
    return TELEOPS.from_dict({"type": name})
