"""Autonomous functional play (Tether): pick a task, pick a demo, warp and run it, judge, learn.

    summary = play("library", "play.zarr", PlayConfig(episodes=50))

Each attempt: among the tasks feasible in the current state that the library has demos of, a
task is drawn with probability proportional to exp(-successes / temperature) (under-practised
tasks first, `task_probabilities`); among its demos one is picked by UCB (`ucb_pick`, c = 0.5
over each demo's success history; untried demos first); the `tether` policy warps it to the
scene and runs on the ONE ControlLoop (simulated time) until the `Judge` says success or
`max_steps` pass. Every attempt is appended to the store as one episode (metadata below),
successes join the library (saved back into its folder), and the twin is reset only when no
task with a demo is feasible. Ctrl-C (or `stop`) discards the attempt in flight and keeps every
committed one; the library is saved.

Episode metadata: `source` "tether_play", `task`, `demo`, `success`, `reason` (why it failed:
"timeout", "no demo", an error), `judge`, `segments` [{task, start, end, success}] (the same
shape as autoplay's), `sim_state0` (the twin's physics state before row 0, so that
`collection.replay` replays it exactly), `seed`. The last row holds a hold action and the
state the attempt was judged on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from playworld.errors import ConfigError, PlayworldError

SOURCE = "tether_play"


# -- the two choices ------------------------------------------------------------------------------
def task_probabilities(
    successes: Mapping[str, int], feasible: list[str], temperature: float = 10.0
):
    """p (len(feasible),) with p_i proportional to exp(-successes_i / temperature)."""
    s = np.array([successes.get(t, 0) for t in feasible], float)
    w = np.exp(-(s - s.min()) / temperature)  # shifted: the same ratios, no underflow
    return w / w.sum()


def sample_task(
    rng: np.random.Generator, successes: Mapping[str, int], feasible: list[str], temperature=10.0
) -> str:
    """One task of `feasible` drawn by `task_probabilities`."""
    return feasible[
        int(rng.choice(len(feasible), p=task_probabilities(successes, feasible, temperature)))
    ]


def ucb_scores(history: Mapping[str, tuple[int, int]], c: float = 0.5) -> dict[str, float]:
    """UCB1 score of each demo from (successes, attempts): mean + c sqrt(ln N / n), N the
    attempts of all of them; an untried demo scores infinity."""
    total = sum(n for _, n in history.values())
    return {
        d: math.inf if n == 0 else k / n + c * math.sqrt(math.log(max(total, 1)) / n)
        for d, (k, n) in history.items()
    }


def ucb_pick(history: Mapping[str, tuple[int, int]], c: float = 0.5) -> str:
    """The demo with the highest UCB score (the first of equals, in `history` order)."""
    scores = ucb_scores(history, c)
    return max(scores, key=lambda d: scores[d])


# -- judging ----------------------------------------------------------------------------------------
class Judge(Protocol):
    """Says whether an attempt at `task` succeeded, from its first and latest observations
    (Tether asks a vision-language model; the twin's predicates stand in for it here)."""

    name: str

    def __call__(
        self, task: str, start: Mapping[str, np.ndarray], now: Mapping[str, np.ndarray]
    ) -> bool: ...


class TwinJudge:
    """The twin's success predicates on the privileged `state` (`playworld.sim.tasks`)."""

    name = "twin"

    def __call__(
        self, task: str, start: Mapping[str, np.ndarray], now: Mapping[str, np.ndarray]
    ) -> bool:
        from playworld.sim.tasks import get_task

        return bool(get_task(task).success(np.asarray(start["state"]), np.asarray(now["state"])))


@dataclass(frozen=True)
class PlayConfig:
    """How long and how to play: `episodes` attempts, or `hours` of wall-clock time (the first
    reached ends it; at least one of them). `max_steps` per attempt, the UCB constant `c`, the
    task `temperature`, the robot `profile` (a sim profile) and `cameras` to record."""

    episodes: int | None = None
    hours: float | None = None
    max_steps: int = 150
    seed: int = 0
    c: float = 0.5
    temperature: float = 10.0
    profile: str = "sim_panda"
    cameras: tuple[str, ...] = ()
    height: int = 96
    width: int = 128
    keypoints: str = "privileged"  # or "perceived": open3d on the front camera's depth

    def __post_init__(self) -> None:
        if self.keypoints not in ("privileged", "perceived"):
            raise ConfigError(
                f"expected keypoints 'privileged' or 'perceived', found {self.keypoints!r}"
            )
        if self.episodes is None and self.hours is None:
            raise ConfigError(
                "expected --episodes N or --hours H (how long to play), found neither"
            )
        if (self.episodes is not None and self.episodes < 1) or (
            self.hours is not None and self.hours <= 0
        ):
            raise ConfigError(
                f"expected episodes >= 1 and hours > 0, found {self.episodes}, {self.hours}"
            )
        if self.max_steps < 2 or self.c < 0 or self.temperature <= 0:
            raise ConfigError(
                f"expected max_steps >= 2, c >= 0, temperature > 0, found {self.max_steps}, "
                f"{self.c}, {self.temperature}"
            )


def _history(store: Any, policy: Any) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Successes per task and (successes, attempts) per demo, from the store's play episodes."""
    successes: dict[str, int] = {}
    demos = {d.id: (0, 0) for d in policy.config.demos}
    for i in range(len(store)):
        meta = store.episode_metadata(i)
        if meta.get("source") != SOURCE:
            continue
        ok = bool(meta.get("success"))
        successes[meta["task"]] = successes.get(meta["task"], 0) + ok
        if meta.get("demo") in demos:
            k, n = demos[meta["demo"]]
            demos[meta["demo"]] = (k + ok, n + 1)
    return successes, demos


def play(
    library: str | Path,
    store_path: str | Path,
    config: PlayConfig,
    *,
    judge: Judge | None = None,
    on_attempt: Callable[[dict[str, Any]], None] | None = None,
    stop: Any = None,
) -> dict[str, Any]:
    """Play into `store_path` (created, or appended to when it holds play of the same robot)
    from the `tether` library folder `library`; returns a summary (see the module docstring)."""
    import dataclasses

    from playworld.collection.autoplay import AutoplayConfig, twin_cameras
    from playworld.collection.loop import ControlLoop
    from playworld.collection.step_queue import StepQueue
    from playworld.datasets import PlayStore
    from playworld.hardware.profiles import robot_from_profile
    from playworld.policies.base import Policy
    from playworld.policies.tether.library import demo_from_rows
    from playworld.policies.tether.policy import TetherPolicy
    from playworld.sim.tasks import TASKS

    judge = judge or TwinJudge()
    policy = Policy.load(library)
    if not isinstance(policy, TetherPolicy):
        raise ConfigError(
            f"expected a tether library folder at {library}, found a {policy.type!r} policy"
        )
    rng = np.random.default_rng(config.seed)
    robot = robot_from_profile(
        config.profile, cameras={}, action_space="ee_delta", seed=config.seed
    )
    robot.connect()
    twin = robot.twin
    fps = float(robot.fps)
    cams = twin_cameras(
        twin, AutoplayConfig(cameras=config.cameras, height=config.height, width=config.width)
    )
    hold: dict[str, Any] = {"action": None, "keypoints": None}
    perceive = _perceiver(twin, policy) if config.keypoints == "perceived" else None

    def source(obs: Mapping[str, np.ndarray]) -> np.ndarray:
        if hold["action"] is not None:
            return hold["action"]
        try:
            if perceive is not None:  # once per attempt
                if hold["keypoints"] is None:
                    hold["keypoints"] = perceive(obs)
                obs = {**obs, "keypoints": hold["keypoints"]}
            return policy.act(obs)
        except PlayworldError as exc:  # perception or warping failed: the attempt fails, with
            # its reason, on a recorded hold step (never a crash of the play loop)
            hold["error"] = " ".join(str(exc).split())
            hold["action"] = _hold(obs)
            return hold["action"]

    loop = ControlLoop(robot, source, fps, cameras=cams, realtime=False)
    info = {
        "source": SOURCE,
        "robot": robot.config.name,
        "twin": twin.config.to_dict(),
        "play": dataclasses.asdict(config),
        "library": str(library),
        "judge": judge.name,
    }
    path = Path(store_path)
    if (path / "zarr.json").is_file():
        store = PlayStore.open(store_path, "a")
        if store.info.get("source") != SOURCE or set(store.features) != set(loop.features):
            store.close()
            robot.disconnect()
            raise ConfigError(
                f"cannot add play to {store_path}: it holds other recordings (source "
                f"{store.info.get('source')!r}); choose a new --store"
            )
    else:
        store = PlayStore.create(store_path, loop.features, fps=fps, info=info)
    writer = StepQueue(store, max_queue=max(64, int(4 * fps)), name="tether-play-writer")
    loop.writer = writer
    successes, demo_stats = _history(store, policy)
    counts = {"attempts": 0, "successes": 0, "resets": 0, "added": 0, "steps": 0}
    t_wall, twin_t0 = time.perf_counter(), float(twin.data.time)
    deadline = None if config.hours is None else t_wall + 3600.0 * config.hours
    futures = []
    try:
        while True:
            if config.episodes is not None and counts["attempts"] >= config.episodes:
                break
            if (deadline is not None and time.perf_counter() >= deadline) or (
                stop is not None and stop.is_set()
            ):
                break
            feasible = _feasible(twin, policy, TASKS)
            if not feasible:
                robot.reset(seed=int(rng.integers(2**31)))
                counts["resets"] += 1
                feasible = _feasible(twin, policy, TASKS)
                if not feasible:
                    raise PlayworldError(
                        "expected a feasible task with a demo after a reset, found none: the "
                        f"library has demos of {sorted({d.task for d in policy.config.demos})}"
                    )
            task = sample_task(rng, successes, feasible, config.temperature)
            ids = policy.demos_for(task)
            demo = ucb_pick({i: demo_stats.setdefault(i, (0, 0)) for i in ids}, config.c)
            seed = int(rng.integers(2**31))
            meta = _attempt(robot, loop, writer, policy, judge, task, demo, seed, config, hold)
            counts["attempts"] += 1
            counts["steps"] += meta["segments"][0]["end"] + 1
            ok = meta["success"]
            successes[task] = successes.get(task, 0) + ok
            k, n = demo_stats[demo]
            demo_stats[demo] = (k + ok, n + 1)
            futures.append(writer.commit(meta))
            if ok:
                counts["successes"] += 1
                index = futures[-1].result()
                new = demo_from_rows(
                    store.episode(index),
                    0,
                    len(store.episode(index)),
                    task,
                    f"{task}-play{index:05d}",
                    f"{store_path}#{index}",
                )
                if new is not None:
                    policy.add_demo(new)
                    demo_stats[new.info.id] = (0, 0)
                    counts["added"] += 1
            if on_attempt is not None:
                on_attempt(
                    {
                        **meta,
                        **counts,
                        "wall_s": time.perf_counter() - t_wall,
                        "twin_s": float(twin.data.time) - twin_t0,
                    }
                )
    except KeyboardInterrupt:
        pass  # the attempt in flight is discarded below; committed ones stay
    finally:
        writer.discard()
        writer.drain()
        for f in futures:
            f.result()
        writer.close()
        store.close()
        for cam in cams.values():
            cam.disconnect()
        if perceive is not None:
            perceive.close()
        robot.disconnect()
        if counts["added"]:
            policy.save(library)
    wall = time.perf_counter() - t_wall
    return {
        **counts,
        "store": str(store_path),
        "library": str(library),
        "library_demos": len(policy.config.demos),
        "wall_s": wall,
        "attempts_per_hour_wall": 3600.0 * counts["attempts"] / max(wall, 1e-9),
        "attempts_per_hour_twin": 3600.0 * counts["attempts"] / max(counts["steps"] / fps, 1e-9),
        "successes_per_task": successes,
    }


def _perceiver(twin: Any, policy: Any) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """obs -> keypoints (K, 3) with the current task's anchors perceived (open3d), models
    calibrated on the scene as it stands now."""
    from playworld.policies.tether.perception import Perceiver
    from playworld.sim.render import TwinRenderer

    renderer = TwinRenderer(twin, 240, 320)
    perceiver = Perceiver.calibrate(renderer)

    def perceive(obs: Mapping[str, np.ndarray]) -> np.ndarray:
        objects = {a for d in policy.config.demos if d.task == policy.goal for a in d.anchors}
        return perceiver.keypoints(renderer, obs["keypoints"], sorted(objects))

    perceive.close = renderer.close  # type: ignore[attr-defined]
    return perceive


def _hold(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Stay where the arm is, the gripper as it is (open or closed)."""
    return np.array([0, 0, 0, 0, 0, 0, float(obs["gripper"][0] > 0.5)], np.float32)


def _feasible(twin: Any, policy: Any, tasks: Mapping[str, Any]) -> list[str]:
    state = twin.get_state()
    return [t for t, task in tasks.items() if policy.demos_for(t) and task.feasible(state)]


def _attempt(robot, loop, writer, policy, judge, task, demo, seed, config, hold) -> dict[str, Any]:
    """Run one attempt into the writer's open episode; its metadata (not yet committed)."""
    twin = robot.twin
    start = robot.get_observation()
    sim_state0 = twin.get_sim_state()
    policy.reset(seed=seed, goal=task)
    policy.use_demo(demo)
    hold["action"] = hold["keypoints"] = hold["error"] = None
    outcome = {"success": False, "judged": False}

    def on_tick(tick: Any) -> bool:
        if outcome["judged"] or hold["error"]:  # the hold row after the verdict is recorded
            return False
        if judge(task, start, robot.get_observation()):
            outcome["success"] = True
        if outcome["success"] or tick.index + 2 >= config.max_steps:
            outcome["judged"] = True
            hold["action"] = _hold(robot.get_observation())
        return True

    writer.begin()
    loop.recording = True
    loop.reset_metrics()
    try:
        loop.run(max_ticks=config.max_steps, on_tick=on_tick)
    finally:
        loop.recording = False
        hold["action"] = None
    reason = hold["error"]
    if reason is None and not outcome["success"]:
        reason = policy.failure or "timeout"
    steps = len(loop.metrics)
    return {
        "source": SOURCE,
        "task": task,
        "demo": demo,
        "success": bool(outcome["success"]),
        "reason": reason,
        "judge": judge.name,
        "segments": [
            {
                "task": task,
                "start": 0,
                "end": max(steps - 1, 0),
                "success": bool(outcome["success"]),
            }
        ],
        "tasks": [task],
        "sim_state0": sim_state0.tolist(),
        "seed": seed,
        "loop": loop.metrics.summary(),
    }
