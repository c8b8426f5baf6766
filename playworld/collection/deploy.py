"""Deploying a policy to a robot on the one control loop (`playworld deploy`).

    report = deploy(robot, policy, DeployConfig(mode="twin-follow", task="turn_on_light"),
                    follower=TwinFollower(sim_robot, objects), policy_meta={...})

Two modes, both on `ControlLoop` at the profile's rate, every command through the robot's guard:

- **direct**: the policy acts on the robot's observations (joints, gripper, the perception
  stream's `object_poses`, cameras); its actions go to the robot.
- **twin-follow** (Real-is-Sim): each tick a local twin (`TwinFollower`, a `SimRobot`) is synced
  from the robot's joint states (positions, and velocities when the states carry them) and the
  perception stream's object poses (a message already synced is not written again: it would
  take a moving drawer back), the policy acts in the twin (it may read the twin's privileged
  state there), the twin steps one period, and the robot tracks the twin's guarded joint
  targets through its own guard. A divergence monitor measures how far the robot's joints are
  from the twin's recent way: the polyline through, for each of the last `LAG_TICKS` ticks, the
  synced joints, `PATH_POINTS` points of the twin's step (its way is curved in joint space) and
  its joint target; and, from the same synced joints, the way of a step with the previous
  target (the robot's when the tick's command reaches it a period late: a link whose round trip
  is most of a period). The link makes the robot's measurement tens of ms old and a late joint
  state shows it further on toward the same target, so a robot that lags or runs ahead along the
  way does not diverge; one that goes elsewhere does. Beyond the profile's `divergence_threshold`
  (rad) the robot holds where it is that tick. A tick without a new joint state does not sync
  the twin back to the old one: the twin goes on from its own state.

Inference is asynchronous (`AsyncActor`): the policy predicts chunks in its own thread; a tick
waits at most `budget_periods` control periods for its action, brakes the robot where it is
when none came (`Robot.brake`: a rosbridge arm gets its command type's stop message), and drops
actions whose tick has passed. Per tick the latency from the observation in hand to the command sent
(client side, ms) is measured; with the observation's age, the divergence and the stall
figures it is stored with the episode (`--record`: source `policy`, the checkpoint's hash and
config) and in `deploy.json`.

Success is judged by the far side's referee: the profile's `task_success_service`
(std_srvs/Trigger; `twin serve` offers `/playworld/task_success`, the task predicate on its own
state), polled from a thread. The task is set up by the rosapi parameters `/playworld/task` and
`/playworld/seed` and the reset service. A policy reading privileged twin features is refused
in direct mode on a robot that is not a twin.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playworld.collection.async_actor import AsyncActor, chunk_predictor
from playworld.collection.loop import ControlLoop
from playworld.errors import ConfigError, DeployError, PlayworldError

MODES = ("direct", "twin-follow")
PATH_POINTS = 10  # points of the twin's way per step the divergence monitor compares with
LAG_TICKS = 3  # predictions the divergence monitor compares with (latency + state age, periods)
STOPPED_RAD = 0.005  # rad between two joint states (0.05 rad/s at 10 Hz): the arm stands
STALE = "__stale__"  # marks an observation repeated while the link stalls (nothing is sent)
LINK_GRACE_S = 2.0  # a link stalled longer than this ends the deployment (one line)


@dataclass(frozen=True)
class DeployConfig:
    """One deployment. Times in seconds; `stall_at_s`: rehearse a stalled policy (it sleeps
    `stall_s` once, this far into each episode) to measure how fast the arm stops."""

    mode: str = "direct"
    task: str | None = None
    episodes: int = 1
    max_seconds: float = 30.0
    seed: int = 0
    budget_periods: float = 0.5
    ensemble: float | None = None
    stall_at_s: float | None = None
    stall_s: float = 1.0
    referee_period_s: float = 0.2
    seeds: tuple[int, ...] | None = None  # one per episode (e.g. evaluation's); else seed + i

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"expected --mode among {', '.join(MODES)}, found {self.mode!r}")
        if self.episodes < 1 or not self.max_seconds > 0:
            raise ConfigError(
                f"expected --episodes >= 1 and --max-seconds > 0, found {self.episodes} and "
                f"{self.max_seconds:g}"
            )
        if self.seeds is not None and len(self.seeds) != self.episodes:
            raise ConfigError(f"expected {self.episodes} seeds, found {len(self.seeds)}")
        if not 0 < self.budget_periods <= 1:
            raise ConfigError(f"expected budget_periods in (0, 1], found {self.budget_periods}")


class TwinFollower:
    """The local twin of twin-follow mode: synced from the robot, acted in, stepped, compared."""

    def __init__(self, sim_robot: Any, objects: tuple[str, ...] | None = None) -> None:
        self.sim = sim_robot
        self.objects = objects
        self._synced = np.zeros(7)
        self._stamp = np.nan  # `t` of the last joint state synced from
        self._poses: np.ndarray | None = None  # the last object poses synced from
        # synced, predicted, target: the twin's way over the last LAG_TICKS ticks
        self.predictions: deque[np.ndarray] = deque(maxlen=(PATH_POINTS + 2) * LAG_TICKS)
        # and, for each of those ticks, the way the robot goes if that tick's command reaches
        # it a period late (a link whose round trip is most of a period): on with the one before
        self.late: deque[np.ndarray] = deque(maxlen=LAG_TICKS)
        self._previous: np.ndarray | None = None  # the last joint target + gripper sent (8,)

    @property
    def observation_features(self) -> dict[str, Any]:
        """The twin's features plus `object_poses` (K, 7), as the perception stream gives them."""
        from playworld.features import Feature
        from playworld.sim.perception import OBJECTS

        out = dict(self.sim.observation_features)
        out["object_poses"] = Feature(
            (len(OBJECTS), 7), "float32", units="m, wxyz (world)", names=OBJECTS
        )
        return out

    @property
    def action_features(self) -> dict[str, Any]:
        return self.sim.action_features

    def start_episode(self, seed: int, task: str | None) -> None:
        """The twin set up as the far side was (same seed and task), before any measurement."""
        from playworld.sim.tasks import get_task, prepare_task, task_rng

        self.sim.reset(seed)
        twin = self.sim.twin
        twin.path_every = max(1, twin.config.n_substeps // PATH_POINTS)  # the twin notes its way
        if task:
            prepare_task(self.sim.twin, get_task(task), task_rng(seed))
        self.forget()
        self._stamp = np.nan
        self._poses = None

    def forget(self) -> None:
        """Nothing to compare the next measurement with (the twin did not step this tick)."""
        self.predictions.clear()
        self.late.clear()
        self._previous = None

    def observe(
        self, robot_obs: dict[str, np.ndarray], velocity: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], float]:
        """Sync from the robot (joints, gripper, object poses, and the joint velocities (7,)
        rad/s when its joint states carry them); the twin's observation and the divergence
        (rad, max |dq|)."""
        from playworld.sim.perception import sync_twin

        q = np.asarray(robot_obs["joint_pos"], float)
        gripper = float(np.asarray(robot_obs["gripper"]).reshape(-1)[0])
        divergence = 0.0
        if self.predictions:
            divergence = path_distance(q, list(self.predictions))
            for way in self.late:
                divergence = min(divergence, path_distance(q, list(way)))
        stamp = float(np.asarray(robot_obs.get("t", [np.nan])).reshape(-1)[0])
        if stamp == self._stamp:
            # No new joint state since the last tick (link jitter, a lost message): the
            # measurement is a period old, while the twin has stepped on from it. Syncing back
            # would send the robot the twin's path from where it was, not where it is now.
            self._synced = self.sim.twin.data.qpos[self.sim.twin.arm_qadr].copy()
        else:
            poses = robot_obs.get("object_poses") if self.objects else None
            if poses is not None and np.array_equal(poses, self._poses):
                # the same perception message as last time: it is older than this joint state
                # now, and writing it again would take the objects back to where they were
                poses = None
            elif poses is not None:
                self._poses = np.array(poses)
            with self.sim._lock:
                sync_twin(self.sim.twin, q, gripper, poses, self.objects or (), velocity)
                self.sim.guard.observe(q, self.sim.clock(), gripper)
            self._synced = q
        self._stamp = stamp
        from playworld.sim.perception import object_poses

        obs = self.sim.get_observation()
        with self.sim._lock:
            obs["object_poses"] = object_poses(self.sim.twin).astype(np.float32)
        return obs, divergence

    def act(self, action: np.ndarray) -> np.ndarray:
        """Step the twin with `action` (through its guard); the joint target (8,) it reached for."""
        twin = self.sim.twin
        if self._previous is not None:
            with self.sim._lock:  # the late way: a step with the previous target, undone
                before = twin.get_sim_state()
                twin.path = []
                twin.step(self._previous)
                self.late.append(np.array([self._synced, *twin.path]))
                twin.set_sim_state(before)
        twin.path = []
        self.sim.send_action(action)
        command = self.sim.last_command
        self._previous = command.as_action()
        with self.sim._lock:
            self.predictions.append(self._synced)
            self.predictions.extend(twin.path or [twin.data.qpos[twin.arm_qadr].copy()])
            # and on to the target: a robot measured later than one period on (a late or lost
            # joint state) has gone further along the same way, toward the same target
            self.predictions.append(np.asarray(command.q, float).copy())
        return command.as_action()


