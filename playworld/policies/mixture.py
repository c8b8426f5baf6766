"""The discretised logistic-mixture action head of Play-LMP, MCIL and CALVIN (PixelCNN++'s
likelihood), for actions normalised to [-1, 1].

Each action dimension d has its own mixture of K logistics (weights pi_k = softmax(logits)_k,
means mu_k, scales s_k = exp(log_s_k)). The interval [-1, 1] is cut into `bins` equal bins of
width 2 / (bins - 1) centred on the grid points -1, ..., 1; the probability of the bin around x is

    P(x) = sum_k pi_k [sigmoid((x + h - mu_k) / s_k) - sigmoid((x - h - mu_k) / s_k)],  h = 1/(bins-1)

with the two outer bins extended to -inf and +inf (so the bins' probabilities sum to 1 and the
gripper's +-1 endpoints get finite mass). Values are computed in log space; where a bin's mass
underflows (a very sharp component far away) the density times the bin width stands in for it.

Shapes: params are (..., A, K); actions (..., A); log-likelihoods (..., A) (sum over A for a
joint log-likelihood of an action).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Clamp of log scales: below, a bin's mass underflows float32; above, the mixture is flat.
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 2.0


def logistic_mixture_log_prob(
    x: torch.Tensor,
    logits: torch.Tensor,
    means: torch.Tensor,
    log_scales: torch.Tensor,
    bins: int = 256,
) -> torch.Tensor:
    """log P(x) of the discretised mixture, per dimension.

    Args:
        x: (..., A) actions in [-1, 1]; each is snapped to the nearest of the `bins` grid
            points (values outside are clamped: they belong to an edge bin).
        logits, means, log_scales: (..., A, K) mixture parameters.
        bins: number of bins over [-1, 1].

    Returns:
        (..., A) log-probabilities of the bins holding `x`.
    """
    half = 1.0 / (bins - 1)
    # snapped to its bin's grid point: P is then a true distribution over the `bins` values
    x = (torch.round((x.clamp(-1.0, 1.0) + 1.0) / (2.0 * half)) * (2.0 * half) - 1.0).unsqueeze(-1)
    log_scales = log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
    inv_s = torch.exp(-log_scales)
    centred = x - means
    plus_in = inv_s * (centred + half)
    min_in = inv_s * (centred - half)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid(plus_in): the lowest bin
    log_one_minus_cdf_min = -F.softplus(min_in)  # log (1 - sigmoid(min_in)): the highest bin
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * centred
    # log density at x times the bin width: stands in where the bin's mass underflows
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in) + math.log(2.0 * half)
    log_mid = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp_min(1e-12)), log_pdf_mid)
    edge = 1.0 - half  # grid points beyond +-edge are the two outer bins
    log_probs = torch.where(
        x < -edge, log_cdf_plus, torch.where(x > edge, log_one_minus_cdf_min, log_mid)
    )  # (..., A, K)
    return torch.logsumexp(log_probs + F.log_softmax(logits, dim=-1), dim=-1)


def logistic_mixture_sample(
    logits: torch.Tensor,
    means: torch.Tensor,
    log_scales: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A draw (..., A) in [-1, 1]: a component by its weight, then a logistic sample from it."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).clamp(1e-5, 1 - 1e-5)
    k = torch.argmax(logits - torch.log(-torch.log(u)), dim=-1, keepdim=True)  # Gumbel-max
    mu = means.gather(-1, k).squeeze(-1)
    s = torch.exp(log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)).gather(-1, k).squeeze(-1)
    v = torch.rand(mu.shape, generator=generator, dtype=mu.dtype).clamp(1e-5, 1 - 1e-5)
    return (mu + s * (torch.log(v) - torch.log1p(-v))).clamp(-1.0, 1.0)


def logistic_mixture_mode(
    logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, bins: int = 256
) -> torch.Tensor:
    """The most probable of the `bins` grid values of each dimension: (..., A) in [-1, 1].

    Not the heaviest component's mean: a broad component can hold most of the weight while an
    edge bin (the gripper's open or closed) holds most of the probability.
    """
    grid = torch.linspace(-1.0, 1.0, bins, dtype=means.dtype, device=means.device)  # (N,)
    shape = (bins, *means.shape[:-1])  # (N, ..., A)
    x = grid.view(bins, *([1] * (means.dim() - 1))).expand(shape)
    lp = logistic_mixture_log_prob(x, logits[None], means[None], log_scales[None], bins)
    return grid[lp.argmax(0)]


class LogisticMixtureHead(nn.Module):
    """Features (..., F) -> mixture parameters for an action (A,): logits, means (unbounded),
    log scales, each (..., A, K). `nll` is the negative log-likelihood per action, `act` draws or takes the
    most probable bin."""

    def __init__(self, in_features: int, action_dim: int, mixtures: int = 10, bins: int = 256):
        super().__init__()
        self.action_dim, self.mixtures, self.bins = action_dim, mixtures, bins
        self.proj = nn.Linear(in_features, 3 * action_dim * mixtures)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Means are unbounded (as in PixelCNN++ and CALVIN's decoder). Bounding them to [-1, 1]
        # (tanh) starves the edge bins: the bin [1 - h, inf) only gets most of a component's
        # mass when its mean lies past 1 - h, a tanh argument past ~3 with a vanishing
        # gradient, so the gripper's 0/1 and the clipped +-max position steps (half of play's
        # actions) stayed at ~50% probability: the fitted gripper head was a coin flip.
        p = self.proj(h).unflatten(-1, (3, self.action_dim, self.mixtures))
        return p[..., 0, :, :], p[..., 1, :, :], p[..., 2, :, :]

    def nll(self, h: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """-log P(actions) summed over the action's dimensions: (...,)."""
        logits, means, log_scales = self(h)
        return -logistic_mixture_log_prob(actions, logits, means, log_scales, self.bins).sum(-1)

    def act(
        self, h: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Actions (..., A) in [-1, 1]."""
        logits, means, log_scales = self(h)
        if sample:
            return logistic_mixture_sample(logits, means, log_scales, generator)
        return logistic_mixture_mode(logits, means, log_scales, self.bins)
