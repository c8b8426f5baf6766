"""Headless rendering of the twin's cameras: RGB (H, W, 3) uint8 and depth (H, W) float32 metres.

Uses `mujoco.Renderer` on the backend named by `MUJOCO_GL` (set to EGL by `playworld.sim` unless
the user chose one). The default quality (`TwinConfig.quality="fast"`) renders decimated meshes
without shadow maps, which software OpenGL draws at tens of frames per second.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

from playworld.sim.errors import RenderError
from playworld.sim.scene import CAMERAS

MAX_SIZE = (480, 640)  # (H, W): the offscreen buffer of the scene


class TwinRenderer:
    """Renders one twin's cameras at a fixed size. Close it (or use `with`) to free GL memory."""

    def __init__(self, twin, height: int = 128, width: int = 128) -> None:
        if not (0 < height <= MAX_SIZE[0] and 0 < width <= MAX_SIZE[1]):
            raise RenderError(f"expected an image size up to {MAX_SIZE}, found {(height, width)}")
        self.twin = twin
        self.height, self.width = height, width
        try:
            self._renderer = mujoco.Renderer(twin.model, height, width)
        except Exception as exc:  # the GL stack raises many types
            backend = os.environ.get("MUJOCO_GL", "(unset)")
            raise RenderError(
                f"expected an offscreen OpenGL context (MUJOCO_GL=egl or osmesa), found "
                f"MUJOCO_GL={backend} failing: {exc}. Import playworld.sim before mujoco (or "
                "set MUJOCO_GL before starting Python); install libegl1 libgl1-mesa-dri "
                "libosmesa6 (make setup) or try MUJOCO_GL=osmesa"
            ) from exc

    def _check(self, camera: str) -> None:
        if camera not in CAMERAS:
            raise RenderError(f"expected a camera in {list(CAMERAS)}, found {camera!r}")

    def rgb(self, camera: str = "front") -> np.ndarray:
        """Colour image (H, W, 3) uint8 of the twin's current state."""
        self._check(camera)
        self._renderer.update_scene(self.twin.data, camera=camera)
        return self._renderer.render()

    def depth(self, camera: str = "front") -> np.ndarray:
        """Depth image (H, W) float32, metres along the camera axis."""
        self._check(camera)
        self._renderer.enable_depth_rendering()
        try:
            self._renderer.update_scene(self.twin.data, camera=camera)
            return self._renderer.render().astype(np.float32)
        finally:
            self._renderer.disable_depth_rendering()

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> TwinRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
