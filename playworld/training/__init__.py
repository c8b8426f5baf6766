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

from playworld.training.checkpoint import load_model, read_config, resolve_checkpoint
from playworld.training.config import TrainConfig, apply_overrides, build_dataclass, load_yaml
from playworld.training.loop import TrainingDivergedError, TrainResult, train
from playworld.training.registry import MODELS, Trainable, model_class, register_model

__all__ = [
    "MODELS",
    "TrainConfig",
    "TrainResult",
    "Trainable",
    "TrainingDivergedError",
    "apply_overrides",
    "build_dataclass",
    "load_model",
    "load_yaml",
    "model_class",
    "read_config",
    "register_model",
    "resolve_checkpoint",
    "train",
]
