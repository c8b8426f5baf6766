"""Benchmark of the twin: wrapper overhead, rendering rate, parallel evaluation throughput.

    python bench/twin.py [--quick]

Prints `name: value` lines: step_ratio (twin control steps/s over raw mujoco.mj_step control
periods/s on the same model, same run), render_fps_480x640 / render_fps_128x128 (front camera,
default quality), eval_episodes_per_min_1 / _2 (scripted expert over all tasks, 1 and 2 worker
processes, pool start-up included) and eval_scaling (their ratio).
"""

from __future__ import annotations

import argparse
import os
import time

# Headless rendering: the GL backend must be chosen before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from playworld.sim import Twin, TwinConfig  # noqa: E402
from playworld.sim.evaluation import evaluate  # noqa: E402


def bench_step(steps: int, repeats: int = 3) -> dict[str, float]:
    """Best of `repeats` interleaved runs each (the machine is shared: noise only slows)."""
    twin = Twin(TwinConfig())
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.01, 0.01, (steps, 7))
    actions[:, 6] = 1.0
    m, d, n = twin.model, twin.data, twin.config.n_substeps
    t_twin, t_raw = np.inf, np.inf
    for _ in range(repeats):
        twin.reset(seed=0)
        t0 = time.perf_counter()
        for a in actions:
            twin.step(a)
        t_twin = min(t_twin, time.perf_counter() - t0)
        twin.reset(seed=0)
        t0 = time.perf_counter()
        for _ in range(steps):
            mujoco.mj_step(m, d, nstep=n)
        t_raw = min(t_raw, time.perf_counter() - t0)
    return {
        "twin_steps_per_s": steps / t_twin,
        "raw_control_periods_per_s": steps / t_raw,
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


def bench_eval(episodes: int) -> dict[str, float]:
    out = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        report = evaluate("scripted", "all", episodes=episodes, seed=0, workers=workers)
        minutes = (time.perf_counter() - t0) / 60
        out[f"eval_episodes_per_min_{workers}"] = report["overall"]["episodes"] / minutes
        out[f"eval_success_{workers}"] = report["overall"]["success_rate"]
    out["eval_scaling"] = out["eval_episodes_per_min_2"] / out["eval_episodes_per_min_1"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (under a minute)")
    args = parser.parse_args()
    results = {}
    results.update(bench_step(300 if args.quick else 2000))
    results.update(bench_render(60 if args.quick else 300))
    results.update(bench_eval(2 if args.quick else 8))
    for name, value in results.items():
        print(f"{name}: {value:.3f}")


if __name__ == "__main__":
    main()
