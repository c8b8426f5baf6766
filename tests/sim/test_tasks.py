"""Contract over every registered task: feasible start, predicate false, expert solves it."""

import numpy as np
import pytest

from playworld.sim import TASKS, ScriptedExpert, SimError, get_task
from playworld.sim.tasks import goal_reached, prepare_task, resolve_tasks

EXPECTED = {
    "open_drawer",
    "close_drawer",
    "slide_door_left",
    "slide_door_right",
    "turn_on_light",
    "turn_off_light",
    "stack_blocks",
    "place_block_in_drawer",
    *(f"lift_{c}_block" for c in ("red", "green", "blue")),
    *(f"push_{c}_block_{d}" for c in ("red", "green", "blue") for d in ("left", "right")),
}


def test_registry_holds_the_listed_tasks():
    assert set(TASKS) == EXPECTED and len(TASKS) >= 16
    with pytest.raises(SimError, match="open_drawer"):
        get_task("open_drawr")
    assert resolve_tasks("all") == list(TASKS)
    assert resolve_tasks("open_drawer, turn_on_light") == ["open_drawer", "turn_on_light"]


def solve(twin, name: str, seed: int, max_steps: int = 100):
    task = get_task(name)
    twin.reset(seed=seed)
    start = prepare_task(twin, task, np.random.default_rng(seed))
    expert = ScriptedExpert()
    expert.reset(name)
    for step in range(1, max_steps + 1):
        twin.step(expert.act(twin.observe()))
        if task.success(start, twin.get_state()):
            return start, twin.get_state(), step
    return start, twin.get_state(), None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_task_contract(twin, name):
    task = get_task(name)
    start, end, steps = solve(twin, name, seed=11)
    assert task.feasible(start)
    assert not task.success(start, start), "predicate true before acting"
    assert steps is not None, f"expert did not solve {name} in 100 steps"
    assert task.success(start, end)


def test_doing_nothing_solves_nothing(twin):
    for name, task in TASKS.items():
        twin.reset(seed=4)
        start = prepare_task(twin, task, np.random.default_rng(4))
        for _ in range(5):
            twin.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
        assert not task.success(start, twin.get_state()), name


def test_light_toggles_once_per_press(twin):
    start, end, _ = solve(twin, "turn_on_light", seed=2)
    assert start[-1] == 0.0 and end[-1] == 1.0
    for _ in range(10):  # the expert lifts off: no second toggle
        twin.step(np.array([0, 0, 0.02, 0, 0, 0, 0.0]))
    assert twin.light


def test_goal_reached_compares_the_world_not_the_robot(twin):
    twin.reset(seed=0)
    goal = twin.get_state()
    moved = goal.copy()
    moved[:7] += 0.3  # the arm does not count
    assert goal_reached(goal, moved)
    moved[-4] += 0.1  # the drawer does
    assert not goal_reached(goal, moved)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expert_success_over_50_starts(twin, name):
    wins = sum(solve(twin, name, seed=1000 + s)[2] is not None for s in range(50))
    assert wins / 50 >= 0.9, f"{name}: {wins}/50"
