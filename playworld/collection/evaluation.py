"""Parallel evaluation of a policy on the twin's tasks, and CALVIN-style task chains.

Evaluation drives the twin exactly as recording and deployment drive a robot: a `SimRobot` built
from a robot profile (default `sim_panda`) runs the ONE `ControlLoop(robot, policy.act,
robot.fps, cameras=..., realtime=False)`, so the observation a policy sees here is the one
`record`/`autoplay` store (robot keys, privileged `state`/`keypoints`, the cameras it reads).

A policy is any `playworld.policies.Policy`-like object: `observation_features`,
`action_features` ((7,): `ee_delta`, (8,): `joint_pos`), `reset(seed, goal)` and `act(obs)`.
`evaluate` takes a picklable zero-argument factory of it (e.g. `functools.partial(make_policy,
"scripted")`), because each worker process builds its own (collection never imports policies).

Every episode's seed comes from (seed, task index, episode index) alone, and the process-wide
random generators (`random`, `numpy.random`, torch when loaded) are seeded from it before the
episode, so results are the same for any number of workers and whichever process runs an
episode. Each process builds its policy, robot and loop once and reuses them for all its
episodes; `workers` counts this process, which runs episodes too (see `collection.parallel`).
"""

from __future__ import annotations

import functools
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playworld.collection.parallel import preserved_globals, run_chunks, seed_globals, split
from playworld.errors import ConfigError

PolicyFactory = Callable[[], Any]
#: The twin's action space for each action size.
ACTION_SPACES = {7: "ee_delta", 8: "joint_pos"}
VIDEO_SIZE = (240, 320)  # (H, W) of the evaluation videos, front camera


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


def episode_seed(seed: int, task_index: int, episode: int) -> int:
    """Seed of one episode, independent of how episodes are spread over workers."""
    return int(np.random.SeedSequence([seed, task_index, episode]).generate_state(1)[0])


# -- the robot and the loop ------------------------------------------------------------------
def policy_cameras(policy: Any, profile: str = "sim_panda") -> tuple[str, dict[str, Any]]:
    """(action space, {camera name: SimCameraConfig}) the twin needs to run `policy`.

    Raises ConfigError naming the observation keys that neither the robot nor a twin camera
    provides, and for action sizes other than 7 (ee_delta) or 8 (joint_pos).
    """
    from playworld.hardware.profiles import load_profile, read_profile
    from playworld.sim.robot import SimCameraConfig
    from playworld.sim.scene import CAMERAS

    kind = read_profile(profile).get("type")
    if kind != "sim":
        raise ConfigError(
            f"expected a sim robot profile to evaluate on (type: sim), found type {kind!r} in "
            f"{profile}"
        )
    shape = tuple(policy.action_features["action"].shape)
    space = ACTION_SPACES.get(shape[0]) if len(shape) == 1 else None
    if space is None:
        raise ConfigError(
            f"expected a policy action of shape (7,) (ee_delta) or (8,) (joint_pos), found {shape}"
        )
    config = load_profile(profile, cameras={}, action_space=space)
    provided = _robot_keys(config)
    cameras, missing = {}, []
    wanted = policy.observation_features
    for key, feature in wanted.items():
        if key in provided:
            continue
        if feature.kind == "image" and key in CAMERAS:
            h, w = feature.shape[:2]
            cameras[key] = SimCameraConfig(height=h, width=w, fps=config.fps, camera=key)
        elif not (key.endswith("_t") and wanted.get(key[:-2]) is not None):
            missing.append(key)
    if missing:
        raise ConfigError(
            f"expected observation keys the robot provides, found {missing} that profile "
            f"{profile} does not (it gives {sorted(provided)} and images of the cameras "
            f"{list(CAMERAS)})"
        )
    return space, cameras


def _robot_keys(config: Any) -> set[str]:
    from playworld.sim.robot import SimRobot

    return set(SimRobot(config).observation_features)


