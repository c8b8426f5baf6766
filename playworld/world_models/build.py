"""From a run config (model / data / train sections) to a trained world model.

    result = train_world_model({"model": {"kind": "state_diffusion"}, "train": {"steps": 2000}},
                               "play.zarr", "out/wm")

`BUILDERS` maps each model kind to the function that reads its training windows from a store
and sizes/normalises a fresh model for them; `load_world_model` rebuilds any checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from playworld.errors import ConfigError, did_you_mean
from playworld.training import (
    TrainConfig,
    TrainResult,
    build_dataclass,
    load_model,
    read_config,
    resolve_checkpoint,
    train,
)
from playworld.world_models import frames, state
from playworld.world_models.data import WindowArrays


@dataclass(frozen=True)
class DataConfig:
    """Episode-level split of the store (the same split scores the model later)."""

    val_ratio: float = 0.2
    split_seed: int = 0
    stride: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.val_ratio < 1 or self.stride < 1:
            raise ConfigError("data.val_ratio must be in [0, 1) and data.stride >= 1")


def _state(kind: str, model: Mapping[str, Any], data: DataConfig, store: str) -> tuple[Any, Any]:
    from playworld.training import model_class

    cfg = build_dataclass(state.StateModelConfig, model, "model")
    cls = model_class(kind)
    ds = WindowArrays(
        store, [cfg.state_key, cfg.action_key], cls.window_of(cfg), split="train",
        val_ratio=data.val_ratio, seed=data.split_seed, stride=data.stride,
        needs={cfg.state_key: "the model's state", cfg.action_key: "the model's actions"},
    )  # fmt: skip
    return state.fit(cls, cfg, ds), ds


def _frames(kind: str, model: Mapping[str, Any], data: DataConfig, store: str) -> tuple[Any, Any]:
    cfg = build_dataclass(frames.FrameModelConfig, model, "model")
    ds = WindowArrays(
        store, [cfg.camera, cfg.action_key], cfg.history + 1, split="train",
        val_ratio=data.val_ratio, seed=data.split_seed, stride=data.stride,
        image_size=cfg.image_size,
        needs={cfg.camera: "the frame model's camera", cfg.action_key: "the model's actions"},
    )  # fmt: skip
    return frames.fit(cfg, ds), ds


# kind -> (kind, model section, data config, store) -> (fitted untrained model, train dataset)
BUILDERS: dict[str, Callable[[str, Mapping[str, Any], DataConfig, str], tuple[Any, Any]]] = {
    "state_diffusion": _state,
    "state_chunk_mlp": _state,
    "state_one_step_mlp": _state,
    "frame_diffusion": _frames,
}


def build(run: Mapping[str, Any], store: str) -> tuple[Any, Any]:
    """(untrained model, train dataset) for a run config on ``store``."""
    model = dict(run.get("model") or {})
    kind = model.pop("kind", None)
    if kind not in BUILDERS:
        raise ConfigError(
            f"model.kind {kind!r} is unknown.{did_you_mean(str(kind), list(BUILDERS))}"
        )
    data = build_dataclass(DataConfig, run.get("data") or {}, "data")
    return BUILDERS[kind](kind, model, data, store)


def train_world_model(
    run: Mapping[str, Any],
    store: str,
    out: str | Path,
    *,
    resume: bool = False,
    on_step: Any = None,
) -> TrainResult:
    """Build, then train with the shared loop; checkpoints in ``out/checkpoints``."""
    train_cfg = TrainConfig.from_dict(run.get("train") or {})
    model, ds = build(run, store)
    if resume:  # the exact model of the checkpoint (its normaliser), not a refit
        ck = read_config(resolve_checkpoint(out))
        model = type(model).from_config(ck["model"])
    data = asdict(build_dataclass(DataConfig, run.get("data") or {}, "data"))
    run_config = {
        "model": {"kind": model.kind, **dict(run.get("model") or {})},
        "data": data,
        "store": str(store),
    }
    return train(model, ds, train_cfg, out, resume=resume, run_config=run_config, on_step=on_step)


def load_world_model(path: str | Path, *, ema: bool = True) -> Any:
    """A trained world model from a checkpoint folder or a training output folder."""
    return load_model(path, ema=ema)


def data_config_of(path: str | Path) -> DataConfig:
    """The split a checkpoint was trained with (to score on its held-out episodes)."""
    run = read_config(path).get("run", {})
    return build_dataclass(DataConfig, run.get("data") or {}, "data")
