"""Dimension groups of a state feature for reporting errors (arm vs objects)."""

from __future__ import annotations

import numpy as np

ARM_FIELDS = ("arm_qpos", "gripper_width", "ee_pos", "ee_quat")


def state_groups(key: str, dim: int) -> dict[str, np.ndarray]:
    """``{"all", "arm", "objects"}`` -> dimension indices for the twin's ``state`` (40,) vector
    (layout `playworld.sim.state.STATE_LAYOUT`); other features are all "arm"."""
    everything = np.arange(dim)
    if key != "state":
        return {"all": everything, "arm": everything}
    from playworld.sim.state import STATE_LAYOUT

    arm, objects, i = [], [], 0
    for name, size, _units in STATE_LAYOUT.fields:
        (arm if name in ARM_FIELDS else objects).extend(range(i, i + size))
        i += size
    if i != dim:
        return {"all": everything, "arm": everything}
    return {"all": everything, "arm": np.asarray(arm), "objects": np.asarray(objects)}


def field_slices(key: str, dim: int) -> list[tuple[str, slice]]:
    """(name, slice) of every field of the state vector, for plots; one slice otherwise."""
    if key == "state":
        from playworld.sim.state import STATE_LAYOUT

        out, i = [], 0
        for name, size, _units in STATE_LAYOUT.fields:
            out.append((name, slice(i, i + size)))
            i += size
        if i == dim:
            return out
    return [(key, slice(0, dim))]