def path_distance(q: np.ndarray, path: list[np.ndarray]) -> float:
    """Max-joint distance (rad) from `q` to the polyline through `path` (a point: to it):
    a measurement taken between two twin states lies on the segment joining them."""
    if len(path) == 1:
        return float(np.abs(q - path[0]).max())
    best = np.inf
    for a, b in zip(path[:-1], path[1:], strict=True):
        ab = b - a
        denom = float(ab @ ab)
        t = 0.0 if denom == 0 else float(np.clip((q - a) @ ab / denom, 0.0, 1.0))
        best = min(best, float(np.abs(q - (a + t * ab)).max()))
    return best


class _Timed:
    """The robot, with the time the observation was in hand and the command was sent; a link
    that stalls for less than `grace_s` skips ticks (marked `STALE`: nothing is sent, the
    watchdog holds the arm) instead of ending the deployment."""

    def __init__(self, robot: Any, grace_s: float) -> None:
        self._robot = robot
        self.grace_s = grace_s
        self.t_obs = 0.0
        self.t_sent = 0.0
        self.wall_sent = 0.0
        self.stamp: float | None = None
        self.velocity: np.ndarray | None = None  # the observed joint state's velocities, if any
        self._last: dict[str, np.ndarray] | None = None
        self._bad_since: float | None = None
        self.stale_ticks = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._robot, name)

    def get_observation(self) -> dict[str, np.ndarray]:
        from playworld.hardware.errors import RobotConnectionError

        try:
            obs = self._robot.get_observation()
        except RobotConnectionError:
            now = time.monotonic()
            self._bad_since = self._bad_since or now
            if self._last is None or now - self._bad_since > self.grace_s:
                raise
            self.stale_ticks += 1
            self.t_obs = now
            return {**self._last, STALE: np.ones(1)}
        self._bad_since = None
        self._last = obs
        self.t_obs = time.monotonic()
        self.stamp = getattr(self._robot, "state_stamp", None)
        self.velocity = getattr(self._robot, "state_velocity", None)
        return obs

    def send_action(self, action: np.ndarray) -> np.ndarray:
        sent = self._robot.send_action(action)
        self.t_sent = time.monotonic()
        self.wall_sent = time.time()
        return sent


