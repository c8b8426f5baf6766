"""Play-LMP's pieces: the balanced KL (zero when posterior equals prior, the closed form of
torch.distributions otherwise, gradients split by alpha) and the loss falling on play windows."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from playworld.policies.play_lmp import balanced_kl, gaussian_kl


def test_kl_is_zero_when_posterior_equals_prior() -> None:
    torch.manual_seed(0)
    mu, log_std = torch.randn(8, 32), torch.randn(8, 32) * 0.5
    assert torch.allclose(
        balanced_kl((mu, log_std), (mu.clone(), log_std.clone())), torch.zeros(8), atol=1e-6
    )


def test_kl_matches_torch_distributions_and_balances_gradients() -> None:
    torch.manual_seed(1)
    mq, sq, mp, sp = (torch.randn(5, 4, requires_grad=True) for _ in range(4))
    expected = kl_divergence(Normal(mq, sq.exp()), Normal(mp, sp.exp())).sum(-1)
    assert torch.allclose(gaussian_kl(mq, sq, mp, sp), expected, atol=1e-5)
    kl = balanced_kl((mq, sq), (mp, sp), alpha=0.8)
    assert torch.allclose(kl, expected, atol=1e-5)
    assert (kl > 0).all()
    kl.sum().backward()
    full_q = torch.autograd.grad(expected.sum(), mq, retain_graph=True)[0]
    full_p = torch.autograd.grad(expected.sum(), mp)[0]
    # the posterior gets (1 - alpha) of the gradient, the prior alpha
    assert torch.allclose(mq.grad, 0.2 * full_q, atol=1e-5)
    assert torch.allclose(mp.grad, 0.8 * full_p, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_kl_extremes_still_equal_the_kl(alpha: float) -> None:
    a, b = (torch.randn(3, 6), torch.zeros(3, 6)), (torch.zeros(3, 6), torch.zeros(3, 6))
    assert torch.allclose(balanced_kl(a, b, alpha), gaussian_kl(*a, *b))
