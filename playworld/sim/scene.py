"""Scene assembly: the play table with a Franka Panda, drawer, sliding door, button + light, blocks.

World frame: x forward from the robot base, y to the robot's left, z up, the table top at z = 0,
the Panda base at the origin. All lengths in metres. The MJCF is written here (the Panda's chain
is included from gymnasium-robotics) and compiled through `mujoco.MjSpec`, which then adds what
XML cannot say about an included file (gravity compensation, wrist camera).

Keypoint sites (`KEYPOINTS`) name every point that policies and world models may use.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from playworld.sim.assets import PANDA_LINKS, franka_asset_dir, visual_mesh_paths
from playworld.sim.config import QUALITIES, TwinConfig

ARM_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("robot:panda0_finger_joint1", "robot:panda0_finger_joint2")
BLOCKS = ("red", "green", "blue")
BLOCK_RGBA = {"red": "0.85 0.15 0.15 1", "green": "0.15 0.7 0.2 1", "blue": "0.15 0.3 0.85 1"}
EE_SITE = "end_effector"
#: Servo stiffness (N m / rad) replacing the Franka file's (870 and 120), see build_spec.
SERVO_GAINS = {f"panda0_joint{i}": 2000.0 if i <= 4 else 300.0 for i in range(1, 8)}
CAMERAS = ("front", "wrist")
#: Home joint configuration (rad): end effector at (0.4, 0, 0.3) m, pointing down.
HOME_QPOS = np.array([0.0, -0.4181, 0.0, -2.5794, 0.0, 0.5913, 0.0])
#: End-effector orientation at home (wxyz): pointing down, fingers opening along world y.
DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])


@dataclass(frozen=True)
class Layout:
    """Where the fixed furniture stands and how far its joints move (metres)."""

    block_half: float = 0.025  # cube half size
    block_region: tuple[float, float, float, float] = (0.30, 0.46, -0.13, 0.13)  # x0 x1 y0 y1
    drawer_front_x: float = 0.50  # cabinet front plane
    drawer_y: float = -0.33  # cabinet centre
    drawer_range: float = 0.20  # slide joint travel (opens toward -x)
    drawer_inner: tuple[float, float, float] = (0.085, 0.10, 0.065)  # inner half x, half y, rim z
    drawer_handle_out: float = 0.065  # handle bar distance in front of the drawer front
    handle_z: float = 0.06  # drawer handle height
    door_front_x: float = 0.50
    door_y0: float = 0.265  # door centre at joint 0 (covering the right half)
    door_range: float = 0.13  # slide joint travel (to the left, +y)
    door_handle_z: float = 0.075
    door_handle_out: float = 0.05
    button_xy: tuple[float, float] = (0.53, 0.0)
    button_travel: float = 0.012
    button_press_depth: float = 0.007  # the light toggles when pressed deeper than this
    lamp_xy: tuple[float, float] = (0.63, 0.09)


LAYOUT = Layout()


def _block_xml(color: str, half: float) -> str:
    sites = "".join(
        f'<site name="block_{color}_c{i}" pos="{sx * half} {sy * half} {sz * half}" size="0.004"/>'
        for i, (sx, sy, sz) in enumerate(
            (sx, sy, sz) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)
        )
    )
    return f"""
    <body name="block_{color}" pos="0.4 0 {half}">
      <freejoint name="block_{color}"/>
      <geom name="block_{color}" type="box" size="{half} {half} {half}" rgba="{BLOCK_RGBA[color]}"
            mass="0.08" friction="1.2 0.01 0.001" condim="4" priority="1"/>
      <site name="block_{color}" size="0.006"/>{sites}
    </body>"""


def scene_xml(config: TwinConfig, layout: Layout = LAYOUT) -> str:
    """The MJCF text of the play table (the Panda chain is an `<include>`)."""
    root = franka_asset_dir()
    q = QUALITIES[config.quality]
    viz = visual_mesh_paths(q["mesh_ratio"])
    meshes = "".join(
        f'<mesh name="{n}_col" file="{root}/meshes/collision/{n}.stl"/>'
        f'<mesh name="{n}_viz" file="{viz[n]}"/>'
        for n in PANDA_LINKS
    )
    meshes += (
        f'<mesh name="finger_viz" file="{root}/meshes/collision/finger.stl" scale="1.75 1 1.75"/>'
    )
    L = layout
    dx, dy = L.drawer_front_x, L.drawer_y
    ix, iy, rim = L.drawer_inner
    # Drawer cabinet: x in [front, front+0.2], y in [dy-0.12, dy+0.12], top at 0.11.
    drawer = f"""
    <body name="drawer_cabinet" pos="{dx + 0.1} {dy} 0" childclass="furniture">
      <geom type="box" size="0.1 0.12 0.005" pos="0 0 0.005"/>
      <geom type="box" size="0.1 0.12 0.006" pos="0 0 0.104"/>
      <geom type="box" size="0.1 0.006 0.055" pos="0 -0.114 0.055"/>
      <geom type="box" size="0.1 0.006 0.055" pos="0 0.114 0.055"/>
      <geom type="box" size="0.006 0.12 0.055" pos="0.094 0 0.055"/>
      <body name="drawer" pos="-0.1 0 0.011">
        <joint name="drawer" type="slide" axis="-1 0 0" range="0 {L.drawer_range}"
               damping="8" frictionloss="0.5" armature="0.2"/>
        <geom type="box" size="{ix + 0.008} {iy + 0.008} 0.004" pos="{ix + 0.008} 0 0.004"
              material="wood"/>
        <geom type="box" size="0.006 0.112 0.046" pos="0.006 0 0.046" material="wood"/>
        <geom type="box" size="0.004 {iy + 0.008} 0.03" pos="{2 * ix + 0.012} 0 0.034" material="wood"/>
        <geom type="box" size="{ix + 0.008} 0.004 0.03" pos="{ix + 0.008} {-iy - 0.004} 0.034" material="wood"/>
        <geom type="box" size="{ix + 0.008} 0.004 0.03" pos="{ix + 0.008} {iy + 0.004} 0.034" material="wood"/>
        <geom type="capsule" fromto="{-L.drawer_handle_out} -0.06 {L.handle_z - 0.011} {-L.drawer_handle_out} 0.06 {L.handle_z - 0.011}"
              size="0.009" material="metal"/>
        <geom type="capsule" fromto="{-L.drawer_handle_out} -0.06 {L.handle_z - 0.011} 0 -0.06 {L.handle_z - 0.011}" size="0.007" material="metal"/>
        <geom type="capsule" fromto="{-L.drawer_handle_out} 0.06 {L.handle_z - 0.011} 0 0.06 {L.handle_z - 0.011}" size="0.007" material="metal"/>
        <site name="drawer_handle" pos="{-L.drawer_handle_out} 0 {L.handle_z - 0.011}" size="0.006"/>
        <site name="drawer_inside" pos="{ix + 0.012} 0 0.008" size="0.006"/>
      </body>
    </body>"""
    fx = L.door_front_x
    door = f"""
    <body name="door_cabinet" pos="{fx + 0.1} {L.door_y0 + 0.065} 0" childclass="furniture">
      <geom type="box" size="0.1 0.13 0.005" pos="0 0 0.005"/>
      <geom type="box" size="0.1 0.13 0.006" pos="0 0 0.194"/>
      <geom type="box" size="0.1 0.006 0.1" pos="0 -0.124 0.1"/>
      <geom type="box" size="0.1 0.006 0.1" pos="0 0.124 0.1"/>
      <geom type="box" size="0.006 0.13 0.1" pos="0.094 0 0.1"/>
      <geom type="box" size="0.04 0.04 0.04" pos="0.03 0.06 0.05" rgba="0.9 0.8 0.3 1"/>
      <body name="door" pos="-0.108 -0.065 0.1">
        <joint name="door" type="slide" axis="0 1 0" range="0 {L.door_range}"
               damping="6" frictionloss="0.5" armature="0.2"/>
        <geom type="box" size="0.006 0.064 0.098" material="glass"/>
        <geom type="capsule" fromto="{-L.door_handle_out} 0 {L.door_handle_z - 0.1 - 0.035} {-L.door_handle_out} 0 {L.door_handle_z - 0.1 + 0.035}"
              size="0.008" material="metal"/>
        <geom type="capsule" fromto="{-L.door_handle_out} 0 {L.door_handle_z - 0.1 - 0.035} 0 0 {L.door_handle_z - 0.1 - 0.035}" size="0.006" material="metal"/>
        <geom type="capsule" fromto="{-L.door_handle_out} 0 {L.door_handle_z - 0.1 + 0.035} 0 0 {L.door_handle_z - 0.1 + 0.035}" size="0.006" material="metal"/>
        <site name="door_handle" pos="{-L.door_handle_out} 0 {L.door_handle_z - 0.1}" size="0.006"/>
      </body>
    </body>"""
    bx, by = L.button_xy
    lx, ly = L.lamp_xy
    button = f"""
    <body name="button_base" pos="{bx} {by} 0" childclass="furniture">
      <geom type="box" size="0.04 0.04 0.01" pos="0 0 0.01" rgba="0.25 0.25 0.28 1"/>
      <body name="button" pos="0 0 0.02">
        <joint name="button" type="slide" axis="0 0 1" range="-{L.button_travel} 0"
               stiffness="400" springref="0" damping="2"/>
        <geom name="button_cap" type="cylinder" size="0.024 0.008" pos="0 0 0.008" rgba="0.8 0.1 0.1 1"/>
        <site name="button_top" pos="0 0 0.016" size="0.006"/>
      </body>
    </body>
    <body name="lamp" pos="{lx} {ly} 0" childclass="furniture">
      <geom type="cylinder" size="0.006 0.07" pos="0 0 0.07" rgba="0.3 0.3 0.3 1"/>
      <geom name="light_bulb" type="sphere" size="0.022" pos="0 0 0.16" rgba="0.35 0.35 0.3 1"/>
      <site name="light_bulb" pos="0 0 0.16" size="0.006"/>
    </body>"""
    blocks = "".join(_block_xml(c, L.block_half) for c in BLOCKS)
    return f"""
