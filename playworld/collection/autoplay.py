"""Autonomous play in the twin (Tether's loop): choose a feasible task, run it, check it, go on.

    summary = autoplay("play.zarr", AutoplayConfig(seed=0, cameras=("front", "wrist")), steps=3000)

A `Player` is an action source for the `ControlLoop`: it picks a random task of the mix that is
feasible in the current state, drives the twin's scripted expert for it (with optional Gaussian
action noise), and closes the segment when the task's success predicate holds, the expert has
finished its waypoints, or `task_steps` ran out.

Every step also records `expert_action` (7,): the expert's own action before the noise. With
`noise > 0` the store is DART data (Laskey et al. 2017, "DART: Noise Injection for Robust
Imitation Learning"): the executed, noisy `action` takes the arm off the expert's path into states
a cloned policy drifts to, and the closed-loop expert's `expert_action` there says how to get
back. Cloning `expert_action` (`action_key: expert_action` of the goal policies) learns those
corrections without learning the noise; cloning `action` learns the noise too. There is no reset between tasks or episodes;
the twin is reset only when no task of the mix is feasible (between episodes, counted).

Episodes are chains of whole segments, at least `episode_steps` long. Metadata of an episode:

    source      "autoplay"
    segments    [{task, start, end, success}]: the task's actions are rows start .. end - 1,
                its outcome is judged on the recorded states: success == task.success(
                state[start], state[end]); the next segment starts at row `end`. The last row of
                an episode holds a zero action (the state every last segment is judged on).
    tasks       the task of every segment; `success` the fraction of them that succeeded
    sim_state0  the twin's full physics state before row 0 (see `playworld.collection.replay`)
    loop        the control loop's measurements over the episode
    seed, worker, resets
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError

HOLD_STEPS_AFTER_PLAN = 3  # steps to wait after the expert's last waypoint before judging
#: The store key of the expert's clean action (the DART label; see the module docstring).
LABEL_KEY = "expert_action"


@dataclass(frozen=True)
class AutoplayConfig:
    """What a player plays and records.

    `tasks`: task names (empty: every registered task); `weights`: relative frequency of each
    (None: uniform among the feasible ones). `noise`: std of Gaussian noise on the position and
    rotation deltas, as a fraction of the largest step, added to the executed action only (the
    store's `expert_action` keeps the expert's: DART, see the module docstring). `cameras`: twin cameras to record
    (`front`, `wrist`; empty: none), `height` x `width` pixels. `realtime`: pace the loop at the
    control rate (else as fast as the CPU allows; simulated time is the same either way).
    `reset_each_episode`: reset the twin (arm at home, objects re-drawn) before every episode,
    not only when no task is feasible: play then also starts tasks from the home pose, where
    every evaluation episode starts (policies cloned from play rarely saw it otherwise).
    """

    tasks: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None
    seed: int = 0
    noise: float = 0.0
    cameras: tuple[str, ...] = ("front", "wrist")
    height: int = 96
    width: int = 128
    episode_steps: int = 200
    task_steps: int = 120
    reset_each_episode: bool = False
    realtime: bool = False
    profile: str = "sim_panda"

    def __post_init__(self) -> None:
        from playworld.sim.scene import CAMERAS
        from playworld.sim.tasks import resolve_tasks

        object.__setattr__(self, "tasks", tuple(resolve_tasks(list(self.tasks) or "all")))
        if self.weights is not None:
            w = tuple(float(x) for x in self.weights)
            if len(w) != len(self.tasks) or min(w) < 0 or sum(w) <= 0:
                raise ConfigError(
                    f"expected one weight >= 0 per task ({len(self.tasks)}), summing above 0, "
                    f"found {self.weights}"
                )
            object.__setattr__(self, "weights", w)
        bad = [c for c in self.cameras if c not in CAMERAS]
        if bad:
            raise ConfigError(f"expected cameras among {list(CAMERAS)}, found {bad}")
        if self.noise < 0 or self.episode_steps < 1 or self.task_steps < 1:
            raise ConfigError(
                f"expected noise >= 0, episode_steps >= 1, task_steps >= 1, found {self.noise}, "
                f"{self.episode_steps}, {self.task_steps}"
            )

    @classmethod
    def parse_mix(cls, mix: str) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
        """'all', 'open_drawer,lift_red_block' or 'open_drawer:2,lift_red_block:1' -> (tasks, weights)."""
        if mix.strip() in ("", "all"):
            return (), None
        names, weights = [], []
        for part in mix.split(","):
            name, _, w = part.strip().partition(":")
            names.append(name)
            try:
                weights.append(float(w) if w else 1.0)
            except ValueError:
                raise ConfigError(f"expected task:weight with a number, found {part!r}") from None
        return tuple(names), (tuple(weights) if any(":" in p for p in mix.split(",")) else None)


@dataclass
class _Segment:
    task: str
    start: int
    start_state: np.ndarray
    done_for: int = 0


class Player:
    """Source of `ee_delta` actions (7,) for a `ControlLoop` driving the twin's `SimRobot`; reads
    the observation's privileged `state` and `keypoints`, like the `scripted` policy. `label`
    is the expert's action (7,) of the last call, before the noise (`LABEL_KEY` in the store)."""

    def __init__(self, config: AutoplayConfig, rng: np.random.Generator) -> None:
        from playworld.sim import ScriptedExpert

        self.config = config
        self.rng = rng
        self.expert = ScriptedExpert()
        self.segments: list[dict[str, Any]] = []
        self.row = 0
        self.episode_over = False
        self.wrap_up = False  # end the episode at the next segment end
        self._segment: _Segment | None = None
        self._gripper = 1.0
        self.label = np.zeros(7, np.float32)

    def feasible(self, state: np.ndarray) -> list[str]:
        from playworld.sim import TASKS

        return [t for t in self.config.tasks if TASKS[t].feasible(state)]

    def new_episode(self) -> None:
        self.segments, self.row, self.episode_over, self._segment = [], 0, False, None

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        from playworld.sim import TASKS

        state = np.asarray(obs["state"], dtype=np.float64)
        seg = self._segment
        if seg is not None:
            task = TASKS[seg.task]
            success = bool(task.success(seg.start_state, state))
            seg.done_for += self.expert.done
            timeout = self.row - seg.start >= self.config.task_steps
            if success or seg.done_for > HOLD_STEPS_AFTER_PLAN or timeout:
                self.segments.append(
                    {"task": seg.task, "start": seg.start, "end": self.row, "success": success}
                )
                self._segment = None
        if self._segment is None:
            names = (
                []
                if (self.row >= self.config.episode_steps or self.wrap_up)
                else self.feasible(state)
            )
            if not names:
                self.episode_over = True
                self.row += 1
                self.label = np.array([0, 0, 0, 0, 0, 0, self._gripper], np.float32)
                return self.label.copy()
            self._segment = _Segment(self._choose(names), self.row, state)
            self.expert.reset(self._segment.task)
        action = self.expert.act({"state": state, "keypoints": obs["keypoints"]})
        self.label = action.astype(np.float32)
        if self.config.noise > 0:
            from playworld.hardware.ee import MAX_POS_STEP, MAX_ROT_STEP

            scale = np.array([MAX_POS_STEP] * 3 + [MAX_ROT_STEP] * 3) * self.config.noise
            action[:6] += self.rng.normal(0.0, 1.0, 6) * scale
        self._gripper = float(action[6])
        self.row += 1
        return action.astype(np.float32)

    def _choose(self, names: list[str]) -> str:
        if self.config.weights is None:
            return names[int(self.rng.integers(len(names)))]
        w = np.array([self.config.weights[self.config.tasks.index(n)] for n in names])
        if w.sum() <= 0:
            return names[int(self.rng.integers(len(names)))]
        return names[int(self.rng.choice(len(names), p=w / w.sum()))]


