"""Small network pieces shared by the world models: noise embedding, residual MLP."""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierEmbedding(nn.Module):
    """c_noise (B,) -> (B, dim) random Fourier features (EDM/DIAMOND's noise embedding)."""

    def __init__(self, dim: int, scale: float = 16.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError("FourierEmbedding dim must be even")
        self.register_buffer(
            "freqs", torch.randn(dim // 2, generator=torch.Generator().manual_seed(0)) * scale
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x.float()[:, None] * self.freqs[None]
        return torch.cat([f.cos(), f.sin()], dim=-1)


class ResBlock(nn.Module):
    """x + W2(silu(W1(LN(x)) + E(emb)))."""

    def __init__(self, width: int, emb_dim: int = 0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.emb = nn.Linear(emb_dim, width) if emb_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc1(self.norm(x))
        if self.emb is not None and emb is not None:
            h = h + self.emb(emb)
        return x + self.fc2(nn.functional.silu(h))


class ResMLP(nn.Module):
    """(B, d_in) [+ emb (B, emb_dim)] -> (B, d_out): input projection, residual blocks, output."""

    def __init__(self, d_in: int, d_out: int, width: int, depth: int, emb_dim: int = 0) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(ResBlock(width, emb_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, d_out))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
