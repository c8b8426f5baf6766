"""Tasks with success predicates on the state vector, CALVIN style.

A task holds three pure functions of state vectors (40,) (layout in `playworld.sim.state`):
`feasible(state)` (the task can start here and is not already done), `success(start, now)`, and
`prepare(twin, rng)` which edits a freshly reset twin until the task is feasible. Registry:
`TASKS[name]`; `get_task(name)` raises with the valid names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from playworld.sim.errors import SimError
from playworld.sim.scene import BLOCKS, LAYOUT
from playworld.sim.state import STATE_LAYOUT

State = np.ndarray
RELEASED_WIDTH = 0.06  # the gripper has let go when its fingers are further apart than this (m)
ON_TABLE_Z = 0.03  # a block resting on the table has its centre below this height (m)


@dataclass(frozen=True)
class Task:
    """One task: a name, a sentence, and its predicates (see the module docstring)."""

    name: str
    description: str
    feasible: Callable[[State], bool]
    success: Callable[[State, State], bool]
    prepare: Callable[..., None]  # (twin, rng) -> None


def _f(state: State, name: str) -> np.ndarray:
    return STATE_LAYOUT.get(state, name)


def _scalar(state: State, name: str) -> float:
    return float(_f(state, name)[0])


def block_pos(state: State, color: str) -> np.ndarray:
    """Centre (3,) m of one block."""
    return _f(state, f"block_{color}_pos")


def on_table(state: State, color: str) -> bool:
    return block_pos(state, color)[2] < ON_TABLE_Z


def released(state: State) -> bool:
    return _scalar(state, "gripper_width") > RELEASED_WIDTH


def in_drawer(state: State, color: str) -> bool:
    """Whether a block's centre lies inside the drawer's box (which moves with the drawer)."""
    L = LAYOUT
    x, y, z = block_pos(state, color)
    ix, iy, rim = L.drawer_inner
    x_rel = x - (L.drawer_front_x - _scalar(state, "drawer"))
    return 0.012 < x_rel < 0.012 + 2 * ix and abs(y - L.drawer_y) < iy and z < 0.011 + rim + 0.02


def stacked(state: State) -> tuple[str, str] | None:
    """(top, bottom) of a block resting on another, else None."""
    for top in BLOCKS:
        for bottom in BLOCKS:
            if top == bottom:
                continue
            d = block_pos(state, top) - block_pos(state, bottom)
            if np.hypot(d[0], d[1]) < 0.03 and 0.04 < d[2] < 0.06:
                return top, bottom
    return None


def _set_joint(twin, name: str, value: float) -> None:
    twin.data.qpos[twin.qadr[name]] = value
    import mujoco

    mujoco.mj_forward(twin.model, twin.data)


def _resample_block(twin, rng, color: str, feasible: Callable[[State], bool]) -> None:
    """Move one block to a random free spot of the block region until `feasible` holds."""
    from playworld.sim.twin import MIN_BLOCK_GAP

    cfg = twin.config.randomization
    x0, x1, y0, y1 = cfg.block_region or LAYOUT.block_region
    others = [block_pos(twin.get_state(), c)[:2] for c in BLOCKS if c != color]
    import mujoco

    for attempt in range(1000):
        if feasible(twin.get_state()):
            return
        if attempt % 50 == 49:  # this block is cornered: lay out every block afresh
            for c, (x, y, yaw) in zip(BLOCKS, twin.sample_block_poses(), strict=True):
                twin.set_block_pose(c, np.array([x, y, LAYOUT.block_half]), yaw)
            others = [block_pos(twin.get_state(), c)[:2] for c in BLOCKS if c != color]
        else:
            xy = rng.uniform((x0, y0), (x1, y1))
            if any(np.linalg.norm(xy - o) <= MIN_BLOCK_GAP for o in others):
                continue
            twin.set_block_pose(
                color,
                np.array([*xy, LAYOUT.block_half]),
                rng.uniform(-cfg.block_yaw, cfg.block_yaw),
            )
        mujoco.mj_forward(twin.model, twin.data)


def _nothing(twin, rng) -> None:
    return None


def _drawer_tasks() -> list[Task]:
    r = LAYOUT.drawer_range

    def open_ok(s0: State, s: State) -> bool:
        return _scalar(s, "drawer") > 0.12 and _scalar(s, "drawer") - _scalar(s0, "drawer") > 0.08

    def close_ok(s0: State, s: State) -> bool:
        return _scalar(s, "drawer") < 0.03 and _scalar(s0, "drawer") - _scalar(s, "drawer") > 0.08

    return [
        Task(
            "open_drawer",
            "pull the drawer open",
            lambda s: _scalar(s, "drawer") < 0.04,
            open_ok,
            lambda tw, rng: _set_joint(tw, "drawer", rng.uniform(0, 0.02)),
        ),
        Task(
            "close_drawer",
            "push the drawer closed",
            lambda s: _scalar(s, "drawer") > 0.12,
            close_ok,
            lambda tw, rng: _set_joint(tw, "drawer", rng.uniform(0.14, r)),
        ),
    ]


def _door_tasks() -> list[Task]:
    r = LAYOUT.door_range

    def left_ok(s0: State, s: State) -> bool:
        return _scalar(s, "door") > 0.1 and _scalar(s, "door") - _scalar(s0, "door") > 0.08

    def right_ok(s0: State, s: State) -> bool:
        return _scalar(s, "door") < 0.03 and _scalar(s0, "door") - _scalar(s, "door") > 0.08

    return [
        Task(
            "slide_door_left",
            "slide the door to the left",
            lambda s: _scalar(s, "door") < 0.03,
            left_ok,
            lambda tw, rng: _set_joint(tw, "door", rng.uniform(0, 0.02)),
        ),
        Task(
            "slide_door_right",
            "slide the door to the right",
            lambda s: _scalar(s, "door") > 0.1,
            right_ok,
            lambda tw, rng: _set_joint(tw, "door", rng.uniform(r - 0.02, r)),
        ),
    ]


def _light_tasks() -> list[Task]:
    def setter(on: bool):
        def prepare(tw, rng) -> None:
            tw.light = on
            tw._show_light()

        return prepare

    return [
        Task(
            "turn_on_light",
            "press the button to turn the light on",
            lambda s: _scalar(s, "light") < 0.5,
            lambda s0, s: _scalar(s0, "light") < 0.5 and _scalar(s, "light") > 0.5,
            setter(False),
        ),
        Task(
            "turn_off_light",
            "press the button to turn the light off",
            lambda s: _scalar(s, "light") > 0.5,
            lambda s0, s: _scalar(s0, "light") > 0.5 and _scalar(s, "light") < 0.5,
            setter(True),
        ),
    ]


def _block_tasks(color: str) -> list[Task]:
    def lift_ok(s0: State, s: State) -> bool:
        return block_pos(s, color)[2] - block_pos(s0, color)[2] > 0.05

    def push_ok(sign: float):
        def ok(s0: State, s: State) -> bool:
            d = block_pos(s, color) - block_pos(s0, color)
            return sign * d[1] > 0.06 and abs(d[2]) < 0.01

        return ok

    def push_feasible(sign: float):
        # The pusher starts 6 cm on the far side of the block: keep it clear of the cabinets.
        def feasible(s: State) -> bool:
            x, y, _ = block_pos(s, color)
            return on_table(s, color) and 0.25 < x < 0.48 and -0.11 < sign * y < 0.17

        return feasible

    def push_prepare(sign: float):
        def prepare(tw, rng) -> None:
            _resample_block(tw, rng, color, push_feasible(sign))

        return prepare

    return [
        Task(
            f"lift_{color}_block",
            f"pick up the {color} block",
            lambda s: on_table(s, color),
            lift_ok,
            _nothing,
        ),
        Task(
            f"push_{color}_block_left",
            f"push the {color} block to the left",
            push_feasible(1.0),
            push_ok(1.0),
            push_prepare(1.0),
        ),
        Task(
            f"push_{color}_block_right",
            f"push the {color} block to the right",
            push_feasible(-1.0),
            push_ok(-1.0),
            push_prepare(-1.0),
        ),
    ]


def _placement_tasks() -> list[Task]:
    def stack_feasible(s: State) -> bool:
        return stacked(s) is None and sum(on_table(s, c) for c in BLOCKS) >= 2

    def drawer_feasible(s: State) -> bool:
        return (
            _scalar(s, "drawer") > 0.15
            and not any(in_drawer(s, c) for c in BLOCKS)
            and any(on_table(s, c) for c in BLOCKS)
        )

    def drawer_ok(s0: State, s: State) -> bool:
        return released(s) and any(in_drawer(s, c) and not in_drawer(s0, c) for c in BLOCKS)

    return [
        Task(
            "stack_blocks",
            "stack one block on another",
            stack_feasible,
            lambda s0, s: stacked(s0) is None and stacked(s) is not None and released(s),
            _nothing,
        ),
        Task(
            "place_block_in_drawer",
            "put a block into the open drawer",
            drawer_feasible,
            drawer_ok,
            lambda tw, rng: _set_joint(tw, "drawer", rng.uniform(0.16, LAYOUT.drawer_range)),
        ),
    ]


def _all_tasks() -> dict[str, Task]:
    tasks = [*_drawer_tasks(), *_door_tasks(), *_light_tasks()]
    for color in BLOCKS:
        tasks += _block_tasks(color)
    tasks += _placement_tasks()
    return {t.name: t for t in tasks}


TASKS: dict[str, Task] = _all_tasks()


def get_task(name: str) -> Task:
    """The registered task called `name`."""
    from playworld.errors import did_you_mean

    if name not in TASKS:
        raise SimError(f"expected a task name, found {name!r}.{did_you_mean(name, list(TASKS))}")
    return TASKS[name]


def resolve_tasks(names: str | list[str] | tuple[str, ...]) -> list[str]:
    """Task names from 'all', a comma-separated string or a list; unknown names raise."""
    if isinstance(names, str):
        names = list(TASKS) if names.strip() == "all" else [n.strip() for n in names.split(",")]
    out = [get_task(n).name for n in names if n]
    if not out:
        raise SimError(f"expected at least one task, found none. Valid: {', '.join(TASKS)}")
    return out


def prepare_task(twin, task: Task, rng: np.random.Generator) -> np.ndarray:
    """Make a freshly reset twin's state feasible for `task`; return the start state (40,)."""
    task.prepare(twin, rng)
    state = twin.get_state()
    if not task.feasible(state):
        raise SimError(f"expected a feasible start for {task.name}, found state {state.round(3)}")
    return state


def goal_reached(goal: State, state: State, tol: float = 0.03) -> bool:
    """Whether the world (not the robot) matches `goal` (40,): blocks, drawer, door within `tol`
    metres and the same light state."""
    blocks_ok = all(np.linalg.norm(block_pos(state, c) - block_pos(goal, c)) < tol for c in BLOCKS)
    joints_ok = all(abs(_scalar(state, n) - _scalar(goal, n)) < tol for n in ("drawer", "door"))
    return (
        blocks_ok
        and joints_ok
        and (_scalar(state, "light") > 0.5) == (_scalar(goal, "light") > 0.5)
    )


def task_rng(seed: int | None) -> np.random.Generator:
    """The generator `prepare_task` gets for an episode seed, the same in evaluation, the
    served twin and deployments (so one seed sets up one scene everywhere)."""
    return np.random.default_rng(None if seed is None else [int(seed), 1])
