"""Arm kinematics from an MJCF: forward kinematics, the site Jacobian, damped least-squares IK,
and the end-effector delta controller every `Robot` uses (the twin, a rosbridge arm).

    kin = ArmKinematics(KinematicsConfig())      # the Panda of gymnasium-robotics (the twin's arm)
    pose = kin.fk(q)                             # Pose(pos (3,) m, quat (4,) wxyz), base frame
    jac = kin.jacobian(q)                        # (6, n): rows dx dy dz, wx wy wz
    ctrl = EEDeltaController(kin.ik)
    q_target = ctrl.joint_target(kin.full(q), delta[:6]).qpos   # (n,) rad

Action `ee_delta` (7,) float32: [dx, dy, dz] metres and [rx, ry, rz] axis-angle radians, both in
the world (= arm base) frame, then the gripper opening in [0, 1]. Deltas move a pose *target*
that starts at the measured pose and restarts there whenever the arm lags more than
`TARGET_SLACK` behind it (contact, limits); integrating the previous target rather than the
measurement keeps straight lines straight while the arm is still moving. The target is clamped
to `WORKSPACE`.

Why our damped least squares and not `mink` (measured by `python bench/kinematics.py`: both
track the scripted experts' pose targets of all 17 tasks, 803 control steps, one solve per step,
on this arm-only model, interleaved in one run on 2 shared, loaded CPU cores): the same accuracy
(mean position error 2.9 mm DLS vs 3.2 mm mink, max 23 vs 24 mm; mean rotation error 0.23 deg
both: a step is at most a 5 cm / 0.3 rad delta, which one linearised step nearly closes either
way), and the DLS step costs ~20 µs against ~100-150 µs for mink's (Configuration + FrameTask +
PostureTask, a daqp QP with the joint limits as constraints): 5-7x across runs. The DLS step clips
to the joint limits instead of constraining the QP; the robot's `SafetyGuard` clips every command
to them again anyway. mink would pay off with many tasks or collision avoidance, which these
arms do not need here.

Nothing here imports `playworld.sim`: the twin builds on it, not the other way round.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import NamedTuple

import mujoco
import numpy as np

from playworld.hardware.ee import (
    PANDA_LINKS,
    PANDA_MJCF,
    TARGET_SLACK,
    WORKSPACE,
    KinematicsConfig,
)
from playworld.hardware.errors import ConfigError


class Pose(NamedTuple):
    """An end-effector pose in the arm's base frame."""

    pos: np.ndarray  # (3,) m
    quat: np.ndarray  # (4,) wxyz, unit


class IKResult(NamedTuple):
    """Outcome of `DiffIK.solve`."""

    qpos: np.ndarray  # (n,) joint solution, rad, within limits
    error: float  # final pose error norm (metres + radians)
    iterations: int


# -- rotations ------------------------------------------------------------------------------
def quat_error(quat_target: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) rad, world frame, rotating `quat` onto `quat_target` (both wxyz (4,)).

    e = log(q_target * conj(q)), taking the shorter way round (q and -q are the same rotation).
    """
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
    """`quat` (4,) wxyz rotated by the world-frame axis-angle `rotvec` (3,) rad: exp(r) * q."""
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


def _index(idx: np.ndarray) -> slice | np.ndarray:
    """A slice when `idx` is a contiguous ascending run (views, no copy), else `idx` itself."""
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


# -- differential IK ---------------------------------------------------------------------------
class DiffIK:
    """Differential IK for one site over a set of joints, on a private scratch `MjData`.

    Works on any model holding the arm (the arm alone, or the twin's whole scene): `qpos_full`
    arguments are the model's (nq,) positions, of which `qadr` are the arm's. Each iteration:
    forward kinematics, site Jacobian (6, n), a damped least-squares step toward the target pose
    plus a null-space pull toward `posture`, clipped to the joint limits. The solver runs once
    per control step, so it reuses preallocated buffers and factorises the (6, 6) damped system
    with MuJoCo's Cholesky instead of a general inverse.
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

    def pose(self, qpos_full: np.ndarray) -> Pose:
        """Site pose at full `qpos` (nq,), without the Jacobian."""
        d = self.scratch
        d.qpos[:] = qpos_full
        mujoco.mj_kinematics(self.model, d)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self._site_mat)
        return Pose(self._site_pos.copy(), quat)

    def position(self, qpos_full: np.ndarray) -> np.ndarray:
        """Site position (3,) at full `qpos` (nq,): kinematics only."""
        self.scratch.qpos[:] = qpos_full
        mujoco.mj_kinematics(self.model, self.scratch)
        return self._site_pos.copy()

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


