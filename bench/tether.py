"""Benchmark of Tether's keypoint warping on the twin with wide object poses (issue 12).

    python bench/tether.py [--quick] [--episodes N] [--workers W] [--out DIR]

Demos: the twin's scripted expert run through a `SimRobot` of the `sim_panda_wide` profile
(blocks +-9/15 cm in x/y, yaw +-45 degrees; drawer and door anywhere in their mounts) from resets
with seeds disjoint from the evaluation's, the first 5 per task that succeed and pass the
transfer check (`playworld.policies.tether.library.record_demo`, `checked`). Libraries of the first 1, 3 and 5 demos of
each task are saved as `tether` policy folders and evaluated with `collection.evaluation.
evaluate` (the ControlLoop on a SimRobot of the same profile), 17 tasks x `episodes` randomised
episodes each (20 with --quick, 100 without), privileged keypoints.

Prints `name: value` lines:
- warp_success_1demo, warp_success_3demos, warp_success_5demos: success pooled over all tasks;
  warp_success_5demos_lb / _ub: its 95% Wilson interval.
- warp_success_articulated (drawer, door, light), warp_success_push_lift (lift and push the
  blocks), warp_success_stack (stack and place in the drawer): 5 demos, per category.
- warp_success_5demos_<task>: per task.
- warp_success_5demos_perceived (+ _lb): 5 demos, keypoints perceived with open3d from the
  front camera's rendered depth in the demo scenes and the evaluation scenes alike
  (`playworld.policies.tether.perception`); the SimRobot stepped directly, same seeds.
- play_attempts_per_hour_wall / _twin, play_success: a `play` run of --play-episodes attempts
  from the 5-demo library (wall clock on a shared machine; twin time = attempts per hour of
  simulated robot time).
- bc_5demos_success (+ _lb, _ub): per-task expert BC (`bc-expert`, the closed-loop baseline,
  on state + keypoints with the sites relative to the end effector: `BC_POLICY`) trained on
  the same 5 demos per task (the expert's runs from the same seeds, recorded through the
  ControlLoop into a store) for `BC_MINUTES`, its saved checkpoint evaluated like the warps.
- play curve (full run, or `--curve`): autonomous play from the 5-demo library until the store
  holds max(N) successes; `bc-expert` trained on the first N successful play trajectories for
  N in `CURVE_NS` (same budget each, two trainings at a time), evaluated alike:
  play_success_n<N> (+ _lb/_ub), play_curve_spearman (rank correlation of N and success),
  play_curve_attempts and play_curve_hours_wall (what the play took).
- scripted_success: the scripted expert itself on the same episodes (the demonstrator's ceiling).
- demos_checked_kept: demos the expert completed / those that passed the transfer check
  (`checked`: the warped demo does its task in >= 2 of 3 fresh scenes) and joined a library.
- demo_record_s, eval_s_<n>demos: wall-clock seconds (shared machine: noisy).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco loads

import yaml  # noqa: E402

from playworld.collection.evaluation import evaluate, wilson_interval  # noqa: E402
from playworld.hardware.profiles import read_profile, robot_from_profile  # noqa: E402
from playworld.policies import make_policy  # noqa: E402
from playworld.policies.tether.library import record_demo  # noqa: E402
from playworld.policies.tether.policy import TetherPolicy, transfers  # noqa: E402
from playworld.sim.tasks import TASKS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = {
    "articulated": (
        "open_drawer",
        "close_drawer",
        "slide_door_left",
        "slide_door_right",
        "turn_on_light",
        "turn_off_light",
    ),
    "push_lift": tuple(t for t in TASKS if t.startswith(("lift_", "push_"))),
    "stack": ("stack_blocks", "place_block_in_drawer"),
}
DEMO_SEED0 = 100_000  # demo resets use seeds from here: never an evaluation seed
CHECK_SEED0 = 300_000  # the transfer check's scenes (`checked`)
CHECK = (3, 2)  # a demo joins a library if its warp does the task in >= 2 of 3 fresh scenes
MAX_STEPS = 150
BC_MINUTES = {True: 2.0, False: 5.0}  # bc-expert training budget, quick / full
#: The closed-loop policy's settings: the keypoints, and every site relative to the end
#: effector (objects anywhere within +-10 cm and +-45 degrees are found from the gripper).
BC_POLICY = {"obs_keys": ["state", "keypoints"], "relative_keypoints": True}
CURVE_NS = (50, 100, 200, 400, 800)


def wide_profile(out: Path) -> Path:
    """The sim_panda_wide profile with its twin YAML as an absolute path (runs from anywhere)."""
    data = read_profile("sim_panda_wide")
    data["twin"] = str(ROOT / "configs/sim/twin_wide.yaml")
    path = out / "sim_panda_wide.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def checked(robot, demo, i: int, k: int) -> bool:
    """Whether the demo (task i, try k), warped, does its task in >= CHECK[1] of CHECK[0]
    fresh scenes (seeds disjoint from the demos' and the evaluation's)."""
    seeds = [CHECK_SEED0 + 10_000 * i + 10 * k + j for j in range(CHECK[0])]
    return transfers(robot, demo, seeds, MAX_STEPS) >= CHECK[1]


def record_demos(profile: Path, per_task: int) -> dict[str, list]:
    """The first `per_task` demos of each task that the expert completes and that pass the
    transfer check (`checked`)."""
    robot = robot_from_profile(profile, cameras={}, action_space="ee_delta")
    robot.connect()
    demos: dict[str, list] = {}
    tried = kept = 0
    try:
        for i, task in enumerate(TASKS):
            demos[task] = []
            for k in range(200):
                if len(demos[task]) == per_task:
                    break
                demo = record_demo(robot, task, DEMO_SEED0 + 1000 * i + k, max_steps=MAX_STEPS)
                if demo is None:
                    continue
                tried += 1
                if checked(robot, demo, i, k):
                    demos[task].append(demo)
                    kept += 1
    finally:
        robot.disconnect()
    print(f"demos_checked_kept: {kept}/{tried}")
    return demos


def demo_store(profile: Path, demos: dict[str, list], path: Path) -> Path:
    """The demos as a closed-loop policy trains on them: each demo's expert run again from its
    seed through the ControlLoop (state-only), one episode with one task segment each."""
    import numpy as np

    from playworld.collection.loop import ControlLoop
    from playworld.collection.step_queue import StepQueue
    from playworld.datasets import PlayStore
    from playworld.sim.experts import ScriptedExpert
    from playworld.sim.tasks import prepare_task

    robot = robot_from_profile(profile, cameras={}, action_space="ee_delta")
    robot.connect()
    run: dict = {}
    loop = ControlLoop(robot, lambda obs: run["expert"].act(obs), robot.fps, realtime=False)
    store = PlayStore.create(path, loop.features, fps=robot.fps, info={"source": "scripted"})
    writer = StepQueue(store, name="demo-writer")
    loop.writer = writer

    def on_tick(tick) -> bool:
        run["ok"] = TASKS[run["task"]].success(run["start"], robot.get_observation()["state"])
        return not run["ok"]

    try:
        for task, task_demos in demos.items():
            for demo in task_demos:
                seed = int(demo.info.id.rsplit("-s", 1)[1])  # record_demo's id: <task>-s<seed>
                robot.reset(seed=seed)
                start = prepare_task(robot.twin, TASKS[task], np.random.default_rng([seed, 1]))
                run.update(task=task, start=start, expert=ScriptedExpert(task), ok=False)
                writer.begin()
                loop.recording = True
                loop.reset_metrics()
                loop.run(max_ticks=MAX_STEPS, on_tick=on_tick)
                loop.recording = False
                steps = len(loop.metrics)
                segment = {"task": task, "start": 0, "end": steps, "success": run["ok"]}
                writer.commit({"task": task, "seed": seed, "segments": [segment]}).result()
    finally:
        writer.close()
        store.close()
        robot.disconnect()
    return path


def train_bc(store: Path, out: Path, minutes: float, **data) -> Path:
    """`bc-expert` (`BC_POLICY`) trained on `store` with data settings `data`; its folder."""
    from playworld.policies.train import train_policy

    config = {"policy": BC_POLICY, "data": data}
    train_policy("bc-expert", store, out, minutes=minutes, config=config, progress=False)
    return out / "policy"


def evaluate_saved(folder: Path, evaluate_on, name: str) -> dict:
    """The saved policy folder evaluated (not the in-memory model)."""
    return evaluate_on(functools.partial(make_policy, str(folder)), name=name)


def successes_in(store: Path) -> int:
    from playworld.datasets import PlayStore

    if not (store / "zarr.json").is_file():
        return 0
    with PlayStore.open(store, "r") as s:
        return sum(bool(s.episode_metadata(e).get("success")) for e in range(len(s)))


def spearman(x, y) -> float:
    """Rank correlation (ties get their mean rank)."""
    import numpy as np

    def ranks(v):
        v = np.asarray(v, float)
        r = np.empty(len(v))
        r[np.argsort(v, kind="stable")] = np.arange(len(v))
        for u in np.unique(v):  # ties: mean rank
            r[v == u] = r[v == u].mean()
        return r

    a, b = ranks(x), ranks(y)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def print_rate(name: str, report: dict) -> None:
    k = sum(r["successes"] for r in report["tasks"].values())
    n = report["overall"]["episodes"]
    lo, hi = wilson_interval(k, n)
    print(f"{name}: {k / n:.3f}  # {k}/{n}")
    print(f"{name}_lb: {lo:.3f}")
    print(f"{name}_ub: {hi:.3f}")


def play_curve(
    out: Path, profile: Path, ns: tuple[int, ...], minutes: float, evaluate_on, workers: int
) -> None:
    """Play from the 5-demo library until max(ns) successes, then bc-expert on the first N."""
    from playworld.policies.tether.play import PlayConfig, play

    lib, store = out / "curve_library", out / "curve_play.zarr"
    TetherPolicy.load(out / "library_5").save(lib)
    t0, attempts, round_ = time.perf_counter(), 0, 0
    while successes_in(store) < max(ns):
        summary = play(
            lib,
            store,
            PlayConfig(episodes=100, max_steps=MAX_STEPS, profile=str(profile), seed=round_),
        )
        attempts += summary["attempts"]
        round_ += 1
    print(f"play_curve_attempts: {attempts}")
    print(f"play_curve_hours_wall: {(time.perf_counter() - t0) / 3600:.2f}")
    # two trainings at a time (one torch thread each: a core each), then the evaluations
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        runs = [
            pool.submit(train_bc, store, out / f"curve_n{n}", minutes, max_segments=n) for n in ns
        ]
        folders = [r.result() for r in runs]
    rates = []
    for n, folder in zip(ns, folders, strict=True):
        report = evaluate_saved(folder, evaluate_on, f"bc-play-{n}")
        rates.append(report["overall"]["success_rate"])
        print_rate(f"play_success_n{n}", report)
    print(f"play_curve_spearman: {spearman(ns, rates):.3f}")


def perceived_success(
    profile: Path, episodes: int, per_task: int = 5
) -> tuple[float, int, int, dict]:
    """Success with perceived keypoints: demo scenes and evaluation scenes both seen through the
    front RGB-D camera (open3d), the same seeds as `evaluate`. Runs the SimRobot step by step
    (the loop's depth is not an observation feature), keypoints perceived once per episode."""
    import numpy as np

    from playworld.collection.evaluation import episode_seed
    from playworld.policies.tether.perception import Perceiver, PerceptionError
    from playworld.sim.render import TwinRenderer
    from playworld.sim.tasks import prepare_task

    robot = robot_from_profile(profile, cameras={}, action_space="ee_delta")
    robot.connect()
    renderer = TwinRenderer(robot.twin, 240, 320)
    robot.reset(seed=DEMO_SEED0 - 1)
    perceiver = Perceiver.calibrate(renderer)
    reasons: dict[str, int] = {}

    def perceive(objects):
        def fn(robot, obs):
            return perceiver.keypoints(renderer, obs["keypoints"], sorted(objects))

        return fn

    try:
        demos = []
        for i, task in enumerate(TASKS):
            got, k = 0, 0
            while got < per_task and k < 200:
                seed = DEMO_SEED0 + 1000 * i + k
                k += 1
                plain = record_demo(robot, task, seed, max_steps=MAX_STEPS)
                if plain is None or not checked(robot, plain, i, k - 1):
                    continue
                try:  # again from the same reset, its scene now perceived
                    demo = record_demo(
                        robot, task, seed, MAX_STEPS, keypoints=perceive(set(plain.info.anchors))
                    )
                except PerceptionError:
                    continue
                if demo is not None:
                    demos.append(demo)
                    got += 1
        policy = TetherPolicy.from_demos(demos)
        k_total = n_total = 0
        for ti, task in enumerate(TASKS):
            objects = {a for d in policy.config.demos if d.task == task for a in d.anchors}
            for e in range(episodes):
                seed = episode_seed(0, ti, e)
                robot.reset(seed=seed)
                start = prepare_task(robot.twin, TASKS[task], np.random.default_rng([seed, 1]))
                policy.reset(seed=seed, goal=task)
                obs = robot.get_observation()
                n_total += 1
                try:
                    kp = perceiver.keypoints(renderer, obs["keypoints"], sorted(objects))
                except PerceptionError as exc:
                    key = str(exc).split(",")[0]
                    reasons[key] = reasons.get(key, 0) + 1
                    continue
                for _ in range(MAX_STEPS):
                    robot.send_action(policy.act({**obs, "keypoints": kp}))
                    obs = robot.get_observation()
                    if TASKS[task].success(start, obs["state"]):
                        k_total += 1
                        break
    finally:
        renderer.close()
        robot.disconnect()
    return k_total / n_total, k_total, n_total, reasons


def pooled(report: dict, tasks) -> tuple[float, int, int]:
    k = sum(report["tasks"][t]["successes"] for t in tasks)
    n = sum(report["tasks"][t]["episodes"] for t in tasks)
    return k / n, k, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="17 tasks x 20 episodes")
    parser.add_argument("--episodes", type=int, help="episodes per task (default 20 / 100)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="keep the libraries and profile here")
    parser.add_argument("--no-perceived", action="store_true", help="skip the open3d path")
    parser.add_argument("--play-episodes", type=int, default=40, help="attempts of the play run")
    parser.add_argument("--perceived-episodes", type=int, help="episodes per task, perceived")
    parser.add_argument(
        "--curve",
        help="comma-separated N of the play data curve (default: full run "
        f"{','.join(map(str, CURVE_NS))}, quick none; 0: none)",
    )
    args = parser.parse_args()
    if args.curve is not None:
        curve = tuple(int(n) for n in args.curve.split(",") if int(n) > 0)
    else:
        curve = () if args.quick else CURVE_NS
    episodes = args.episodes or (20 if args.quick else 100)
    out = args.out or Path(tempfile.mkdtemp(prefix="tether-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    profile = wide_profile(out)
    print(f"episodes_per_task: {episodes}")

    t0 = time.perf_counter()
    demos = record_demos(profile, 5)
    print(f"demo_record_s: {time.perf_counter() - t0:.1f}")
    short = [t for t, d in demos.items() if len(d) < 5]
    print(
        f"demos_per_task_min: {min(len(d) for d in demos.values())}"
        + (f"  # short: {short}" if short else "")
    )

    evaluate_on = functools.partial(
        evaluate,
        tasks=list(TASKS),
        episodes=episodes,
        seed=0,
        workers=args.workers,
        max_steps=MAX_STEPS,
        profile=str(profile),
    )
    reports = {}
    for n in (1, 3, 5):
        library = [d for task_demos in demos.values() for d in task_demos[:n]]
        path = TetherPolicy.from_demos(library).save(out / f"library_{n}")
        t0 = time.perf_counter()
        reports[n] = evaluate_on(functools.partial(make_policy, str(path)), name=f"tether-{n}")
        rate = reports[n]["overall"]["success_rate"]
        name = "warp_success_1demo" if n == 1 else f"warp_success_{n}demos"
        print(f"{name}: {rate:.3f}")
        print(f"eval_s_{n}demos: {time.perf_counter() - t0:.1f}")
    five = reports[5]
    lo, hi = wilson_interval(
        sum(r["successes"] for r in five["tasks"].values()), five["overall"]["episodes"]
    )
    print(f"warp_success_5demos_lb: {lo:.3f}")
    print(f"warp_success_5demos_ub: {hi:.3f}")
    for cat, tasks in CATEGORIES.items():
        rate, k, n = pooled(five, tasks)
        print(f"warp_success_{cat}: {rate:.3f}  # {k}/{n}")
    for task, r in five["tasks"].items():
        print(f"warp_success_5demos_{task}: {r['success_rate']:.2f}")
    if not args.no_perceived:
        t0 = time.perf_counter()
        try:
            rate, k, n, reasons = perceived_success(profile, args.perceived_episodes or episodes)
            print(
                f"warp_success_5demos_perceived: {rate:.3f}  # {k}/{n}; perception failures {reasons}"
            )
            lo, _ = wilson_interval(k, n)
            print(f"warp_success_5demos_perceived_lb: {lo:.3f}")
        except ImportError as exc:
            print(f"warp_success_5demos_perceived: not measured ({exc})")
        print(f"perceived_s: {time.perf_counter() - t0:.1f}")
    if args.play_episodes:
        from playworld.policies.tether.play import PlayConfig, play

        lib = out / "play_library"
        TetherPolicy.load(out / "library_5").save(lib)
        summary = play(
            lib,
            out / "play.zarr",
            PlayConfig(episodes=args.play_episodes, max_steps=MAX_STEPS, profile=str(profile)),
        )
        print(f"play_attempts_per_hour_wall: {summary['attempts_per_hour_wall']:.0f}")
        print(f"play_attempts_per_hour_twin: {summary['attempts_per_hour_twin']:.0f}")
        print(
            f"play_success: {summary['successes'] / summary['attempts']:.3f}  # "
            f"{summary['successes']}/{summary['attempts']}, library +{summary['added']}"
        )
    t0 = time.perf_counter()
    bc_store = demo_store(profile, {t: d[:5] for t, d in demos.items()}, out / "demos_5.zarr")
    folder = train_bc(bc_store, out / "bc_5demos", BC_MINUTES[args.quick])
    bc = evaluate_saved(folder, evaluate_on, "bc-5demos")
    print_rate("bc_5demos_success", bc)
    print(f"bc_5demos_s: {time.perf_counter() - t0:.1f}")
    if curve:
        play_curve(out, profile, curve, BC_MINUTES[args.quick], evaluate_on, args.workers)
    scripted = evaluate_on(functools.partial(make_policy, "scripted"))
    print(f"scripted_success: {scripted['overall']['success_rate']:.3f}")
    print(f"libraries: {out}")


if __name__ == "__main__":
    main()