class _Referee(threading.Thread):
    """Polls the far side's task predicate; `success` turns True once it holds."""

    def __init__(self, judge: Any, period: float) -> None:
        super().__init__(name="deploy-referee", daemon=True)
        self.judge, self.period = judge, period
        self.success = False
        self.error: str | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.period):
            try:
                if self.judge():
                    self.success = True
                    return
            except PlayworldError as exc:
                self.error = str(exc)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5.0)


def check_fit(policy: Any, provider: Any, robot: Any, mode: str) -> None:
    """One line if the policy cannot run here: privileged features on a real arm, or features
    and actions that do not match what the robot (or the twin) gives and takes."""
    name = getattr(policy, "type", type(policy).__name__)
    on_twin = hasattr(robot, "twin")
    if mode == "direct" and policy.privileged and not on_twin:
        keys = sorted(k for k, f in policy.observation_features.items() if f.privileged)
        raise DeployError(
            f"policy {name!r} reads privileged twin features {keys}, which robot "
            f"{robot.name!r} does not have: deploy it with --mode twin-follow, or use a policy "
            f"that reads the perception stream (e.g. scripted_perception)"
        )
    have = provider.observation_features
    for key, feature in policy.observation_features.items():
        if key not in have or tuple(have[key].shape) != tuple(feature.shape):
            found = tuple(have[key].shape) if key in have else "no such key"
            raise DeployError(
                f"policy {name!r} reads {key!r} {tuple(feature.shape)}, robot {robot.name!r} "
                f"({mode}) gives {found}; its observation keys: {sorted(have)}"
            )
    want = tuple(policy.action_features["action"].shape)
    takes = tuple(provider.action_features["action"].shape)
    if want != takes:
        raise DeployError(
            f"policy {name!r} emits actions {want}, robot {robot.name!r} ({mode}) takes {takes}"
        )
    if mode == "twin-follow" and tuple(robot.action_features["action"].shape) != (
        robot.guard.config.n + 1,
    ):
        raise DeployError(
            f"expected robot {robot.name!r} to take joint targets ({robot.guard.config.n + 1},) "
            "in twin-follow mode (set action_space: joint_pos in its profile)"
        )


