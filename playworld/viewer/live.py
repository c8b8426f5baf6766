"""A running control loop in rerun, logged from a background thread so the loop never waits.

    view = LiveView(ViewTarget(web=True))         # view.url: open it in a browser
    loop = ControlLoop(robot, source, fps, cameras=cams, view=view)
    loop.run(duration=10)
    view.close()                                  # logs what is queued, finishes an .rrd

The loop calls `view(tick)` once per tick. That call only queues a reference to the `Tick` (the
observation dict and arrays the loop made for this tick, not copies: the loop builds fresh ones
every tick) and returns; the view's own thread turns it into rerun calls. A full queue drops the
tick (counted in `dropped`), so a slow viewer costs frames in the view, never loop ticks.
Camera images are logged at most `image_hz` times a second per camera (rerun's encoding of a
480x640 frame costs about a millisecond of CPU, which a 2-core machine shares with the loop).

Entities follow the store viewer (`playworld.viewer.store_log`): cameras/<key>, state/<key>,
action/action and action/command, time/<key>, world/<key> for (K, 3) points, plus loop/period_ms
and loop/writer_dropped_steps. Timeline `time` is the robot's clock (`t`, e.g. the twin's
simulated time) or the loop clock without one, from 0, never running backwards across twin
resets; timeline `tick` counts the ticks this view saw.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from playworld.datasets.features import Feature
from playworld.errors import ConfigError
from playworld.viewer.sinks import ViewTarget, import_rerun, open_recording
from playworld.viewer.store_log import entity, is_points, log_static

_STOP = object()


def infer_features(tick: Any) -> dict[str, Feature]:
    """Feature descriptions of what a tick carries, for a view given none."""
    out: dict[str, Feature] = {}
    values = dict(tick.obs)
    if tick.action is not None:
        values.setdefault("action", tick.action)
    if tick.step is not None and "command" in tick.step:
        values.setdefault("command", tick.step["command"])
    for key, v in values.items():
        a = np.asarray(v)
        if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] in (1, 3):
            out[key] = Feature(a.shape, "uint8", kind="image")
        elif a.dtype.kind in "fiub" and a.size:
            kind = "time" if key == "t" or key.endswith("_t") else "state"
            if key in ("action", "command"):
                kind = "action"
            out[key] = Feature(a.shape or (1,), "float64", kind=kind)
    return out


class LiveView:
    """Log ticks of a control loop to rerun from a background thread (see the module docstring).

    Args:
        target: where the view goes (web viewer, .rrd, native viewer); or pass `recording`.
        recording: an open rerun RecordingStream to log to instead of opening `target`.
        features: store features of the loop (`ControlLoop.features`) for series names and
            units; inferred from the first tick without them.
        image_hz: most camera images logged per second per camera (loop clock); 0: every tick.
        max_queue: ticks waiting for the view thread before new ones are dropped.
        name: the recording's name in the viewer.
    """

    def __init__(
        self,
        target: ViewTarget | None = None,
        *,
        recording: Any = None,
        features: Mapping[str, Feature] | None = None,
        image_hz: float = 10.0,
        max_queue: int = 64,
        name: str = "live",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if (target is None) == (recording is None):
            raise ConfigError("expected a LiveView target or an open recording (one of them)")
        if image_hz < 0 or max_queue < 1:
            raise ConfigError(
                f"expected image_hz >= 0 and max_queue >= 1, found {image_hz} and {max_queue}"
            )
        self.url: str | None = None
        self._owns = recording is None
        if recording is None:
            assert target is not None
            recording, self.url = open_recording(target, name)
        self.rec = recording
        self.target = target
        self.image_hz = float(image_hz)
        self.max_queue = int(max_queue)
        self.info = dict(info or {})
        self.features: dict[str, Feature] | None = dict(features) if features else None
        self.seen = self.logged = self.dropped = 0
        self.overhead_s = 0.0  # loop-thread wall time spent in __call__
        self.cpu_s = 0.0  # view-thread CPU time
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._last_image: dict[str, float] = {}
        self._time: tuple[float, float] | None = None  # (last raw time, shift)
        self._prev_start: float | None = None
        self._writer_dropped = 0
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()

    # -- the loop thread ---------------------------------------------------------------------
    def __call__(self, tick: Any) -> None:
        """Queue one tick for logging (loop thread; constant time, never blocks)."""
        t0 = time.perf_counter()
        self.seen += 1
        if self._queue.qsize() >= self.max_queue:
            self.dropped += 1
        else:
            self._queue.put((self.seen, tick))
        self.overhead_s += time.perf_counter() - t0

    @property
    def overhead_ms_per_tick(self) -> float:
        return self.overhead_s * 1e3 / max(1, self.seen)

    def close(self, timeout: float = 10.0) -> None:
        """Log what is queued (up to `timeout` s), stop the thread, flush; finish an .rrd file."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        self.rec.flush()
        if self._owns and self.target is not None and not self.target.web:
            self.rec.disconnect()

    def __enter__(self) -> LiveView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the view thread -----------------------------------------------------------------------
    def _run(self) -> None:
        rr = import_rerun()
        c0 = time.thread_time()
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            try:
                self._log(rr, *item)
                self.logged += 1
            except Exception as e:  # a view must never take the loop down; keep the first error
                if self.error is None:
                    self.error = e
            self.cpu_s = time.thread_time() - c0

    def _timeline(self, tick: Any) -> float:
        t = tick.obs.get("t")
        raw = float(np.asarray(t).reshape(-1)[0]) if t is not None else float(tick.start)
        if self._time is None:
            shift = -raw
        else:
            last, shift = self._time
            if raw < last:  # the clock went back (a twin reset): go on from where it was
                shift = last + shift - raw
        self._time = (raw, shift)
        return raw + shift

    def _log(self, rr: Any, number: int, tick: Any) -> None:
        rec = self.rec
        if self.features is None:
            self.features = infer_features(tick)
        if self.logged == 0:
            log_static(rec, self.features, self.info)
        now = self._timeline(tick)
        rec.set_time("tick", sequence=number)
        rec.set_time("time", duration=now)
        values: dict[str, Any] = dict(tick.obs)
        if tick.action is not None:
            values["action"] = tick.action
        if tick.step is not None and "command" in tick.step:
            values["command"] = tick.step["command"]
        for key, f in self.features.items():
            v = values.get(key)
            if v is None:
                continue
            if f.is_image:
                if self.image_hz > 0:
                    last = self._last_image.get(key)
                    if last is not None and tick.start - last < 1.0 / self.image_hz - 1e-6:
                        continue
                    self._last_image[key] = tick.start
                rec.log(entity(key, f), rr.Image(np.asarray(v)))
            else:
                arr = np.asarray(v, np.float64)
                if is_points(f):
                    rec.log(entity(key, f), rr.Points3D(arr.reshape(-1, 3)))
                else:
                    rec.log(entity(key, f), rr.Scalars(arr.reshape(-1)))
        if self._prev_start is not None:
            rec.log("loop/period_ms", rr.Scalars((tick.start - self._prev_start) * 1e3))
        self._prev_start = tick.start
        if not tick.queued:
            self._writer_dropped += 1
        rec.log("loop/writer_dropped_steps", rr.Scalars(float(self._writer_dropped)))
