"""What every state world model shares: config, normalisation, chunk encoding, imagination.

A state model predicts future states from the last ``history`` states and the actions taken:

    predict(history (B, K, D), actions (B, C, A)) -> (B, C, D)      one chunk (C = chunk_len)
    imagine(history (B, K, D), actions (B, T, A)) -> (B, T, D)      any T, chunked autoregression

in the store's units (the state feature's, e.g. metres/radians). Row ``t`` of a store holds the
state at ``t`` and the action applied after it, so ``actions[:, i]`` moves ``state t+i`` to
``state t+i+1`` and the first action is the one recorded with the last history state.

Internally states are normalised (mean/std from the store) and the model predicts displacements
from the last history state, divided by ``delta_std`` (their per-dimension spread in training
data): a "nothing moves" prediction is 0, and slow dimensions are not drowned by fast ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from playworld.datasets import Normalizer
from playworld.errors import ConfigError
from playworld.training import Trainable, build_dataclass

NORMALIZER_EPS = 1e-3  # state units: a dimension that never moved keeps a 1 mm / mrad scale
DELTA_FLOOR = 1e-2  # normalised units: floor of the displacement spread of a resting dimension


@dataclass(frozen=True)
class StateModelConfig:
    """Shape and hyper-parameters of a state world model (one config for every kind).

    history K, horizon H (chunk length of the chunk models), width/depth of the residual MLP,
    EDM settings (diffusion only). ``state_dim``, ``action_dim``, ``normalizer`` and
    ``delta_std`` come from the training store (`fit`).
    """

    state_key: str = "state"
    action_key: str = "action"
    history: int = 4
    horizon: int = 16
    width: int = 512
    depth: int = 3
    emb_dim: int = 128
    sigma_data: float = 0.5
    sigma_max: float = 5.0
    sample_steps: int = 3
    state_dim: int = 0
    action_dim: int = 0
    normalizer: dict[str, Any] | None = None
    delta_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.history < 1 or self.horizon < 1 or self.width < 8 or self.depth < 1:
            raise ConfigError(
                "model.history, horizon and depth must be >= 1 and width >= 8, got "
                f"{self.history}, {self.horizon}, {self.depth}, {self.width}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["delta_std"] = list(self.delta_std) if self.delta_std is not None else None
        return d


class StateWorldModel(Trainable):
    """Base of the state models; subclasses set ``chunked`` and implement `_predict_target`
    and `_target_loss` on normalised tensors."""

    chunked: bool = True  # False: one step at a time (``horizon`` ignored)

    def __init__(self, config: StateModelConfig) -> None:
        super().__init__()
        if not config.state_dim or not config.action_dim or config.normalizer is None:
            raise ConfigError(
                "a state model needs state_dim, action_dim and a normalizer: use fit()"
            )
        self.cfg = config
        self.normalizer = Normalizer.from_json(config.normalizer)
        delta = config.delta_std or (1.0,) * config.state_dim
        self.register_buffer(
            "delta_std", torch.tensor(delta, dtype=torch.float32), persistent=False
        )

    # -- config / registry ---------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StateWorldModel:
        return cls(build_dataclass(StateModelConfig, config, "model"))

    @property
    def chunk_len(self) -> int:
        """States predicted per call: ``horizon`` for chunk models, 1 for one-step models."""
        return self.cfg.horizon if self.chunked else 1

    @classmethod
    def window_of(cls, config: StateModelConfig) -> int:
        """Training window length (history + chunk) of this class under ``config``."""
        return config.history + (config.horizon if cls.chunked else 1)

    @property
    def window(self) -> int:
        """Steps of a training window: history + the predicted chunk."""
        return self.cfg.history + self.chunk_len

    # -- encoding ------------------------------------------------------------------------------
    def _encode(
        self, history: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,K,D), (B,C,A) raw -> cond (B, K*D + C*A), last normalised state (B, 1, D)."""
        h = self.normalizer.normalize(self.cfg.state_key, history)
        a = self.normalizer.normalize(self.cfg.action_key, actions)
        return torch.cat([h.flatten(1), a.flatten(1)], dim=1), h[:, -1:]

    def _split(
        self, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s, a = batch[self.cfg.state_key], batch[self.cfg.action_key]
        k, c = self.cfg.history, self.chunk_len
        return s[:, :k], a[:, k - 1 : k - 1 + c], s[:, k : k + c]

    def targets(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """cond (B, ...), target displacements (B, C, D) in delta_std units."""
        hist, act, fut = self._split(batch)
        cond, last = self._encode(hist, act)
        fut_n = self.normalizer.normalize(self.cfg.state_key, fut)
        return cond, (fut_n - last) / self.delta_std

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        cond, target = self.targets(batch)
        loss = self._target_loss(cond, target)
        return loss, {}

    def _target_loss(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def _predict_target(
        self, cond: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def predict(
        self, history: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One chunk: history (B, K, D), actions (B, chunk_len, A) -> states (B, chunk_len, D)."""
        cond, last = self._encode(history, actions)
        target = self._predict_target(cond, generator)  # (B, C, D)
        fut_n = last + target * self.delta_std
        return self.normalizer.unnormalize(self.cfg.state_key, fut_n)

    @torch.no_grad()
    def imagine(
        self, history: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """history (B, K, D), actions (B, T, A) -> imagined states (B, T, D) after each action."""
        k, c = self.cfg.history, self.chunk_len
        if history.shape[1] < k:
            raise ConfigError(f"imagine needs {k} history states, got {history.shape[1]}")
        if actions.shape[-1] != self.cfg.action_dim:
            raise ConfigError(
                f"actions have {actions.shape[-1]} dims, the model was trained on {self.cfg.action_dim}"
            )
        states, out, t = history[:, -k:].float(), [], actions.shape[1]
        for i in range(0, t, c):
            chunk = actions[:, i : i + c].float()
            n = chunk.shape[1]
            if n < c:  # the last partial chunk: repeat the last action, keep n predictions
                chunk = torch.cat([chunk, chunk[:, -1:].expand(-1, c - n, -1)], dim=1)
            pred = self.predict(states, chunk, generator)[:, :n]
            out.append(pred)
            states = torch.cat([states, pred], dim=1)[:, -k:]
        return torch.cat(out, dim=1)


def fit(cls: type[StateWorldModel], config: StateModelConfig, dataset: Any) -> StateWorldModel:
    """A model of class ``cls`` sized and normalised for ``dataset`` (a `WindowArrays` whose
    windows are ``history + chunk_len`` long): dims, normaliser, displacement spread."""
    s_key, a_key = config.state_key, config.action_key
    norm = Normalizer.from_stats(
        dataset.stats, {s_key: "mean_std", a_key: "mean_std"}, eps=NORMALIZER_EPS
    )
    config = dataclasses.replace(
        config,
        state_dim=int(dataset.features[s_key].shape[0]),
        action_dim=int(dataset.features[a_key].shape[0]),
        normalizer=norm.to_json(),
    )
    probe = cls(config)
    rows, _ = dataset.sampler.batch_indices(np.arange(len(dataset)))
    s = norm.normalize(s_key, dataset.arrays[s_key][rows])  # (N, T, D)
    k = config.history
    disp = s[:, k : k + probe.chunk_len] - s[:, k - 1 : k]
    delta = np.maximum(disp.reshape(-1, disp.shape[-1]).std(axis=0), DELTA_FLOOR)
    return cls(dataclasses.replace(config, delta_std=tuple(float(x) for x in delta)))
