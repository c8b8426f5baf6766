"""Training a policy from a play store: `playworld train policy --type gcbc --store S --out DIR`.

    policy = train_policy("gcbc", "play.zarr", "out/gcbc", minutes=5)
    policy.save(...)  # already saved as out/gcbc/policy (config.json + model.safetensors)

A run's YAML (`--config FILE`) has up to three sections: `policy` (the policy's config fields,
e.g. hidden: 256), `data` (`val_ratio`, `seed` of the hindsight windows) and `train` (the
training loop's settings: steps, batch_size, lr, ...). Each trainable policy class names its
defaults in `train_defaults`. The trained weights (EMA where the loop keeps one) are saved as a
policy folder `<out>/policy`, which `playworld eval --policy <out>/policy` evaluates.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from playworld.errors import ConfigError, PolicyError
from playworld.registry import build_dataclass

POLICY_DIR = "policy"
SECTIONS = ("policy", "data", "train")


class PolicyTrainable(nn.Module):
    """A goal-conditioned policy as a training-loop model: `loss(batch) -> (loss, logs)`,
    `config` (the policy's config.json content) and `from_config`; its parameters are the
    policy's network's (`net.*`)."""

    kind = "policy"

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


@dataclass(frozen=True)
class LoopConfig:
    """The settings of the training loop (a stand-in for `playworld.training.TrainConfig`)."""

    steps: int = 5000
    minutes: float = 0.0
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 100
    # torch's intra-op threads: on a shared 2-core machine 2 threads spin against the other
    # processes (measured 1.3 s against 76 ms per GCBC step at load ~15); 0 leaves torch's choice
    threads: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0 or self.minutes < 0:
            raise ConfigError(
                f"expected train.steps, batch_size >= 1, lr > 0, minutes >= 0, found "
                f"{self.steps}, {self.batch_size}, {self.lr}, {self.minutes}"
            )


def run_loop(
    model: PolicyTrainable, data: Any, config: LoopConfig, log: Any = print
) -> list[tuple[int, float]]:
    """AdamW with a cosine schedule over random batches; stops at `steps` or `minutes`."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / config.steps, 1.0)))
    )
    losses: list[tuple[int, float]] = []
    t0 = time.monotonic()
    model.train()
    for step in range(1, config.steps + 1):
        loss, _ = model.loss(data.random_batch(rng, config.batch_size))
        if not torch.isfinite(loss):
            raise ConfigError(f"training diverged at step {step} (loss {loss.item()}); lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        sched.step()
        losses.append((step, float(loss.item())))
        if log and config.log_every and step % config.log_every == 0:
            log(f"step {step}: loss {np.mean([v for _, v in losses[-config.log_every :]]):.4f}")
        if config.minutes and time.monotonic() - t0 > config.minutes * 60:
            break
    model.eval()
    return losses


def load_run_config(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """{section: mapping} from a YAML file (safe loader) and `section.key=value` overrides."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"expected a YAML config file at {p}, found none")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"expected YAML in {p}: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict) or any(not isinstance(v, dict) for v in data.values()):
            raise ConfigError(f"expected {p} to map sections {SECTIONS} to mappings")
    out = {k: dict(v) for k, v in data.items()}
    for item in overrides:
        key, eq, raw = item.partition("=")
        section, dot, name = key.partition(".")
        if not (eq and dot and name):
            raise ConfigError(f"expected an override section.key=value, found {item!r}")
        out.setdefault(section, {})[name] = yaml.safe_load(raw)
    unknown = sorted(set(out) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"expected config sections among {SECTIONS}, found {unknown}")
    return out


def train_policy(
    kind: str,
    store: str | Path,
    out: str | Path,
    *,
    minutes: float | None = None,
    steps: int | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    log: Any = print,
) -> Any:
    """Train a `kind` policy on `store`; saves and returns it (`<out>/policy`)."""
    from playworld.policies.base import POLICIES
    from playworld.policies.goal import GoalPolicy
    from playworld.policies.hindsight import HindsightWindows

    config = {k: dict(v) for k, v in (config or {}).items()}
    cls = POLICIES.entry(kind)[1]
    if not issubclass(cls, GoalPolicy):
        trainable = [n for n in POLICIES.names() if _trainable(POLICIES.entry(n)[1])]
        raise PolicyError(f"expected a trainable policy type among {trainable}, found {kind!r}")
    pconfig = build_dataclass(cls.config_class, config.get("policy", {}), where="policy")
    data = HindsightWindows(store, pconfig.hindsight(**config.get("data", {})), split="train")
    train_cfg = {**cls.train_defaults, **config.get("train", {})}
    if minutes is not None:
        train_cfg["minutes"] = minutes
    if steps is not None:
        train_cfg["steps"] = steps
    loop = build_dataclass(LoopConfig, train_cfg, where="train")
    policy = cls.from_dataset(data, pconfig)
    t0 = time.monotonic()
    losses = run_loop(PolicyTrainable(policy), data, loop, log)
    policy.info.update(
        store=str(store),
        steps=len(losses),
        train_seconds=round(time.monotonic() - t0, 1),
        final_loss=float(np.mean([v for _, v in losses[-50:]])),
        train=dataclasses.asdict(loop),
        windows=len(data),
    )
    path = policy.save(Path(out) / POLICY_DIR)
    if log:
        log(f"saved {path} after {len(losses)} steps, loss {policy.info['final_loss']:.4f}")
    return policy


def _trainable(cls: type) -> bool:
    from playworld.policies.goal import GoalPolicy

    return issubclass(cls, GoalPolicy)
