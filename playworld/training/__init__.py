"""One training loop for every playworld model (world models, policies).

    from playworld.training import TrainConfig, train, load_model
    result = train(model, dataset, TrainConfig(steps=2000, batch_size=256), "out/run")
    model = load_model("out/run")            # newest checkpoint, EMA weights

The model contract (`Trainable`): an ``nn.Module`` with ``loss(batch) -> (loss, logs)``, a
JSON-native ``config`` dict and ``from_config(config)``, registered by name with
`register_model` so that a checkpoint folder (``config.json`` + ``model.safetensors`` +
``ema.safetensors`` + ``optimizer.safetensors`` + ``trainer.json``) rebuilds it without code.
Run configs load from YAML (`load_yaml`, `apply_overrides`). See `loop` for resume semantics.
"""

from importlib import import_module
from typing import Any

# torch costs seconds to import: the CLI imports this package (its `train` sub-app) eagerly, so
# names resolve on first use.
_WHERE = {
    "load_model": "checkpoint",
    "read_config": "checkpoint",
    "resolve_checkpoint": "checkpoint",
    "TrainConfig": "config",
    "apply_overrides": "config",
    "build_dataclass": "config",
    "load_yaml": "config",
    "TrainingDivergedError": "loop",
    "TrainResult": "loop",
    "train": "loop",
    "MODELS": "registry",
    "Trainable": "registry",
    "model_class": "registry",
    "register_model": "registry",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"playworld.training.{_WHERE[name]}"), name)
