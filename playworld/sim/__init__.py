"""playworld.sim: the MuJoCo digital twin of the play table.

    from playworld.sim import Twin, TwinConfig, TASKS, ScriptedExpert
    from playworld.collection.evaluation import evaluate   # policies on the twin, in the loop

Headless rendering needs an OpenGL backend chosen before MuJoCo is imported: unless the user set
`MUJOCO_GL`, we pick EGL (Mesa's llvmpipe on a machine without a GPU).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] == "egl":
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from playworld.sim.config import RandomizationConfig, TwinConfig  # noqa: E402
from playworld.sim.errors import RenderError, SimError  # noqa: E402
from playworld.sim.experts import ScriptedExpert  # noqa: E402
from playworld.sim.state import STATE_LAYOUT  # noqa: E402
from playworld.sim.tasks import TASKS, get_task  # noqa: E402
from playworld.sim.twin import Twin  # noqa: E402

try:  # gymnasium is part of the sim extra; the env module itself is imported on first make()
    import gymnasium as _gym

    if "playworld/PlayTable-v0" not in _gym.registry:
        _gym.register(id="playworld/PlayTable-v0", entry_point="playworld.sim.env:PlayTableEnv")
except ImportError:  # pragma: no cover
    pass

__all__ = [
    "STATE_LAYOUT",
    "TASKS",
    "RandomizationConfig",
    "RenderError",
    "ScriptedExpert",
    "SimError",
    "Twin",
    "TwinConfig",
    "get_task",
]
