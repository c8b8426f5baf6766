"""Tether's trajectory warping as pure functions: keypoint correspondences -> rigid transforms ->
a demonstration carried into a new scene, re-timed to keep its Cartesian speed.

Poses are end-effector positions (T, 3) metres and orientations (T, 4) wxyz quaternions, world
frame. A `Rigid` transform is written about a keypoint centre, p -> R (p - centre) + target, so
that blending two transforms (`blend`: linear in centre and target, SLERP in R) moves the
anchored object along a straight line instead of swinging it about the world origin.

    t = fit_yaw(demo_kp, scene_kp, period=np.pi / 2)        # least squares, yaw about z only
    pos, quat = warp_path(pos, quat, keyframes=[0, 40], transforms=[t0, t1])
    pos, quat, grip = retime(demo_pos, pos, quat, grip)      # same speed on the warped path
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


# -- quaternions (wxyz) -------------------------------------------------------------------------
def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of quaternions (..., 4) wxyz."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, float), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, float), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def yaw_quat(yaw: float) -> np.ndarray:
    """Rotation (4,) wxyz by `yaw` rad about the world z axis."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion (4,) wxyz."""
    w, x, y, z = np.asarray(q, float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    """Spherical linear interpolation (4,) from q0 (s = 0, returned exactly) to q1 (s = 1),
    the short way round."""
    q0, q1 = np.asarray(q0, float), np.asarray(q1, float)
    if s <= 0.0:
        return q0.copy()
    dot = float(q0 @ q1)
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: lerp is exact to 1e-7 and avoids 0 / 0
        out = q0 + s * (q1 - q0)
        return out / np.linalg.norm(out)
    theta = math.acos(min(dot, 1.0))
    return (math.sin((1 - s) * theta) * q0 + math.sin(s * theta) * q1) / math.sin(theta)


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion) (..., 4) wxyz."""
    return np.asarray(q, float) * [1.0, -1.0, -1.0, -1.0]


def rotvec_quat(rotvec: np.ndarray) -> np.ndarray:
    """Unit quaternion (4,) wxyz of an axis-angle vector (3,) rad."""
    rotvec = np.asarray(rotvec, float)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return IDENTITY_QUAT.copy()
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * rotvec / angle])


def quat_error(target: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """World-frame axis-angle (3,) rad turning `quat` onto `target` (both (4,) wxyz), the short
    way: the rotation part of an ee_delta action."""
    q = quat_mul(target, quat_conj(quat))
    if q[0] < 0:
        q = -q
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-12:
        return np.zeros(3)
    return 2.0 * math.atan2(s, q[0]) * q[1:] / s


def rotate_quat(quat: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """`quat` (4,) turned by the world-frame axis-angle `rotvec` (3,) rad."""
    return quat_mul(rotvec_quat(rotvec), quat)


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (...,) rad between orientations a and b (..., 4)."""
    dot = np.abs(np.sum(np.asarray(a) * np.asarray(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


# -- rigid transforms ------------------------------------------------------------------------------
class Rigid(NamedTuple):
    """p -> R (p - centre) + target; R a unit quaternion (4,) wxyz, centre/target (3,) m."""

    rot: np.ndarray
    centre: np.ndarray
    target: np.ndarray

    @classmethod
    def identity(cls) -> Rigid:
        return cls(IDENTITY_QUAT.copy(), np.zeros(3), np.zeros(3))

    @classmethod
    def from_yaw(cls, yaw: float, centre: np.ndarray, target: np.ndarray) -> Rigid:
        return cls(yaw_quat(yaw), np.asarray(centre, float), np.asarray(target, float))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transformed points (..., 3)."""
        return (np.asarray(points, float) - self.centre) @ quat_matrix(self.rot).T + self.target

    def apply_quat(self, quats: np.ndarray) -> np.ndarray:
        """Orientations (..., 4) rotated by R in the world frame: R * q."""
        return quat_mul(np.broadcast_to(self.rot, np.shape(quats)), quats)

    @property
    def translation(self) -> np.ndarray:
        """t of the same map written p -> R p + t (3,)."""
        return self.target - quat_matrix(self.rot) @ self.centre

    @property
    def yaw(self) -> float:
        """Rotation angle about z (rad), exact for yaw-only transforms."""
        w, _, _, z = self.rot
        return float(2.0 * math.atan2(z, w))


def wrap(angle: float, period: float) -> float:
    """`angle` folded into [-period / 2, period / 2)."""
    return float((angle + period / 2) % period - period / 2)


def fit_yaw(src: np.ndarray, dst: np.ndarray, period: float | None = None) -> Rigid:
    """Least-squares rigid transform restricted to a yaw about z carrying src onto dst (n, 3).

    Kabsch in the plane: with centred points p, q, the yaw minimising sum |Rz(a) p - q|^2 is
    a = atan2(sum(px qy - py qx), sum(px qx + py qy)); the centroids map onto each other.
    `period`: the object's symmetry about z (pi / 2 for a cube), the yaw is folded into
    [-period / 2, period / 2) so that the smallest equivalent turn is used. One point (or
    points on one vertical line): a pure translation.
    """
    src, dst = np.asarray(src, float).reshape(-1, 3), np.asarray(dst, float).reshape(-1, 3)
    if src.shape != dst.shape or len(src) == 0:
        raise ValueError(f"expected two (n, 3) point sets, n >= 1, found {src.shape}, {dst.shape}")
    cs, cd = src.mean(0), dst.mean(0)
    p, q = src[:, :2] - cs[:2], dst[:, :2] - cd[:2]
    num = float(np.sum(p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]))
    den = float(np.sum(p[:, 0] * q[:, 0] + p[:, 1] * q[:, 1]))
    yaw = math.atan2(num, den) if math.hypot(num, den) > 1e-12 else 0.0
    if period is not None:
        yaw = wrap(yaw, period)
    return Rigid.from_yaw(yaw, cs, cd)


def blend(a: Rigid, b: Rigid, s: float) -> Rigid:
    """The transform a fraction s in [0, 1] of the way from a (s = 0, exact) to b (s = 1)."""
    if s <= 0.0:
        return a
    if s >= 1.0:
        return b
    return Rigid(
        slerp(a.rot, b.rot, s),
        a.centre + s * (b.centre - a.centre),
        a.target + s * (b.target - a.target),
    )


# -- paths ----------------------------------------------------------------------------------------
def arc_length(pos: np.ndarray) -> np.ndarray:
    """Cumulative path length (T,) m of positions (T, 3), starting at 0."""
    steps = np.linalg.norm(np.diff(np.asarray(pos, float), axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def warp_path(
    pos: np.ndarray, quat: np.ndarray, keyframes: list[int], transforms: list[Rigid]
) -> tuple[np.ndarray, np.ndarray]:
    """Warp poses (T, 3) / (T, 4): `transforms[k]` holds exactly at row `keyframes[k]`
    (ascending); between two keyframes the two transforms blend by the progress along the
    path (arc length; time where the arm stands still); before the first and after the last
    keyframe the nearest transform holds."""
    pos, quat = np.asarray(pos, float), np.asarray(quat, float)
    if len(keyframes) != len(transforms) or not keyframes:
        raise ValueError("expected one transform per keyframe, at least one")
    if list(keyframes) != sorted(keyframes):
        raise ValueError(f"expected ascending keyframes, found {keyframes}")
    s_arc = arc_length(pos)
    out_pos, out_quat = np.empty_like(pos), np.empty_like(quat)
    for i in range(len(pos)):
        k = int(np.searchsorted(keyframes, i, side="right"))  # keyframes[k-1] <= i < keyframes[k]
        if k == 0:
            t = transforms[0]
        elif k == len(keyframes):
            t = transforms[-1]
        else:
            i0, i1 = keyframes[k - 1], keyframes[k]
            span = s_arc[i1] - s_arc[i0]
            s = (s_arc[i] - s_arc[i0]) / span if span > 1e-6 else (i - i0) / (i1 - i0)
            t = blend(transforms[k - 1], transforms[k], s)
        out_pos[i] = t.apply(pos[i])
        out_quat[i] = t.apply_quat(quat[i])
    return out_pos, out_quat


def step_ratios(original: np.ndarray, warped: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Duration (T - 1,) of each step, in original steps, that keeps the demo's Cartesian speed:
    warped / original step length (1 where the demo stood still)."""
    d0 = np.linalg.norm(np.diff(np.asarray(original, float), axis=0), axis=1)
    d1 = np.linalg.norm(np.diff(np.asarray(warped, float), axis=0), axis=1)
    return np.where(d0 > eps, d1 / np.maximum(d0, eps), 1.0)


def retime(
    original: np.ndarray,
    pos: np.ndarray,
    quat: np.ndarray,
    gripper: np.ndarray,
    speed: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample a warped path at the control period so that it moves at the demo's speed.

    Step i of the warped path takes `step_ratios` of one control period (a stretched path
    takes longer, a shortened one less; standing still and turning in place keep their
    duration). The path is sampled every period: positions linearly, orientations by SLERP,
    the gripper command held from the preceding row, so every gripper switch happens at the
    same place along the path as in the demo. original, pos (T, 3), quat (T, 4), gripper (T,)
    -> (N, 3), (N, 4), (N,); an unwarped path comes back unchanged. `speed` scales the demo's
    pace (0.5: every step takes twice as long).
    """
    pos, quat, gripper = np.asarray(pos, float), np.asarray(quat, float), np.asarray(gripper)
    times = np.concatenate([[0.0], np.cumsum(step_ratios(original, pos) / speed)])  # (T,)
    n = int(math.floor(times[-1] + 1e-9)) + 1
    samples = np.arange(n, dtype=float)
    if samples[-1] < times[-1] - 1e-9:  # end exactly on the demo's last pose
        samples = np.append(samples, times[-1])
    out_pos = np.empty((len(samples), 3))
    out_quat = np.empty((len(samples), 4))
    out_grip = np.empty(len(samples), dtype=gripper.dtype)
    for j, t in enumerate(samples):
        # Rounding in the cumulative times must not move a sample (and a gripper switch)
        # onto the preceding row: times within 1e-9 steps count as equal.
        i = min(int(np.searchsorted(times, t + 1e-9, side="right")) - 1, len(times) - 1)
        if i >= len(times) - 1 or times[i + 1] - times[i] <= 1e-12:
            s = 0.0
        else:
            s = min(max((t - times[i]) / (times[i + 1] - times[i]), 0.0), 1.0)
        nxt = min(i + 1, len(pos) - 1)
        out_pos[j] = pos[i] + s * (pos[nxt] - pos[i])
        out_quat[j] = slerp(quat[i], quat[nxt], s)
        out_grip[j] = gripper[i]
    return out_pos, out_quat, out_grip
