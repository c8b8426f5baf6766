"""A running control loop in rerun, logged by a process of its own so the loop never waits.

    view = LiveView(ViewTarget(web=True))         # view.url: open it in a browser
    loop = ControlLoop(robot, source, fps, cameras=cams, view=view)
    loop.run(duration=10)
    view.close()                                  # logs what is queued, finishes an .rrd

The loop calls `view(tick)` once per tick. That call only appends a reference to the `Tick` (the
observation dict and arrays the loop made for this tick, not copies: the loop builds fresh ones
every tick) to a queue and returns; it wakes no thread. A full queue (`max_queue` ticks) drops
the tick (counted in `dropped`): a slow viewer costs ticks in the view, never loop ticks.

The work is split in two, because rerun's logging is CPU-heavy for a 2-core machine that also
runs the loop and the store's writer (measured with bench/loop.py's ticks replayed at 30 Hz:
2-3 ms of CPU per tick in a thread of the loop's process, two thirds of it holding the GIL
that the loop needs):
- the view's thread in this process wakes every `batch_s` (0.25 s), turns the queued ticks into
  columns (one (n, ...) array per feature; camera images at most `image_hz` per second, every
  k-th row) and sends them over a socket, large arrays straight from their memory (0.25-0.5 ms of
  CPU per 30 Hz tick with two 480x640 cameras);
- a child process (`playworld.viewer.live_process`) at SCHED_IDLE priority takes every k-th
  column, calls rerun (one `send_columns` per entity and batch) and hosts rerun's threads, its
  gRPC server for the web viewer and the .rrd writer. It gets only CPU time nothing else wants;
  when the loop is done, `close` puts it back at normal priority to finish.
Camera images are logged at most `image_hz` times a second per camera (10) and subsampled by an
integer step to at most `image_width` pixels across (320); every scalar series (joints, actions,
clocks, loop period) is logged at the full tick rate.

Entities follow the store viewer (`playworld.viewer.store_log`): cameras/<key>, state/<key>,
action/action and action/command, time/<key>, world/<key> for (K, 3) points, plus loop/period_ms
and loop/writer_dropped_steps. Timeline `time` is the robot's clock (`t`, e.g. the twin's
simulated time) or the loop clock without one, from 0, never running backwards across twin
resets; timeline `tick` counts the ticks this view saw.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from playworld.datasets import Feature
from playworld.errors import ConfigError, PlayworldError
from playworld.viewer.live_process import CHILD, recv_message, send_message
from playworld.viewer.sinks import ViewTarget


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


class LiveViewError(PlayworldError):
    """The live view's rerun process failed (it never affects the loop; reported at the end)."""


