"""The named state vector of the twin: what a real robot and a pose tracker can measure.

Layout (`STATE_LAYOUT`, 40 float64 values, in this order):

    arm_qpos         (7,)  rad     Panda joints 1..7
    gripper_width    (1,)  m       distance between the fingers, 0 .. 0.08
    ee_pos           (3,)  m       end-effector site (between the fingertips), world frame
    ee_quat          (4,)  wxyz    end-effector orientation, world frame
    block_<c>_pos    (3,)  m       centre of each block, c in red, green, blue
    block_<c>_quat   (4,)  wxyz    orientation of each block
    drawer           (1,)  m       drawer opening, 0 (closed) .. 0.2
    door             (1,)  m       sliding door, 0 (right) .. 0.13 (left)
    button           (1,)  m       button displacement, -0.012 (pressed) .. 0
    light            (1,)  0/1     light state, toggled by each press of the button

`ee_pos` / `ee_quat` follow from the joints: `write_state` ignores them. Velocities are not part
of the state; writing a state sets them to zero (the twin is synchronised at rest or per step).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from playworld.sim.errors import SimError
from playworld.sim.scene import BLOCKS

FIELDS: tuple[tuple[str, int, str], ...] = (
    ("arm_qpos", 7, "rad"),
    ("gripper_width", 1, "m"),
    ("ee_pos", 3, "m"),
    ("ee_quat", 4, "wxyz"),
    *(
        (f"block_{c}_{k}", n, u)
        for c in BLOCKS
        for k, n, u in (("pos", 3, "m"), ("quat", 4, "wxyz"))
    ),
    ("drawer", 1, "m"),
    ("door", 1, "m"),
    ("button", 1, "m"),
    ("light", 1, "bool"),
)


@dataclass(frozen=True)
class StateLayout:
    """Named slices into the flat state vector."""

    fields: tuple[tuple[str, int, str], ...] = FIELDS

    @cached_property  # read on every expert step: computed once
    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, size, _ in self.fields:
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def size(self) -> int:
        return sum(size for _, size, _ in self.fields)

    @property
    def names(self) -> list[str]:
        """One name per dimension, e.g. `arm_qpos.3`, `drawer`."""
        return [n if s == 1 else f"{n}.{i}" for n, s, _ in self.fields for i in range(s)]

    def unpack(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Dict of views `name -> (size,)` into `state` (size,) (or (..., size) batches)."""
        state = np.asarray(state)
        if state.shape[-1] != self.size:
            raise SimError(
                f"expected a state vector of size {self.size}, found shape {state.shape}"
            )
        return {name: state[..., sl] for name, sl in self.slices.items()}

    def pack(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """Flat state (size,) from a dict holding every field."""
        missing = [n for n, _, _ in self.fields if n not in parts]
        if missing:
            raise SimError(f"expected every state field, found {missing} missing")
        return np.concatenate([np.ravel(parts[n]).astype(np.float64) for n, _, _ in self.fields])

    def get(self, state: np.ndarray, name: str) -> np.ndarray:
        """One field of `state`; unknown names raise with the valid ones."""
        sl = self.slices.get(name)
        if sl is None:
            raise SimError(f"expected a state field among {list(self.slices)}, found {name!r}")
        return np.asarray(state)[..., sl]


STATE_LAYOUT = StateLayout()
