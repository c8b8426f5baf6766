"""Realistic camera frames for benchmarks: a tabletop play scene rendered with MuJoCo.

Two cameras (front, wrist-like) look at a table with blocks, a drawer and an arm-like chain of
links that moves between frames, lit with a headlight and a spot, at 480x640. The frames are
rendered once and cached under ``~/.cache/playworld/bench`` (rendering on a 2-core machine
costs ~20 ms a frame); benchmarks then cycle through them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

_SCENE = """
<mujoco model="bench_tabletop">
  <visual><global offwidth="640" offheight="480"/><quality shadowsize="0"/></visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.62 0.7" rgb2="0.2 0.22 0.25" width="256" height="256"/>
    <texture name="floor" type="2d" builtin="checker" rgb1="0.32 0.3 0.28" rgb2="0.27 0.25 0.24" width="256" height="256" mark="random" random="0.02" markrgb="0.4 0.4 0.4"/>
    <texture name="wood" type="2d" builtin="flat" rgb1="0.62 0.46 0.3" rgb2="0.5 0.36 0.22" width="512" height="512" mark="random" random="0.15" markrgb="0.55 0.4 0.26"/>
    <material name="floor" texture="floor" texrepeat="6 6"/>
    <material name="wood" texture="wood" texrepeat="2 2" specular="0.2"/>
    <material name="metal" rgba="0.8 0.8 0.82 1" specular="0.6" shininess="0.6"/>
    <material name="dark" rgba="0.15 0.15 0.17 1" specular="0.3"/>
  </asset>
  <worldbody>
    <light pos="0.5 -0.5 2.2" dir="-0.2 0.2 -1" diffuse="0.8 0.8 0.75" specular="0.3 0.3 0.3"/>
    <geom type="plane" size="3 3 0.1" material="floor"/>
    <geom type="box" pos="0.5 0 0.38" size="0.45 0.6 0.02" material="wood"/>
    <geom type="box" pos="0.5 0 0.18" size="0.4 0.55 0.18" rgba="0.42 0.3 0.2 1"/>
    <body name="drawer" pos="0.75 0.35 0.5">
      <geom type="box" size="0.1 0.12 0.1" rgba="0.85 0.85 0.8 1"/>
      <geom type="box" pos="-0.105 0 0.02" size="0.01 0.06 0.015" material="metal"/>
    </body>
    <body name="red" pos="0.5 -0.15 0.43"><freejoint/><geom type="box" size="0.03 0.03 0.03" rgba="0.8 0.15 0.12 1"/></body>
    <body name="green" pos="0.42 0.05 0.43"><freejoint/><geom type="box" size="0.03 0.03 0.03" rgba="0.15 0.6 0.2 1"/></body>
    <body name="blue" pos="0.6 0.15 0.43"><freejoint/><geom type="box" size="0.03 0.03 0.03" rgba="0.15 0.3 0.8 1"/></body>
    <body name="button" pos="0.3 0.4 0.41"><geom type="cylinder" size="0.04 0.01" rgba="0.9 0.8 0.1 1"/></body>
    <body name="base" pos="0.05 0 0.4">
      <geom type="cylinder" size="0.07 0.05" material="dark"/>
      <body name="l1" pos="0 0 0.05"><joint name="j1" axis="0 0 1"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.3" size="0.05" material="metal"/>
        <body name="l2" pos="0 0 0.3"><joint name="j2" axis="0 1 0"/>
          <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.045" material="metal"/>
          <body name="l3" pos="0.3 0 0"><joint name="j3" axis="0 1 0"/>
            <geom type="capsule" fromto="0 0 0 0.25 0 0" size="0.04" material="dark"/>
            <body name="hand" pos="0.25 0 0"><joint name="j4" axis="1 0 0"/>
              <geom type="box" size="0.02 0.05 0.02" material="dark"/>
              <geom type="box" pos="0.04 0.03 0" size="0.03 0.008 0.012" material="metal"/>
              <geom type="box" pos="0.04 -0.03 0" size="0.03 0.008 0.012" material="metal"/>
              <camera name="wrist" pos="0.03 0 0.05" xyaxes="0 -1 0 0.5 0 0.87" fovy="75"/>
            </body>
          </body>
        </body>
      </body>
    </body>
    <camera name="front" pos="1.6 0 1.1" xyaxes="0 1 0 -0.5 0 0.866" fovy="55"/>
  </worldbody>
</mujoco>
"""


def render_frames(n: int = 60, height: int = 480, width: int = 640) -> dict[str, np.ndarray]:
    """``n`` frames per camera, ``{"front": (n, H, W, 3) uint8, "wrist": ...}``, cached on disk."""
    cache = Path.home() / ".cache" / "playworld" / "bench" / f"tabletop_{n}_{height}x{width}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    import mujoco

    model = mujoco.MjModel.from_xml_string(_SCENE)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height, width)
    out: dict[str, list[np.ndarray]] = {"front": [], "wrist": []}
    for i in range(n):
        t = i / n * 2 * np.pi
        data.qpos[-4:] = [
            0.6 * np.sin(t),
            0.5 + 0.3 * np.sin(2 * t),
            0.9 + 0.3 * np.cos(t),
            0.4 * np.sin(3 * t),
        ]
        mujoco.mj_forward(model, data)
        for cam in out:
            renderer.update_scene(data, camera=cam)
            out[cam].append(renderer.render().copy())
    renderer.close()
    frames = {k: np.stack(v) for k, v in out.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **frames)
    os.replace(tmp, cache)
    return frames


if __name__ == "__main__":
    import cv2

    f = render_frames()
    for k, v in f.items():
        cv2.imwrite(f"/tmp/bench_{k}.png", cv2.cvtColor(v[10], cv2.COLOR_RGB2BGR))
        print(k, v.shape, v.mean())
