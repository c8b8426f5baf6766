"""playworld.hardware: robots, cameras and teleop devices behind small interfaces.

    Robot, Camera, Teleop                   the interfaces (robot.py, camera.py, teleop.py)
    ROBOTS, CAMERAS, TELEOPS                registries: type name -> (config, implementation)
    SafetyGuard, GuardConfig                between every action source and every robot
    KinematicsConfig (ee.py), ArmKinematics FK/IK from the arm's MJCF, the ee-delta controller
      and EEDeltaController (kinematics.py) every robot (and the twin) runs for ee_delta actions
    load_profile, robot_from_profile        YAML robot profiles (configs/robots/)

Implementations register themselves on import below; their heavy dependencies (mujoco, roslibpy,
pygame, hidapi) load only when a device connects. The twin's robot and camera (`sim`) live in
playworld.sim and load the first time a profile names them.
"""

# Implementation modules register themselves next to their configs on import.
from playworld.hardware import gamepad, keyboard, opencv_camera, spacemouse  # noqa: F401
from playworld.hardware.camera import CAMERAS, Camera, CameraConfig, Frame
from playworld.hardware.guard import Command, GuardConfig, SafetyGuard
from playworld.hardware.profiles import load_profile, robot_from_profile
from playworld.hardware.robot import ROBOTS, Robot, RobotConfig
from playworld.hardware.rosbridge import robot as _rosbridge_robot  # noqa: F401
from playworld.hardware.teleop import TELEOPS, Teleop, TeleopConfig, TeleopEvent

__all__ = [
    "CAMERAS",
    "ROBOTS",
    "TELEOPS",
    "Camera",
    "CameraConfig",
    "Command",
    "Frame",
    "GuardConfig",
    "Robot",
    "RobotConfig",
    "SafetyGuard",
    "Teleop",
    "TeleopConfig",
    "TeleopEvent",
    "load_profile",
    "robot_from_profile",
]
