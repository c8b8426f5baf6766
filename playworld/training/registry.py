"""Trainable models by name, so that a checkpoint folder rebuilds its model from JSON alone.

A package registers each model class next to its code::

    @register_model("state_diffusion")
    class StateDiffusion(Trainable): ...

and `load_model(folder)` looks the class up by the ``kind`` in ``config.json``. The registry is
filled by importing the package that defines the models (`playworld.world_models`,
`playworld.policies`); `training` itself imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from playworld.errors import ConfigError, did_you_mean

T = TypeVar("T", bound=type)


class Trainable(torch.nn.Module):
    """The model contract of `playworld.training.train`.

    - ``loss(batch) -> (loss, logs)``: ``batch`` is what the dataset yields (a dict of tensors,
      already on the model's device); ``loss`` a scalar tensor; ``logs`` a dict of floats or
      0-d tensors shown in tensorboard.
    - ``config``: a JSON-native dict from which ``from_config(config)`` rebuilds an untrained
      model of the same shape (normalisation statistics included); saved as ``config.json``.
    - ``kind``: the registry name (set by `register_model`).

    ``forward`` is the loss, so that wrappers (DDP through accelerate) see the training pass.
    """

    kind: str = ""

    @property
    def config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Trainable:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError  # pragma: no cover - abstract

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.loss(batch)


MODELS: dict[str, type[Trainable]] = {}


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator: register a `Trainable` under ``name`` (its ``kind``)."""

    def wrap(cls: T) -> T:
        if name in MODELS and MODELS[name] is not cls:
            raise ConfigError(f"model kind {name!r} is registered twice")
        cls.kind = name
        MODELS[name] = cls
        return cls

    return wrap


def model_class(kind: str) -> type[Trainable]:
    """The registered class for ``kind``; a ConfigError names the known kinds."""
    if kind not in MODELS:
        raise ConfigError(f"unknown model kind {kind!r}.{did_you_mean(str(kind), list(MODELS))}")
    return MODELS[kind]