class _Runner:
    """One policy, its SimRobot, cameras and ControlLoop, built once per process and reused."""

    def __init__(self, token: str, factory: PolicyFactory, profile: str) -> None:
        from playworld.collection.loop import ControlLoop
        from playworld.hardware.profiles import robot_from_profile
        from playworld.sim.robot import SimCamera

        self.token = token  # identifies the evaluate call that built it
        self.policy = factory()
        space, cameras = policy_cameras(self.policy, profile)
        self.robot = robot_from_profile(profile, cameras={}, action_space=space)
        self.robot.connect()
        self.cameras = {name: SimCamera(cfg, twin=self.robot.twin) for name, cfg in cameras.items()}
        for cam in self.cameras.values():
            cam.connect()
        self.loop = ControlLoop(
            self.robot, self.policy.act, self.robot.fps, cameras=self.cameras, realtime=False
        )
        self._expert_goals: Any = None

    def goal(self, mode: str, seed: int, task: str, cache: str | None = None) -> Any:
        """What `policy.reset(goal=...)` gets: the task's name, or (mode "expert") the
        observation a scripted expert reaches from the current state (`collection.goals`;
        `cache`: its folder of saved goals, or None)."""
        if mode == "task":
            return task
        if self._expert_goals is None:
            from playworld.collection.goals import ExpertGoals

            self._expert_goals = ExpertGoals(self.robot.twin, cache=cache)
        return self._expert_goals(self.robot.twin, seed, task)

    def close(self) -> None:
        for cam in self.cameras.values():
            cam.disconnect()
        self.robot.disconnect()


_RUNNER: _Runner | None = None  # of a spawned worker process


def _worker_runner(token: str, factory: PolicyFactory, profile: str) -> _Runner:
    global _RUNNER
    if _RUNNER is None or _RUNNER.token != token:
        if _RUNNER is not None:
            _RUNNER.close()  # free the previous twin before building the next
        _RUNNER = None
        _RUNNER = _Runner(token, factory, profile)
    return _RUNNER


def run_episode(
    runner: _Runner,
    task: str,
    seed: int,
    max_steps: int,
    video: Path | None = None,
    goals: str = "task",
    goal_cache: str | None = None,
):
    """Reset, prepare `task`, run the loop until success or `max_steps`; (success, length).
    `goals`, `goal_cache`: what the policy's reset gets (see `_Runner.goal`).

    Seeds the process-wide random generators from `seed` (see `parallel.seed_globals`).
    """
    from playworld.sim.tasks import get_task, prepare_task

    t = get_task(task)
    runner.robot.reset(seed=seed)
    start = prepare_task(runner.robot.twin, t, np.random.default_rng([seed, 1]))
    goal = runner.goal(goals, seed, t.name, goal_cache)
    seed_globals(seed)
    runner.policy.reset(seed=seed, goal=goal)
    return _roll(runner, t, start, max_steps, video)


def _roll(runner: _Runner, task: Any, start: np.ndarray, max_steps: int, video: Path | None):
    """Tick the loop until `task.success(start, state)` after a step, or `max_steps` ticks."""
    twin, loop = runner.robot.twin, runner.loop
    outcome = [False, max_steps]
    recorder = _VideoRecorder(twin, video, runner.robot.fps) if video is not None else None

    def on_tick(tick: Any) -> bool:
        if recorder is not None:
            recorder.add()
        if task.success(start, twin.get_state()):
            outcome[:] = True, tick.index + 1
            return False
        return True

    loop.reset_metrics()  # one episode's worth: a long evaluation does not grow them
    try:
        loop.run(max_ticks=max_steps, on_tick=on_tick)
    finally:
        if recorder is not None:
            recorder.close()
    return bool(outcome[0]), int(outcome[1])


