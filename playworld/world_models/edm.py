"""EDM diffusion (Karras et al. 2022) as DIAMOND uses it: preconditioning, loss, Euler sampler.

The preconditioning (c_in, c_skip, c_out, c_noise) and the Karras sigma schedule come from
diffusers' ``EDMEulerScheduler``; the network sees ``c_in * x_noisy`` and ``c_noise`` and
outputs F, and the denoised estimate is ``c_skip * x_noisy + c_out * F``. Training draws
``ln sigma ~ N(p_mean, p_std^2)`` and regresses F on its target (the EDM-weighted loss).
Sampling is DIAMOND's deterministic Euler over a few Karras sigmas, the last step landing on 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from playworld.errors import ConfigError

# (scaled noisy sample, c_noise (B,)) -> F, same shape as the sample
NetFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EDMConfig:
    """Noise levels in units of the (normalised) sample; DIAMOND's defaults.

    Training draws ``ln sigma ~ N(p_mean, p_std^2)``, except a fraction ``p_sigma_max`` of the
    samples, drawn at ``sigma_max``: the sampler's first network evaluation (with one Euler step,
    its only one) is at ``sigma_max``, where the log-normal puts ~4% of the training signal.
    There the denoiser is a regression of the mean sample on its conditioning alone."""

    sigma_data: float = 0.5
    sigma_min: float = 2e-3
    sigma_max: float = 5.0
    rho: float = 7.0
    p_mean: float = -0.4
    p_std: float = 1.2
    sample_steps: int = 3
    p_sigma_max: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max or self.sigma_data <= 0 or self.p_std <= 0:
            raise ConfigError("edm: need 0 < sigma_min < sigma_max, sigma_data > 0, p_std > 0")
        if not 0 <= self.p_sigma_max < 1:
            raise ConfigError(f"edm.p_sigma_max must be in [0, 1), got {self.p_sigma_max}")
        if self.sample_steps < 1:
            raise ConfigError(f"edm.sample_steps must be >= 1, got {self.sample_steps}")


class EDM:
    """Loss and sampler of one EDM diffusion process (stateless apart from its config)."""

    def __init__(self, config: EDMConfig) -> None:
        from diffusers import EDMEulerScheduler

        self.config = config
        self.scheduler = EDMEulerScheduler(
            sigma_min=config.sigma_min,
            sigma_max=config.sigma_max,
            sigma_data=config.sigma_data,
            rho=config.rho,
            prediction_type="epsilon",  # with EDM preconditioning: the network outputs F
        )

    def _expand(self, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return sigma.reshape(-1, *([1] * (x.dim() - 1)))

    def loss(self, net: NetFn, x0: torch.Tensor) -> torch.Tensor:
        """Per-sample EDM loss (B,) of ``net`` on clean samples ``x0`` (B, ...)."""
        c = self.config
        b = x0.shape[0]
        sigma = torch.exp(torch.randn(b, device=x0.device) * c.p_std + c.p_mean)  # (B,)
        if c.p_sigma_max > 0:
            at_max = torch.rand(b, device=x0.device) < c.p_sigma_max
            sigma = torch.where(at_max, torch.full_like(sigma, c.sigma_max), sigma)
        s = self._expand(sigma, x0)
        noisy = x0 + torch.randn_like(x0) * s
        c_skip = c.sigma_data**2 / (s**2 + c.sigma_data**2)
        c_out = s * c.sigma_data / (s**2 + c.sigma_data**2).sqrt()
        out = net(
            self.scheduler.precondition_inputs(noisy, s), self.scheduler.precondition_noise(sigma)
        )
        target = (x0 - c_skip * noisy) / c_out
        return ((out.float() - target) ** 2).flatten(1).mean(1)

    @torch.no_grad()
    def sample(
        self,
        net: NetFn,
        shape: tuple[int, ...],
        *,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """A sample (shape) by deterministic Euler over ``steps`` Karras sigmas (default config)."""
        from diffusers import EDMEulerScheduler

        sched = EDMEulerScheduler.from_config(self.scheduler.config)  # set_timesteps mutates
        sched.set_timesteps(steps or self.config.sample_steps)
        sigmas = sched.sigmas.to(torch.float32).tolist()
        x = torch.randn(shape, generator=generator, device=device) * sigmas[0]
        b = shape[0]
        for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
            sigma = torch.full((b,), s, device=x.device)
            out = net(
                self.scheduler.precondition_inputs(x, s), self.scheduler.precondition_noise(sigma)
            )
            denoised = self.scheduler.precondition_outputs(x, out.float(), s)
            x = x + (x - denoised) / s * (s_next - s)  # Euler step of dx/dsigma = (x - D) / sigma
        return x