# -- the end-effector delta controller ------------------------------------------------------
def integrate_target(
    previous: Pose | None,
    measured: Pose,
    delta: np.ndarray,
    workspace: np.ndarray = WORKSPACE,
    slack: tuple[float, float] = TARGET_SLACK,
) -> tuple[Pose, bool]:
    """The next pose target and whether it continued `previous` (False: restarted at `measured`).

    Position and orientation restart independently, each when it lags by more than its slack:

        p_base = p_prev if |p_prev - p_meas| <= slack_pos else p_meas
        q_base = q_prev if angle(q_prev, q_meas) <= slack_rot else q_meas
        target = (clamp(p_base + delta[:3], workspace), exp(delta[3:6]) * q_base)

    so that a wrist held back by its velocity limit does not throw away the hand's position
    progress. The rotation gap uses |<q1, q2>| = cos(angle / 2), without building the error.
    """
    return _integrate(previous, measured, delta, workspace[0::2], workspace[1::2], *slack)


def _integrate(
    previous: Pose | None,
    measured: Pose,
    delta: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    slack_pos: float,
    slack_rot: float,
) -> tuple[Pose, bool]:
    """`integrate_target` with the box as lo (3,), hi (3,): once per control step, no slicing."""
    pos, quat, follows = measured.pos, measured.quat, False
    if previous is not None:
        gap = previous.pos - measured.pos
        if gap @ gap <= slack_pos * slack_pos:
            pos, follows = previous.pos, True
        if abs(previous.quat @ measured.quat) >= math.cos(0.5 * slack_rot):
            quat, follows = previous.quat, True
    pos = np.minimum(np.maximum(pos + delta[:3], lo), hi)
    return Pose(pos, rotate_quat(quat, delta[3:6])), follows


class EEDeltaController:
    """Turns ee deltas (6,) into arm joint targets (n,): `integrate_target`, then one DLS step.

    Holds the pose target between control steps; `reset()` forgets it (after a reset, a sync,
    or joint-space commands). The twin's `ee_delta` action space and every `Robot` with
    `action_space: ee_delta` run this same code.
    """

    def __init__(self, ik: DiffIK, workspace: np.ndarray = WORKSPACE) -> None:
        self.ik = ik
        self.workspace = np.asarray(workspace, float)
        self._lo, self._hi = self.workspace[0::2].copy(), self.workspace[1::2].copy()
        self.target: Pose | None = None

    def reset(self) -> None:
        self.target = None

    def joint_target(
        self,
        qpos_full: np.ndarray,
        delta: np.ndarray,
        warm: np.ndarray | None = None,
        measured: Pose | None = None,
    ) -> IKResult:
        """Arm joint targets for `delta` (6,) m, rad from the measured `qpos_full` (nq,).

        `warm` (n,): the joints of the last target, the IK's starting point while the target
        continues (a warm start); `measured`: the measured pose if already known (else FK).
        """
        if measured is None:
            measured = self.ik.pose(qpos_full)
        self.target, follows = _integrate(
            self.target, measured, delta, self._lo, self._hi, *TARGET_SLACK
        )
        seed = qpos_full
        if follows and warm is not None:
            seed = np.array(qpos_full, dtype=float)
            seed[self.ik._q_index] = warm
        return self.ik.solve(seed, self.target.pos, self.target.quat)


# -- the arm model from a profile ---------------------------------------------------------------
def franka_asset_dir() -> Path:
    """Folder holding `chain.xml` and `meshes/` of the Franka Panda (gymnasium-robotics)."""
    spec = importlib.util.find_spec("gymnasium_robotics")  # locates without importing (no banner)
    if spec is None or spec.origin is None:
        raise ConfigError(
            "expected the package gymnasium-robotics (it ships the Franka Panda MJCF and meshes), "
            "found it not installed; install the sim extra: pip install 'playworld[sim]'"
        )
    root = Path(spec.origin).parent / "envs" / "assets" / "kitchen_franka" / "franka_assets"
    if not (root / "chain.xml").is_file():
        raise ConfigError(f"expected the Franka MJCF at {root / 'chain.xml'}, found no such file")
    return root


