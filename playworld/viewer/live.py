"""A running control loop in rerun, logged from a background thread so the loop never waits.

    view = LiveView(ViewTarget(web=True))         # view.url: open it in a browser
    loop = ControlLoop(robot, source, fps, cameras=cams, view=view)
    loop.run(duration=10)
    view.close()                                  # logs what is queued, finishes an .rrd

The loop calls `view(tick)` once per tick. That call only appends a reference to the `Tick` (the
observation dict and arrays the loop made for this tick, not copies: the loop builds fresh ones
every tick) to a queue and returns; it wakes no thread. The view's own thread collects the queue
every `batch_s` (0.1 s) and logs it column-wise (one rerun call per entity per batch). A full
queue drops the tick (counted in `dropped`): a slow viewer costs ticks in the view, never loop
ticks.
Camera images are logged at most `image_hz` times a second per camera, and subsampled (every
k-th pixel, a strided copy) to at most `image_width` pixels wide: each logged frame is copied into
rerun's buffers and kept by its server, CPU and memory that the loop's machine shares.

Entities follow the store viewer (`playworld.viewer.store_log`): cameras/<key>, state/<key>,
action/action and action/command, time/<key>, world/<key> for (K, 3) points, plus loop/period_ms
and loop/writer_dropped_steps. Timeline `time` is the robot's clock (`t`, e.g. the twin's
simulated time) or the loop clock without one, from 0, never running backwards across twin
resets; timeline `tick` counts the ticks this view saw.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from playworld.datasets import Feature
from playworld.errors import ConfigError
from playworld.viewer.sinks import ViewTarget, import_rerun, open_recording
from playworld.viewer.store_log import entity, feature_columns, log_static


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
        image_width: most pixels across a logged image (subsampled by an integer step); 0: full.
        max_queue: ticks waiting for the view thread before new ones are dropped.
        batch_s: the view thread logs what is queued every `batch_s` seconds.
        name: the recording's name in the viewer.
    """

    def __init__(
        self,
        target: ViewTarget | None = None,
        *,
        recording: Any = None,
        features: Mapping[str, Feature] | None = None,
        image_hz: float = 10.0,
        image_width: int = 320,
        max_queue: int = 256,
        batch_s: float = 0.1,
        name: str = "live",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if (target is None) == (recording is None):
            raise ConfigError("expected a LiveView target or an open recording (one of them)")
        if image_hz < 0 or image_width < 0 or max_queue < 1:
            raise ConfigError(
                f"expected image_hz >= 0, image_width >= 0 and max_queue >= 1, found {image_hz}, "
                f"{image_width} and {max_queue}"
            )
        self.url: str | None = None
        self._owns = recording is None
        if recording is None:
            assert target is not None
            recording, self.url = open_recording(target, name)
        self.rec = recording
        self.target = target
        self.image_hz = float(image_hz)
        self.image_width = int(image_width)
        self._steps: dict[str, int] = {}  # camera -> pixel step
        self.max_queue = int(max_queue)
        self.batch_s = float(batch_s)
        self.info = dict(info or {})
        self.features: dict[str, Feature] | None = dict(features) if features else None
        self.seen = self.logged = self.dropped = 0
        self.overhead_s = 0.0  # loop-thread wall time spent in __call__
        self.cpu_s = 0.0  # view-thread CPU time
        self.error: BaseException | None = None
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._stop = threading.Event()
        self._last_image: dict[str, float] = {}
        self._time: tuple[float, float] | None = None  # (last raw time, shift)
        self._prev_start: float | None = None
        self._writer_dropped = 0
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()

    # -- the loop thread ---------------------------------------------------------------------
    def __call__(self, tick: Any) -> None:
        """Queue one tick for logging (loop thread; constant time, never blocks, wakes nobody)."""
        t0 = time.perf_counter()
        self.seen += 1
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
        else:
            self._queue.append((self.seen, tick))
        self.overhead_s += time.perf_counter() - t0

    @property
    def overhead_ms_per_tick(self) -> float:
        return self.overhead_s * 1e3 / max(1, self.seen)

    def close(self, timeout: float = 10.0) -> None:
        """Log what is queued (up to `timeout` s), stop the thread, flush; finish an .rrd file."""
        if self._thread.is_alive():
            self._stop.set()
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
        # Polling, not a per-tick wake-up: a woken thread would take the GIL from the loop in the
        # middle of its tick. Each batch is logged column-wise (one rerun call per entity), which
        # holds the GIL far less than one call per entity and tick.
        rr = import_rerun()
        c0 = time.thread_time()
        stopping = False
        while not stopping:
            stopping = self._stop.wait(self.batch_s)
            batch = [self._queue.popleft() for _ in range(len(self._queue))]
            if not batch:
                continue
            try:
                self._log(rr, batch)
                self.logged += len(batch)
            except Exception as e:  # a view must never take the loop down; keep the first error
                self.dropped += len(batch)
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

    def _log_static(self) -> None:
        """Static descriptions, with images at their logged (subsampled) size."""
        assert self.features is not None
        shown = {}
        for key, f in self.features.items():
            if f.is_image:
                w = self.image_width
                k = self._steps[key] = max(1, -(-f.shape[1] // w)) if w else 1
                h_k, w_k = -(-f.shape[0] // k), -(-f.shape[1] // k)
                f = Feature((h_k, w_k, f.shape[2]), "uint8", kind="image")
            shown[key] = f
        self._steps.setdefault("", 1)  # marks the statics as logged
        log_static(self.rec, shown, self.info)

    def _images_due(self, key: str, starts: list[float]) -> list[int]:
        """Indices of the batch's ticks whose image of camera `key` is logged (`image_hz`)."""
        if self.image_hz <= 0:
            return list(range(len(starts)))
        out = []
        for i, start in enumerate(starts):
            last = self._last_image.get(key)
            if last is None or start - last >= 1.0 / self.image_hz - 1e-6:
                self._last_image[key] = start
                out.append(i)
        return out

    def _log(self, rr: Any, batch: list[tuple[int, Any]]) -> None:
        rec = self.rec
        ticks = [tick for _, tick in batch]
        if self.features is None:
            self.features = infer_features(ticks[0])
        if not self._steps:
            self._log_static()
        numbers = np.array([n for n, _ in batch])
        times = np.array([self._timeline(t) for t in ticks])
        starts = [float(t.start) for t in ticks]
        values = []
        for tick in ticks:
            v = dict(tick.obs)
            if tick.action is not None:
                v["action"] = tick.action
            if tick.step is not None and "command" in tick.step:
                v["command"] = tick.step["command"]
            values.append(v)

        def send(path: str, idx: list[int], columns: Any) -> None:
            rec.send_columns(
                path,
                indexes=[
                    rr.TimeColumn("time", duration=times[idx]),
                    rr.TimeColumn("tick", sequence=numbers[idx]),
                ],
                columns=columns,
            )

        for key, f in self.features.items():
            idx = [i for i, v in enumerate(values) if key in v]
            if f.is_image:
                due = set(self._images_due(key, [starts[i] for i in idx]))
                idx = [i for j, i in enumerate(idx) if j in due]
            if not idx:
                continue
            if f.is_image:
                k = self._steps[key]
                rows = np.stack([np.asarray(values[i][key])[::k, ::k] for i in idx])
            else:
                rows = np.stack([np.asarray(values[i][key]) for i in idx])
            send(entity(key, f), idx, feature_columns(rr, f, rows))
        periods = np.diff([self._prev_start if self._prev_start is not None else np.nan, *starts])
        self._prev_start = starts[-1]
        have = [i for i in range(len(ticks)) if np.isfinite(periods[i])]
        if have:
            send("loop/period_ms", have, rr.Scalars.columns(scalars=periods[have] * 1e3))
        drops = np.cumsum([not t.queued for t in ticks]) + self._writer_dropped
        self._writer_dropped = int(drops[-1])
        all_rows = list(range(len(ticks)))
        send("loop/writer_dropped_steps", all_rows, rr.Scalars.columns(scalars=drops.astype(float)))


def live_view_from_options(web: bool, save: str | None, *, echo: Any = print) -> LiveView | None:
    """The `--view` / `--view-save FILE.rrd` options of a command: a LiveView, or None for neither.

    With `web`, the viewer's URL is printed (through `echo`) before the loop starts; its ports are
    free ones (the commands that run loops have no port options, and 9090 is the bridge's).
    """
    if not (web or save):
        return None
    view = LiveView(ViewTarget(web=web, save=save, grpc_port=0, web_port=0), name="live")
    if view.url is not None:
        echo(f"live view: {view.url}")
    return view


def finish_view(view: LiveView | None, *, echo: Any = print) -> None:
    """After a command's loop: close the view; a web view stays served until Ctrl-C."""
    if view is None:
        return
    view.close()
    if view.error is not None:
        echo(f"note: the live view stopped logging: {type(view.error).__name__}: {view.error}")
    if view.url is None:
        return
    echo(f"live view: {view.logged} ticks at {view.url} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        view.rec.disconnect()
