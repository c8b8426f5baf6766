"""The `Camera` interface: RGB frames with their capture time, never blocking the control loop.

    cam = CAMERAS.from_dict({"type": "opencv", "source": "video.mp4", "fps": 30})
    with cam:
        frame = cam.read()              # waits for the next new frame (timeout), Frame(image, t)
        latest = cam.read_latest()      # returns at once: the newest frame or None

Images are (H, W, 3) uint8 RGB; `t` is the capture time in seconds on `time.monotonic()`.
"""

from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from playworld.features import Feature
from playworld.hardware.errors import ConfigError, HardwareError, NotConnectedError
from playworld.registry import Registry


class Frame(NamedTuple):
    """One image (H, W, 3) uint8 RGB and its capture time `t` (s, monotonic clock)."""

    image: np.ndarray
    t: float
    index: int  # frames captured since connect, from 0


@dataclass(frozen=True)
class CameraConfig:
    """Common camera settings: image size (pixels) and nominal rate (Hz)."""

    height: int = 96
    width: int = 128
    fps: float = 10.0

    def __post_init__(self) -> None:
        if not (self.height > 0 and self.width > 0):
            raise ConfigError(f"expected a positive image size, found {(self.height, self.width)}")
        if not self.fps > 0:
            raise ConfigError(f"expected fps > 0 Hz, found {self.fps}")


class Camera(abc.ABC):
    """A colour camera. Implementations fill frames through `_publish` from a capture thread."""

    #: True when `read()` renders/captures now in the caller's thread (no capture thread).
    on_demand: bool = False

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._count = 0
        self._connected = False
        self._error: str | None = None

    @property
    def feature(self) -> Feature:
        """The image feature (H, W, 3) uint8, available while disconnected."""
        return Feature((self.config.height, self.config.width, 3), "uint8", kind="image")

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            return
        self._count, self._latest, self._error = 0, None, None
        self._connect()
        self._connected = True

    def disconnect(self) -> None:
        if not self._connected:
            return
        self._connected = False
        self._disconnect()
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> Camera:
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.disconnect()

    def read(self, timeout: float = 1.0) -> Frame:
        """The next frame captured after this call started (waits up to `timeout` s)."""
        if not self._connected:
            raise NotConnectedError(
                "expected a connected camera, found it disconnected; call connect()"
            )
        deadline = time.monotonic() + timeout
        with self._cond:
            start = self._count
            while self._count == start:
                if self._error is not None:
                    raise HardwareError(self._error)
                left = deadline - time.monotonic()
                if left <= 0 or not self._connected:
                    raise HardwareError(
                        f"expected a frame within {timeout:g} s from {type(self).__name__}, found none"
                    )
                self._cond.wait(left)
            return self._latest

    def read_after(self, index: int, timeout: float) -> Frame | None:
        """The newest frame if its index is past `index`, waiting up to `timeout` s for one;
        None if none came (never raises for a late frame)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest.index <= index:
                left = deadline - time.monotonic()
                if left <= 0 or not self._connected or self._error is not None:
                    return None
                self._cond.wait(left)
            return self._latest

    def read_latest(self) -> Frame | None:
        """The newest frame and its capture time, or None before the first one; never blocks."""
        return self._latest

    def _publish(self, image: np.ndarray, t: float) -> None:
        """Called by capture threads: store a frame (H, W, 3) uint8 captured at `t`."""
        with self._cond:
            self._latest = Frame(image, t, self._count)
            self._count += 1
            self._cond.notify_all()

    def _fail(self, message: str) -> None:
        with self._cond:
            self._error = message
            self._cond.notify_all()

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (h, w, 3) uint8 to (height, width, 3) with area interpolation (a copy if same)."""
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    import cv2

    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


CAMERAS: Registry[Camera] = Registry("camera", plugins={"sim": "playworld.sim.robot"})
