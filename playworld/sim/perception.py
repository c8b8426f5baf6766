"""Object poses as a lab measures them: the twin's perception stream and its inverse.

    poses = object_poses(twin, OBJECTS)                 # (K, 7) x y z qw qx qy qz, world frame
    noisy = PoseNoise(noise_m=0.003, dropout=0.05).apply(poses)   # NaN rows: not detected
    apply_object_poses(twin, OBJECTS, poses)            # sync a local twin from measured poses

`twin serve` publishes `object_poses` as `geometry_msgs/PoseArray` (the way a motion-capture or
AprilTag node would), a rosbridge profile maps the topic to the observation feature
`object_poses` (K, 7) (not privileged: a real lab has it), and `apply_object_poses` writes them
back into a twin: free bodies (blocks) take the pose, slide-jointed bodies (drawer, door,
button) take the joint value whose body position is nearest the measured one (projection on the
joint axis). What perception does not see (the light, velocities) stays as the twin has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from playworld.sim.errors import SimError

#: The bodies the perception stream reports, in this order (blocks, then articulated parts).
OBJECTS: tuple[str, ...] = ("block_red", "block_green", "block_blue", "drawer", "door", "button")


def object_poses(twin, names: Sequence[str] = OBJECTS) -> np.ndarray:
    """World poses (K, 7) float64 of the named bodies: position m, quaternion wxyz."""
    d, m = twin.data, twin.model
    ids = [_body(m, n) for n in names]
    return np.concatenate([d.xpos[ids], d.xquat[ids]], axis=1)


def apply_object_poses(twin, names: Sequence[str], poses: np.ndarray) -> None:
    """Write measured poses (K, 7) into `twin` (rows with NaN are skipped: not detected)."""
    m, d = twin.model, twin.data
    poses = np.asarray(poses, float)
    if poses.shape != (len(names), 7):
        raise SimError(f"expected object poses of shape ({len(names)}, 7), found {poses.shape}")
    changed = False
    for name, pose in zip(names, poses, strict=True):
        if not np.all(np.isfinite(pose)):
            continue
        body = _body(m, name)
        jnt = m.body_jntadr[body]
        if m.body_jntnum[body] != 1:
            raise SimError(f"expected body {name!r} to have one joint, found {m.body_jntnum[body]}")
        adr, kind = m.jnt_qposadr[jnt], m.jnt_type[jnt]
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            quat = pose[3:] / max(np.linalg.norm(pose[3:]), 1e-12)
            d.qpos[adr : adr + 3], d.qpos[adr + 3 : adr + 7] = pose[:3], quat
            d.qvel[m.jnt_dofadr[jnt] : m.jnt_dofadr[jnt] + 6] = 0.0
        elif kind == mujoco.mjtJoint.mjJNT_SLIDE:
            # body position = anchor + axis * q: move q by the measured offset along the axis
            axis = d.xaxis[jnt]
            q = d.qpos[adr] + float(np.dot(pose[:3] - d.xpos[body], axis))
            lo, hi = m.jnt_range[jnt] if m.jnt_limited[jnt] else (-np.inf, np.inf)
            d.qpos[adr] = np.clip(q, lo, hi)  # its velocity stays the twin's (a drawer in motion)
        else:
            raise SimError(f"expected a free or slide joint on body {name!r}, found type {kind}")
        changed = True
    if changed:
        mujoco.mj_kinematics(m, d)


def _body(model, name: str) -> int:
    try:
        return model.body(name).id
    except KeyError:
        raise SimError(
            f"expected a body of the twin named {name!r} for the perception stream, found none "
            f"(known objects: {', '.join(OBJECTS)})"
        ) from None


@dataclass(frozen=True)
class PoseNoise:
    """Measurement noise of the stream: Gaussian position (m) and rotation (rad) noise, and the
    chance that an object is not detected in a message (its row becomes NaN)."""

    noise_m: float = 0.0
    noise_rad: float = 0.0
    dropout: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        from playworld.errors import ConfigError

        if self.noise_m < 0 or self.noise_rad < 0:
            raise ConfigError(
                f"expected pose noise >= 0, found {self.noise_m:g} m and {self.noise_rad:g} rad"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"expected a pose dropout ratio in [0, 1), found {self.dropout:g}")

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def apply(self, poses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A noisy copy of `poses` (K, 7)."""
        out = np.array(poses, float)
        k = len(out)
        if self.noise_m > 0:
            out[:, :3] += rng.normal(0.0, self.noise_m, (k, 3))
        if self.noise_rad > 0:
            for i in range(k):  # a small rotation (axis-angle, rad) applied in the world frame
                rot = rng.normal(0.0, self.noise_rad, 3)
                angle = float(np.linalg.norm(rot))
                if angle > 0:
                    dq, q = np.empty(4), np.empty(4)
                    mujoco.mju_axisAngle2Quat(dq, rot / angle, angle)
                    mujoco.mju_mulQuat(q, dq, out[i, 3:])
                    out[i, 3:] = q
        if self.dropout > 0:
            out[rng.random(k) < self.dropout] = np.nan
        return out


def sync_twin(
    twin,
    q: np.ndarray,
    gripper: float,
    poses: np.ndarray | None = None,
    names: Sequence[str] = OBJECTS,
    velocity: np.ndarray | None = None,
) -> None:
    """Real-is-Sim sync: the measured arm joints (7,) rad, gripper opening 0..1 and object
    poses (K, 7) overwrite the twin's positions, and the arm's joint velocities (7,) rad/s its
    velocities when the robot reports them; the rest (the objects' velocities, the light) stays
    the twin's own: it keeps its dynamics between measurements."""
    d = twin.data
    d.qpos[twin.arm_qadr] = np.asarray(q, float)
    if velocity is not None:
        d.qvel[twin.arm_dofs] = np.asarray(velocity, float)
    d.qpos[twin.finger_qadr] = float(np.clip(gripper, 0.0, 1.0)) * FINGER_OPENING / 2
    if poses is not None:
        apply_object_poses(twin, names, poses)
    mujoco.mj_kinematics(twin.model, d)


FINGER_OPENING = 0.08  # m between the fingers at opening 1.0 (as `SimRobot` reports it)
