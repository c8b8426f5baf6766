"""The control loop: one fixed-rate loop for every source of actions (teleop, policy, autoplay).

    loop = ControlLoop(robot, source, fps=30, cameras={"front": cam}, writer=writer)
    loop.recording = True                     # append every tick's step to the writer
    metrics = loop.run(duration=10.0)         # or max_ticks=..., or until on_tick returns False
    metrics.summary()                         # rate, jitter, overruns, stage times, drops

Each tick, in order (the stages timed in `metrics`): `read` the robot's observation, `camera`
takes the newest frame of every camera (waiting at most a fifth of a period, and only for a
frame that is overdue: `CameraTap`), `source` maps the observation to an action, `send` passes
it through the robot's safety guard to the robot, `write` queues the step to the background
`StepQueue` (never waiting for the disk), hands the tick to `view` (a
`playworld.viewer.LiveView` logs it from its own thread) and calls `on_tick` (which sees this
tick in `metrics` already).

Scheduling is drift-free: tick k starts at `t0 + k / fps` on the monotonic clock, whatever the
previous ticks cost. A tick that runs past the next start is an overrun; grid slots that passed
entirely are skipped (counted as missed), so the loop never bursts to catch up. With threaded
cameras, `t0` sits half a camera frame after a frame arrives, so that tick jitter does not make
ticks alternately miss and double up frames. Without one, a robot that streams its joint states
over a link (`robot.state_phase()`) sets `t0` a fifth of a state period after they typically
arrive, for the same reason, when asked (`align_to_states=True`: `playworld deploy` and
`record`; a loop started as the robot connects first waits up to `STATE_PHASE_WAIT_S` for the
few states the phase needs; with `align_to_cameras=False`, neither). `realtime=False` runs the ticks back to back (the
twin in simulated time: autoplay as fast as the CPU allows).

A recorded step holds the robot's observation keys, each camera's image and capture time
(`<camera>_t`, s; 0 before its first frame), `action` (what the robot actually received, after the guard) and `command`
(the guarded joint target + gripper, (n + 1,), which replays exactly in the twin).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from playworld.collection.cameras import CameraTap
from playworld.collection.metrics import LoopMetrics
from playworld.collection.step_queue import StepQueue
from playworld.errors import ConfigError
from playworld.features import Feature

REALTIME_SWITCH_INTERVAL_S = 0.001
CAMERA_PATIENCE_PERIODS = 0.2  # see CameraTap: how long a tick waits for an overdue frame
# a loop aligned to its robot's state stream ticks this long after a typical arrival: after the
# link's jitter (+-10 ms rehearsed), and early enough that the command it sends meets the arm's
# next control tick
STATE_LEAD_PERIODS = 0.2
#: How long the first tick waits for the robot's state phase (a few states of a >= 4 Hz stream).
STATE_PHASE_WAIT_S = 1.0

#: A source maps the observation (robot keys + camera images) to an action, or None: send nothing.
Source = Callable[[dict[str, np.ndarray]], "np.ndarray | None"]


@dataclass
class Tick:
    """What one tick saw and did (passed to `on_tick`)."""

    index: int  # ticks since run() started
    start: float  # s, loop clock
    obs: dict[str, np.ndarray]  # robot observation + camera images
    action: np.ndarray | None  # as sent (after the guard); None if the source sent nothing
    step: dict[str, np.ndarray] | None  # the step handed to the writer, if recording
    queued: bool  # False if recording and the writer's queue was full (step dropped)


class ControlLoop:
    """Fixed-rate loop: robot + cameras -> source -> guard -> robot (+ store). See the module doc."""

    def __init__(
        self,
        robot: Any,
        source: Source,
        fps: float,
        *,
        cameras: Mapping[str, Any] | None = None,
        writer: StepQueue | None = None,
        realtime: bool = True,
        align_to_cameras: bool = True,
        align_to_states: bool = False,
        clock: Callable[[], float] = time.monotonic,
        view: Callable[[Tick], None] | None = None,
    ) -> None:
        if not fps > 0:
            raise ConfigError(f"expected a control rate fps > 0 Hz, found {fps}")
        self.robot = robot
        self.source = source
        self.fps = float(fps)
        self.period = 1.0 / self.fps
        self.cameras = dict(cameras or {})
        # a real-time loop waits up to a fifth of a period for a camera's overdue frame
        patience = CAMERA_PATIENCE_PERIODS * self.period if realtime else 0.0
        self.taps = [CameraTap(name, cam, patience) for name, cam in self.cameras.items()]
        self.writer = writer
        self.realtime = realtime
        # CPU time per stage is measured in real-time loops only: `time.thread_time` is a
        # syscall that cost ~100 us here (7 a tick: more than the rest of an evaluation step).
        self._cpu_clock = time.thread_time if realtime else _no_cpu_clock
        self.align_to_cameras = align_to_cameras
        self.align_to_states = align_to_states
        self.clock = clock
        self.view = view  # called with every Tick, e.g. playworld.viewer.LiveView
        self.recording = False
        self.metrics = LoopMetrics(self.fps, tuple(self.cameras), realtime)
        self._stop = threading.Event()
        self._features = self._describe()

    # -- what a step holds -------------------------------------------------------------------
    @property
    def features(self) -> dict[str, Feature]:
        """The store features of a recorded step (create the store with these)."""
        return dict(self._features)

    def _describe(self) -> dict[str, Feature]:
        out = dict(self.robot.observation_features)
        for name, cam in self.cameras.items():
            if name in out:
                raise ConfigError(
                    f"expected camera names distinct from the robot's observation keys, found "
                    f"{name!r} in both"
                )
            out[name] = cam.feature
            out[f"{name}_t"] = Feature((1,), "float64", kind="time", units="s (capture)")
        out.update(self.robot.action_features)
        n = self.robot.guard.config.n
        names = tuple(getattr(getattr(self.robot, "config", None), "joints", ())) or None
        out["command"] = Feature(
            (n + 1,),
            "float32",
            kind="action",
            units="rad, 0..1",
            names=(*names, "gripper") if names and len(names) == n else None,
        )
        return out

    # -- running -------------------------------------------------------------------------------
    def reset_metrics(self) -> None:
        """Start the measurements afresh (e.g. per evaluation episode, so that they stay small)."""
        self.metrics = LoopMetrics(self.fps, tuple(self.cameras), self.realtime)

    def stop(self) -> None:
        """Ask `run` to return after the current tick (safe from other threads and handlers)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(
        self,
        *,
        max_ticks: int | None = None,
        duration: float | None = None,
        on_tick: Callable[[Tick], bool | None] | None = None,
    ) -> LoopMetrics:
        """Tick until `stop()`, `max_ticks`, `duration` s, or `on_tick` returning False.

        Metrics accumulate over successive runs of the same loop.

        While a real-time loop runs, Python's GIL switch interval is 1 ms instead of 5: the
        store's writer threads hold the GIL between their compression calls, and with the
        default a due tick waited up to 5 ms for it (measured: 3 overruns and 6 dropped frames a
        minute recording two 480x640 cameras at 30 Hz on 2 cores; none at 1 ms).
        """
        if not self.realtime:
            return self._run(max_ticks, duration, on_tick)
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, REALTIME_SWITCH_INTERVAL_S))
        try:
            return self._run(max_ticks, duration, on_tick)
        finally:
            sys.setswitchinterval(previous)

    def _run(
        self,
        max_ticks: int | None,
        duration: float | None,
        on_tick: Callable[[Tick], bool | None] | None,
    ) -> LoopMetrics:
        self._stop.clear()
        t0 = self._first_start()
        k = 0
        done = 0
        while not self._stop.is_set():
            if max_ticks is not None and done >= max_ticks:
                break
            if self.realtime:
                deadline = t0 + k * self.period
                if duration is not None and deadline - t0 >= duration - 1e-9:
                    break
                wait = deadline - self.clock()
                if wait > 0:
                    time.sleep(wait)
            elif duration is not None and self.clock() - t0 >= duration:
                break
            keep_going = self._tick(done, on_tick)
            done += 1
            k += 1
            if self.realtime:
                late = self.clock() - (t0 + k * self.period)
                if late > 0:
                    missed = int(late // self.period)
                    self.metrics.overrun(missed)
                    k += missed
            if keep_going is False:
                break
        return self.metrics

    def _state_aligned_start(self, now: float) -> float:
        """t0 just after the robot's joint states arrive (`robot.state_phase()`, a robot behind
        a link that streams them), else now. Two free-running clocks at the same rate alias: a
        tick at the moment a state arrives sees it or not by the link's jitter, so the loop
        would act on the same state twice and skip the next."""
        phase = getattr(self.robot, "state_phase", None) if self.align_to_states else None
        # the robot's times are on time.monotonic: comparable with this loop's only on the same
        if not (callable(phase) and self.clock is time.monotonic):
            return now
        # a loop that starts just after the robot connected waits for the few states the phase
        # needs: started free, it would keep an aliasing phase for the whole run
        deadline = now + STATE_PHASE_WAIT_S
        while (found := phase()) is None and self.clock() < deadline:
            time.sleep(0.01)
        if found is None:
            return now
        now = self.clock()
        arrival, state_period = found
        t0 = arrival + STATE_LEAD_PERIODS * state_period
        if t0 < now:
            t0 += np.ceil((now - t0) / state_period) * state_period
        return float(t0)

    def _first_start(self) -> float:
        """t0 of the tick grid: now, half a frame after a threaded camera's next frame, or just
        after the robot's next joint state (`_state_aligned_start`).

        Cameras that render on demand render once first (their first render sets up GL).
        """
        for tap in self.taps:
            if tap.on_demand and tap.camera.read_latest() is None:
                tap.camera.read()
        now = self.clock()
        if not (self.realtime and self.align_to_cameras):
            return now
        tap = next((t for t in self.taps if not t.on_demand), None)
        if tap is None:
            return self._state_aligned_start(now)
        frame = tap.camera.read(timeout=max(1.0, 3.0 / tap.camera.config.fps))
        frame_period = 1.0 / tap.camera.config.fps
        t0 = frame.t + 0.5 * frame_period
        now = self.clock()
        if t0 < now:
            t0 += np.ceil((now - t0) / frame_period) * frame_period
        return float(t0)

    def _tick(self, index: int, on_tick: Callable[[Tick], bool | None] | None) -> bool | None:
        clock, thread_time = self.clock, self._cpu_clock
        start, c0 = clock(), thread_time()
        obs = self.robot.get_observation()
        t1, c1 = clock(), thread_time()
        readings = [tap.read(t1) for tap in self.taps] if self.taps else []
        for tap, r in zip(self.taps, readings, strict=True):
            image = (
                r.frame.image
                if r.frame is not None
                else np.zeros(tap.camera.feature.shape, np.uint8)
            )
            obs[tap.name] = image
            obs[f"{tap.name}_t"] = np.array([r.frame.t if r.frame is not None else 0.0])
        t2, c2 = clock(), thread_time()
        action = self.source(obs)
        t3, c3 = clock(), thread_time()
        sent = self.robot.send_action(action) if action is not None else None
        t4, c4 = clock(), thread_time()
        step, queued = None, True
        if self.recording and self.writer is not None and sent is not None:
            step = {k: obs[k] for k in self._features if k in obs}
            step["action"] = sent
            step["command"] = self.robot.last_command.as_action()
            queued = self.writer.put(step, wait=not self.realtime)
        t5, c5 = clock(), thread_time()
        self.metrics.add(
            start,
            (t1 - start, t2 - t1, t3 - t2, t4 - t3, t5 - t4),
            (c1 - c0, c2 - c1, c3 - c2, c4 - c3, c5 - c4),
            tuple((r.new, r.dropped, r.age) for r in readings),
        )
        keep_going = None
        if on_tick is not None or self.view is not None:  # their time counts in the write stage
            tick = Tick(index, start, obs, sent, step, queued)
            if self.view is not None:
                self.view(tick)
            if on_tick is not None:
                keep_going = on_tick(tick)
            self.metrics.extend_last("write", clock() - t5, thread_time() - c5)
        return keep_going


def _no_cpu_clock() -> float:
    """The CPU clock of loops in simulated time: not measured (see `ControlLoop.__init__`)."""
    return 0.0
