"""Cameras as the control loop sees them: the newest frame, now (an overdue one: briefly waited for).

`CameraTap` reads one `playworld.hardware.Camera` per tick and counts what happened to its
frames: new (a frame the loop had not seen), repeated (no new frame since the last tick) and
dropped (frames captured and replaced before any tick read them: the index jumped). A camera
that captures in its own thread is read with `read_latest()` (never blocks; `read_after` when a
frame is overdue, bounded by the tap's `patience`); a camera that renders on demand (the twin's
`SimCamera`) is read with `read()`, which renders the current state in the loop's thread.

`StandInCamera` is a camera stand-in for benchmarks and tests: it replays pre-rendered frames
at a fixed rate from its own capture thread, on a drift-free schedule, as a free-running camera
delivers them. `capture_s` adds work per frame (a deliberately slow camera).
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

import numpy as np

from playworld.errors import ConfigError
from playworld.hardware.camera import Camera, CameraConfig, Frame


def renders_on_demand(camera: Camera) -> bool:
    """Whether `read()` renders now in the caller's thread (no capture thread of its own)."""
    return bool(camera.on_demand)


class TapReading(NamedTuple):
    """One tick's view of a camera: the frame (None before the first), new?, dropped, age (s)."""

    frame: Frame | None
    new: int
    dropped: int
    age: float


OVERDUE_PERIODS = 0.75  # camera periods since the last new frame after which the next is due


class CameraTap:
    """Reads one camera per tick and counts new / repeated / dropped frames.

    It does not block, except when a frame is overdue and `patience` > 0: no new frame since
    the last tick, while the last new one came `OVERDUE_PERIODS` camera periods ago or more (a
    camera at the loop's rate delivers one each tick). Then it waits up to `patience` s for
    it, once per late frame: a capture thread that the machine woke a few ms late (two cores,
    the store's writer busy) would otherwise make the loop repeat the old frame this tick and
    skip the late one next tick (a drop). A camera slower than the loop is not waited for
    between its frames, a stopped one only once.
    """

    def __init__(self, name: str, camera: Camera, patience: float = 0.0) -> None:
        self.name = name
        self.camera = camera
        self.on_demand = renders_on_demand(camera)
        self.patience = float(patience)
        self._last_index: int | None = None
        self._new_at = -np.inf  # loop time of the last tick that got a new frame
        self._waited_after: int | None = None  # the index last waited past

    def read(self, now: float) -> TapReading:
        """The newest frame at loop time `now` (s, same clock as the frame's capture time)."""
        if self.on_demand:  # rendered now; its time is the renderer's (simulated) clock
            frame = self.camera.read()
            self._last_index = frame.index
            return TapReading(frame, 1, 0, 0.0)
        frame = self.camera.read_latest()
        if frame is None:
            return TapReading(None, 0, 0, float("nan"))
        last = self._last_index
        if last is not None and frame.index == last and self._overdue(now, last):
            self._waited_after = last
            frame = self.camera.read_after(last, self.patience) or frame
        self._last_index = frame.index
        if last is None:
            self._new_at = now
            return TapReading(frame, 1, 0, now - frame.t)
        if frame.index == last:
            return TapReading(frame, 0, 0, now - frame.t)
        self._new_at = now
        return TapReading(frame, 1, max(0, frame.index - last - 1), now - frame.t)

    def _overdue(self, now: float, last: int) -> bool:
        period = 1.0 / self.camera.config.fps
        return (
            self.patience > 0
            and self._waited_after != last
            and now - self._new_at >= OVERDUE_PERIODS * period
        )


class StandInCamera(Camera):
    """A camera stand-in replaying `frames` (n, H, W, 3) uint8 at `fps` from its own thread.

    Frame k is published at `start + k / fps` (monotonic clock, s) with that time as its capture
    time; `start` defaults to the moment of `connect()`. Give several stand-ins the same
    `start` to model hardware-synchronised cameras. `capture_s` seconds of busy work precede
    each frame (a slow camera: it then delivers fewer frames, never late ones).
    """

    def __init__(
        self,
        frames: np.ndarray,
        fps: float = 30.0,
        *,
        name: str = "standin",
        start: float | None = None,
        capture_s: float = 0.0,
    ) -> None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ConfigError(
                f"expected frames (n, H, W, 3) uint8, found {frames.shape} {frames.dtype}"
            )
        super().__init__(CameraConfig(height=frames.shape[1], width=frames.shape[2], fps=fps))
        self.frames = frames
        self.name = name
        self.start = start
        self.capture_s = capture_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._capture, name=f"standin-capture-{self.name}", daemon=True
        )
        self._thread.start()

    def _disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _capture(self) -> None:
        period = 1.0 / self.config.fps
        start = self.start if self.start is not None else time.monotonic()
        k = 0
        while not self._stop.is_set():
            if self.capture_s > 0:
                _busy(self.capture_s)
            t = start + k * period
            now = time.monotonic()
            if t < now - period:  # fell behind (a slow camera): skip to the present slot
                k = int((now - start) / period)
                t = start + k * period
            if self._stop.wait(max(0.0, t - now)):
                return
            self._publish(self.frames[k % len(self.frames)], t)
            k += 1


def _busy(seconds: float) -> None:
    """Hold the calling thread for `seconds` in short sleeps (a slow capture, not a CPU hog)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        time.sleep(0.0005)
