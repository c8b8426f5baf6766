"""Play-LMP's pieces: the balanced KL (zero when posterior equals prior, the closed form of
torch.distributions otherwise, gradients split by alpha) and plan recognition reading each window
up to its length."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from playworld.errors import ConfigError
from playworld.policies.play_lmp import PlayLMPConfig, PlayLMPNet, balanced_kl, gaussian_kl


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


@pytest.mark.parametrize("recognition", ["gru", "transformer"])
def test_recognition_reads_the_window_up_to_its_length(recognition: str) -> None:
    torch.manual_seed(2)
    config = PlayLMPConfig(recognition=recognition, gru=16, latent=4, min_window=4, max_window=8)
    net = PlayLMPNet(config, obs_dim=6, goal_dim=6, action_dim=7)
    obs, goal, lengths = torch.randn(5, 8, 6), torch.randn(5, 6), torch.tensor([4, 8, 5, 6, 4])
    mu, log_std = net.recognise(obs, goal, lengths)
    assert mu.shape == log_std.shape == (5, 4)
    past = obs.clone()
    inside = obs.clone()
    for i, n in enumerate(lengths):
        past[i, n:] = 100.0  # steps after the window's end: padding
        inside[i, n - 1] += 1.0  # the window's last step
    assert torch.allclose(net.recognise(past, goal, lengths)[0], mu, atol=1e-5)
    changed = (net.recognise(inside, goal, lengths)[0] - mu).abs().amax(-1)
    assert (changed > 1e-4).all()
    assert ((net.recognise(obs, goal + 1.0, lengths)[0] - mu).abs().amax(-1) > 1e-4).all()


def test_unknown_recognition_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match="recognition among"):
        PlayLMPConfig(recognition="lstm")
