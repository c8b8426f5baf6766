"""The training loop's configuration, and YAML loading with command-line overrides.

A run's YAML file has up to three sections, each a plain mapping (no tags, no code):

    model: {kind: state_diffusion, horizon: 16, ...}   the model's own config (its registry name)
    data:  {val_ratio: 0.2, ...}                        how the model reads the store
    train: {steps: 2000, batch_size: 256, lr: 3.0e-4}   `TrainConfig` fields

Overrides are ``section.key=value`` strings; the value is parsed as YAML (``1e-3``, ``true``,
``[1, 2]``), so ``train.lr=1e-3 model.width=256`` does what it says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playworld.errors import ConfigError, did_you_mean

SCHEDULES = ("constant", "cosine", "linear")
SCHEDULE_SPANS = ("steps", "minutes")
PRECISIONS = ("no", "bf16", "fp16", "auto")


@dataclass(frozen=True)
class TrainConfig:
    """Everything the loop needs besides the model and the data.

    steps: optimiser steps in all (the learning-rate schedule spans them); minutes: a wall-clock
    budget that ends the run early (0: none). lr with ``warmup_steps`` of linear warm-up, then
    ``schedule``. ``schedule_span``: ``steps`` (the schedule spans ``steps``, so a run that the
    budget ends early stops part-way down it) or ``minutes`` (with ``minutes`` > 0: once warm,
    the loop measures its step rate and fits the schedule to the steps the budget holds, at most
    ``steps``, ending the run there; that span is saved and kept by ``--resume``).
    ``grad_clip``: max global grad norm (0: off). ``ema_decay``: 0 turns EMA off.
    ``diverge_factor``: a loss above this many times its running mean (after ``warmup_steps``),
    or a non-finite one, stops the run. ``device``: ``auto`` (what accelerate picks), ``cpu`` or
    ``cuda``. ``threads``: torch CPU threads (0: torch's default; 1 is faster on a machine
    loaded by other work). ``mixed_precision``: ``no``, ``bf16``, ``fp16`` (accelerate's
    autocast) or ``auto``: bf16 where the device computes it natively (a GPU with bf16, a CPU
    with AVX512-BF16 or AMX), else none. Intervals are in steps (0: only at the end).
    """

    steps: int = 1000
    minutes: float = 0.0
    batch_size: int = 64
    lr: float = 3e-4
    schedule: str = "cosine"
    schedule_span: str = "steps"
    warmup_steps: int = 50
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    num_workers: int = 0
    diverge_factor: float = 100.0
    device: str = "auto"
    threads: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mixed_precision is False:  # YAML reads a bare `no` as false
            object.__setattr__(self, "mixed_precision", "no")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(
                f"train.steps and train.batch_size must be >= 1, got {self.steps}, {self.batch_size}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.weight_decay < 0:
            raise ConfigError(
                f"train.lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )
        if self.schedule_span not in SCHEDULE_SPANS:
            raise ConfigError(
                f"train.schedule_span {self.schedule_span!r} is unknown (steps or minutes)."
                f"{did_you_mean(self.schedule_span, SCHEDULE_SPANS)}"
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"train.schedule {self.schedule!r} is unknown.{did_you_mean(self.schedule, SCHEDULES)}"
            )
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"train.mixed_precision {self.mixed_precision!r} is unknown."
                f"{did_you_mean(self.mixed_precision, PRECISIONS)}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be auto, cpu or cuda, got {self.device!r}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in (
            "warmup_steps",
            "log_every",
            "checkpoint_every",
            "num_workers",
            "minutes",
            "threads",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.grad_clip < 0 or self.diverge_factor <= 1 or self.keep_checkpoints < 1:
            raise ConfigError(
                "train.grad_clip must be >= 0, diverge_factor > 1 and keep_checkpoints >= 1"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        return build_dataclass(cls, d, "train")


def build_dataclass(cls: Any, d: Mapping[str, Any], section: str) -> Any:
    """``cls(**d)`` with one clear line for an unknown key (naming the valid ones)."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in d:
        if key not in names:
            raise ConfigError(f"unknown key {section}.{key}.{did_you_mean(key, names)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad {section} config: {e}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A run config file as ``{section: mapping}`` (safe YAML: no tags, no code)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(
            f"config file {p} is not valid YAML: {' '.join(str(e).split())}"
        ) from None
    if not isinstance(data, dict) or any(not isinstance(v, dict) for v in data.values()):
        raise ConfigError(
            f"config file {p} must map section names (model, data, train) to mappings"
        )
    return data


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``config`` with ``section.key=value`` overrides applied (values parsed as YAML)."""
    import yaml

    out = {k: dict(v) for k, v in config.items()}
    for item in overrides:
        key, eq, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not eq or not dot or not section or not name:
            raise ConfigError(f"override {item!r} must look like section.key=value (train.lr=1e-3)")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        out.setdefault(section, {})[name] = value
    return out
