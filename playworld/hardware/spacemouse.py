"""`SpaceMouseTeleop`: a 3Dconnexion SpaceMouse read as raw HID reports through `hidapi`.

Reports (little-endian int16 values, about +-350 at full deflection):

    id 1, 6 bytes    translation x, y, z           (older models; rotation comes in report 2)
    id 1, 12 bytes   translation x, y, z, then rotation rx, ry, rz   (newer models)
    id 2, 6 bytes    rotation rx, ry, rz
    id 3             button bitmask: bit 0 left (toggle the gripper), bit 1 right (save)

Device axes (x right, y toward the user, z down) map to the world frame of the twin (x forward,
y left, z up) by `AXIS_SIGNS` and `AXIS_ORDER`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from playworld.hardware.errors import HardwareError, require
from playworld.hardware.teleop import TELEOPS, Teleop, TeleopConfig, TeleopEvent, axes_to_action

VENDOR_3DCONNEXION = (0x046D, 0x256F)  # Logitech-era and 3Dconnexion vendor ids
#: device axis (x, y, z, rx, ry, rz) feeding each world axis, and its sign.
AXIS_ORDER = (1, 0, 2, 4, 3, 5)
AXIS_SIGNS = np.array([-1.0, -1.0, -1.0, -1.0, -1.0, -1.0])


@dataclass(frozen=True)
class SpaceMouseConfig(TeleopConfig):
    """`full_scale`: the raw value of full deflection; `product_id`: None opens the first found."""

    full_scale: float = 350.0
    product_id: int | None = None


def parse_report(report: bytes | list[int], axes: np.ndarray) -> int | None:
    """Update raw device `axes` (6,) in place from one HID report; return the button mask if any.

    Unknown report ids are ignored (returns None, axes unchanged).
    """
    data = bytes(report)
    if len(data) < 2:
        return None
    rid, body = data[0], data[1:]
    if rid == 1 and len(body) >= 6:
        n = 6 if len(body) >= 12 else 3
        axes[:n] = np.frombuffer(body[: 2 * n], "<i2")
    elif rid == 2 and len(body) >= 6:
        axes[3:6] = np.frombuffer(body[:6], "<i2")
    elif rid == 3:
        return int(body[0])
    return None


class SpaceMouseTeleop(Teleop):
    """Reads HID reports on a thread; `hid_device` is hidapi's `hid.device` (or a stand-in)."""

    def __init__(
        self, config: SpaceMouseConfig, hid_device: Callable[[], Any] | None = None
    ) -> None:
        super().__init__(config)
        self._make_device = hid_device
        self._device = None
        self._raw = np.zeros(6)
        self._buttons = 0
        self._gripper = 1.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> None:
        make = self._make_device or require("hid", "hardware", "SpaceMouseTeleop").device
        found = self._find()
        if found is None:
            raise HardwareError(
                f"expected a 3Dconnexion SpaceMouse (USB vendor {[hex(v) for v in VENDOR_3DCONNEXION]}), "
                "found none; check the cable and the udev permissions of /dev/hidraw*"
            )
        device = make()
        device.open(*found)
        self._device = device
        self._stop.clear()
        self._thread = threading.Thread(target=self._read, name="spacemouse-teleop", daemon=True)
        self._thread.start()

    def _find(self) -> tuple[int, int] | None:
        if self._make_device is not None:  # a stand-in: it is the device
            return (VENDOR_3DCONNEXION[1], self.config.product_id or 0xC635)
        hid = require("hid", "hardware", "SpaceMouseTeleop")
        for info in hid.enumerate():
            if info["vendor_id"] in VENDOR_3DCONNEXION and (
                self.config.product_id in (None, info["product_id"])
            ):
                return info["vendor_id"], info["product_id"]
        return None

    def _disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._thread = None
        if self._device is not None:
            self._device.close()
        self._device = None

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                report = self._device.read(64, 50)  # 50 ms timeout
            except OSError:
                return
            if report:
                self.handle_report(report)

    def handle_report(self, report: bytes | list[int]) -> None:
        """Apply one HID report: axes, and button presses (rising edges) as gripper / events."""
        with self._lock:
            buttons = parse_report(report, self._raw)
            if buttons is None:
                return
            pressed = buttons & ~self._buttons
            self._buttons = buttons
            if pressed & 1:
                self._gripper = 0.0 if self._gripper > 0.5 else 1.0
            if pressed & 2:
                self._emit(TeleopEvent.SAVE)

    def get_action(self) -> np.ndarray:
        with self._lock:
            axes = self._raw[list(AXIS_ORDER)] * AXIS_SIGNS / self.config.full_scale
            return axes_to_action(np.clip(axes, -1, 1), self._gripper, self.config)


TELEOPS.register("spacemouse", SpaceMouseConfig, SpaceMouseTeleop)
