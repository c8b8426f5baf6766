"""Benchmark of the twin: wrapper overhead, rendering rate, parallel evaluation throughput.

    python bench/twin.py [--quick]

Prints `name: value` lines:
- step_ratio: raw mujoco control periods/s over twin control steps/s, same model, same run.
  Both loops apply the same actuator targets: the raw one replays the `ctrl` the twin computed
  (`d.ctrl[:] = c; mj_step(m, d, nstep=n_substeps)`), so the physics work is identical and the
  ratio is the cost of our wrapper (action clipping, ee-delta IK, kinematics refresh, light).
  CPU time of this process, best of interleaved repeats (the machine is shared).
- render_fps_480x640 / render_fps_128x128: front camera, default quality.
- eval_loop_overhead_us: per-step cost of an evaluation step through `ControlLoop` + `SimRobot`
  (observation, guard, the ee-delta action, metrics) over a raw `Twin.step` of the same actions
  (the twin's own ee_delta action space). CPU time, best of interleaved repeats (and
  eval_loop_overhead_median_us: the median over back-to-back pairs), with the physics (`mj_step`, the same simulation on both sides) timed and taken out of both:
  eval_raw_step_rest_us / eval_loop_step_rest_us are what remains per step, and
  eval_raw_step_us / eval_loop_step_us the totals (best of the repeats).
- eval_episodes_per_min_1 / _2: `evaluate` of the `scripted` policy over all tasks with 1 and 2
  worker processes, wall clock, pool start-up included, best of alternating repeats;
  eval_scaling is their ratio. eval_old_episodes_per_min_1: the evaluation before it ran on the
  ControlLoop (a copy of its raw-twin rollout, `old_rollout` below: `twin.step(expert.act(
  twin.observe()))`), same episodes, 1 process, measured in the same run;
  eval_vs_old_1 = eval_episodes_per_min_1 / eval_old_episodes_per_min_1 (>= 0.8 wanted). eval_cpu_s_1 / _2 are the CPU seconds spent (this process and
  its children) and eval_scaling_cpu = 2 * eval_cpu_s_1 / eval_cpu_s_2: the scaling two free
  cores give when the work is balanced (chunks are handed out dynamically), i.e. what the
  parallel overhead (a spawned interpreter's start-up, its twin) leaves; on a machine loaded by
  other work the wall-clock ratio cannot show it.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

# Headless rendering: the GL backend must be chosen before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")

import functools  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from playworld.collection.evaluation import episode_seed, evaluate  # noqa: E402
from playworld.collection.loop import ControlLoop  # noqa: E402
from playworld.collection.parallel import seed_globals  # noqa: E402
from playworld.hardware.profiles import robot_from_profile  # noqa: E402
from playworld.policies import make_policy  # noqa: E402
from playworld.sim import TASKS, ScriptedExpert, Twin, TwinConfig  # noqa: E402
from playworld.sim.tasks import prepare_task  # noqa: E402

SCRIPTED = functools.partial(make_policy, "scripted")


def bench_step(steps: int, repeats: int) -> dict[str, float]:
    """Twin steps vs raw mj_step on the same actuator targets; best of interleaved repeats."""
    twin = Twin(TwinConfig())
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.01, 0.01, (steps, 7))
    actions[:, 6] = 1.0
    m, d, n = twin.model, twin.data, twin.config.n_substeps
    twin.reset(seed=0)
    ctrls = []
    for a in actions:
        twin.step(a)
        ctrls.append(d.ctrl.copy())
    t_twin, t_raw = np.inf, np.inf
    for _ in range(repeats):
        twin.reset(seed=0)
        t0 = time.process_time()
        for a in actions:
            twin.step(a)
        t_twin = min(t_twin, time.process_time() - t0)
        twin.reset(seed=0)
        t0 = time.process_time()
        for c in ctrls:
            d.ctrl[:] = c
            mujoco.mj_step(m, d, nstep=n)
        t_raw = min(t_raw, time.process_time() - t0)
    return {
        "twin_steps_per_s": steps / t_twin,
        "raw_control_periods_per_s": steps / t_raw,
        "step_overhead_us": (t_twin - t_raw) / steps * 1e6,
        "step_ratio": t_raw / t_twin,
    }


def bench_render(frames: int) -> dict[str, float]:
    from playworld.sim.render import TwinRenderer

    twin = Twin(TwinConfig())
    out = {}
    for h, w in ((480, 640), (128, 128)):
        with TwinRenderer(twin, h, w) as r:
            r.rgb("front")  # warm-up
            t0 = time.perf_counter()
            for i in range(frames):
                twin.step(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, i % 2]))
                r.rgb("front")
            t_total = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(frames):
                r.rgb("front")
            out[f"render_fps_{h}x{w}"] = frames / (time.perf_counter() - t0)
        out[f"step_and_render_fps_{h}x{w}"] = frames / t_total
    return out


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class _PhysicsTimer:
    """Times `mujoco.mj_step` (CPU s) while active: the physics, identical on both sides."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._step = mujoco.mj_step

    def __enter__(self) -> _PhysicsTimer:
        step, clock = self._step, time.process_time

        def timed(*args, **kwargs):
            t0 = clock()
            step(*args, **kwargs)
            self.seconds += clock() - t0

        mujoco.mj_step = timed
        return self

    def __exit__(self, *exc) -> None:
        mujoco.mj_step = self._step


