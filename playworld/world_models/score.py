"""Scoring world models against the twin's recorded ground truth on held-out episodes.

State models: from every start ``t`` (every ``stride`` steps) of every held-out episode, imagine
``max(horizons)`` steps with the recorded actions and compare with the recorded states.
Normalised RMSE (per dimension divided by the store's std, as the model's normaliser does) at
each horizon h, for all/arm/object dimensions. A diffusion model draws ``samples`` rollouts: its
RMSE is that of their mean, and CRPS (ensemble estimator, normalised units) scores the spread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playworld.errors import ConfigError
from playworld.world_models.data import WindowArrays
from playworld.world_models.groups import state_groups

HORIZONS = (1, 4, 16, 64)


def crps(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Ensemble CRPS per element: samples (S, ...), truth (...) -> (...).

    ``E|X - y| - 0.5 E|X - X'|`` over the S samples (0 for a perfect point forecast)."""
    term1 = (samples - truth[None]).abs().mean(0)
    term2 = (samples[:, None] - samples[None, :]).abs().mean((0, 1))
    return term1 - 0.5 * term2


def score_state(
    model: Any,
    store: str,
    *,
    split: str = "val",
    val_ratio: float = 0.2,
    seed: int = 0,
    horizons: Sequence[int] = HORIZONS,
    samples: int = 8,
    stride: int = 16,
    max_starts: int = 256,
) -> dict[str, Any]:
    """Normalised RMSE (and CRPS) vs horizon of a state model on ``split`` episodes.

    Returns ``{"kind", "starts", "horizons", "rmse": {group: [per h]}, "crps": {...}|None}``.
    """
    cfg = model.cfg
    k, hmax = cfg.history, max(horizons)
    data = WindowArrays(
        store,
        [cfg.state_key, cfg.action_key],
        k + hmax,
        split=split,
        val_ratio=val_ratio,
        seed=seed,
        stride=stride,
    )
    if data.features[cfg.action_key].shape[0] != cfg.action_dim:
        raise ConfigError(
            f"{store}: {cfg.action_key!r} has {data.features[cfg.action_key].shape[0]} dims, "
            f"the model was trained on {cfg.action_dim}"
        )
    idx = np.arange(len(data))
    if len(idx) > max_starts:
        idx = np.random.default_rng(seed).choice(idx, max_starts, replace=False)
    batch = data.__getitems__(idx)
    s, a = batch[cfg.state_key], batch[cfg.action_key]
    hist, acts, truth = s[:, :k], a[:, k - 1 : k - 1 + hmax], s[:, k : k + hmax]
    stochastic = model.kind == "state_diffusion"
    n = samples if stochastic else 1
    g = torch.Generator().manual_seed(seed)
    pred = model.imagine(hist.repeat(n, 1, 1), acts.repeat(n, 1, 1), generator=g)
    pred = pred.view(n, len(idx), hmax, -1)
    norm = model.normalizer
    pred_n = norm.normalize(cfg.state_key, pred)  # (S, B, T, D)
    true_n = norm.normalize(cfg.state_key, truth)  # (B, T, D)
    err = pred_n.mean(0) - true_n
    groups = state_groups(cfg.state_key, cfg.state_dim)
    hs = [h for h in horizons]
    rmse = {
        g_: [float(err[:, h - 1][:, d].pow(2).mean().sqrt()) for h in hs]
        for g_, d in groups.items()
    }
    out: dict[str, Any] = {
        "kind": model.kind,
        "starts": int(len(idx)),
        "horizons": hs,
        "rmse": rmse,
    }
    if stochastic and n > 1:
        c = crps(pred_n, true_n)  # (B, T, D)
        out["crps"] = {
            g_: [float(c[:, h - 1][:, d].mean()) for h in hs] for g_, d in groups.items()
        }
        per = (pred_n - true_n[None]).pow(2)
        out["rmse_per_sample"] = {
            g_: [float(per[:, :, h - 1][..., d].mean().sqrt()) for h in hs]
            for g_, d in groups.items()
        }
    return out


def write_report(result: dict[str, Any], out: str | Path) -> list[str]:
    """Write ``score.json`` (+ ``score.png``) into ``out``; return the table's lines."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "score.json").write_text(json.dumps(result, indent=2))
    lines = table_lines(result)
    _plot(result, out / "score.png")
    return lines


def table_lines(result: dict[str, Any]) -> list[str]:
    hs = result["horizons"]
    head = f"{'metric':<22}" + "".join(f"{'h=' + str(h):>10}" for h in hs)
    lines = [f"{result['kind']} on {result.get('starts', '?')} held-out starts", head]
    for name in ("rmse", "crps", "rmse_per_sample", "psnr", "psnr_copy"):
        block = result.get(name)
        if not block:
            continue
        for group, values in block.items():
            lines.append(f"{name + ' ' + group:<22}" + "".join(f"{v:>10.4f}" for v in values))
    for key in ("frame_err_vs_copy", "frame_action_sensitivity"):
        if key in result:
            lines.append(f"{key}: {result[key]:.4f}")
    return lines


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = [n for n in ("rmse", "crps", "psnr", "psnr_copy") if result.get(n)]
    fig, axes = plt.subplots(1, len(blocks), figsize=(4 * len(blocks), 3.2), squeeze=False)
    for ax, name in zip(axes[0], blocks, strict=True):
        for group, values in result[name].items():
            ax.plot(result["horizons"], values, marker="o", label=group)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("horizon (steps)")
        ax.set_title(f"{result['kind']}: {name}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