def stall_stop_periods(
    ticks: list[dict[str, Any]],
    stall_tick: int,
    fps: float,
    states: list[tuple[float, np.ndarray]] | None = None,
) -> float | None:
    """Control periods from the last command sent before the stall until the arm stood still
    (two successive joint states within STOPPED_RAD).

    `states`: every joint state the robot published, (stamp s on its clock, q), oldest first
    (`RosBridgeRobot.joint_states()`). The recorded ticks sample them once a period, so a tick that
    sees the same state twice or skips one (two clocks at the same rate, link jitter) adds a
    period to the figure; the robot's own stream does not. Without it (or when it does not reach
    back to the last command), the recorded ticks."""
    sent = [t for t in ticks[:stall_tick] if t.get("sent")]
    if not sent:
        return None
    if states and all(t.get("stamp") for t in ticks[stall_tick:]):
        t_last = sent[-1]["wall_sent"]
        if states[0][0] <= t_last:
            after = sorted((s for s in states if s[0] >= t_last), key=lambda s: s[0])
            for (stamp, q), (_, q_next) in zip(after[:-1], after[1:], strict=True):
                if np.abs(q_next - q).max() < STOPPED_RAD:
                    return max(0.0, (stamp - t_last) * fps)
            return None
    # On the robot's clock (joint-state stamps) when it has one: the way back over the link
    # does not count; else on the receive clock.
    stamped = all(t.get("stamp") for t in ticks[stall_tick:])
    key, t_last = ("stamp", sent[-1]["wall_sent"]) if stamped else ("obs_t", sent[-1]["t_sent"])
    prev = None
    for t in ticks[stall_tick:]:
        moved = t[key] > prev[key] if prev is not None else False
        if moved and np.abs(t["q"] - prev["q"]).max() < STOPPED_RAD:
            return max(0.0, (prev[key] - t_last) * fps)
        if prev is None or t[key] > prev[key]:
            prev = t
    return None


