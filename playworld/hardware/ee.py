"""End-effector actions and the `kinematics:` section of a robot profile (no MuJoCo needed here).

`ee_delta` (7,) float32: [dx, dy, dz] m and [rx, ry, rz] axis-angle rad in the world (= arm base)
frame, then the gripper opening in [0, 1], each bounded per control step by `EE_DELTA_LOW/HIGH`.
The solver is in playworld.hardware.kinematics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playworld.hardware.errors import ConfigError

EE_ACTION_NAMES = ("dx", "dy", "dz", "rx", "ry", "rz", "gripper")
FINGER_MAX = 0.04  # metres per finger (8 cm opening)
MAX_POS_STEP = 0.05  # metres per control step
MAX_ROT_STEP = 0.3  # radians per control step
#: How far (m, rad) the integrated target may run ahead of the measured pose before it restarts.
TARGET_SLACK = (0.02, 0.15)
#: Box the end-effector target is clamped to (world frame, metres): x0 x1 y0 y1 z0 z1.
WORKSPACE = np.array([0.1, 0.78, -0.55, 0.55, 0.0, 0.6])
#: Bounds of an ee_delta action (7,): dx dy dz rx ry rz gripper.
EE_DELTA_LOW = np.array([-MAX_POS_STEP] * 3 + [-MAX_ROT_STEP] * 3 + [0.0])
EE_DELTA_HIGH = np.array([MAX_POS_STEP] * 3 + [MAX_ROT_STEP] * 3 + [1.0])
#: The Panda of gymnasium-robotics (the twin's arm): MJCF joint names, home posture (rad).
PANDA_MJCF = "gymnasium_robotics/kitchen_franka"
PANDA_MJCF_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
PANDA_HOME = (0.0, -0.4181, 0.0, -2.5794, 0.0, 0.5913, 0.0)
#: Panda links with a collision mesh of the same name (gymnasium-robotics).
PANDA_LINKS = ("link0", "link1", "link2", "link3", "link4", "link5", "link6", "link7", "hand")


@dataclass(frozen=True)
class KinematicsConfig:
    """Where a robot profile's kinematics come from (`kinematics:` in the profile).

    `mjcf`: a path to an MJCF file, or `gymnasium_robotics/kitchen_franka` for the Panda the twin
    uses. `site`: the end-effector site; when `body` is given, the end effector is instead
    `body` plus `offset` (m, in the body frame), for an MJCF without a site there. `joints`: the MJCF's names of the robot's joints, in the profile's
    joint order. `posture` (rad): the null-space pull of the IK. The base frame of the MJCF is
    the world frame of actions, observations and the guard's workspace box.
    """

    mjcf: str = PANDA_MJCF
    site: str | None = "end_effector"
    body: str | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    joints: tuple[str, ...] = PANDA_MJCF_JOINTS
    posture: tuple[float, ...] = PANDA_HOME

    def __post_init__(self) -> None:
        if self.site is None and self.body is None:
            raise ConfigError(
                "expected kinematics.site (or kinematics.body and offset), found neither"
            )
        if len(self.posture) != len(self.joints):
            raise ConfigError(
                f"expected one kinematics.posture value per joint ({len(self.joints)}), found "
                f"{len(self.posture)}"
            )
        if len(self.offset) != 3:
            raise ConfigError(f"expected kinematics.offset (x, y, z) m, found {self.offset}")
