"""The `Teleop` interface: a person drives the robot with end-effector deltas and a gripper.

    teleop = TELEOPS.from_dict({"type": "keyboard", "step": 0.01})
    with teleop:
        action = teleop.get_action()    # (7,) float32: dx dy dz (m), rx ry rz (rad), gripper 0..1
        for event in teleop.events():   # TeleopEvent.START, SAVE, DISCARD, QUIT
            ...

Every device reduces to axes in [-1, 1] (6 of them) and a gripper command; `axes_to_action`
applies the deadzone and scaling from the config, in one place for all devices.
"""

from __future__ import annotations

import abc
import enum
import queue
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from playworld.features import Feature
from playworld.hardware.ee import EE_ACTION_NAMES
from playworld.hardware.errors import ConfigError
from playworld.registry import Registry


class TeleopEvent(enum.Enum):
    """Session events a teleop device can raise."""

    START = "start"  # start recording an episode
    SAVE = "save"  # end the episode and keep it
    DISCARD = "discard"  # end the episode and drop it (re-record)
    QUIT = "quit"  # end the session


@dataclass(frozen=True)
class TeleopConfig:
    """Mapping from device axes to end-effector deltas.

    `deadzone`: axis magnitudes below it (0..1) count as zero; the rest is rescaled to 0..1.
    `pos_scale` m and `rot_scale` rad: the delta per control step at full deflection.
    """

    deadzone: float = 0.1
    pos_scale: float = 0.02
    rot_scale: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.deadzone < 1:
            raise ConfigError(f"expected 0 <= deadzone < 1, found {self.deadzone}")
        if not (self.pos_scale > 0 and self.rot_scale > 0):
            raise ConfigError(
                f"expected pos_scale and rot_scale > 0, found {self.pos_scale}, {self.rot_scale}"
            )


def apply_deadzone(axes: np.ndarray, deadzone: float) -> np.ndarray:
    """Axes (k,) in [-1, 1] -> (k,): zero inside the deadzone, linear from 0 to 1 outside it."""
    axes = np.clip(np.nan_to_num(np.asarray(axes, float)), -1.0, 1.0)
    mag = np.abs(axes)
    out = np.where(mag <= deadzone, 0.0, (mag - deadzone) / (1.0 - deadzone))
    return np.sign(axes) * out


def axes_to_action(axes: np.ndarray, gripper: float, config: TeleopConfig) -> np.ndarray:
    """Six axes (6,) in [-1, 1] (x y z roll pitch yaw) + gripper 0..1 -> action (7,) float32."""
    a = apply_deadzone(axes, config.deadzone)
    out = np.concatenate([a[:3] * config.pos_scale, a[3:6] * config.rot_scale, [gripper]])
    return out.astype(np.float32)


class Teleop(abc.ABC):
    """A teleoperation device. `get_action` never blocks; events queue until read."""

    def __init__(self, config: TeleopConfig) -> None:
        self.config = config
        self._events: queue.SimpleQueue[TeleopEvent] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._connected = False

    @property
    def action_features(self) -> dict[str, Feature]:
        """`action`: (7,) float32 end-effector deltas (m, rad, world frame) + gripper 0..1."""
        return {"action": Feature((7,), "float32", kind="action", names=EE_ACTION_NAMES)}

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if not self._connected:
            self._connect()
            self._connected = True

    def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self._disconnect()

    def __enter__(self) -> Teleop:
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.disconnect()

    @abc.abstractmethod
    def get_action(self) -> np.ndarray:
        """The current command (7,) float32 (see the module docstring)."""

    def on_episode_start(self) -> None:
        """Called when a recorded episode starts (a replaying source rewinds); default: nothing."""
        return None  # live devices have nothing to rewind

    def events(self) -> list[TeleopEvent]:
        """Events raised since the last call, oldest first."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def _emit(self, event: TeleopEvent) -> None:
        self._events.put(event)

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...


TELEOPS: Registry[Teleop] = Registry("teleop")
