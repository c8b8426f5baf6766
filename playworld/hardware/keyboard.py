"""`KeyboardTeleop`: drive from a terminal (works over SSH; needs no X server).

Reads single key presses from a tty in cbreak mode on a thread. Terminals report presses, not
releases: a key moves its axis for `hold_time` seconds after each press, and the terminal's key
repeat keeps a held key going.

    w / s  +x / -x      a / d  +y / -y      r / f  +z / -z          space  toggle the gripper
    i / k  +rx / -rx    j / l  +ry / -ry    u / o  +rz / -rz
    Enter  start        v      save         x      discard          q, Esc, Ctrl-C  quit
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from playworld.hardware.errors import ConfigError, HardwareError
from playworld.hardware.teleop import TELEOPS, Teleop, TeleopConfig, TeleopEvent, axes_to_action

#: key -> (axis 0..5, sign)
AXIS_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0), "r": (2, 1.0), "f": (2, -1.0),
    "i": (3, 1.0), "k": (3, -1.0), "j": (4, 1.0), "l": (4, -1.0), "u": (5, 1.0), "o": (5, -1.0),
}  # fmt: skip
EVENT_KEYS: dict[str, TeleopEvent] = {
    "\r": TeleopEvent.START, "\n": TeleopEvent.START, "v": TeleopEvent.SAVE,
    "x": TeleopEvent.DISCARD, "q": TeleopEvent.QUIT, "\x1b": TeleopEvent.QUIT,
    "\x03": TeleopEvent.QUIT,
}  # fmt: skip
GRIPPER_KEY = " "


@dataclass(frozen=True)
class KeyboardConfig(TeleopConfig):
    """`device`: a tty path (None: this process's terminal); `hold_time` s per key press."""

    device: str | None = None
    hold_time: float = 0.15

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hold_time > 0:
            raise ConfigError(f"expected hold_time > 0 s, found {self.hold_time}")


class KeyboardTeleop(Teleop):
    """Key presses from a terminal -> end-effector deltas (see the module docstring)."""

    def __init__(self, config: KeyboardConfig) -> None:
        super().__init__(config)
        self._fd: int | None = None
        self._own_fd = False
        self._saved_attrs = None
        self._pressed = np.full(6, -np.inf)  # time of the last press per axis
        self._sign = np.zeros(6)
        self._gripper = 1.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> None:
        import termios
        import tty

        if self.config.device is not None:
            self._fd, self._own_fd = os.open(self.config.device, os.O_RDWR | os.O_NOCTTY), True
        else:
            self._fd, self._own_fd = sys.stdin.fileno(), False
        if not os.isatty(self._fd):
            self._close_fd()
            raise HardwareError(
                "expected a terminal for keyboard teleop, found none (stdin is not a tty); run it "
                "in a terminal (ssh -t works) or set `device` to a tty path"
            )
        self._saved_attrs = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)  # keys arrive one by one, unechoed; Ctrl-C stays a byte here
        attrs = termios.tcgetattr(self._fd)
        attrs[3] &= ~termios.ISIG
        termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_keys, name="keyboard-teleop", daemon=True)
        self._thread.start()

    def _disconnect(self) -> None:
        import termios

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._thread = None
        if self._saved_attrs is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_attrs)
            self._saved_attrs = None
        self._close_fd()

    def _close_fd(self) -> None:
        if self._own_fd and self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def _read_keys(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._fd, 64)
            except OSError:
                return
            for key in data.decode("utf-8", "ignore"):
                self.press(key)

    def press(self, key: str) -> None:
        """Handle one key (what the reader thread calls for every byte)."""
        key = key.lower() if len(key) == 1 and key.isalpha() else key
        with self._lock:
            if key in AXIS_KEYS:
                axis, sign = AXIS_KEYS[key]
                self._pressed[axis], self._sign[axis] = time.monotonic(), sign
            elif key == GRIPPER_KEY:
                self._gripper = 0.0 if self._gripper > 0.5 else 1.0
            elif key in EVENT_KEYS:
                self._emit(EVENT_KEYS[key])

    def get_action(self) -> np.ndarray:
        with self._lock:
            live = time.monotonic() - self._pressed <= self.config.hold_time
            axes = np.where(live, self._sign, 0.0)
            return axes_to_action(axes, self._gripper, self.config)


TELEOPS.register("keyboard", KeyboardConfig, KeyboardTeleop)
