"""The twin's action spaces: policy actions -> actuator targets `ctrl` (nu,).

`ctrl` is seven arm joint targets (rad) and two finger targets (m). Registry: `ACTION_SPACES`.

    ee_delta   (7,) float32: [dx, dy, dz] m and [rx, ry, rz] axis-angle rad (world frame), then
               gripper opening in [0, 1] (0 closed, 1 open 8 cm): the twin's
               `EEDeltaController` (playworld.hardware.kinematics, the same code every Robot
               uses) integrates the pose target and solves the IK.
    joint_pos  (8,) float32: seven absolute arm joint targets (rad), then gripper in [0, 1].
"""

from __future__ import annotations

import mujoco
import numpy as np

from playworld.hardware.ee import EE_DELTA_HIGH, EE_DELTA_LOW, FINGER_MAX
from playworld.hardware.kinematics import Pose
from playworld.sim.errors import SimError


class ActionSpace:
    """Maps actions to actuator targets. Subclasses set `name`, `low`, `high`, `describe`."""

    name = ""
    low: np.ndarray
    high: np.ndarray
    describe: tuple[str, ...] = ()

    def __init__(self, twin) -> None:  # twin: playworld.sim.twin.Twin (avoids a cycle)
        self.twin = twin

    @property
    def shape(self) -> tuple[int, ...]:
        return self.low.shape

    def clip(self, action: np.ndarray) -> np.ndarray:
        """The action actually applied: float64, clipped to [low, high]; NaN raises."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.shape:
            raise SimError(
                f"expected a {self.name} action of shape {self.shape}, found {action.shape}"
            )
        if not np.isfinite(action).all():
            raise SimError(f"expected a finite {self.name} action, found {action}")
        return np.minimum(np.maximum(action, self.low), self.high)  # np.clip costs 2x more

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        """Actuator targets (nu,) for a clipped action."""
        raise NotImplementedError


def _gripper_ctrl(g: float) -> float:
    """Finger position target (m) for a gripper opening in [0, 1]."""
    return min(max(float(g), 0.0), 1.0) * FINGER_MAX


class EEDeltaSpace(ActionSpace):
    """End-effector deltas through the twin's `EEDeltaController` (see the module docstring)."""

    name = "ee_delta"
    low = EE_DELTA_LOW
    high = EE_DELTA_HIGH
    describe = ("dx", "dy", "dz", "rx", "ry", "rz", "gripper")

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        tw = self.twin
        d = tw.data
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[tw.ee_site])
        measured = Pose(d.site_xpos[tw.ee_site], quat)  # read before the step moves it
        # The joints of the last target (ctrl) warm-start the IK while the target continues.
        res = tw.ee.joint_target(d.qpos, action[:6], warm=d.ctrl[:7], measured=measured)
        ctrl = np.empty(tw.model.nu)
        ctrl[:7] = res.qpos
        ctrl[7:] = _gripper_ctrl(action[6])
        return ctrl


class JointPosSpace(ActionSpace):
    """Absolute arm joint targets and the gripper opening (see the module docstring)."""

    name = "joint_pos"
    describe = tuple(f"q{i}" for i in range(1, 8)) + ("gripper",)

    def __init__(self, twin) -> None:
        super().__init__(twin)
        self.low = np.concatenate([twin.ik.lower, [0.0]])
        self.high = np.concatenate([twin.ik.upper, [1.0]])

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        self.twin.ee.reset()
        ctrl = np.empty(self.twin.model.nu)
        ctrl[:7] = action[:7]
        ctrl[7:] = _gripper_ctrl(action[7])
        return ctrl


ACTION_SPACES: dict[str, type[ActionSpace]] = {
    EEDeltaSpace.name: EEDeltaSpace,
    JointPosSpace.name: JointPosSpace,
}
