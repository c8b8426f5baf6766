"""The three state world models: EDM diffusion over chunks, and two deterministic baselines."""

from __future__ import annotations

import torch

from playworld.training import register_model
from playworld.world_models.edm import EDM, EDMConfig
from playworld.world_models.nn import FourierEmbedding, ResMLP
from playworld.world_models.state.base import StateModelConfig, StateWorldModel


@register_model("state_diffusion")
class StateDiffusion(StateWorldModel):
    """Diffusion over a chunk of H future states given K past states and the H actions.

    Denoiser: a residual MLP over the flattened noisy chunk and the condition, the noise level
    (EDM c_noise, Fourier features) added in every block. EDM preconditioning, loss and Euler
    sampler (`EDM`); ``sample_steps`` at inference.
    """

    def __init__(self, config: StateModelConfig) -> None:
        super().__init__(config)
        k, h, d, a = config.history, config.horizon, config.state_dim, config.action_dim
        self.edm = EDM(
            EDMConfig(
                sigma_data=config.sigma_data,
                sigma_max=config.sigma_max,
                sample_steps=config.sample_steps,
            )
        )
        self.noise_emb = torch.nn.Sequential(
            FourierEmbedding(config.emb_dim),
            torch.nn.Linear(config.emb_dim, config.emb_dim),
            torch.nn.SiLU(),
        )
        self.net = ResMLP(h * d + k * d + h * a, h * d, config.width, config.depth, config.emb_dim)

    def _denoiser(self, cond: torch.Tensor):
        shape = (cond.shape[0], self.chunk_len, self.cfg.state_dim)

        def net(x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
            out = self.net(torch.cat([x.flatten(1), cond], dim=1), self.noise_emb(c_noise))
            return out.view(shape)

        return net

    def _target_loss(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # targets are in delta_std units (spread ~1); sigma_data rescales them to EDM's 0.5
        x0 = target * self.cfg.sigma_data
        return self.edm.loss(self._denoiser(cond), x0).mean()

    def _predict_target(
        self, cond: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        shape = (cond.shape[0], self.chunk_len, self.cfg.state_dim)
        x = self.edm.sample(self._denoiser(cond), shape, generator=generator, device=cond.device)
        return x / self.cfg.sigma_data


@register_model("state_chunk_mlp")
class StateChunkMLP(StateWorldModel):
    """Deterministic baseline with the diffusion model's inputs and outputs (MSE regression)."""

    def __init__(self, config: StateModelConfig) -> None:
        super().__init__(config)
        k, h, d, a = config.history, config.horizon, config.state_dim, config.action_dim
        self.net = ResMLP(k * d + h * a, h * d, config.width, config.depth)

    def _target_loss(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.net(cond).view_as(target), target)

    def _predict_target(
        self, cond: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return self.net(cond).view(cond.shape[0], self.chunk_len, self.cfg.state_dim)


@register_model("state_one_step_mlp")
class StateOneStepMLP(StateWorldModel):
    """Deterministic baseline: the next state from K past states and one action, rolled out
    step by step (``chunk_len`` 1; ``horizon`` is ignored)."""

    chunked = False

    def __init__(self, config: StateModelConfig) -> None:
        super().__init__(config)
        k, d, a = config.history, config.state_dim, config.action_dim
        self.net = ResMLP(k * d + a, d, config.width, config.depth)

    def _target_loss(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.net(cond).view_as(target), target)

    def _predict_target(
        self, cond: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return self.net(cond).view(cond.shape[0], 1, self.cfg.state_dim)
