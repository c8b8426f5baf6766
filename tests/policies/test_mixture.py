"""The discretised logistic-mixture head: its likelihood against a numerical integral of the
mixture density, normalisation over the bins, and fitting a two-mode distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playworld.policies.mixture import (
    LogisticMixtureHead,
    logistic_mixture_log_prob,
    logistic_mixture_mode,
    logistic_mixture_sample,
)

BINS = 256


def _density(u: np.ndarray, w: np.ndarray, mu: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Mixture density at points u (N,) for one dimension: weights w, means mu, scales s (K,)."""
    e = np.exp(-np.abs((u[:, None] - mu) / s))  # the logistic density is symmetric: no overflow
    return (w * e / (s * (1.0 + e) ** 2)).sum(-1)


def _integral(lo: float, hi: float, w, mu, s) -> float:
    """Trapezoid rule, component by component over [lo, hi] cut to mu +- 40 s (outside lies
    less than 1e-17 of a component's mass), 20001 points each: resolution s / 250."""
    total = 0.0
    for k in range(len(w)):
        a, b = max(lo, mu[k] - 40 * s[k]), min(hi, mu[k] + 40 * s[k])
        if a < b:
            u = np.linspace(a, b, 20_001)
            total += float(np.trapezoid(_density(u, w[k : k + 1], mu[k : k + 1], s[k : k + 1]), u))
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_likelihood_matches_numerical_integral(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, k = 7, 10
    logits = rng.normal(size=(a, k))
    means = rng.uniform(-1.1, 1.1, size=(a, k))
    log_s = rng.uniform(-3.0, 0.5, size=(a, k))
    # one interior grid point per dimension, the two edges in the first two dimensions
    grid = np.linspace(-1.0, 1.0, BINS)
    x = grid[rng.integers(1, BINS - 1, size=a)]
    x[0], x[1] = -1.0, 1.0
    got = logistic_mixture_log_prob(
        torch.tensor(x), torch.tensor(logits), torch.tensor(means), torch.tensor(log_s), BINS
    ).numpy()
    h = 1.0 / (BINS - 1)
    for d in range(a):
        w = np.exp(logits[d] - logits[d].max())
        w /= w.sum()
        s = np.exp(log_s[d])
        lo = -60.0 if x[d] == -1.0 else x[d] - h
        hi = 60.0 if x[d] == 1.0 else x[d] + h
        expected = _integral(lo, hi, w, means[d], s)
        assert got[d] == pytest.approx(np.log(expected), abs=2e-3), d


def test_bins_sum_to_one_and_off_grid_values_snap() -> None:
    torch.manual_seed(0)
    logits, means, log_s = torch.randn(3, 10), torch.rand(3, 10) * 2 - 1, torch.rand(3, 10) * -4
    grid = torch.linspace(-1, 1, BINS, dtype=torch.float64)
    lp = logistic_mixture_log_prob(
        grid[:, None].expand(BINS, 3), logits.double(), means.double(), log_s.double(), BINS
    )
    assert torch.exp(lp).sum(0).numpy() == pytest.approx(np.ones(3), abs=1e-6)
    # a value a third of a bin off its grid point has that grid point's probability
    off = grid[100] + (2.0 / (BINS - 1)) / 3
    a = logistic_mixture_log_prob(
        grid[100].expand(1, 3), logits.double(), means.double(), log_s.double()
    )
    b = logistic_mixture_log_prob(off.expand(1, 3), logits.double(), means.double(), log_s.double())
    assert torch.allclose(a, b)


def test_head_fits_two_modes_and_samples_both() -> None:
    """1-D actions at -0.6 or +0.5 (equally often): the mixture learns both, a sample hits each."""
    torch.manual_seed(0)
    head = LogisticMixtureHead(4, action_dim=1, mixtures=10, bins=BINS)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    h = torch.ones(128, 4)
    y = torch.where(torch.rand(128, 1) < 0.5, -0.6, 0.5)
    first = head.nll(h, y).mean().item()
    for _ in range(150):
        loss = head.nll(h, y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 3.0
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        draws = logistic_mixture_sample(*head(h), generator=gen)[:, 0]
        mode = logistic_mixture_mode(*head(h), BINS)
    near = lambda c: ((draws - c).abs() < 0.05).float().mean().item()  # noqa: E731
    assert near(-0.6) > 0.3 and near(0.5) > 0.3
    assert min(abs(mode[0, 0].item() + 0.6), abs(mode[0, 0].item() - 0.5)) < 0.01


def test_mode_is_the_most_probable_bin_not_the_heaviest_component() -> None:
    """70% of the weight on a broad component centred at 0, 30% on a sharp one at the upper
    edge: the upper edge bin holds more probability than any bin near 0."""
    logits = torch.log(torch.tensor([[0.7, 0.3]]))
    means = torch.tensor([[0.0, 0.999]])
    log_s = torch.log(torch.tensor([[0.5, 0.001]]))
    assert logistic_mixture_mode(logits, means, log_s, BINS).item() == 1.0


def test_head_learns_a_binary_action_at_the_edges() -> None:
    """A gripper-like action: -1 when the feature is negative, +1 otherwise. The edge bins must
    reach most of the probability (tanh-bounded means capped them near 0.5: a coin flip)."""
    torch.manual_seed(0)
    head = LogisticMixtureHead(1, action_dim=1, mixtures=10, bins=BINS)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    x = torch.randn(256, 1)
    y = torch.where(x < 0, -1.0, 1.0)
    for _ in range(300):
        loss = head.nll(x, y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p_right = logistic_mixture_log_prob(y, *head(x), BINS).exp()[:, 0]
        mode = logistic_mixture_mode(*head(x), BINS)
    assert p_right.mean().item() > 0.8
    assert (mode == y).float().mean().item() > 0.95