def deploy(
    robot: Any,
    policy: Any,
    config: DeployConfig,
    *,
    follower: TwinFollower | None = None,
    store: Any = None,
    policy_meta: dict[str, Any] | None = None,
    out: Path | None = None,
    say: Any = print,
    view: Any = None,
) -> dict[str, Any]:
    """Run `config.episodes` episodes; returns the deploy.json report (also written to `out`).

    `view` (a `playworld.viewer.LiveView`) is shown every tick of the loop.

    `robot` is connected; `store` (a `PlayStore`, optional) receives each episode with source
    `policy`. A fault (lost link, store error) ends the deployment with one `DeployError` line;
    committed episodes stay.
    """
    from playworld.collection.step_queue import StepQueue

    twin_follow = config.mode == "twin-follow"
    if twin_follow and follower is None:
        raise DeployError("expected a local twin for --mode twin-follow, found none")
    provider = follower if twin_follow else robot
    check_fit(policy, provider, robot, config.mode)
    fps = float(robot.config.fps)
    threshold = float(getattr(robot.config, "divergence_threshold", 0.1))
    predict = chunk_predictor(policy)
    actor = AsyncActor(predict, budget_s=config.budget_periods / fps, ensemble=config.ensemble)
    timed = _Timed(robot, LINK_GRACE_S)
    state: dict[str, Any] = {}

    def source(obs: dict[str, np.ndarray]) -> np.ndarray | None:
        k = state["tick"]
        tick = {
            "obs_t": float(obs["t"][0]),
            "stamp": timed.stamp,
            "q": np.asarray(obs["joint_pos"], float).copy(),
        }
        state["ticks"].append(tick)
        if STALE in obs:
            return None  # the link stalls: send nothing, the watchdog holds
        if config.stall_at_s is not None and k == state["stall_tick"]:
            actor.stall(config.stall_s)
        divergence = None
        policy_obs = obs
        if twin_follow:
            policy_obs, divergence = follower.observe(obs, timed.velocity)
            tick["divergence"] = divergence
        actor.submit(k, policy_obs)
        action = actor.take(k)
        if action is None:
            if twin_follow:
                follower.forget()  # the twin did not step: nothing to compare next
            state["missed"] += 1
            return brake()  # the policy is late or stalled
        state["missed"] = 0
        if twin_follow:
            target = follower.act(action)
            if divergence is not None and divergence > threshold:
                state["held"] += 1  # the robot holds where it is this tick
                return np.concatenate([tick["q"], [float(np.asarray(obs["gripper"])[0])]])
            return target
        return action

    def brake() -> None:
        """The policy has no action this tick: the robot brakes where it is (`Robot.brake`:
        its own controller stops it, with no target from the link's tens-of-ms-old
        measurement, which would send a moving arm back or chase it). Nothing is sent."""
        robot.brake("the policy has no action this tick")
        state["braked"] += 1
        return None

    def on_tick(t: Any) -> bool:
        tick = state["ticks"][-1]
        tick["sent"] = t.action is not None
        if tick["sent"]:
            tick["t_sent"] = timed.t_sent
            tick["wall_sent"] = timed.wall_sent
            tick["latency_ms"] = (timed.t_sent - timed.t_obs) * 1000.0
        tick["obs_age_ms"] = (timed.t_obs - tick["obs_t"]) * 1000.0
        state["tick"] += 1
        referee = state.get("referee")
        return not (referee is not None and referee.success)

    writer = StepQueue(store) if store is not None else None
    loop = ControlLoop(timed, source, fps, writer=writer, view=view, align_to_states=True)
    judge = getattr(robot, "task_success", None)
    can_judge = bool(config.task) and getattr(robot.config, "task_success_service", None)
    episodes: list[dict[str, Any]] = []
    error: str | None = None
    actor.start()
    try:
        for i in range(config.episodes):
            seed = config.seeds[i] if config.seeds else config.seed + i
            _setup_episode(robot, config.task, seed)
            policy.reset(seed=seed, goal=config.task)
            predict.history.clear()
            actor.reset()
            if follower is not None:
                follower.start_episode(seed, config.task)
            state.update(
                tick=0,
                ticks=[],
                held=0,
                stall_tick=None,
                referee=None,
                missed=0,
                braked=0,
            )
            stale_mark = timed.stale_ticks
            if config.stall_at_s is not None:
                state["stall_tick"] = round(config.stall_at_s * fps)
            if can_judge:
                state["referee"] = _Referee(judge, config.referee_period_s)
                state["referee"].start()
            if writer is not None:
                writer.begin()
                loop.recording = True
            mark = len(loop.metrics)
            try:
                loop.run(duration=config.max_seconds, on_tick=on_tick)
            finally:
                loop.recording = False
                if state["referee"] is not None:
                    state["referee"].stop()
                state["stale_ticks"] = timed.stale_ticks - stale_mark
                states = getattr(robot, "joint_states", None)  # the arm's own stream
                state["joint_states"] = states() if states is not None else None
            record = _episode_record(state, config, seed, fps, actor, can_judge)
            record["loop"] = loop.metrics.summary(since=mark)
            if writer is not None:
                meta = {"source": "policy", "policy": policy_meta or {}, **record}
                index = writer.commit(_json_native(meta)).result()
                record["store_episode"] = int(index)
            episodes.append(record)
            say(
                f"episode {i}: {'success' if record['success'] else 'no success'} after "
                f"{record['ticks']} ticks ({record['ended_by']}), latency p99 "
                f"{_ms(record['latency_ms_p99'])}"
            )
    except PlayworldError as exc:
        error = f"deployment stopped after {len(episodes)} committed episode(s): {exc}"
        if writer is not None:
            writer.discard()
    finally:
        actor.close()
        if writer is not None:
            writer.close()
    report = _report(config, episodes, robot, policy_meta, error)
    if out is not None:
        _write_json(Path(out) / "deploy.json", report)
    if error is not None:
        raise DeployError(error)
    return report


