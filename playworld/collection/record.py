"""Recording sessions: a person teleoperates, the control loop records episodes into a store.

    playworld record --robot sim --teleop keyboard --store play.zarr
    playworld record --robot rosbridge_panda --teleop replay:src.zarr:0 --episodes 2 --store out.zarr

Keys (keyboard teleop; other devices map their buttons to the same events):

    Enter   start recording an episode
    v       save the episode (it is committed: durable and visible)
    x       discard the episode and record it again at once (re-record)
    q / Esc / Ctrl-C in the teleop terminal    quit; an episode in progress is discarded

The rate is the robot profile's `fps`; `--fps`, when given, must agree with it. `--episodes N`
records N episodes and exits without keys: each starts by itself and ends when the teleop says
so (a replay runs out of actions) or at `--episode-s`; with `--reset-s` the robot is reset
between episodes (a replay then starts each one from the robot's reset state).

`--episode-s` saves an episode when it reaches that length (then waits for Enter, or with
`--reset-s` runs a reset period of that length, resetting the twin, and starts the next episode
by itself). `--resume` appends to an existing store after checking that the robot, the features
and the rate match (and says what differs if not).

Interruptions: SIGINT (Ctrl-C from a shell, `kill -INT`) stops the session after the current
tick: the episode in progress is discarded, episodes already saved (even one whose commit is
still being written) are kept, the store is left valid, and the exit status is 130. A second
SIGINT raises at once; the store is still valid (uncommitted rows are trimmed on the next
resume or by `playworld store repair`). SIGKILL leaves every saved episode intact; `playworld
store repair` trims the rest, and `--resume` works without it.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playworld.errors import ConfigError, FeatureError

PHASES = ("idle", "recording", "resetting")


@dataclass(frozen=True)
class RecordConfig:
    """A recording session: devices by name or file, the store, rate (Hz) and limits (s).

    `fps` None: the robot profile's rate (a value that disagrees with it is refused).
    `episodes`: record that many, each started by itself, then exit (None: keys drive).
    """

    store: str
    robot: str = "sim"
    teleop: str = "keyboard"
    fps: float | None = None
    episode_s: float | None = None
    episodes: int | None = None
    reset_s: float | None = None
    resume: bool = False
    task: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"expected fps > 0 Hz, found {self.fps}")
        if self.episodes is not None and not self.episodes > 0:
            raise ConfigError(f"expected --episodes > 0, found {self.episodes}")
        if (
            self.episodes is not None
            and self.episode_s is None
            and not self.teleop.startswith("replay:")
        ):
            raise ConfigError(
                "expected --episode-s with --episodes and a live teleop device (it never runs "
                "out of actions), found none"
            )
        for name in ("episode_s", "reset_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"expected {name} > 0 s (or unset), found {v}")
        if self.reset_s is not None and self.episode_s is None and self.episodes is None:
            raise ConfigError(
                "expected --episode-s or --episodes with --reset-s (a reset follows each episode)"
            )


def store_differences(store: Any, features: dict[str, Any], fps: float, robot: str) -> list[str]:
    """What keeps a session from appending to `store`: features, rate and robot, one line each."""
    out = []
    have, want = store.features, features
    for key in sorted(have.keys() - want.keys()):
        out.append(f"feature {key!r} is in the store, not in this session")
    for key in sorted(want.keys() - have.keys()):
        out.append(f"feature {key!r} is in this session, not in the store")
    for key in sorted(have.keys() & want.keys()):
        a, b = have[key].to_json(), want[key].to_json()
        out += [f"feature {key!r} {f}: store {a[f]!r}, session {b[f]!r}" for f in a if a[f] != b[f]]
    if store.fps != fps:
        out.append(f"fps: store {store.fps:g}, session {fps:g}")
    stored_robot = store.info.get("robot")
    if stored_robot is not None and stored_robot != robot:
        out.append(f"robot: store {stored_robot!r}, session {robot!r}")
    return out


def session_fps(requested: float | None, robot: Any) -> float:
    """The session's rate: the robot profile's fps; a disagreeing `--fps` raises one line."""
    if requested is not None and abs(requested - robot.fps) > 1e-9:
        raise ConfigError(
            f"expected --fps to match robot {robot.name!r}'s rate {robot.fps:g} Hz (the "
            f"profile's fps), found --fps {requested:g}; drop --fps or change the profile"
        )
    return float(robot.fps)


def open_store(
    config: RecordConfig, features: dict[str, Any], info: dict[str, Any], fps: float
) -> Any:
    """Create the session's store, or open it for appending with `resume` (checked)."""
    from playworld.datasets import PlayStore
    from playworld.datasets.backend import local_path

    path = local_path(config.store)
    exists = (Path(path) / "zarr.json").is_file() if path is not None else False
    if exists and not config.resume:
        raise ConfigError(
            f"expected a new store path, found a store at {config.store}; pass --resume to add "
            "episodes to it, or pick another path"
        )
    if not exists:
        return PlayStore.create(config.store, features, fps=fps, info=info)
    store = PlayStore.open(config.store, "a")
    diff = store_differences(store, features, fps, info["robot"])
    if diff:
        store.close()
        raise FeatureError(
            f"cannot resume {config.store}: this session records something else; " + "; ".join(diff)
        )
    return store