<mujoco model="playworld_table">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{config.timestep}" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <size nuser_actuator="5"/>
  <visual>
    <global offwidth="640" offheight="480"/>
    <quality shadowsize="{q["shadowsize"]}" offsamples="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45"/>
  </visual>
  <asset>
    {meshes}
    <material name="table" rgba="0.72 0.62 0.5 1"/>
    <material name="wood" rgba="0.55 0.4 0.28 1"/>
    <material name="metal" rgba="0.7 0.7 0.75 1"/>
    <material name="glass" rgba="0.55 0.7 0.8 0.7"/>
  </asset>
  <default>
    <default class="panda">
      <joint pos="0 0 0" axis="0 0 1" limited="true" armature="0.1"/>
      <position forcelimited="true" ctrllimited="true"/>
      <default class="panda_viz">
        <geom contype="0" conaffinity="0" group="2" type="mesh" rgba=".95 .99 .92 1" mass="0"/>
      </default>
      <default class="panda_col">
        <geom contype="1" conaffinity="1" group="3" type="mesh" rgba=".5 .6 .7 1"/>
      </default>
      <default class="panda_arm"><joint damping="60"/></default>
      <default class="panda_forearm"><joint damping="8"/></default>
      <default class="panda_finger">
        <joint damping="20" armature="0.2"/>
        <geom friction="1.5 0.05 0.001" solref="0.01 1" solimp="0.9 0.95 0.001" margin="0.001"
              rgba="0.5 0.6 0.7 .4" contype="1" conaffinity="1" condim="4" group="3"/>
      </default>
    </default>
    <default class="furniture">
      <geom type="box" material="wood" contype="1" conaffinity="1" condim="3"/>
    </default>
  </default>
  <worldbody>
    <light name="key" pos="0.3 -0.6 1.6" dir="0.1 0.4 -1" diffuse="0.5 0.5 0.5" castshadow="true"/>
    <light name="fill" pos="0.8 0.6 1.4" dir="-0.3 -0.3 -1" diffuse="0.3 0.3 0.3" castshadow="false"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" rgba="0.3 0.32 0.35 1"/>
    <geom name="table" type="box" size="0.6 0.65 0.02" pos="0.3 0 -0.02" material="table"/>
    <camera name="front" pos="-0.05 -0.8 0.9" xyaxes="0.8742 -0.4856 0.0000 0.3196 0.5753 0.7529" fovy="55"/>
    <body name="robot_base" pos="0 0 0">
      <include file="{root}/chain.xml"/>
    </body>
    {drawer}{door}{button}{blocks}
  </worldbody>
  <contact>
    <exclude body1="panda0_leftfinger" body2="panda0_rightfinger"/>
    <exclude body1="drawer_cabinet" body2="drawer"/>
    <exclude body1="door_cabinet" body2="door"/>
    <exclude body1="button_base" body2="button"/>
  </contact>
  <include file="{root}/actuator.xml"/>
