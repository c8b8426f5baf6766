"""Errors of the hardware layer: user errors are `PlayworldError`s with one clear line."""

from __future__ import annotations

from playworld.errors import ConfigError, PlayworldError

__all__ = [
    "ConfigError",
    "DependencyError",
    "GuardError",
    "HardwareError",
    "NotConnectedError",
    "RobotConnectionError",
]


class HardwareError(PlayworldError):
    """A robot, camera or teleop device cannot do what was asked."""


class NotConnectedError(HardwareError):
    """A device was used before `connect()` (or after `disconnect()`)."""


class RobotConnectionError(HardwareError, ConnectionError):
    """The link to a robot (or its bridge) is down or never came up."""


class GuardError(HardwareError, ValueError):
    """An action has the wrong shape for the safety guard (NaN/inf are refused, not raised)."""


class DependencyError(HardwareError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str, what: str):
    """Import `module` or raise `DependencyError` naming `pip install 'playworld[extra]'`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{what} needs the Python package {module!r}, found it missing ({exc}); "
            f"install it with: pip install 'playworld[{extra}]'"
        ) from exc