def _panda_xml() -> str:
    """The Panda chain of gymnasium-robotics alone (collision meshes only), base at the origin."""
    root = franka_asset_dir()
    meshes = "".join(
        f'<mesh name="{n}_col" file="{root}/meshes/collision/{n}.stl"/>'
        f'<mesh name="{n}_viz" file="{root}/meshes/collision/{n}.stl"/>'
        for n in PANDA_LINKS
    )
    meshes += f'<mesh name="finger_viz" file="{root}/meshes/collision/finger.stl"/>'
    return f"""
<mujoco model="panda_kinematics">
  <compiler angle="radian" autolimits="true"/>
  <asset>{meshes}</asset>
  <default>
    <default class="panda">
      <joint pos="0 0 0" axis="0 0 1" limited="true"/>
      <position forcelimited="true" ctrllimited="true"/>
      <default class="panda_viz"><geom contype="0" conaffinity="0" type="mesh" mass="0"/></default>
      <default class="panda_col"><geom type="mesh"/></default>
      <default class="panda_arm"><joint/></default>
      <default class="panda_forearm"><joint/></default>
      <default class="panda_finger"><joint/><geom/></default>
    </default>
  </default>
  <worldbody><include file="{root}/chain.xml"/></worldbody>
</mujoco>"""


def load_arm_model(config: KinematicsConfig) -> mujoco.MjModel:
    """The compiled MJCF of `config`, with an `ee` site added at `body` + `offset` if asked."""
    try:
        if config.mjcf == PANDA_MJCF:
            spec = mujoco.MjSpec.from_string(_panda_xml())
        else:
            path = Path(config.mjcf)
            if not path.is_file():
                raise ConfigError(
                    f"expected kinematics.mjcf to be an MJCF file or {PANDA_MJCF!r}, found "
                    f"no file at {path}"
                )
            spec = mujoco.MjSpec.from_file(str(path))
        if config.body is not None:
            body = spec.body(config.body)
            if body is None:
                raise ConfigError(f"expected body {config.body!r} in {config.mjcf}, found none")
            body.add_site(name="ee", pos=list(config.offset))
        return spec.compile()
    except ValueError as exc:  # MuJoCo's parse and compile errors
        raise ConfigError(
            f"expected a valid MJCF at {config.mjcf}, found: {' '.join(str(exc).split())}"
        ) from None


class ArmKinematics:
    """FK, Jacobian and IK of one arm, built from a `KinematicsConfig`; joints in profile order.

    q is (n,) rad in the profile's joint order; the model's other joints (fingers) stay at
    their reference positions, which do not move the end effector.
    """

    def __init__(self, config: KinematicsConfig) -> None:
        self.config = config
        self.model = load_arm_model(config)
        site = "ee" if config.body is not None else config.site
        try:
            self.ik = DiffIK(self.model, site, config.joints, posture=np.array(config.posture))
        except KeyError as exc:
            raise ConfigError(
                f"expected the site and joints of kinematics in {config.mjcf}, found no {exc}"
            ) from None
        self._qpos0 = self.model.qpos0.copy()

    @property
    def n(self) -> int:
        return len(self.ik.qadr)

    def full(self, q: np.ndarray) -> np.ndarray:
        """The model's qpos (nq,) with the arm at `q` (n,)."""
        out = self._qpos0.copy()
        out[self.ik.qadr] = q
        return out

    def fk(self, q: np.ndarray) -> Pose:
        """End-effector pose at joints `q` (n,) rad."""
        return self.ik.pose(self.full(q))

    def fk_pos(self, q: np.ndarray) -> np.ndarray:
        """End-effector position (3,) m at `q` (n,): the guard's workspace check (no rotation)."""
        return self.ik.position(self.full(q))

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """(6, n) d[pos; rot] / dq at `q`: rows m/rad then rad/rad (world frame)."""
        return self.ik.forward(self.full(q))[2]

    def solve(self, q: np.ndarray, target: Pose, iterations: int = 1) -> IKResult:
        """IK from `q` (n,) toward `target`."""
        return self.ik.solve(self.full(q), target.pos, target.quat, iterations=iterations)