class RecordSession:
    """One `playworld record` session (see the module docstring). `run()` returns the summary
    lines; `interrupted` tells whether SIGINT ended it."""

    def __init__(self, config: RecordConfig, console: Any = None, view: Any = None) -> None:
        from rich.console import Console

        self.config = config
        self.view = view  # handed every tick (a playworld.viewer.LiveView), or None
        self.console = console or Console()
        self.loop: Any = None
        self.writer: Any = None
        self.store: Any = None
        self.teleop: Any = None
        self.phase = "idle"
        self.mark = 0
        self.fps = config.fps or 0.0  # the robot's rate, set by run()
        self.max_steps = 0
        self.reset_until = 0.0
        self.episode_number = 0
        self.saved = self.saved_steps = self.discarded = 0
        self.interrupted = False
        self._pending: list[tuple[Future[int], int]] = []

    # -- events ----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def start_episode(self) -> None:
        self.teleop.on_episode_start()
        self.writer.begin()
        self.loop.recording = True
        self.mark = len(self.loop.metrics)
        self.phase = "recording"
        self.episode_number = len(self.store) + len(self._pending)
        self._say(f"recording episode {self.episode_number}")

    def save(self, ended_by: str) -> None:
        steps = len(self.loop.metrics) - self.mark
        meta = {
            "source": "teleop",
            "teleop": type(self.teleop).__name__,
            "robot": self.loop.robot.name,
            "task": self.config.task,
            "notes": self.config.notes,
            "ended_by": ended_by,
            "duration_s": steps / self.fps,
            "loop": self.loop.metrics.summary(since=self.mark),
        }
        self.loop.recording = False
        self._pending.append((self.writer.commit(meta), steps))
        self.phase = "idle"
        if self.config.reset_s and (ended_by == "limit" or self.config.episodes):
            self.phase = "resetting"
            self.reset_until = time.monotonic() + self.config.reset_s
            reset = getattr(self.loop.robot, "reset", None)
            if callable(reset):
                reset()

    def discard(self) -> None:
        self.loop.recording = False
        self.writer.discard()
        self.discarded += 1
        self.phase = "idle"
        self._say(f"discarded episode {self.episode_number}")

    def _report_commits(self) -> None:
        for item in [p for p in self._pending if p[0].done()]:
            self._pending.remove(item)
            future, steps = item
            index = future.result()  # a store error raises here, ending the session
            self.saved += 1
            self.saved_steps += steps
            self._say(f"saved episode {index} ({steps} steps, {steps / self.fps:.1f} s)")

    def on_tick(self, tick: Any) -> bool:
        from playworld.hardware.teleop import TeleopEvent

        self.writer.check()
        self._report_commits()
        for event in self.teleop.events():
            if event is TeleopEvent.QUIT:
                return False
            if event is TeleopEvent.START and self.phase != "recording":
                self.start_episode()
            elif event is TeleopEvent.SAVE and self.phase == "recording":
                self.save("save")
            elif event is TeleopEvent.DISCARD and self.phase == "recording":
                self.discard()
                self.start_episode()
        full = self.max_steps and len(self.loop.metrics) - self.mark >= self.max_steps
        if self.phase == "recording" and full:
            self.save("limit")
        n = self.config.episodes  # no keys: each starts by itself; stop after n
        if n is not None and self.phase != "recording" and self.saved + len(self._pending) >= n:
            return False
        if self.phase == "resetting" and time.monotonic() >= self.reset_until:
            self.start_episode()
        if n is not None and self.phase == "idle":
            self.start_episode()
        return True

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one raises at once
        if self.loop is not None:
            self.loop.stop()

    # -- the session -----------------------------------------------------------------------
    def run(self) -> list[str]:
        from rich.live import Live

        from playworld.collection.loop import ControlLoop
        from playworld.collection.rig import open_rig, open_teleop
        from playworld.collection.status import StatusLine, summary_lines
        from playworld.collection.step_queue import StepQueue, leave_a_core_to_the_loop

        leave_a_core_to_the_loop()
        cfg = self.config
        self.teleop = open_teleop(cfg.teleop)
        shape = self.teleop.action_features["action"].shape
        rig = open_rig(cfg.robot, action_space="ee_delta" if shape == (7,) else None)
        self.fps = session_fps(cfg.fps, rig.robot)
        self.max_steps = round(cfg.episode_s * self.fps) if cfg.episode_s else 0
        robot_shape = rig.robot.action_features["action"].shape
        if robot_shape != shape:
            raise ConfigError(
                f"expected the teleop's actions {shape} to fit robot {rig.robot.name!r}, found "
                f"it takes {robot_shape}"
            )
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if main_thread else None
        try:
            with rig:
                self.teleop.connect()
                teleop = self.teleop
                source_fps = getattr(teleop, "fps", None)  # a replayed store's rate
                if source_fps is not None and abs(source_fps - self.fps) > 1e-9:
                    raise ConfigError(
                        f"expected the replayed store's rate to match robot "
                        f"{rig.robot.name!r}'s {self.fps:g} Hz, found {source_fps:g} Hz"
                    )
                self.loop = ControlLoop(
                    rig.robot,
                    lambda obs: teleop.get_action(),
                    self.fps,
                    cameras=rig.cameras,
                    view=self.view,
                    # ticks just after an arm's states arrive over a link: a free phase near
                    # the arm's own tick made every command land a tick late (replays 6 cm off)
                    align_to_states=True,
                )
                info = {"source": "teleop", "robot": rig.robot.name, "profile": rig.profile}
                twin = getattr(rig.robot, "twin", None)
                if twin is not None:
                    info["twin"] = twin.config.to_dict()
                self.store = open_store(cfg, self.loop.features, info, self.fps)
                self.writer = StepQueue(
                    self.store, max_queue=max(8, math.ceil(4 * self.fps)), frame_compressor=True
                )
                self.loop.writer = self.writer
                if main_thread:
                    signal.signal(signal.SIGINT, self._on_sigint)
                keys = (
                    f"{cfg.episodes} episodes, no keys"
                    if cfg.episodes
                    else "Enter starts an episode, v saves, x re-records, q quits"
                )
                self._say(
                    f"recording into {cfg.store} at {self.fps:g} Hz ({len(self.store)} episodes "
                    f"there): {keys}"
                )
                with Live(
                    get_renderable=StatusLine(self),
                    console=self.console,
                    refresh_per_second=4,
                    transient=True,
                ):
                    self.loop.run(on_tick=self.on_tick)
                    if self.phase == "recording":
                        self.discard()
                    self.writer.close()  # applies every commit already queued
                    self._report_commits()
        finally:
            if self.writer is not None:
                self.writer.close()
            if self.store is not None:
                self.store.close()
            self.teleop.disconnect()
            if main_thread and previous is not None:
                signal.signal(signal.SIGINT, previous)
        lines = summary_lines(self)
        for line in lines:
            self._say(line)
        return lines