def _setup_episode(robot: Any, task: str | None, seed: int) -> None:
    """The far side prepares `task` at reset (rosapi params + the reset service), if it can."""
    c = robot.config
    if getattr(c, "reset_service", None) is None:
        return
    if task and hasattr(robot, "set_param"):
        robot.set_param("/playworld/task", task)
        robot.set_param("/playworld/seed", seed)
    robot.reset()


def _episode_record(state, config, seed, fps, actor, judged) -> dict[str, Any]:
    ticks = state["ticks"]
    latency = [t["latency_ms"] for t in ticks if "latency_ms" in t]
    divergence = [t["divergence"] for t in ticks if "divergence" in t]
    referee = state["referee"]
    success = bool(referee is not None and referee.success)
    stall = None
    if state["stall_tick"] is not None:
        stall = stall_stop_periods(ticks, state["stall_tick"], fps, state.get("joint_states"))
    return {
        "mode": config.mode,
        "task": config.task,
        "seed": seed,
        "success": success if judged else None,
        "ended_by": "success" if success else "max_seconds",
        "ticks": len(ticks),
        "ticks_without_action": sum(1 for t in ticks if not t.get("sent")),
        "ticks_link_stalled": state.get("stale_ticks", 0),
        "held_for_divergence": state["held"],
        "braked_without_action": state["braked"],
        "stale_actions_dropped": actor.stale,
        "chunks": actor.chunks,
        "inference_ms_p50": pct(actor.inference_ms, 50),
        "latency_ms": latency,
        "latency_ms_p50": pct(latency, 50),
        "latency_ms_p99": pct(latency, 99),
        "obs_age_ms_p50": pct([t["obs_age_ms"] for t in ticks], 50),
        "divergence_rad": divergence,
        "divergence_rad_p99": pct(divergence, 99),
        "stall_stop_periods": stall,
        "referee_error": referee.error if referee is not None else None,
    }


def _report(config, episodes, robot, policy_meta, error) -> dict[str, Any]:
    judged = [e["success"] for e in episodes if e["success"] is not None]
    latency = [x for e in episodes for x in e["latency_ms"]]
    divergence = [x for e in episodes for x in e["divergence_rad"]]
    stalls = [e["stall_stop_periods"] for e in episodes if e["stall_stop_periods"] is not None]
    return _json_native(
        {
            "mode": config.mode,
            "task": config.task,
            "robot": robot.name,
            "fps": float(robot.config.fps),
            "success_rate": float(np.mean(judged)) if judged else None,
            "episodes_run": len(episodes),
            "latency_ms_p50": pct(latency, 50),
            "latency_ms_p99": pct(latency, 99),
            "divergence_rad_p99": pct(divergence, 99),
            "stall_stop_periods": max(stalls) if stalls else None,
            "error": error,
            "policy": policy_meta or {},
            "latency_ms": latency,  # every tick: the report's histogram
            "episodes": episodes,
        }
    )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def pct(xs: list[float], q: float) -> float | None:
    """The q-th percentile, None for no values."""
    return float(np.percentile(xs, q)) if xs else None


def _json_native(value: Any) -> Any:
    """Lists, dicts, floats (NaN -> None), ints, str, bool, None only."""
    if isinstance(value, dict):
        return {str(k): _json_native(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_native(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_native(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
