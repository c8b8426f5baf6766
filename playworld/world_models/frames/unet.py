"""A small 2-D UNet for next-frame denoising (DIAMOND's shape, sized for a CPU by default).

Residual blocks with adaptive group norms (the conditioning vector, noise level + actions,
sets a per-channel scale and shift of both norms of every block, as DIAMOND's AdaGroupNorm), one stride-2 down/up sampling between levels, skip
connections by concatenation. ``channels=(64, 64, 64, 64)``, ``blocks=2`` is DIAMOND's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _groups(c: int) -> int:
    return next(g for g in (8, 4, 2, 1) if c % g == 0)


class ResBlock(nn.Module):
    """(B, cin, H, W), emb (B, E) -> (B, cout, H, W). ``ada_in``: the conditioning also sets the
    scale and shift of the input's group norm (DIAMOND's AdaGroupNorm on both norms)."""

    def __init__(self, cin: int, cout: int, emb_dim: int, ada_in: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin, affine=not ada_in)
        self.emb1 = nn.Linear(emb_dim, 2 * cin) if ada_in else None
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(cout), cout, affine=False)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        if self.emb1 is not None:
            scale, shift = self.emb1(emb)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv1(nn.functional.silu(h))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(nn.functional.silu(h))


class UNet(nn.Module):
    """(B, in_ch, H, W), emb (B, emb_dim) -> (B, out_ch, H, W); H, W divisible by 2^(levels-1)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        channels: Sequence[int],
        blocks: int,
        emb_dim: int,
        ada_in: bool = True,
    ) -> None:
        super().__init__()
        channels = list(channels)
        self.conv_in = nn.Conv2d(in_ch, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, c = [], channels[0]
        for i, ch in enumerate(channels):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(c, ch, emb_dim, ada_in))
                c = ch
                skips.append(c)
            self.down.append(level)
            last = i == len(channels) - 1
            self.downsample.append(
                nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1)
            )
        self.mid = ResBlock(c, c, emb_dim, ada_in)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, ch in reversed(list(enumerate(channels))):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(c + skips.pop(), ch, emb_dim, ada_in))
                c = ch
            self.up.append(level)
            self.upsample.append(
                nn.Identity()
                if i == 0
                else nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)
                )
            )
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv2d(c, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        skips = []
        for level, down in zip(self.down, self.downsample, strict=True):
            for block in level:
                h = block(h, emb)
                skips.append(h)
            h = down(h)
        h = self.mid(h, emb)
        for level, up in zip(self.up, self.upsample, strict=True):
            for block in level:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            h = up(h)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))