</mujoco>"""


def build_spec(config: TwinConfig, layout: Layout = LAYOUT) -> mujoco.MjSpec:
    """The editable spec of the scene: XML plus gravity compensation and the wrist camera."""
    spec = mujoco.MjSpec.from_string(scene_xml(config, layout))
    for body in spec.bodies:
        if body.name.startswith("panda0_"):
            body.gravcomp = 1.0
    # Stiffer servos than the Franka file's so that the arm settles within about one 10 Hz
    # control period; the joint damping of the classes above keeps them well damped.
    for act in spec.actuators:
        if act.name in SERVO_GAINS:
            kp = SERVO_GAINS[act.name]
            act.gainprm[0] = kp
            act.biasprm[1] = -kp
    for site in spec.sites:
        site.group = 4  # keypoints are data, not scenery: hidden from the cameras
    hand = spec.body("panda0_link7")
    # Looking along the fingers (the camera's -z is the hand's +z), offset beside the palm.
    hand.add_camera(
        name="wrist", pos=[0.06, -0.06, 0.1], quat=[0.0, 0.9239, -0.3827, 0.0], fovy=75.0
    )
    return spec


def build_model(config: TwinConfig, layout: Layout = LAYOUT) -> mujoco.MjModel:
    """Compile the scene for `config` (rendering quality and physics timestep)."""
    return build_spec(config, layout).compile()


#: Named keypoint sites (world positions read from the model each step).
KEYPOINTS = (
    "end_effector",
    "drawer_handle",
    "drawer_inside",
    "door_handle",
    "button_top",
    "light_bulb",
    *(f"block_{c}" for c in BLOCKS),
    *(f"block_{c}_c{i}" for c in BLOCKS for i in range(8)),
)