class _LabelledWriter:
    """The loop's store writer, adding the player's clean label to every recorded step."""

    def __init__(self, queue: Any, player: Player) -> None:
        self.queue, self.player = queue, player

    def put(self, step: dict[str, Any], wait: bool = False) -> bool:
        return self.queue.put({**step, LABEL_KEY: self.player.label}, wait=wait)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def worker_seed(seed: int, worker: int) -> int:
    """The seed of one worker, independent of how many there are."""
    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


def twin_cameras(twin: Any, config: AutoplayConfig) -> dict[str, Any]:
    """Connected `SimCamera`s of `config.cameras` on `twin`, at its control rate."""
    from playworld.sim.robot import SimCamera, SimCameraConfig

    fps = float(twin.config.control_hz)
    out = {}
    for name in config.cameras:
        cfg = SimCameraConfig(height=config.height, width=config.width, fps=fps, camera=name)
        out[name] = SimCamera(cfg, twin=twin)
        out[name].connect()
    return out


def autoplay(
    path: str | Path,
    config: AutoplayConfig,
    steps: int,
    *,
    worker: int = 0,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    stop: Any = None,
    view: Callable[[Any], None] | None = None,
    durable: bool = True,
) -> dict[str, Any]:
    """Play about `steps` control steps into a new store at `path`; return a summary dict.

    The last episode ends at the first segment end after the budget; an interrupted episode
    (`stop.is_set()`, or Ctrl-C) is discarded. `on_episode(meta)` is called after each commit;
    `view` (a `playworld.viewer.LiveView`) is handed every tick. `durable=False` skips the
    fsyncs (`PlayStore.create`): for scratch stores, such as `autoplay_parallel`'s parts.
    """
    from playworld.collection.loop import ControlLoop
    from playworld.collection.step_queue import StepQueue
    from playworld.datasets import PlayStore
    from playworld.hardware.profiles import robot_from_profile

    seed = worker_seed(config.seed, worker)
    robot = robot_from_profile(config.profile, cameras={}, action_space="ee_delta", seed=seed)
    robot.connect()
    twin = robot.twin
    fps = robot.fps  # the profile's rate (the twin's control_hz was built from it)
    cams = twin_cameras(twin, config)
    player = Player(config, np.random.default_rng(seed))
    loop = ControlLoop(robot, player, fps, cameras=cams, realtime=config.realtime, view=view)
    info = {
        "source": "autoplay",
        "robot": robot.config.name,
        "twin": twin.config.to_dict(),
        "autoplay": dataclasses.asdict(config),
    }
    features = {**loop.features, LABEL_KEY: dataclasses.replace(loop.features["action"])}
    store = PlayStore.create(path, features, fps=fps, info=info, durable=durable)
    writer = StepQueue(store, max_queue=max(64, int(4 * fps)), name=f"store-writer-{worker}")
    loop.writer = _LabelledWriter(writer, player)
    state = {"mark": 0, "sim_state0": None, "resets": 0, "episodes": 0, "futures": []}
    t_start = time.perf_counter()

    def begin() -> None:
        player.new_episode()
        if config.reset_each_episode or not player.feasible(twin.get_state()):
            robot.reset()
            state["resets"] += 1
        state["mark"] = len(loop.metrics)
        state["sim_state0"] = twin.get_sim_state()
        writer.begin()
        loop.recording = True

    def on_tick(tick: Any) -> bool:
        if len(loop.metrics) >= steps:
            player.wrap_up = True
        if stop is not None and stop.is_set():
            return False
        if not player.episode_over:
            return True
        segs = player.segments
        meta = {
            "source": "autoplay",
            "segments": segs,
            "tasks": [s["task"] for s in segs],
            "success": sum(s["success"] for s in segs) / max(1, len(segs)),
            "sim_state0": state["sim_state0"].tolist(),
            "loop": loop.metrics.summary(since=state["mark"]),
            "seed": config.seed,
            "worker": worker,
            "resets": state["resets"],
        }
        state["futures"].append(writer.commit(meta))
        state["episodes"] += 1
        if on_episode is not None:
            on_episode(meta)
        if player.wrap_up:
            return False
        begin()
        return True

    try:
        begin()
        loop.run(on_tick=on_tick)
        writer.discard()
        writer.drain()
        writer.check()
        for f in state["futures"]:
            f.result()
    finally:
        writer.close()
        store.close()
        for cam in cams.values():
            cam.disconnect()
        robot.disconnect()
    return {
        "path": str(path),
        "worker": worker,
        "episodes": state["episodes"],
        "steps": len(loop.metrics),
        "resets": state["resets"],
        "elapsed_s": time.perf_counter() - t_start,
        "loop": loop.metrics.summary(),
    }


