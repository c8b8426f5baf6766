"""The twin: one MuJoCo play table stepped at the control rate, with state get/set.

twin = Twin(TwinConfig())
state = twin.reset(seed=0)              # (40,) see playworld.sim.state
twin.step(action)                       # one control step = config.n_substeps physics steps
twin.set_state(measured_state)          # sync from a real robot and object poses
"""

from __future__ import annotations

import mujoco
import numpy as np

from playworld.hardware.ee import FINGER_MAX
from playworld.hardware.kinematics import DiffIK, EEDeltaController, Pose
from playworld.sim.config import TwinConfig
from playworld.sim.controllers import ACTION_SPACES
from playworld.sim.errors import SimError
from playworld.sim.scene import (
    ARM_JOINTS,
    BLOCKS,
    EE_SITE,
    FINGER_JOINTS,
    HOME_QPOS,
    KEYPOINTS,
    LAYOUT,
    Layout,
    build_model,
)
from playworld.sim.state import STATE_LAYOUT

LIGHT_ON_RGBA = np.array([1.0, 0.9, 0.25, 1.0])
LIGHT_OFF_RGBA = np.array([0.35, 0.35, 0.3, 1.0])
MIN_BLOCK_GAP = 0.12  # centre distance between blocks at reset (m): room for a pusher
_RELEASE_DEPTH = 0.003  # button hysteresis: re-armed once it rises above this depth (m)


