"""Training a policy from a play store: `playworld train policy --type gcbc --store S --out DIR`.

    policy, result = train_policy("gcbc", "play.zarr", "out/gcbc", minutes=5)
    # saved as out/gcbc/policy (config.json + model.safetensors); checkpoints in
    # out/gcbc/checkpoints (`--resume` continues from the last complete one), logs in out/gcbc/logs

A run's YAML (`--config FILE`) has up to three sections: `policy` (the policy's config fields,
e.g. hidden: 256), `data` (`val_ratio`, `seed` of the hindsight windows) and `train` (the
training loop's settings: `playworld.training.TrainConfig`). Each trainable policy class names its
defaults in `train_defaults`. The trained weights (EMA where the loop keeps one) are saved as a
policy folder `<out>/policy`, which `playworld eval --policy <out>/policy` evaluates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playworld.errors import ConfigError, PolicyError
from playworld.registry import build_dataclass
from playworld.training.registry import Trainable, register_model

POLICY_DIR = "policy"
SECTIONS = ("policy", "data", "train")


@register_model("policy")
class PolicyTrainable(Trainable):
    """A goal-conditioned policy as a training-loop model: `loss(batch) -> (loss, logs)`,
    `config` (the policy's config.json content) and `from_config`; its parameters are the
    policy's network's (`net.*`)."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.policy = [policy]  # a list: not a submodule, its network is registered below
        self.net = policy.model

    @property
    def config(self) -> dict[str, Any]:
        data = self.policy[0].to_json()
        data.pop("info", None)
        return data

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PolicyTrainable:
        return cls(policy_from_json(config))

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.policy[0].loss(batch)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.loss(batch)


def policy_from_json(data: Mapping[str, Any]) -> Any:
    """An untrained policy from a config.json dict (type, config, features, normaliser)."""
    from playworld.datasets import Normalizer
    from playworld.features import Feature
    from playworld.policies.base import POLICIES

    cls = POLICIES.entry(str(data["type"]))[1]
    return cls(
        build_dataclass(cls.config_class, data["config"], where="config"),
        observation_features={
            k: Feature.from_json(v) for k, v in data["observation_features"].items()
        },
        action_features={k: Feature.from_json(v) for k, v in data["action_features"].items()},
        normalizer=Normalizer.from_json(data["normalizer"]) if data.get("normalizer") else None,
    )


def train_policy(
    kind: str,
    store: str | Path,
    out: str | Path,
    *,
    minutes: float | None = None,
    steps: int | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    resume: bool = False,
    threads: int = 1,
    progress: bool = True,
) -> tuple[Any, Any]:
    """Train a `kind` policy on `store` with the shared loop (`playworld.training.train`);
    checkpoints in `<out>/checkpoints`, logs in `<out>/logs`, the policy (EMA weights) saved as
    `<out>/policy`. Returns (policy, the loop's `TrainResult`).

    `threads`: torch's intra-op threads (0: torch's choice). On this shared 2-core machine two
    threads spin against the other processes: a GCBC step took 1.3 s with 2 and 76 ms with 1.
    """
    from playworld.policies.base import POLICIES
    from playworld.training import TrainConfig, train
    from playworld.training.checkpoint import load_file

    config = {k: dict(v) for k, v in (config or {}).items()}
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"expected config sections among {SECTIONS}, found {unknown}")
    cls = POLICIES.entry(kind)[1]
    if not _trainable(cls):
        trainable = [n for n in POLICIES.names() if _trainable(POLICIES.entry(n)[1])]
        raise PolicyError(f"expected a trainable policy type among {trainable}, found {kind!r}")
    pconfig = build_dataclass(cls.config_class, config.get("policy", {}), where="policy")
    data = cls.dataset(store, pconfig, config.get("data", {}))
    train_cfg = {"progress": progress, **cls.train_defaults, **config.get("train", {})}
    if minutes is not None:
        train_cfg["minutes"] = minutes
    if steps is not None:
        train_cfg["steps"] = steps
    loop = build_dataclass(TrainConfig, train_cfg, where="train")
    if threads:
        torch.set_num_threads(threads)
    policy = cls.from_dataset(data, pconfig)
    model = PolicyTrainable(policy)
    run = {"policy": kind, "store": str(store), **config}
    result = train(model, data, loop, out, resume=resume, run_config=run)
    folder = Path(result.checkpoint)
    weights = folder / "ema.safetensors"
    if not weights.is_file():
        weights = folder / "model.safetensors"
    model.load_state_dict(load_file(str(weights)))
    losses = [v for _, v in result.losses[-50:]]
    policy.info.update(
        store=str(store),
        steps=result.step,
        stopped=result.stopped,
        train_seconds=round(result.seconds, 1),
        final_loss=float(np.mean(losses)) if losses else None,
        train=dataclasses.asdict(loop),
        windows=len(data),
        checkpoint=str(folder),
    )
    policy.save(Path(out) / POLICY_DIR)
    return policy, result


def _trainable(cls: type) -> bool:
    """Whether a policy class trains from a store (it names its `dataset` and `from_dataset`)."""
    return hasattr(cls, "dataset") and hasattr(cls, "from_dataset")