class LiveView:
    """Log ticks of a control loop to rerun (see the module docstring).

    Args:
        target: where the view goes (web viewer, .rrd, native viewer).
        features: store features of the loop (`ControlLoop.features`) for series names and
            units; inferred from the first tick without them.
        image_hz: most camera images logged per second per camera (loop clock); 0: every tick.
        image_width: most pixels across a logged image (subsampled by an integer step); 0: full.
        max_queue: ticks waiting for the view thread before new ones are dropped.
        batch_s: the view thread sends what is queued every `batch_s` seconds.
        name: the recording's name in the viewer.
        start_timeout: seconds to wait for the rerun process to open the target.
    """

    def __init__(
        self,
        target: ViewTarget | None = None,
        *,
        features: Mapping[str, Feature] | None = None,
        image_hz: float = 10.0,
        image_width: int = 320,
        max_queue: int = 256,
        batch_s: float = 0.25,
        name: str = "live",
        info: Mapping[str, Any] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        if target is None:
            raise ConfigError("a LiveView needs a target: LiveView(ViewTarget(web=True))")
        if image_hz < 0 or image_width < 0 or max_queue < 1 or not batch_s > 0:
            raise ConfigError(
                f"expected image_hz >= 0, image_width >= 0, max_queue >= 1 and batch_s > 0, "
                f"found {image_hz}, {image_width}, {max_queue} and {batch_s}"
            )
        self.target = target
        self.image_hz = float(image_hz)
        self.image_width = int(image_width)
        self._steps: dict[str, int] = {}  # camera -> pixel step
        self.max_queue = int(max_queue)
        self.batch_s = float(batch_s)
        self.info = dict(info or {})
        self.features: dict[str, Feature] | None = dict(features) if features else None
        self.seen = self.sent = self.logged = self.dropped = 0
        self.overhead_s = 0.0  # loop-thread wall time spent in __call__
        self.cpu_s = 0.0  # CPU time of the view thread (this process)
        self.child_cpu_s = 0.0  # CPU time of the rerun process from its start to close()
        self.error: BaseException | None = None
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._stop = threading.Event()
        self._last_image: dict[str, float] = {}
        self._time: tuple[float, float] | None = None  # (last raw time, shift)
        self._prev_start: float | None = None
        self._writer_dropped = 0
        self._closed = False
        self._proc, self._conn, self.url = _start_child(target, name, start_timeout)
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
        """CPU the view costs the loop's process per tick (ms): the loop thread's hand-off
        (wall time, an upper bound of its CPU) plus the view thread's CPU. The rerun process's
        CPU (`child_cpu_s`, idle priority) is not in it."""
        return (self.overhead_s + self.cpu_s) * 1e3 / max(1, self.seen)

    @property
    def pid(self) -> int:
        """The rerun process."""
        return self._proc.pid

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued, have the rerun process log it (at normal priority now: the loop
        is done) and finish the target (an .rrd file). A web target stays served until
        `stop_serving` (or this process exits). Afterwards `logged` counts the ticks the rerun
        process logged and `dropped` all others."""
        if self._closed:
            return
        self._closed = True
        _raise_priority(self._proc.pid)
        self._stop.set()
        self._thread.join(timeout)
        try:
            if self._thread.is_alive():  # blocked on a rerun process that does not read
                raise LiveViewError(f"the live view's process did not keep up for {timeout} s")
            send_message(self._conn, ("close",))
            if not self._conn.poll(timeout):
                raise LiveViewError(f"the live view's process did not finish in {timeout} s")
            _, self.logged, error, self.child_cpu_s = recv_message(self._conn)
            if error is not None:
                self._fail(LiveViewError(error))
        except (EOFError, OSError, LiveViewError) as e:
            self._fail(e if isinstance(e, LiveViewError) else _stopped(self._proc, e))
            self.stop_serving()
        finally:
            self.dropped = self.seen - self.logged
        if not self.target.web:
            self.stop_serving()

    def stop_serving(self, timeout: float = 10.0) -> None:
        """End the rerun process (and with it a web target's servers)."""
        self._conn.close()  # the process sees end of file and exits
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> LiveView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self.stop_serving()

    def _fail(self, e: BaseException) -> None:
        if self.error is None:
            self.error = e

    # -- the view thread (this process) --------------------------------------------------------
    def _run(self) -> None:
        # Polling, not a per-tick wake-up: a woken thread would take the GIL from the loop in the
        # middle of its tick. A batch is a few columns: cheap here, logged by the rerun process.
        c0 = time.thread_time()
        stopping = False
        while not stopping:
            stopping = self._stop.wait(self.batch_s)
            batch = [self._queue.popleft() for _ in range(len(self._queue))]
            if not batch:
                continue
            try:
                messages = self._columns(batch)
            except Exception as e:  # a view must never take the loop down; keep the first error
                self.dropped += len(batch)
                self._fail(e)
                continue
            finally:
                self.cpu_s = time.thread_time() - c0
            try:
                for message in messages:  # blocks (GIL released) while the process is behind
                    send_message(self._conn, message)
                self.sent += len(batch)
            except (OSError, ValueError) as e:  # the process died: drop from now on
                self._fail(_stopped(self._proc, e))
                self.dropped += len(batch) + len(self._queue)
                self._queue.clear()
                self.max_queue = 0
                return
            finally:
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

    def _static(self) -> tuple[str, dict[str, Feature], dict[str, Any]]:
        """The static message: features with images at their logged (subsampled) size."""
        assert self.features is not None
        shown = {}
        for key, f in self.features.items():
            if f.is_image:
                w = self.image_width
                k = self._steps[key] = max(1, -(-f.shape[1] // w)) if w else 1
                h_k, w_k = -(-f.shape[0] // k), -(-f.shape[1] // k)
                f = Feature((h_k, w_k, f.shape[2]), "uint8", kind="image")
            shown[key] = f
        self._steps.setdefault("", 1)  # marks the statics as sent
        return ("static", shown, self.info)

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

    def _columns(self, batch: list[tuple[int, Any]]) -> list[tuple[Any, ...]]:
        """The message of a batch of (tick number, Tick): ("batch", {"numbers": (n,) int,
        "times": (n,) s, "entities": [(key, idx, rows, k)]}), rows (len(idx), *shape) of the
        ticks `idx` that carry feature `key` (images: a list of frames, at most `image_hz`, every
        k-th row, sent from the camera's own array where k = 1; the rerun process stacks them and
        takes every k-th column), and the loop's
        own series `loop/period_ms` and `loop/writer_dropped_steps`; the first batch's message
        comes after the static one."""
        ticks = [tick for _, tick in batch]
        first = None
        if self.features is None:
            self.features = infer_features(ticks[0])
        if not self._steps:
            first = self._static()
        starts = [float(t.start) for t in ticks]
        values = []
        for tick in ticks:
            v = dict(tick.obs)
            if tick.action is not None:
                v["action"] = tick.action
            if tick.step is not None and "command" in tick.step:
                v["command"] = tick.step["command"]
            values.append(v)
        entities: list[tuple[str, np.ndarray, Any, int]] = []
        for key, f in self.features.items():
            idx = [i for i, v in enumerate(values) if key in v]
            if f.is_image:
                due = set(self._images_due(key, [starts[i] for i in idx]))
                idx = [i for j, i in enumerate(idx) if j in due]
            if not idx:
                continue
            if f.is_image:
                # every k-th row here (copies of whole rows: fast), every k-th column in the
                # rerun process (a gather of 3-byte pixels: ~0.6 ms for 480x640 at k = 2)
                k = self._steps[key]
                rows = [np.ascontiguousarray(np.asarray(values[i][key])[::k]) for i in idx]
            else:
                k = 1
                rows = np.stack([np.asarray(values[i][key], dtype=np.float64) for i in idx])
            entities.append((key, np.array(idx), rows, k))
        periods = np.diff([self._prev_start if self._prev_start is not None else np.nan, *starts])
        self._prev_start = starts[-1]
        have = np.flatnonzero(np.isfinite(periods))
        if len(have):
            entities.append(("loop/period_ms", have, periods[have, None] * 1e3, 1))
        drops = np.cumsum([not t.queued for t in ticks]) + self._writer_dropped
        self._writer_dropped = int(drops[-1])
        writer = ("loop/writer_dropped_steps", np.arange(len(ticks)), drops[:, None] * 1.0, 1)
        entities.append(writer)
        message = (
            "batch",
            {
                "numbers": np.array([n for n, _ in batch]),
                "times": np.array([self._timeline(t) for t in ticks]),
                "entities": entities,
            },
        )
        return [message] if first is None else [first, message]


def _start_child(target: ViewTarget, name: str, timeout: float) -> tuple[Any, Connection, Any]:
    """The rerun process (`live_process`), its target opened: (process, connection, web URL)."""
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    try:
        send_message(conn, ("open", target, name))
        if not conn.poll(timeout):
            raise LiveViewError(f"the live view's process did not start in {timeout} s")
        kind, value = recv_message(conn)
    except (EOFError, OSError) as e:
        conn.close()
        raise _stopped(proc, e) from None
    except LiveViewError:
        conn.close()
        proc.kill()
        proc.wait()
        raise
    if kind == "error":  # a busy port, no display: one line, as the CLI prints it
        conn.close()
        proc.wait()
        raise ConfigError(value)
    return proc, conn, value


def _stopped(proc: Any, e: BaseException) -> LiveViewError:
    return LiveViewError(f"the live view's process stopped (exit status {proc.poll()}): {e}")


def _raise_priority(pid: int) -> None:
    """Back to normal priority for every thread of the rerun process (it runs at SCHED_IDLE
    while the loop runs; when the loop is done, what it has queued is logged without waiting
    for idle CPU on a busy machine)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))


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
        view.stop_serving()
