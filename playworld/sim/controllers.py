"""Controllers: differential IK (damped least squares) and the action spaces built on it.

An action space turns a policy action into actuator targets `ctrl` (nu,): seven arm joint
targets (rad) and two finger targets (m). Registry: `ACTION_SPACES[name]`.

    ee_delta   (7,) float32: [dx, dy, dz] metres and [rx, ry, rz] axis-angle radians, both in
               the world frame, then gripper opening in [0, 1] (0 closed, 1 open 8 cm). Deltas
               move the controller's end-effector target, which starts at the measured pose
               after a reset or a sync and restarts there whenever the arm lags more than
               `TARGET_SLACK` behind it.
    joint_pos  (8,) float32: seven absolute arm joint targets (rad), then gripper in [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import mujoco
import numpy as np

FINGER_MAX = 0.04  # metres per finger (8 cm opening)
MAX_POS_STEP = 0.05  # metres per control step
MAX_ROT_STEP = 0.3  # radians per control step
#: How far (m, rad) the integrated target may run ahead of the measured pose before it restarts.
TARGET_SLACK = (0.02, 0.15)
#: Box the end-effector target is clamped to (world frame, metres): x0 x1 y0 y1 z0 z1.
WORKSPACE = np.array([0.1, 0.78, -0.55, 0.55, 0.0, 0.6])


def quat_error(quat_target: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) rad, world frame, rotating `quat` onto `quat_target` (both wxyz (4,))."""
    conj = np.array([quat[0], -quat[1], -quat[2], -quat[3]])
    q_err = np.empty(4)
    mujoco.mju_mulQuat(q_err, quat_target, conj)
    if q_err[0] < 0:  # shortest way round
        q_err = -q_err
    vel = np.empty(3)
    mujoco.mju_quat2Vel(vel, q_err, 1.0)
    return vel


def rotate_quat(quat: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """`quat` (4,) wxyz rotated by the world-frame axis-angle `rotvec` (3,) rad."""
    dq = np.empty(4)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return quat.copy()
    mujoco.mju_axisAngle2Quat(dq, rotvec / angle, angle)
    out = np.empty(4)
    mujoco.mju_mulQuat(out, dq, quat)
    return out


def dls_step(jac: np.ndarray, err: np.ndarray, damping: float) -> np.ndarray:
    """Damped least-squares joint step dq = J^T (J J^T + lambda^2 I)^-1 e.

    jac (k, n), err (k,) -> dq (n,). It minimises |J dq - e|^2 + lambda^2 |dq|^2, which stays
    bounded near singularities where the pseudo-inverse blows up.
    """
    k = jac.shape[0]
    return jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(k), err)


class IKResult(NamedTuple):
    """Outcome of `solve_ik`."""

    qpos: np.ndarray  # (n,) joint solution, rad, within limits
    error: float  # final pose error norm (metres + radians)
    iterations: int


