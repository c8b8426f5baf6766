"""`OpenCVCamera`: a device index, stream URL or video file, read by a capture thread.

The thread decodes frames as fast as the source gives them (a video file: at `fps`, like a live
camera) and keeps only the newest, so a slow camera never blocks the control loop:
`read_latest()` returns at once, `read()` waits for the next frame only as long as asked.

A video file is paced on a fixed grid of slots `period = 1 / fps` apart. After a stall (a busy
CPU, a slow decode) the camera does not catch up by emitting frames back to back: it skips every
slot that would come less than half a period after the frame it just emitted, and counts them in
`missed_slots`. Consecutive frames are therefore always at least `period / 2` apart, and frames
plus missed slots keep pace with the clock (no drift).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from playworld.hardware.camera import CAMERAS, Camera, CameraConfig, fit_image
from playworld.hardware.errors import ConfigError, HardwareError, require


@dataclass(frozen=True)
class OpenCVCameraConfig(CameraConfig):
    """`source`: a device index (0), a URL (rtsp://...) or a video file path; `loop` replays files."""

    source: int | str = 0
    loop: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.source, int | str) or self.source == "":
            raise ConfigError(
                f"expected source as a device index, URL or path, found {self.source!r}"
            )


class OpenCVCamera(Camera):
    """A `cv2.VideoCapture` drained by a daemon thread named `capture-<source>`."""

    def __init__(self, config: OpenCVCameraConfig) -> None:
        super().__init__(config)
        self._cap = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.is_file = isinstance(config.source, str) and "://" not in config.source
        self.missed_slots = 0  # file pacing slots skipped after stalls, since connect

    def _connect(self) -> None:
        cv2 = require("cv2", "sim", "OpenCVCamera")
        cap = cv2.VideoCapture(self.config.source)
        if not cap.isOpened():
            cap.release()
            raise HardwareError(
                f"expected a camera or video at {self.config.source!r}, found none that OpenCV opens"
            )
        self._cap = cap
        self.missed_slots = 0
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._capture, name=f"capture-{self.config.source}", daemon=True
        )
        self._thread.start()

    def _disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._thread = None
        if self._cap is not None:
            self._cap.release()
        self._cap = None

    def _capture(self) -> None:
        cfg = self.config
        period = 1.0 / cfg.fps
        next_t = time.monotonic()  # the slot of the next frame (files only)
        while not self._stop.is_set():
            ok, bgr = self._cap.read()
            if not ok:
                if self.is_file and cfg.loop:
                    self._cap.set(1, 0)  # cv2.CAP_PROP_POS_FRAMES: back to the first frame
                    continue
                self._fail(f"the camera {cfg.source!r} stopped giving frames")
                return
            image = fit_image(np.ascontiguousarray(bgr[:, :, ::-1]), cfg.height, cfg.width)
            if self.is_file and not self._wait_until(next_t):
                return
            t = time.monotonic()
            self._publish(image, t)
            if self.is_file:  # a file decodes faster than real time: pace it like a camera
                next_t = self._next_slot(next_t, t, period)

    def _next_slot(self, slot: float, emitted: float, period: float) -> float:
        """The first slot after `slot` at least half a period after `emitted` (s, monotonic);
        the slots passed over are counted in `missed_slots`."""
        skipped = max(0, math.ceil((emitted + period / 2 - slot) / period) - 1)
        self.missed_slots += skipped
        return slot + (skipped + 1) * period

    def _wait_until(self, deadline: float) -> bool:
        """Sleep until `deadline` (monotonic s); False if asked to stop meanwhile."""
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(left):
                return False
        return not self._stop.is_set()


CAMERAS.register("opencv", OpenCVCameraConfig, OpenCVCamera)
