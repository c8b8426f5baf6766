"""Parallel evaluation of a policy on the twin's tasks, and CALVIN-style task chains.

A policy here is any object with `reset(task: str)` and `act(observation) -> action`, where the
observation is the twin's dict (`state` (40,), `keypoints` (K, 3)) and the action belongs to
`policy.action_space` (default `ee_delta`). `evaluate` takes a registered policy name
(`POLICIES`) or a picklable zero-argument factory, because each worker process builds its own.

Every episode's seed comes from (seed, task index, episode index) alone, and the process-wide
random generators (`random`, `numpy.random`, torch when loaded) are seeded from it before the
episode, so results are the same for any number of workers and whichever process runs an
episode. Each process builds its policy and twin once and reuses them for all its episodes;
`workers` counts this process, which runs episodes too (see `playworld.sim.parallel`).
"""

from __future__ import annotations

import functools
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playworld.sim.config import TwinConfig
from playworld.sim.errors import ConfigError
from playworld.sim.experts import ScriptedExpert
from playworld.sim.parallel import preserved_globals, run_chunks, seed_globals, split
from playworld.sim.tasks import TASKS, get_task, prepare_task, resolve_tasks

#: Registered policies by name -> zero-argument factory.
POLICIES: dict[str, Callable[[], Any]] = {"scripted": ScriptedExpert}
PolicySpec = str | Callable[[], Any]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (lo, hi) of a success rate; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Episode:
    """Outcome of one evaluation episode."""

    task: str
    index: int
    seed: int
    success: bool
    length: int  # control steps taken
    video: str | None = None


