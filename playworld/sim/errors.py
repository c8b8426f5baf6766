"""Errors of the twin: user errors are `PlayworldError`s with one clear line."""

from __future__ import annotations

from playworld.errors import ConfigError, PlayworldError

__all__ = ["AssetError", "ConfigError", "RenderError", "SimError"]


class SimError(PlayworldError):
    """The twin cannot do what was asked (bad state vector, unknown task, infeasible setup)."""


class AssetError(SimError):
    """A robot asset (MJCF or mesh) is missing: the `sim` extra is not installed."""


class RenderError(SimError):
    """No OpenGL backend (EGL or OSMesa) could create an offscreen context."""
