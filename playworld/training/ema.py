"""Exponential moving average of a model's weights.

Our own ~30 lines rather than diffusers' ``EMAModel``: its state is a list of shadow tensors plus
Python scalars, while ours is a plain state dict keyed like the model's, so ``ema.safetensors``
loads straight into the model (``load_model(..., ema=True)``) with no conversion.
"""

from __future__ import annotations

import torch


class EMA:
    """``shadow = d * shadow + (1 - d) * weights`` after every step, with DIAMOND/diffusers'
    warm-up ``d = min(decay, (1 + n) / (10 + n))`` so early averages are not stuck at init."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = {
            k: v.detach().clone().float()
            for k, v in model.state_dict().items()
            if v.dtype.is_floating_point
        }

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        n = self.num_updates
        d = min(self.decay, (1 + n) / (10 + n))
        state = model.state_dict()
        # one fused call over all tensors, not a Python loop of lerp_ (see the loop's AdamW)
        torch._foreach_lerp_(
            list(self.shadow.values()), [state[k].detach().float() for k in self.shadow], 1.0 - d
        )

    def state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with the averaged weights (other buffers as they are)."""
        out = {}
        for k, v in model.state_dict().items():
            out[k] = self.shadow[k].to(v.dtype) if k in self.shadow else v
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        for k in self.shadow:
            if k not in state:
                raise KeyError(k)
            self.shadow[k].copy_(state[k].float())