def make_policy(policy: PolicySpec) -> Any:
    """Instantiate a policy from a registered name or a factory."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ConfigError(f"expected a policy among {sorted(POLICIES)}, found {policy!r}")
        return POLICIES[policy]()
    return policy()


def episode_seed(seed: int, task_index: int, episode: int) -> int:
    """Seed of one episode, independent of how episodes are spread over workers."""
    return int(np.random.SeedSequence([seed, task_index, episode]).generate_state(1)[0])


def _make_twin(policy: Any, config: TwinConfig | None):
    from playworld.sim.twin import Twin

    config = config or TwinConfig()
    space = getattr(policy, "action_space", config.action_space)
    if space != config.action_space:
        import dataclasses

        config = dataclasses.replace(config, action_space=space)
    return Twin(config)


def _video_writer(path: Path, size: tuple[int, int], fps: float):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))


def run_episode(twin, policy, task: str, seed: int, max_steps: int, video: Path | None = None):
    """Reset, prepare `task`, roll the policy until success or `max_steps`; (success, length).

    Seeds the process-wide random generators from `seed` (see `parallel.seed_globals`).
    """
    t = get_task(task)
    twin.reset(seed=seed)
    start = prepare_task(twin, t, np.random.default_rng([seed, 1]))
    seed_globals(seed)
    policy.reset(task)
    return _roll(twin, policy, t, start, max_steps, video)


def _roll(twin, policy, task, start, max_steps: int, video: Path | None) -> tuple[bool, int]:
    renderer = writer = None
    if video is not None:
        from playworld.sim.render import TwinRenderer

        renderer = TwinRenderer(twin, 240, 320)
        writer = _video_writer(video, (240, 320), twin.config.control_hz)
    try:
        for step in range(1, max_steps + 1):
            twin.step(policy.act(twin.observe()))
            if writer is not None:
                writer.write(renderer.rgb("front")[:, :, ::-1])
            if task.success(start, twin.get_state()):
                return True, step
        return False, max_steps
    finally:
        if writer is not None:
            writer.release()
            renderer.close()


class _Runner:
    """One policy and its twin, built once per process and reused for every chunk of work."""

    def __init__(self, token: str, policy: PolicySpec, config: TwinConfig | None) -> None:
        self.token = token  # identifies the evaluate call that built it
        self.policy = make_policy(policy)
        self.twin = _make_twin(self.policy, config)


_RUNNER: _Runner | None = None  # of a spawned worker process


def _worker_runner(token: str, policy: PolicySpec, config: TwinConfig | None) -> _Runner:
    global _RUNNER
    if _RUNNER is None or _RUNNER.token != token:
        _RUNNER = None  # free the previous twin before building the next
        _RUNNER = _Runner(token, policy, config)
    return _RUNNER


def _run_jobs(args: tuple, runner: _Runner | None = None) -> list[Episode]:
    """Episodes of one chunk. args = (token, policy, config, jobs, max_steps, video_dir)."""
    token, policy_spec, config, jobs, max_steps, video_dir = args
    if runner is None:  # in a spawned worker
        runner = _worker_runner(token, policy_spec, config)
    out = []
    with preserved_globals():
        for task, index, seed, record in jobs:
            video = Path(video_dir) / f"{task}_{index:03d}.mp4" if record and video_dir else None
            success, length = run_episode(runner.twin, runner.policy, task, seed, max_steps, video)
            out.append(Episode(task, index, seed, success, length, str(video) if video else None))
    return out


def _run_parallel(fn: Callable, policy: PolicySpec, config, payloads: list, workers: int):
    """`fn((token, policy, config, *payload))` for each payload, over `workers` processes."""
    token = uuid.uuid4().hex
    runner = _Runner(token, policy, config)  # also fails early on a bad policy, in this process
    chunks = [(token, policy, config, *p) for p in payloads]
    return run_chunks(fn, functools.partial(fn, runner=runner), chunks, workers)


def evaluate(
    policy: PolicySpec = "scripted",
    tasks: str | list[str] = "all",
    episodes: int = 20,
    seed: int = 0,
    workers: int = 1,
    max_steps: int = 100,
    config: TwinConfig | None = None,
    video_dir: str | Path | None = None,
    videos_per_task: int = 1,
) -> dict[str, Any]:
    """Success per task with 95% Wilson intervals and episode lengths.

    `workers` processes run the episodes: this one and `workers - 1` spawned ones. Results do
    not depend on `workers` (see the module docstring).

    Returns `{"tasks": {name: {"success_rate", "ci95", "episodes", "successes", "mean_length",
    "lengths", "videos"}}, "overall": {...}, "seed", "workers", "elapsed_s"}`.
    """
    names = resolve_tasks(tasks)
    if episodes < 1 or workers < 1 or max_steps < 1:
        raise ConfigError(
            f"expected episodes, workers, max_steps >= 1, found {episodes}, {workers}, {max_steps}"
        )
    order = list(TASKS)
    jobs = [
        (
            name,
            i,
            episode_seed(seed, order.index(name), i),
            video_dir is not None and i < videos_per_task,
        )
        for name in names
        for i in range(episodes)
    ]
    t0 = time.perf_counter()
    payloads = [(c, max_steps, video_dir) for c in split(jobs, workers)]
    results = sorted(
        (e for part in _run_parallel(_run_jobs, policy, config, payloads, workers) for e in part),
        key=lambda e: (names.index(e.task), e.index),
    )
    per_task = {}
    for name in names:
        eps = [e for e in results if e.task == name]
        k = sum(e.success for e in eps)
        per_task[name] = {
            "success_rate": k / len(eps),
            "ci95": list(wilson_interval(k, len(eps))),
            "episodes": len(eps),
            "successes": k,
            "mean_length": float(np.mean([e.length for e in eps])),
            "lengths": [e.length for e in eps],
            "videos": [e.video for e in eps if e.video],
        }
    total = sum(r["successes"] for r in per_task.values())
    n = len(results)
    return {
        "policy": policy if isinstance(policy, str) else getattr(policy, "__name__", repr(policy)),
        "tasks": per_task,
        "overall": {
            "success_rate": total / n,
            "ci95": list(wilson_interval(total, n)),
            "episodes": n,
        },
        "seed": seed,
        "workers": workers,
        "max_steps": max_steps,
        "episodes_detail": [asdict(e) for e in results],
        "elapsed_s": time.perf_counter() - t0,
    }


def _run_chains(args: tuple, runner: _Runner | None = None) -> list[dict[str, Any]]:
    """CALVIN-style chains. args = (token, policy, config, [(index, seed)], length, max_steps)."""
    token, policy_spec, config, jobs, length, max_steps = args
    if runner is None:  # in a spawned worker
        runner = _worker_runner(token, policy_spec, config)
    twin, policy = runner.twin, runner.policy
    out = []
    with preserved_globals():
        for index, seed in jobs:
            rng = np.random.default_rng(seed)
            twin.reset(seed=seed)
            seed_globals(seed)
            done: list[str] = []
            completed = 0
            for _ in range(length):
                state = twin.get_state()
                options = [t for t in TASKS.values() if t.name not in done and t.feasible(state)]
                if not options:
                    break
                task = options[int(rng.integers(len(options)))]
                done.append(task.name)
                policy.reset(task.name)
                success, _ = _roll(twin, policy, task, state, max_steps, None)
                if not success:
                    break
                completed += 1
            out.append({"index": index, "seed": seed, "tasks": done, "completed": completed})
    return out


def evaluate_chains(
    policy: PolicySpec = "scripted",
    chains: int = 20,
    length: int = 5,
    seed: int = 0,
    workers: int = 1,
    max_steps: int = 100,
    config: TwinConfig | None = None,
) -> dict[str, Any]:
    """CALVIN protocol: `chains` random feasible sequences of `length` tasks without resets.

    Each next task is drawn among the tasks feasible in the state reached (none repeated); a
    chain stops at its first failure. Returns `success_at` (fraction of chains completing at
    least k tasks, k = 1..length), `avg_len` and the chains.
    """
    if chains < 1 or length < 1:
        raise ConfigError(f"expected chains >= 1 and length >= 1, found {chains}, {length}")
    jobs = [(i, episode_seed(seed, 10_000, i)) for i in range(chains)]
    payloads = [(c, length, max_steps) for c in split(jobs, workers)]
    parts = _run_parallel(_run_chains, policy, config, payloads, workers)
    runs = sorted((r for part in parts for r in part), key=lambda r: r["index"])
    completed = np.array([r["completed"] for r in runs])
    return {
        "success_at": {str(k): float(np.mean(completed >= k)) for k in range(1, length + 1)},
        "avg_len": float(completed.mean()),
        "chains": runs,
    }


def plot_results(report: dict[str, Any], path: str | Path) -> None:
    """Bar chart (PNG) of success per task with the 95% Wilson interval as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["tasks"])
    rates = np.array([report["tasks"][n]["success_rate"] for n in names])
    ci = np.array([report["tasks"][n]["ci95"] for n in names])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4.5))
    ax.bar(
        range(len(names)),
        rates,
        yerr=[rates - ci[:, 0], ci[:, 1] - rates],
        capsize=3,
        color="#4C72B0",
    )
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_title(f"policy {report['policy']}: {report['overall']['success_rate']:.0%} overall")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(report: dict[str, Any]) -> None:
    """Print per-task success, interval and mean length as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"playworld eval: policy {report['policy']}")
    for col in ("task", "success", "95% CI", "episodes", "mean length"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for name, r in report["tasks"].items():
        lo, hi = r["ci95"]
        table.add_row(
            name,
            f"{r['success_rate']:.0%}",
            f"[{lo:.2f}, {hi:.2f}]",
            str(r["episodes"]),
            f"{r['mean_length']:.1f}",
        )
    o = report["overall"]
    table.add_row(
        "overall",
        f"{o['success_rate']:.0%}",
        f"[{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}]",
        str(o["episodes"]),
        "",
    )
    Console().print(table)
    if "chains" in report:
        c = report["chains"]
        steps = " ".join(f"{k}:{v:.0%}" for k, v in c["success_at"].items())
        Console().print(f"chains: success at {steps}; average length {c['avg_len']:.2f}")


def run_eval_cli(
    policy: str = "scripted",
    tasks: str = "all",
    episodes: int = 20,
    workers: int = 2,
    out: str | Path = "out/eval",
    seed: int = 0,
    chains: int = 0,
    max_steps: int = 100,
    videos: int = 0,
) -> int:
    """`playworld eval`: evaluate, print a table, write `eval.json` and `eval.png` into `out`.

    Returns the exit code (0). `chains > 0` adds that many CALVIN chains of 5 tasks.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluate(
        policy,
        tasks,
        episodes,
        seed=seed,
        workers=workers,
        max_steps=max_steps,
        video_dir=out / "videos" if videos > 0 else None,
        videos_per_task=videos,
    )
    if chains > 0:
        report["chains"] = evaluate_chains(
            policy, chains, seed=seed, workers=workers, max_steps=max_steps
        )
    tmp = out / "eval.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out / "eval.json")
    plot_results(report, out / "eval.png")
    print_table(report)
    print(f"wrote {out / 'eval.json'} and {out / 'eval.png'}")
    return 0
