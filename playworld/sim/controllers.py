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

import math
from typing import NamedTuple

import mujoco
import numpy as np

from playworld.sim.errors import SimError

FINGER_MAX = 0.04  # metres per finger (8 cm opening)
MAX_POS_STEP = 0.05  # metres per control step
MAX_ROT_STEP = 0.3  # radians per control step
#: How far (m, rad) the integrated target may run ahead of the measured pose before it restarts.
TARGET_SLACK = (0.02, 0.15)
#: Box the end-effector target is clamped to (world frame, metres): x0 x1 y0 y1 z0 z1.
WORKSPACE = np.array([0.1, 0.78, -0.55, 0.55, 0.0, 0.6])
_WORKSPACE_LO, _WORKSPACE_HI = WORKSPACE[0::2].copy(), WORKSPACE[1::2].copy()
_COS_HALF_SLACK = math.cos(TARGET_SLACK[1] / 2)


def quat_error(quat_target: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) rad, world frame, rotating `quat` onto `quat_target` (both wxyz (4,))."""
    vel = np.empty(3)
    _quat_error_into(vel, quat_target, quat, (np.empty(4), np.empty(4)))
    return vel


def _quat_error_into(
    out: np.ndarray, quat_target: np.ndarray, quat: np.ndarray, buf: tuple[np.ndarray, np.ndarray]
) -> None:
    """`quat_error` written into `out` (3,), using two (4,) scratch buffers."""
    conj, q_err = buf
    mujoco.mju_negQuat(conj, quat)
    mujoco.mju_mulQuat(q_err, quat_target, conj)
    if q_err[0] < 0:  # shortest way round
        np.negative(q_err, out=q_err)
    mujoco.mju_quat2Vel(out, q_err, 1.0)


def rotate_quat(quat: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """`quat` (4,) wxyz rotated by the world-frame axis-angle `rotvec` (3,) rad."""
    dq = np.empty(4)
    angle = math.sqrt(rotvec @ rotvec)
    if angle < 1e-12:
        return np.array(quat, dtype=float)
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


def _index(idx: np.ndarray) -> slice | np.ndarray:
    """A slice when `idx` is a contiguous ascending run (views, no copy), else `idx` itself."""
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


class DiffIK:
    """Differential IK for one site over a set of joints, on a private scratch `MjData`.

    Each iteration: forward kinematics, site Jacobian (6, n), a damped least-squares step toward
    the target pose plus a null-space pull toward `posture`, clipped to the joint limits. The
    solver runs once per control step, so it reuses preallocated buffers and factorises the
    (6, 6) damped system with MuJoCo's Cholesky instead of a general inverse.
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
        self._q_index = _index(self.qadr)
        self._dof_index = _index(self.dofs)
        self._jac_full = np.zeros((6, model.nv))  # rows: translation (3), rotation (3)
        self._err = np.empty(6)
        self._quat = np.empty(4)
        self._scratch_quat = (np.empty(4), np.empty(4))
        self._gram = np.empty((6, 6))
        self._y = np.empty(6)
        self._r = np.empty(6)
        self._pull = np.empty(len(jnt))
        # Views, made once: into the buffers above and into the scratch data (MjData arrays
        # never move).
        self._jacp, self._jacr = self._jac_full[:3], self._jac_full[3:]
        self._err_pos, self._err_rot = self._err[:3], self._err[3:]
        self._site_pos = self.scratch.site_xpos[self.site_id]
        self._site_mat = self.scratch.site_xmat[self.site_id]

    def _linearize(self) -> np.ndarray:
        """Kinematics and the site Jacobian at the scratch `qpos`; returns a (6, n) view."""
        m, d = self.model, self.scratch
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)  # mj_jacSite reads the com-based dof axes
        mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self.site_id)
        mujoco.mju_mat2Quat(self._quat, self._site_mat)
        return self._jac_full[:, self._dof_index]

    def forward(self, qpos_full: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Site position (3,), quaternion wxyz (4,) and Jacobian (6, n) at full `qpos` (nq,)."""
        self.scratch.qpos[:] = qpos_full
        jac = self._linearize()
        return self._site_pos.copy(), self._quat.copy(), jac.copy()

    def solve(
        self,
        qpos_full: np.ndarray,
        target_pos: np.ndarray,
        target_quat: np.ndarray,
        iterations: int = 1,
        tol: float = 2e-4,
    ) -> IKResult:
        """Joint positions (n,) bringing the site to the target pose, starting at `qpos_full`.

        With J^+ = J^T (J J^T + lambda^2 I)^-1 and the posture pull p = k (q_posture - q), the
        step J^+ e + (I - J^+ J) p is computed as p + J^+ (e - J p): one (6, 6) solve.
        """
        d = self.scratch
        d.qpos[:] = qpos_full
        q = d.qpos[self._q_index].copy()  # (n,)
        err, gram, y, r, pull = self._err, self._gram, self._y, self._r, self._pull
        err_norm, it = np.inf, 0
        for it in range(1, iterations + 1):  # noqa: B007 - reported in the result
            jac = self._linearize()
            np.subtract(target_pos, self._site_pos, out=self._err_pos)
            _quat_error_into(self._err_rot, target_quat, self._quat, self._scratch_quat)
            err_norm = math.sqrt(err @ err)
            if err_norm < tol:
                break
            np.subtract(self.posture, q, out=pull)
            pull *= self.posture_gain
            np.matmul(jac, jac.T, out=gram)
            gram += self._damp_eye
            mujoco.mju_cholFactor(gram, 0.0)
            np.subtract(err, np.matmul(jac, pull, out=r), out=r)
            mujoco.mju_cholSolve(y, gram, r)
            q += pull
            q += jac.T @ y
            np.maximum(q, self.lower, out=q)
            np.minimum(q, self.upper, out=q)
            d.qpos[self._q_index] = q
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
    """End-effector deltas through differential IK (see the module docstring)."""

    name = "ee_delta"
    low = np.array([-MAX_POS_STEP] * 3 + [-MAX_ROT_STEP] * 3 + [0.0])
    high = np.array([MAX_POS_STEP] * 3 + [MAX_ROT_STEP] * 3 + [1.0])
    describe = ("dx", "dy", "dz", "rx", "ry", "rz", "gripper")

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        tw, ik = self.twin, self.twin.ik
        d = tw.data
        pos = d.site_xpos[tw.ee_site]  # measured pose; a view, read before any write
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[tw.ee_site])
        seed = d.qpos
        if tw.ee_target is not None:
            # Integrating the previous target (not the measurement) keeps straight lines
            # straight while the arm still moves; far behind (contact, limits) it restarts.
            base_pos, base_quat = tw.ee_target
            gap = base_pos - pos
            # |<q1, q2>| = cos(angle / 2): the rotation gap without building the error.
            lagging = gap @ gap > TARGET_SLACK[0] ** 2 or abs(base_quat @ quat) < _COS_HALF_SLACK
            if not lagging:
                pos, quat = base_pos, base_quat
                seed = d.qpos.copy()
                seed[ik._q_index] = d.ctrl[:7]  # the joints of the last target: a warm start
        target_pos = np.minimum(np.maximum(pos + action[:3], _WORKSPACE_LO), _WORKSPACE_HI)
        target_quat = rotate_quat(quat, action[3:6])
        tw.ee_target = (target_pos, target_quat)
        ctrl = np.empty(self.twin.model.nu)
        ctrl[:7] = ik.solve(seed, target_pos, target_quat).qpos
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
        self.twin.ee_target = None
        ctrl = np.empty(self.twin.model.nu)
        ctrl[:7] = action[:7]
        ctrl[7:] = _gripper_ctrl(action[7])
        return ctrl


ACTION_SPACES: dict[str, type[ActionSpace]] = {
    EEDeltaSpace.name: EEDeltaSpace,
    JointPosSpace.name: JointPosSpace,
}