def bench_loop_overhead(steps: int, repeats: int) -> dict[str, float]:
    """Per-step CPU of ControlLoop + SimRobot over raw Twin.step, same ee_delta actions.

    Both sides run the same physics (same start state, same joint targets to 1e-7 rad: the
    guard does not clip these small deltas), so the time inside `mj_step` (~1.3-1.7 ms a step,
    varying 10-30% between repeats on this machine) is timed and taken out of both: the
    overhead is the difference of what remains, best of the repeats on each side (as every
    figure here); `_median_us` is the median over back-to-back pairs, which also counts the
    repeats that ran while the machine was slow.
    """
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.01, 0.01, (steps, 7)).astype(np.float32)
    actions[:, 6] = 1.0
    twin = Twin(TwinConfig(action_space="ee_delta"))
    robot = robot_from_profile("sim_panda", cameras={}, action_space="ee_delta")
    robot.connect()
    it = iter(())

    def source(obs):
        return next(it)

    loop = ControlLoop(robot, source, robot.fps, realtime=False)
    best = {"raw": np.inf, "loop": np.inf, "raw_rest": np.inf, "loop_rest": np.inf}
    gaps = []  # loop rest - raw rest, each pair run back to back
    try:
        with _PhysicsTimer() as physics:
            for _ in range(repeats):
                twin.reset(seed=0)
                physics.seconds = 0.0
                t0 = time.process_time()
                for a in actions:
                    twin.step(a)
                total = time.process_time() - t0
                best["raw"] = min(best["raw"], total)
                raw_rest = total - physics.seconds
                best["raw_rest"] = min(best["raw_rest"], raw_rest)
                robot.reset(seed=0)
                loop.reset_metrics()
                it = iter(actions)
                physics.seconds = 0.0
                t0 = time.process_time()
                loop.run(max_ticks=steps)
                total = time.process_time() - t0
                best["loop"] = min(best["loop"], total)
                best["loop_rest"] = min(best["loop_rest"], total - physics.seconds)
                gaps.append(total - physics.seconds - raw_rest)
        gap = np.abs(twin.get_state() - robot.twin.get_state()).max()
        assert gap < 1e-5, f"the two sides simulated different motions (state gap {gap:.2g})"
    finally:
        robot.disconnect()
    return {
        "eval_raw_step_us": best["raw"] / steps * 1e6,
        "eval_loop_step_us": best["loop"] / steps * 1e6,
        "eval_raw_step_rest_us": best["raw_rest"] / steps * 1e6,
        "eval_loop_step_rest_us": best["loop_rest"] / steps * 1e6,
        "eval_loop_overhead_us": (best["loop_rest"] - best["raw_rest"]) / steps * 1e6,
        "eval_loop_overhead_median_us": float(np.median(gaps)) / steps * 1e6,
    }


def old_rollout(tasks: list[str], episodes: int, seed: int, max_steps: int = 100) -> int:
    """The evaluation before the ControlLoop (a copy kept as the baseline): the scripted expert
    on a raw ee_delta twin, `twin.step(expert.act(twin.observe()))`; returns the successes."""
    twin, expert, order, successes = Twin(TwinConfig()), ScriptedExpert(), list(TASKS), 0
    for name in tasks:
        task = TASKS[name]
        for i in range(episodes):
            s = episode_seed(seed, order.index(name), i)
            twin.reset(seed=s)
            start = prepare_task(twin, task, np.random.default_rng([s, 1]))
            seed_globals(s)
            expert.reset(name)
            for _ in range(max_steps):
                twin.step(expert.act(twin.observe()))
                if task.success(start, twin.get_state()):
                    successes += 1
                    break
    return successes


def bench_eval(episodes: int, repeats: int) -> dict[str, float]:
    """`evaluate` (scripted, all tasks) with 1 and 2 workers and the old rollout, alternating;
    best of `repeats`."""
    wall = {1: np.inf, 2: np.inf, "old": np.inf}
    cpu = {1: np.inf, 2: np.inf}
    n, success, old_success = 0, 1.0, 1.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        ok = old_rollout(list(TASKS), episodes, seed=0)
        wall["old"] = min(wall["old"], time.perf_counter() - t0)
        old_success = min(old_success, ok / (len(TASKS) * episodes))
        for workers in (1, 2):
            c_self, c_kids = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            report = evaluate(SCRIPTED, "all", episodes=episodes, seed=0, workers=workers)
            elapsed = time.perf_counter() - t0
            used = _cpu_s(resource.RUSAGE_SELF) - c_self + _cpu_s(resource.RUSAGE_CHILDREN) - c_kids
            n = report["overall"]["episodes"]
            success = min(success, report["overall"]["success_rate"])
            wall[workers] = min(wall[workers], elapsed)
            cpu[workers] = min(cpu[workers], used)
    return {
        "eval_episodes": n,
        "eval_success_rate": success,
        "eval_old_success_rate": old_success,
        "eval_episodes_per_min_1": n / wall[1] * 60,
        "eval_episodes_per_min_2": n / wall[2] * 60,
        "eval_old_episodes_per_min_1": n / wall["old"] * 60,
        "eval_vs_old_1": wall["old"] / wall[1],
        "eval_scaling": wall[1] / wall[2],
        "eval_cpu_s_1": cpu[1],
        "eval_cpu_s_2": cpu[2],
        "eval_scaling_cpu": 2 * cpu[1] / cpu[2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (under a minute)")
    parser.add_argument("--only-eval", action="store_true", help="only the evaluation figures")
    args = parser.parse_args()
    results = {}
    if not args.only_eval:
        # Short interleaved segments: some of them land in quiet moments of a shared machine.
        results.update(bench_step(100, 15) if args.quick else bench_step(200, 40))
        results.update(bench_render(60 if args.quick else 300))
    results.update(bench_loop_overhead(100, 15) if args.quick else bench_loop_overhead(200, 40))
    # Enough episodes that spawning a worker (~0.5 s CPU) is small next to the work.
    results.update(bench_eval(10, 2) if args.quick else bench_eval(20, 3))
    for name, value in results.items():
        print(f"{name}: {value:.3f}")


if __name__ == "__main__":
    main()
