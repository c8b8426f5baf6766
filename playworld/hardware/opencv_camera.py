"""`OpenCVCamera`: a device index, stream URL or video file, read by a capture thread.

The thread decodes frames as fast as the source gives them (a video file: at `fps`, like a live
camera) and keeps only the newest, so a slow camera never blocks the control loop:
`read_latest()` returns at once, `read()` waits for the next frame only as long as asked.
"""

from __future__ import annotations

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

    def _connect(self) -> None:
        cv2 = require("cv2", "sim", "OpenCVCamera")
        cap = cv2.VideoCapture(self.config.source)
        if not cap.isOpened():
            cap.release()
            raise HardwareError(
                f"expected a camera or video at {self.config.source!r}, found none that OpenCV opens"
            )
        self._cap = cap
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
        next_t = time.monotonic()
        while not self._stop.is_set():
            ok, bgr = self._cap.read()
            t = time.monotonic()
            if not ok:
                if self.is_file and cfg.loop:
                    self._cap.set(1, 0)  # cv2.CAP_PROP_POS_FRAMES: back to the first frame
                    continue
                self._fail(f"the camera {cfg.source!r} stopped giving frames")
                return
            image = fit_image(np.ascontiguousarray(bgr[:, :, ::-1]), cfg.height, cfg.width)
            self._publish(image, t)
            if self.is_file:  # a file decodes faster than real time: pace it like a camera
                next_t += period
                self._stop.wait(max(0.0, next_t - time.monotonic()))


CAMERAS.register("opencv", OpenCVCameraConfig, OpenCVCamera)
