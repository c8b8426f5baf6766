"""`GamepadTeleop`: a game controller through pygame's joystick events (SDL, no window).

SDL needs a video driver for its event queue; we use the `dummy` one unless the user set
`SDL_VIDEODRIVER`, so this works headless. Events are drained on every `get_action()`, so no
thread is needed. Default mapping (Xbox layout as SDL numbers it):

    left stick     x (up: forward), y (left: left)     right stick  z (up), yaw
    A (0)  toggle the gripper   X (2) start   Y (3) save   B (1) discard   Start (7) quit
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playworld.hardware.errors import ConfigError, HardwareError, require
from playworld.hardware.teleop import TELEOPS, Teleop, TeleopConfig, TeleopEvent, axes_to_action


@dataclass(frozen=True)
class GamepadConfig(TeleopConfig):
    """`axis_map`: for x y z rx ry rz, a signed 1-based SDL axis number (0: unused).

    `buttons`: SDL button number -> `gripper` or an event name (start, save, discard, quit).
    """

    index: int = 0
    axis_map: tuple[int, ...] = (-2, -1, -5, 0, 0, -4)
    buttons: dict[int, str] = field(
        default_factory=lambda: {0: "gripper", 2: "start", 3: "save", 1: "discard", 7: "quit"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.axis_map) != 6:
            raise ConfigError(f"expected 6 entries in axis_map, found {len(self.axis_map)}")
        valid = {"gripper", *(e.value for e in TeleopEvent)}
        bad = sorted({v for v in self.buttons.values() if v not in valid})
        if bad:
            raise ConfigError(f"expected button actions among {sorted(valid)}, found {bad}")


class GamepadTeleop(Teleop):
    """SDL joystick events -> end-effector deltas. `joystick` replaces the opened device."""

    def __init__(self, config: GamepadConfig, joystick: Any = None) -> None:
        super().__init__(config)
        self._joystick = joystick
        self._given = joystick is not None
        self._axes: dict[int, float] = {}
        self._gripper = 1.0
        self._pg = None

    def _connect(self) -> None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        pg = require("pygame", "hardware", "GamepadTeleop")
        pg.display.init()
        pg.joystick.init()
        self._pg = pg
        if not self._given:
            count = pg.joystick.get_count()
            if self.config.index >= count:
                raise HardwareError(
                    f"expected a gamepad at index {self.config.index}, found {count} connected"
                )
            self._joystick = pg.joystick.Joystick(self.config.index)
        pg.event.clear([pg.JOYAXISMOTION, pg.JOYBUTTONDOWN, pg.JOYBUTTONUP])

    def _disconnect(self) -> None:
        if not self._given and self._joystick is not None:
            self._joystick.quit()
            self._joystick = None
        self._pg = None

    def _drain(self) -> None:
        pg = self._pg
        iid = self._joystick.get_instance_id()
        for ev in pg.event.get([pg.JOYAXISMOTION, pg.JOYBUTTONDOWN]):
            if getattr(ev, "instance_id", iid) != iid:
                continue
            if ev.type == pg.JOYAXISMOTION:
                self._axes[ev.axis] = float(ev.value)
            else:
                what = self.config.buttons.get(ev.button)
                if what == "gripper":
                    self._gripper = 0.0 if self._gripper > 0.5 else 1.0
                elif what is not None:
                    self._emit(TeleopEvent(what))

    def get_action(self) -> np.ndarray:
        with self._lock:
            if self._pg is not None:
                self._drain()
            axes = np.array(
                [
                    np.sign(m) * self._axes.get(abs(m) - 1, 0.0) if m else 0.0
                    for m in self.config.axis_map
                ]
            )
            return axes_to_action(axes, self._gripper, self.config)

    def events(self) -> list[TeleopEvent]:
        with self._lock:
            if self._pg is not None:
                self._drain()
        return super().events()


TELEOPS.register("gamepad", GamepadConfig, GamepadTeleop)