class _VideoRecorder:
    """The front camera after every step into an MP4: H.264 through PyAV (or OpenCV's `avc1`)
    where available, else MPEG-4 part 2 (`mp4v`), which every OpenCV build writes."""

    def __init__(self, twin: Any, path: Path, fps: float) -> None:
        from playworld.sim.render import TwinRenderer

        path.parent.mkdir(parents=True, exist_ok=True)
        self.renderer = TwinRenderer(twin, *VIDEO_SIZE)
        self.container = self.stream = self.writer = None
        try:
            import av

            self.container = av.open(str(path), "w")
            self.stream = self.container.add_stream("h264", rate=round(fps))
            self.stream.height, self.stream.width = VIDEO_SIZE
            self.stream.pix_fmt = "yuv420p"
            return
        except Exception:  # no PyAV, or no H.264 encoder in its build
            if self.container is not None:
                self.container.close()
            self.container = self.stream = None
        import cv2

        h, w = VIDEO_SIZE
        for fourcc in ("avc1", "mp4v"):
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
            if self.writer.isOpened():
                break

    def add(self) -> None:
        rgb = self.renderer.rgb("front")
        if self.stream is not None:
            import av

            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            self.container.mux(self.stream.encode(frame))
        else:
            self.writer.write(rgb[:, :, ::-1])

    def close(self) -> None:
        if self.stream is not None:
            self.container.mux(self.stream.encode(None))  # flush the encoder
            self.container.close()
        elif self.writer is not None:
            self.writer.release()
        self.renderer.close()


# -- episodes over workers ---------------------------------------------------------------------
def _run_jobs(args: tuple, runner: _Runner | None = None) -> list[Episode]:
    """Episodes of one chunk. args = (token, factory, profile, jobs, max_steps, video_dir,
    goals, goal_cache)."""
    token, factory, profile, jobs, max_steps, video_dir, goals, goal_cache = args
    if runner is None:  # in a spawned worker
        runner = _worker_runner(token, factory, profile)
    out = []
    with preserved_globals():
        for task, index, seed, record in jobs:
            video = Path(video_dir) / f"{task}_{index:03d}.mp4" if record and video_dir else None
            success, length = run_episode(runner, task, seed, max_steps, video, goals, goal_cache)
            out.append(Episode(task, index, seed, success, length, str(video) if video else None))
    return out


def _run_parallel(
    fn: Callable,
    factory: PolicyFactory,
    profile: str,
    payloads: list,
    workers: int,
    view: Any = None,
):
    """`fn((token, factory, profile, *payload))` for each payload, over `workers` processes;
    (results, the policy's type). `view` (a `LiveView`) sees the ticks of this process's loop."""
    token = uuid.uuid4().hex
    runner = _Runner(token, factory, profile)  # also fails early on a bad policy, in this process
    runner.loop.view = view
    try:
        chunks = [(token, factory, profile, *p) for p in payloads]
        parts = run_chunks(fn, functools.partial(fn, runner=runner), chunks, workers)
        return parts, getattr(runner.policy, "type", type(runner.policy).__name__)
    finally:
        runner.close()


def _check_counts(**counts: int) -> None:
    bad = {k: v for k, v in counts.items() if v < 1}
    if bad:
        raise ConfigError(f"expected {', '.join(counts)} >= 1, found {bad}")