class Twin:
    """A play table: model, data, action space, light logic, randomisation and state sync."""

    def __init__(self, config: TwinConfig | None = None, layout: Layout = LAYOUT) -> None:
        self.config = config or TwinConfig()
        self.layout = layout
        self.model = build_model(self.config, layout)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.ik = DiffIK(m, EE_SITE, ARM_JOINTS, posture=HOME_QPOS)
        #: The ee_delta controller (its pose target: None = the measured pose).
        self.ee = EEDeltaController(self.ik)
        self.arm_qadr = self.ik.qadr
        self.arm_dofs = self.ik.dofs
        self.finger_qadr = np.array([m.joint(j).qposadr[0] for j in FINGER_JOINTS])
        self.finger_dofs = np.array([m.joint(j).dofadr[0] for j in FINGER_JOINTS])
        # `path_every` > 0: each step notes the arm's joints every that many physics steps in
        # `path` (the way it went, as twin-follow's divergence monitor compares it)
        self.path_every = 0
        self.path: list[np.ndarray] = []
        self.qadr = {n: m.joint(n).qposadr[0] for n in ("drawer", "door", "button")}
        self.block_qadr = {c: m.joint(f"block_{c}").qposadr[0] for c in BLOCKS}
        self.block_dofadr = {c: m.joint(f"block_{c}").dofadr[0] for c in BLOCKS}
        self.ee_site = m.site(EE_SITE).id
        self._state_dst, self._state_src = self._state_index()
        self.keypoint_ids = np.array([m.site(k).id for k in KEYPOINTS])
        self.bulb_geom = m.geom("light_bulb").id
        self.front_cam = m.camera("front").id
        self._nominal = {
            "geom_friction": m.geom_friction.copy(),
            "body_mass": m.body_mass.copy(),
            "body_inertia": m.body_inertia.copy(),
            "light_dir": m.light_dir.copy(),
            "light_diffuse": m.light_diffuse.copy(),
            "cam_pos": m.cam_pos.copy(),
        }
        self.block_geoms = np.array([m.geom(f"block_{c}").id for c in BLOCKS])
        self.block_bodies = np.array([m.body(f"block_{c}").id for c in BLOCKS])
        self.action_space = ACTION_SPACES[self.config.action_space](self)
        self.light = False
        self._button_armed = True
        self.rng = np.random.default_rng()
        self.reset(seed=0)

    # ----------------------------------------------------------------- stepping
    def step(self, action: np.ndarray) -> np.ndarray:
        """Apply one action for one control period; return the action actually applied."""
        applied = self.action_space.clip(action)
        self.data.ctrl[:] = self.action_space.to_ctrl(applied)
        n, every = self.config.n_substeps, self.path_every
        if every:  # the same physics, stopping to note the arm's way
            self.path = []
            for done in range(0, n, every):
                mujoco.mj_step(self.model, self.data, nstep=min(every, n - done))
                self.path.append(self.data.qpos[self.arm_qadr].copy())
        else:
            mujoco.mj_step(self.model, self.data, nstep=n)
        # mj_step leaves poses computed before its last integration: refresh them so that
        # get_state, keypoints and cameras describe the same instant as qpos.
        mujoco.mj_kinematics(self.model, self.data)
        self._update_light()
        return applied

    def _update_light(self) -> None:
        depth = -float(self.data.qpos[self.qadr["button"]])
        if self._button_armed and depth > self.layout.button_press_depth:
            self.light = not self.light
            self._button_armed = False
        elif depth < _RELEASE_DEPTH:
            self._button_armed = True
        self._show_light()

    def _show_light(self) -> None:
        self.model.geom_rgba[self.bulb_geom] = LIGHT_ON_RGBA if self.light else LIGHT_OFF_RGBA

    # ----------------------------------------------------------------- reset
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Home the robot, randomise objects (per `config.randomization`); return the state (40,)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        rng, cfg, L = self.rng, self.config.randomization, self.layout
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self.ee.reset()
        self._randomize_physics()
        q = HOME_QPOS + (rng.normal(0, 0.02, 7) if cfg.object_poses else 0.0)
        d.qpos[self.arm_qadr] = q
        d.qpos[self.finger_qadr] = FINGER_MAX
        if cfg.object_poses:
            d.qpos[self.qadr["drawer"]] = rng.uniform(0, L.drawer_range)
            d.qpos[self.qadr["door"]] = rng.uniform(0, L.door_range)
            self.light = bool(rng.integers(2))
        else:
            self.light = False
        self._button_armed = True
        for color, (x, y, yaw) in zip(BLOCKS, self.sample_block_poses(), strict=True):
            self.set_block_pose(color, np.array([x, y, L.block_half]), yaw)
        d.ctrl[:7] = q
        d.ctrl[7:9] = FINGER_MAX
        mujoco.mj_forward(m, d)
        self._show_light()
        return self.get_state()

    def sample_block_poses(self) -> list[tuple[float, float, float]]:
        """Non-overlapping (x, y, yaw) for every block in the layout's block region."""
        cfg = self.config.randomization
        x0, x1, y0, y1 = cfg.block_region or self.layout.block_region
        if not self.config.randomization.object_poses:
            ys = np.linspace(y0, y1, len(BLOCKS))
            return [(0.5 * (x0 + x1), float(y), 0.0) for y in ys]
        poses: list[tuple[float, float, float]] = []
        while len(poses) < len(BLOCKS):
            if len(poses) and self.rng.random() < 0.02:  # cornered: start over
                poses.clear()
            x, y = self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)
            if all(np.hypot(x - px, y - py) > MIN_BLOCK_GAP for px, py, _ in poses):
                poses.append(
                    (float(x), float(y), float(self.rng.uniform(-cfg.block_yaw, cfg.block_yaw)))
                )
        return poses

    def set_block_pose(self, color: str, pos: np.ndarray, yaw: float = 0.0) -> None:
        """Place a block (centre `pos` (3,) m, rotated `yaw` rad about z) at rest."""
        adr = self.block_qadr[color]
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        dof = self.block_dofadr[color]
        self.data.qvel[dof : dof + 6] = 0.0

    def _randomize_physics(self) -> None:
        cfg, m, nom, rng = self.config.randomization, self.model, self._nominal, self.rng
        m.geom_friction[:] = nom["geom_friction"]
        m.body_mass[:] = nom["body_mass"]
        m.body_inertia[:] = nom["body_inertia"]
        m.light_dir[:] = nom["light_dir"]
        m.light_diffuse[:] = nom["light_diffuse"]
        m.cam_pos[:] = nom["cam_pos"]
        if cfg.friction is not None:
            m.geom_friction[self.block_geoms, 0] *= rng.uniform(*cfg.friction, len(BLOCKS))
        if cfg.mass is not None:
            scale = rng.uniform(*cfg.mass, len(BLOCKS))
            m.body_mass[self.block_bodies] *= scale
            m.body_inertia[self.block_bodies] *= scale[:, None]
        if cfg.lighting:
            m.light_dir[:] += rng.normal(0, 0.15, m.light_dir.shape)
            m.light_diffuse[:] *= rng.uniform(0.7, 1.3, (m.nlight, 1))
        if cfg.camera_jitter > 0:
            m.cam_pos[self.front_cam] += rng.normal(0, cfg.camera_jitter, 3)

    # ----------------------------------------------------------------- state
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (3,) m and orientation (4,) wxyz, world frame."""
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.ee_site])
        return self.data.site_xpos[self.ee_site].copy(), quat

    def get_state(self) -> np.ndarray:
        """The state vector (40,) float64; layout in `playworld.sim.state`."""
        # Gathered through index arrays built once (`_state_index`): it runs several times per
        # control step (observation, success checks), so it avoids building a dict of parts.
        d, sl = self.data, STATE_LAYOUT.slices
        out = np.empty(STATE_LAYOUT.size)
        out[self._state_dst] = d.qpos[self._state_src]
        out[sl["gripper_width"]] = d.qpos[self.finger_qadr].sum()
        out[sl["ee_pos"]] = d.site_xpos[self.ee_site]
        mujoco.mju_mat2Quat(out[sl["ee_quat"]], d.site_xmat[self.ee_site])
        out[sl["light"]] = float(self.light)
        return out

    def _state_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(state rows, qpos addresses) of the state fields that are joint positions."""
        sl, dst, src = STATE_LAYOUT.slices, [], []

        def add(name: str, adr: np.ndarray | list[int]) -> None:
            dst.extend(range(sl[name].start, sl[name].stop))
            src.extend(int(a) for a in adr)

        add("arm_qpos", self.arm_qadr)
        for name in ("drawer", "door", "button"):
            add(name, [self.qadr[name]])
        for c in BLOCKS:
            adr = self.block_qadr[c]
            add(f"block_{c}_pos", range(adr, adr + 3))
            add(f"block_{c}_quat", range(adr + 3, adr + 7))
        return np.array(dst), np.array(src)

    def set_state(self, state: np.ndarray) -> None:
        """Set joints, objects and the light from a state vector (40,); velocities become zero.

        The arm's position targets are set to the measured joints so that the arm holds still.
        """
        state = np.asarray(state, dtype=np.float64)
        s = STATE_LAYOUT.unpack(state)
        if not np.all(np.isfinite(state)):
            raise SimError("expected a finite state vector, found NaN or inf")
        m, d = self.model, self.data
        d.qvel[:] = 0.0
        d.qacc_warmstart[:] = 0.0
        d.qpos[self.arm_qadr] = s["arm_qpos"]
        d.qpos[self.finger_qadr] = float(s["gripper_width"][0]) / 2
        for c in BLOCKS:
            adr = self.block_qadr[c]
            quat = s[f"block_{c}_quat"]
            d.qpos[adr : adr + 3] = s[f"block_{c}_pos"]
            d.qpos[adr + 3 : adr + 7] = quat / max(np.linalg.norm(quat), 1e-12)
        for name in ("drawer", "door", "button"):
            d.qpos[self.qadr[name]] = s[name][0]
        self.light = bool(s["light"][0] > 0.5)
        self._button_armed = -float(s["button"][0]) < self.layout.button_press_depth
        d.ctrl[:7] = s["arm_qpos"]
        d.ctrl[7:9] = float(s["gripper_width"][0]) / 2
        self.ee.reset()
        mujoco.mj_forward(m, d)
        self._show_light()

    def get_sim_state(self) -> np.ndarray:
        """Full physics state (positions, velocities, controls, warm start), controller target, light."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        out = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, out, spec)
        target = (
            np.full(8, np.nan)
            if self.ee.target is None
            else np.r_[1.0, self.ee.target.pos, self.ee.target.quat]
        )
        return np.concatenate([out, target, [float(self.light), float(self._button_armed)]])

    def set_sim_state(self, sim_state: np.ndarray) -> None:
        """Restore `get_sim_state()` exactly (bitwise-identical continuation)."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mujoco.mj_setState(self.model, self.data, np.asarray(sim_state[:-10]), spec)
        target = np.asarray(sim_state[-10:-2])
        self.ee.target = (
            None if np.isnan(target[0]) else Pose(target[1:4].copy(), target[4:8].copy())
        )
        self.light, self._button_armed = bool(sim_state[-2]), bool(sim_state[-1])
        mujoco.mj_forward(self.model, self.data)
        self._show_light()

    def keypoints(self) -> np.ndarray:
        """World positions (K, 3) m of the keypoint sites, in `scene.KEYPOINTS` order."""
        return self.data.site_xpos[self.keypoint_ids].copy()

    def keypoint(self, name: str) -> np.ndarray:
        """One keypoint site's world position (3,) m."""
        return self.data.site_xpos[self.model.site(name).id].copy()

    def observe(self) -> dict[str, np.ndarray]:
        """Low-dimensional observation: `state` (40,) float64 and `keypoints` (K, 3) float64."""
        return {"state": self.get_state(), "keypoints": self.keypoints()}
