"""The playworld exception hierarchy.

Every error a user can cause (a bad path, a malformed store, a wrong shape) is a `PlayworldError`;
the CLI prints its message on one line and exits with code 2, never with a traceback. Messages say
what was expected, what was found and, where there is a choice, the valid options.
"""

from __future__ import annotations


class PlayworldError(Exception):
    """Base class of every error playworld raises on purpose."""


class ConfigError(PlayworldError, ValueError):
    """A configuration or argument is invalid."""


class StoreError(PlayworldError):
    """A play store cannot be opened, read or written as asked."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The path or URL holds no play store."""


class StoreFormatError(StoreError):
    """The store exists but is malformed: wrong version, missing or corrupt arrays."""


class StoreLockedError(StoreError):
    """Another process is writing to the store."""


class FeatureError(StoreError, ValueError):
    """A step or episode does not match the store's feature description."""


def did_you_mean(name: str, options: list[str] | tuple[str, ...]) -> str:
    """Return ' (valid: a, b, c)' for an error message, closest match first."""
    import difflib

    close = difflib.get_close_matches(name, options, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{hint} Valid: {', '.join(sorted(options)) or '(none)'}."


class PolicyError(PlayworldError):
    """A policy cannot be built, loaded or run as asked (a bad checkpoint folder, wrong features)."""


class DeployError(PlayworldError):
    """A deployment cannot start or had to stop (the policy does not fit the robot, a fault)."""
