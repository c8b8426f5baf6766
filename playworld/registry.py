"""Registries: name -> (config dataclass, implementation), for robots, cameras, teleop and policies.

Each implementation registers itself next to its config (`ROBOTS.register("sim", SimRobotConfig,
SimRobot)`); `build(config)` or `from_dict({"type": ..., ...})` makes a device without an
if/elif chain. Config classes are importable without the device's heavy dependencies.

Implementations that live above this package (the twin's `SimRobot` in `playworld.sim`) are
named as plugins, `{"sim": "playworld.sim.robot"}`: their module is imported the first time the
name is asked for, so hardware never imports sim and the arrows stay one way.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from playworld.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> (config dataclass, implementation) for one kind of device."""

    def __init__(self, kind: str, plugins: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[type, type[T]]] = {}
        self._plugins = dict(plugins or {})  # name -> module that registers it on import

    def register(self, name: str, config_cls: type, cls: type[T]) -> None:
        """Add an implementation; `config_cls` is a dataclass with a `type` ClassVar == name."""
        if name in self._entries and self._entries[name] != (config_cls, cls):
            raise ConfigError(f"a {self.kind} named {name!r} is already registered")
        self._entries[name] = (config_cls, cls)

    def names(self) -> list[str]:
        return sorted(set(self._entries) | set(self._plugins))

    def entry(self, name: str) -> tuple[type, type[T]]:
        if name not in self._entries and name in self._plugins:
            importlib.import_module(self._plugins[name])
        if name not in self._entries:
            raise ConfigError(
                f"expected a {self.kind} type, found {name!r}.{did_you_mean(name, self.names())}"
            )
        return self._entries[name]

    def config_from_dict(self, data: Mapping[str, Any]) -> Any:
        """A typed config from a plain dict (e.g. YAML) whose `type` key names the implementation."""
        data = dict(data)
        name = data.pop("type", None)
        if name is None:
            raise ConfigError(
                f"expected a 'type' key in the {self.kind} config, found {sorted(data)}"
            )
        config_cls, _ = self.entry(str(name))
        return build_dataclass(config_cls, data, where=f"{self.kind} {name!r}")

    def build(self, config: Any) -> T:
        """The implementation registered for `type(config)`, constructed from `config`."""
        for cfg_cls, cls in self._entries.values():
            if type(config) is cfg_cls:
                return cls(config)
        raise ConfigError(
            f"expected a {self.kind} config among {[c.__name__ for c, _ in self._entries.values()]},"
            f" found {type(config).__name__}"
        )

    def from_dict(self, data: Mapping[str, Any]) -> T:
        return self.build(self.config_from_dict(data))


def build_dataclass(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """Construct dataclass `cls` from a plain dict, recursing into nested dataclass fields.

    Lists become tuples where the field is a tuple; unknown keys raise a `ConfigError` that lists
    the valid ones. No code is executed from the data.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"expected a mapping for {where or cls.__name__}, found {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"expected keys among {sorted(fields)} in {where or cls.__name__}, found {unknown}"
        )
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return build_dataclass(hint, value, where)
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        return tuple(value)
    if origin is dict and isinstance(value, Mapping):
        _, vt = typing.get_args(hint)
        return {k: _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    return value