def _worker(args: tuple) -> dict[str, Any]:
    path, config, steps, worker = args
    import playworld.sim  # noqa: F401  (the GL backend before mujoco loads)

    return autoplay(path, config, steps, worker=worker, durable=False)


def autoplay_parallel(
    path: str | Path, config: AutoplayConfig, steps: int, workers: int = 1, view: Any = None
) -> dict[str, Any]:
    """`workers` players in their own processes, each into its own store, merged into `path`.

    Each plays `ceil(steps / workers)` steps with its own seed (`worker_seed`); the merged store
    holds worker 0's episodes, then worker 1's... The part stores are scratch, written without
    fsync (a killed run starts over: they are deleted at the start and after the merge); the
    merged store is durable.
    """
    import multiprocessing as mp
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    from playworld.datasets import PlayStore
    from playworld.datasets.maintenance import copy_episodes

    if workers < 1:
        raise ConfigError(f"expected workers >= 1, found {workers}")
    if workers == 1:
        return autoplay(path, config, steps, view=view)
    if view is not None:
        raise ConfigError("a live view shows one player's loop: run it with workers=1")
    path = Path(path)
    parts_dir = path.with_name(path.name + ".parts")
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts = [parts_dir / f"worker-{i}.zarr" for i in range(workers)]
    per = math.ceil(steps / workers)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(_worker, [(p, config, per, i) for i, p in enumerate(parts)]))
    first = PlayStore.open(parts[0])
    out = PlayStore.create(path, first.features, first.fps, info=first.info)
    try:
        for part in parts:
            src = PlayStore.open(part)
            copy_episodes(src, range(len(src)), out)
    finally:
        out.close()
    shutil.rmtree(parts_dir, ignore_errors=True)
    return {
        "path": str(path),
        "workers": results,
        "episodes": sum(r["episodes"] for r in results),
        "steps": sum(r["steps"] for r in results),
        "resets": sum(r["resets"] for r in results),
        "elapsed_s": time.perf_counter() - t0,
    }
