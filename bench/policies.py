"""Benchmark of the play-trained policies: autoplay data, fixed training budgets, evaluation of
the SAVED checkpoints in the twin with expert goals.

    python bench/policies.py [--quick] [--out out/bench_policies]

1. Play data: `autoplay_parallel` over every task, state-only (no cameras), seed 0, 2 workers,
   episodes of >= 40 steps each from a reset twin (`PLAY`); 240 min of twin time (quick: 80).
2. Each policy is trained with a fixed wall-clock budget on the shared training loop
   (`playworld train policy`, with `configs/policies/<type>.yaml` where there is one), two at
   a time (one torch thread each, one per core; `--workers` at once), then its folder
   `<out>/<policy>/policy` is loaded from disk.
3. Evaluation (`playworld.collection.evaluation`, goals="expert": the observation a scripted
   expert reaches from the same start in a copy of the twin, kept in `<out>/goals` so that each
   is rolled out once for the three goal-conditioned policies): 17 tasks x 50 seeds (quick:
   x 10) and 200 CALVIN chains of 5 (quick: 40), 2 workers.

Prints `name: value` lines: `gcbc_success`, `playlmp_success`, `dp_success` (pooled over tasks, with
`<name>_ci95` the Wilson 95% interval), `playlmp_minus_gcbc`, `gcbc_chain_len`,
`playlmp_chain_len`, `dp_chain_len`, `train_minutes_<policy>`, `act_ms_p99_<policy>` (one `act` call at batch 1,
99th percentile over 300 calls on recorded observations), `play_steps`, `wall_minutes` (of
which `play_wall_minutes` and `eval_wall_minutes`: evaluations and act timings).
`dp_success` and `dp_chain_len` for the diffusion policy, `bc_expert_success` for per-task
expert BC (trained on the store's successful task segments, one network per task, reset with
the task's name). Reports land in `<out>/<policy>/eval.json`.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # the GL backend before mujoco is first imported

import numpy as np  # noqa: E402

import playworld.sim  # noqa: E402, F401
from playworld.collection.autoplay import AutoplayConfig, autoplay_parallel  # noqa: E402
from playworld.collection.evaluation import evaluate, evaluate_chains  # noqa: E402
from playworld.policies import make_policy  # noqa: E402
from playworld.policies.hindsight import HindsightConfig, HindsightWindows  # noqa: E402
from playworld.policies.train import train_policy  # noqa: E402

#: Run configs (policy / data / train sections) of the policies that have one, by type.
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "policies"
CONFIG_FILES = {
    "gcbc": "gcbc.yaml",
    "play-lmp": "play_lmp.yaml",
    "diffusion": "diffusion.yaml",
    "bc-expert": "bc_expert.yaml",
}

#: name in the figures -> (policy type, training minutes full / quick). Policies train two at
#: a time in this order (each on one thread: a core each), so a pair costs its longer budget.
#: Quick: dp and bc_expert 1.5 min (2.0 made the quick wall 14.99-15.51 min against its 15).
POLICIES = {
    "gcbc": ("gcbc", 30.0, 4.5),
    "playlmp": ("play-lmp", 30.0, 4.5),
    "dp": ("diffusion", 15.0, 1.5),
    "bc_expert": ("bc-expert", 15.0, 1.5),
}

#: The play: state-only, seeded. Short episodes, each from a reset twin (arm at home, where every
#: evaluation episode starts): with 200-step chains and resets only when nothing was feasible,
#: play hardly ever started a task from home, and expert BC on its segments reached 4%.
PLAY = AutoplayConfig(seed=0, cameras=(), episode_steps=40, reset_each_episode=True)


def act_ms_p99(policy_dir: Path, store: Path, calls: int = 300) -> float:
    """99th percentile of one `act` (batch 1) on recorded observations and goals, ms."""
    policy = make_policy(str(policy_dir))
    keys = policy.config.obs_keys
    data = HindsightWindows(store, HindsightConfig(obs_keys=keys, goal_keys=keys))
    batch = data.random_batch(np.random.default_rng(0), calls // 20 + 1)
    times = []
    for i in range(calls):
        w, t = divmod(i, 20)
        if t == 0:
            goal = {k: batch[f"goal.{k}"][w].numpy() for k in keys}
            tasks = getattr(policy.config, "tasks", ())
            policy.reset(seed=i, goal=tasks[i % len(tasks)] if tasks else goal)
        obs = {k: batch[k][w, t].numpy() for k in policy.config.obs_keys}
        t0 = time.perf_counter()
        policy.act(obs)
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 99) * 1000)


def train_one(kind: str, store: Path, out: Path, minutes: float) -> tuple[float, int]:
    """Train one policy (in a worker process) with its run config (`CONFIG_FILES`); its
    (seconds, steps)."""
    from playworld.training.config import load_yaml

    config = load_yaml(CONFIGS / CONFIG_FILES[kind]) if kind in CONFIG_FILES else None
    _, result = train_policy(
        kind, store, out, minutes=minutes, steps=100_000, config=config, progress=False
    )
    return result.seconds, result.step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="<= 15 min on 2 cores")
    ap.add_argument("--out", default="out/bench_policies")
    ap.add_argument("--workers", type=int, default=2)
    # overrides of the budgets (a smoke run of this script; the figures use the defaults)
    ap.add_argument("--play-minutes", type=float, default=None)
    ap.add_argument("--train-minutes", type=float, default=None)
    ap.add_argument("--episodes", type=int, default=None)
    ap.add_argument("--chains", type=int, default=None)
    ap.add_argument("--policies", default=",".join(POLICIES), help="subset, e.g. gcbc,dp")
    args = ap.parse_args()
    quick = args.quick
    t_start = time.monotonic()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    # twin time at 10 Hz (~4 s of CPU per twin minute). GCBC on relative keypoints overfits
    # 20 min of play: 0.28 success with 20 min, 0.50 with 80 (3 min of training, quick seeds).
    # Quick: 72 min with 4 + 1.75 min of training took 16.65 min wall (play 4.98, evaluation
    # 5.73: failing episodes run all 100 steps) and GCBC fell to 0.35 (4285 steps): kept at 80.
    play_minutes = args.play_minutes or (80.0 if quick else 240.0)
    store = out / "play.zarr"
    summary = autoplay_parallel(store, PLAY, int(play_minutes * 600), workers=args.workers)
    figures: dict[str, object] = {"play_steps": summary["steps"]}
    figures["play_wall_minutes"] = round((time.monotonic() - t_start) / 60, 2)
    print(f"play_steps: {summary['steps']}", flush=True)
    print(f"play_wall_minutes: {figures['play_wall_minutes']}", flush=True)

    episodes, chains = (10, 40) if quick else (50, 200)
    episodes, chains = args.episodes or episodes, args.chains or chains
    names = args.policies.split(",")
    budgets = {n: args.train_minutes or POLICIES[n][2 if quick else 1] for n in names}
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        runs = {
            n: pool.submit(train_one, POLICIES[n][0], store, out / n, budgets[n]) for n in names
        }
        trained = {n: f.result() for n, f in runs.items()}
    t_eval = time.monotonic()
    for name in names:
        kind = POLICIES[name][0]
        seconds, steps = trained[name]
        figures[f"train_minutes_{name}"] = round(seconds / 60, 2)
        figures[f"train_steps_{name}"] = steps
        folder = out / name / "policy"
        factory = functools.partial(make_policy, str(folder))  # the saved checkpoint
        goals = "task" if kind == "bc-expert" else "expert"
        report = evaluate(
            factory,
            "all",
            episodes,
            seed=0,
            workers=args.workers,
            max_steps=100,
            goals=goals,
            name=name,
            goal_cache=out / "goals",
        )
        report["chains"] = evaluate_chains(
            factory,
            chains,
            seed=0,
            workers=args.workers,
            max_steps=100,
            goals=goals,
            goal_cache=out / "goals",
        )
        (out / name / "eval.json").write_text(json.dumps(report, indent=2))
        figures[f"{name}_success"] = round(report["overall"]["success_rate"], 4)
        figures[f"{name}_success_ci95"] = [round(x, 4) for x in report["overall"]["ci95"]]
        figures[f"{name}_chain_len"] = round(report["chains"]["avg_len"], 3)
        figures[f"act_ms_p99_{name}"] = round(act_ms_p99(folder, store), 3)
        for k in (
            f"train_minutes_{name}",
            f"train_steps_{name}",
            f"{name}_success",
            f"{name}_success_ci95",
            f"{name}_chain_len",
            f"act_ms_p99_{name}",
        ):
            print(f"{k}: {figures[k]}", flush=True)
        per_task = {t: round(r["success_rate"], 2) for t, r in report["tasks"].items()}
        print(f"{name}_per_task: {json.dumps(per_task)}", flush=True)
    if "playlmp_success" in figures and "gcbc_success" in figures:
        figures["playlmp_minus_gcbc"] = round(
            float(figures["playlmp_success"]) - float(figures["gcbc_success"]), 4
        )
        print(f"playlmp_minus_gcbc: {figures['playlmp_minus_gcbc']}")
    figures["eval_wall_minutes"] = round((time.monotonic() - t_eval) / 60, 2)
    print(f"eval_wall_minutes: {figures['eval_wall_minutes']}")
    figures["wall_minutes"] = round((time.monotonic() - t_start) / 60, 2)
    print(f"wall_minutes: {figures['wall_minutes']}")
    (out / "figures.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