def evaluate(
    policy_factory: PolicyFactory,
    tasks: str | list[str] = "all",
    episodes: int = 20,
    seed: int = 0,
    workers: int = 1,
    max_steps: int = 100,
    profile: str = "sim_panda",
    video_dir: str | Path | None = None,
    videos_per_task: int = 1,
    name: str | None = None,
    goals: str = "task",
    view: Any = None,
    goal_cache: str | Path | None = None,
) -> dict[str, Any]:
    """Success per task with 95% Wilson intervals and episode lengths.

    `view`: a `playworld.viewer.LiveView` shown the episodes this process runs (all of them
    with `workers=1`).

    `goals`: "task" resets the policy with the task's name, "expert" with the observation a
    scripted expert reaches from the episode's start in a copy of the twin (goal-conditioned
    policies such as gcbc and play-lmp; see `playworld.collection.goals`). `goal_cache`: a
    folder where expert goals are kept and looked up (the same numbers, each expert rollout
    once across the policies evaluated on the same seeds; a fresh folder per run).

    `workers` processes run the episodes: this one and `workers - 1` spawned ones. Results do
    not depend on `workers` (see the module docstring). `name` labels the report (default: the
    policy's type).

    Returns `{"policy", "tasks": {name: {"success_rate", "ci95", "episodes", "successes",
    "mean_length", "lengths", "videos"}}, "overall": {...}, "seed", "workers", "elapsed_s"}`.
    """
    from playworld.collection.goals import check_goal_mode
    from playworld.sim.tasks import TASKS, resolve_tasks

    names = resolve_tasks(tasks)
    _check_counts(episodes=episodes, workers=workers, max_steps=max_steps)
    check_goal_mode(goals)
    order = list(TASKS)
    jobs = [
        (t, i, episode_seed(seed, order.index(t), i), video_dir is not None and i < videos_per_task)
        for t in names
        for i in range(episodes)
    ]
    t0 = time.perf_counter()
    cache = None if goal_cache is None else os.fspath(goal_cache)
    payloads = [(c, max_steps, video_dir, goals, cache) for c in split(jobs, workers)]
    parts, kind = _run_parallel(_run_jobs, policy_factory, profile, payloads, workers, view)
    results = sorted(
        (e for part in parts for e in part), key=lambda e: (names.index(e.task), e.index)
    )
    per_task = {}
    for t in names:
        eps = [e for e in results if e.task == t]
        k = sum(e.success for e in eps)
        per_task[t] = {
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
        "policy": name or kind,
        "profile": profile,
        "tasks": per_task,
        "overall": {
            "success_rate": total / n,
            "ci95": list(wilson_interval(total, n)),
            "episodes": n,
        },
        "seed": seed,
        "workers": workers,
        "max_steps": max_steps,
        "goals": goals,
        "episodes_detail": [asdict(e) for e in results],
        "elapsed_s": time.perf_counter() - t0,
    }


def _run_chains(args: tuple, runner: _Runner | None = None) -> list[dict[str, Any]]:
    """CALVIN-style chains. args = (token, factory, profile, [(index, seed)], length, max_steps,
    goals, goal_cache); with goals "expert", one expert goal per subtask, from the state the
    chain reached."""
    from playworld.sim.tasks import TASKS

    token, factory, profile, jobs, length, max_steps, goals, goal_cache = args
    if runner is None:  # in a spawned worker
        runner = _worker_runner(token, factory, profile)
    twin = runner.robot.twin
    out = []
    with preserved_globals():
        for index, seed in jobs:
            rng = np.random.default_rng(seed)
            runner.robot.reset(seed=seed)
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
                goal = runner.goal(goals, seed, task.name, goal_cache)
                runner.policy.reset(seed=seed, goal=goal)
                success, _ = _roll(runner, task, state, max_steps, None)
                if not success:
                    break
                completed += 1
            out.append({"index": index, "seed": seed, "tasks": done, "completed": completed})
    return out


def evaluate_chains(
    policy_factory: PolicyFactory,
    chains: int = 20,
    length: int = 5,
    seed: int = 0,
    workers: int = 1,
    max_steps: int = 100,
    profile: str = "sim_panda",
    goals: str = "task",
    goal_cache: str | Path | None = None,
) -> dict[str, Any]:
    """CALVIN protocol: `chains` random feasible sequences of `length` tasks without resets.

    Each next task is drawn among the tasks feasible in the state reached (none repeated); a
    chain stops at its first failure. Returns `success_at` (fraction of chains completing at
    least k tasks, k = 1..length), `avg_len` and the chains. `goal_cache`: see `evaluate`.
    """
    from playworld.collection.goals import check_goal_mode

    _check_counts(chains=chains, length=length, workers=workers, max_steps=max_steps)
    check_goal_mode(goals)
    jobs = [(i, episode_seed(seed, 10_000, i)) for i in range(chains)]
    cache = None if goal_cache is None else os.fspath(goal_cache)
    payloads = [(c, length, max_steps, goals, cache) for c in split(jobs, workers)]
    parts, _ = _run_parallel(_run_chains, policy_factory, profile, payloads, workers)
    runs = sorted((r for part in parts for r in part), key=lambda r: r["index"])
    completed = np.array([r["completed"] for r in runs])
    return {
        "success_at": {str(k): float(np.mean(completed >= k)) for k in range(1, length + 1)},
        "avg_len": float(completed.mean()),
        "chains": runs,
    }