class DiffIK:
    """Differential IK for one site over a set of joints, on a private scratch `MjData`.

    Each iteration: forward kinematics, site Jacobian (6, n), a damped least-squares step toward
    the target pose plus a null-space pull toward `posture`, clipped to the joint limits.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        site: str,
        joints: tuple[str, ...],
        posture: np.ndarray,
        damping: float = 0.02,
        posture_gain: float = 0.1,
    ) -> None:
        self.model = model
        self.scratch = mujoco.MjData(model)
        self.site_id = model.site(site).id
        jnt = [model.joint(j) for j in joints]
        self.qadr = np.array([j.qposadr[0] for j in jnt])  # (n,)
        self.dofs = np.array([j.dofadr[0] for j in jnt])  # (n,)
        self.lower = np.array([j.range[0] for j in jnt])
        self.upper = np.array([j.range[1] for j in jnt])
        self.posture = np.asarray(posture, float)
        self.damping = damping
        self.posture_gain = posture_gain
        self._damp_eye = damping**2 * np.eye(6)
        self._eye = np.eye(len(jnt))

    def forward(self, qpos_full: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Site position (3,), quaternion wxyz (4,) and Jacobian (6, n) at full `qpos` (nq,)."""
        d = self.scratch
        d.qpos[:] = qpos_full
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, d, jacp, jacr, self.site_id)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self.site_id])
        jac = np.vstack([jacp[:, self.dofs], jacr[:, self.dofs]])  # (6, n)
        return d.site_xpos[self.site_id].copy(), quat, jac

    def solve(
        self,
        qpos_full: np.ndarray,
        target_pos: np.ndarray,
        target_quat: np.ndarray,
        iterations: int = 1,
        tol: float = 2e-4,
    ) -> IKResult:
        """Joint positions (n,) bringing the site to the target pose, starting at `qpos_full`."""
        q_full = np.array(qpos_full, float)
        q = q_full[self.qadr]
        err_norm, it = np.inf, 0
        for it in range(1, iterations + 1):  # noqa: B007 - reported in the result
            pos, quat, jac = self.forward(q_full)
            err = np.concatenate([target_pos - pos, quat_error(target_quat, quat)])
            err_norm = float(np.linalg.norm(err))
            if err_norm < tol:
                break
            # dls_step(jac, err, damping) written out, sharing the damped pseudo-inverse with
            # the null-space posture term that keeps the redundant elbow away from its limits.
            jpinv = jac.T @ np.linalg.inv(jac @ jac.T + self._damp_eye)  # (n, 6)
            dq = jpinv @ err + (self._eye - jpinv @ jac) @ (self.posture_gain * (self.posture - q))
            q = np.clip(q + dq, self.lower, self.upper)
            q_full[self.qadr] = q
        return IKResult(q, err_norm, it)


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
        from playworld.sim.errors import SimError

        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.shape:
            raise SimError(
                f"expected a {self.name} action of shape {self.shape}, found {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            raise SimError(f"expected a finite {self.name} action, found {action}")
        return np.clip(action, self.low, self.high)

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        """Actuator targets (nu,) for a clipped action."""
        raise NotImplementedError


def _gripper_ctrl(g: float) -> np.ndarray:
    return np.full(2, float(np.clip(g, 0.0, 1.0)) * FINGER_MAX)


class EEDeltaSpace(ActionSpace):
    """End-effector deltas through differential IK (see the module docstring)."""

    name = "ee_delta"
    low = np.array([-MAX_POS_STEP] * 3 + [-MAX_ROT_STEP] * 3 + [0.0])
    high = np.array([MAX_POS_STEP] * 3 + [MAX_ROT_STEP] * 3 + [1.0])
    describe = ("dx", "dy", "dz", "rx", "ry", "rz", "gripper")

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        tw = self.twin
        pos, quat = tw.ee_pose()
        lagging = True
        if tw.ee_target is not None:
            # Integrating the previous target (not the measurement) keeps straight lines
            # straight while the arm still moves; far behind (contact, limits) it restarts.
            base_pos, base_quat = tw.ee_target
            lagging = np.linalg.norm(base_pos - pos) > TARGET_SLACK[0] or (
                np.linalg.norm(quat_error(base_quat, quat)) > TARGET_SLACK[1]
            )
        seed = tw.data.qpos
        if tw.ee_target is not None and not lagging:
            pos, quat = base_pos, base_quat
            seed = tw.data.qpos.copy()
            seed[tw.ik.qadr] = tw.data.ctrl[:7]  # the joints of the last target: a warm start
        target_pos = np.clip(pos + action[:3], WORKSPACE[0::2], WORKSPACE[1::2])
        target_quat = rotate_quat(quat, action[3:6])
        tw.ee_target = (target_pos, target_quat)
        q = tw.ik.solve(seed, target_pos, target_quat).qpos
        return np.concatenate([q, _gripper_ctrl(action[6])])


class JointPosSpace(ActionSpace):
    """Absolute arm joint targets and the gripper opening (see the module docstring)."""

    name = "joint_pos"
    describe = tuple(f"q{i}" for i in range(1, 8)) + ("gripper",)

    def __init__(self, twin) -> None:
        super().__init__(twin)
        self.low = np.concatenate([twin.ik.lower, [0.0]])
        self.high = np.concatenate([twin.ik.upper, [1.0]])

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        self.twin.ee_target = None
        return np.concatenate([action[:7], _gripper_ctrl(action[7])])


ACTION_SPACES: dict[str, type[ActionSpace]] = {
    EEDeltaSpace.name: EEDeltaSpace,
    JointPosSpace.name: JointPosSpace,
}
