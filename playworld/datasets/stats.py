"""Summary statistics per feature, merged episode by episode on commit.

For every non-image feature: count, mean, std, min, max over all committed steps (exact, merged
with Chan's parallel update), and for actions the quantiles that normalisers clip to. For images:
per-channel mean and std of pixel values in [0, 1], from a strided subsample of every frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)
IMAGE_STRIDE = 16  # pixels; a 480x640 frame contributes 30x40 samples


def moments(x: np.ndarray) -> dict[str, Any]:
    """Moments of ``x`` (N, *shape) over its first axis, as JSON-native lists."""
    x = np.asarray(x, dtype=np.float64)
    return {
        "count": int(x.shape[0]),
        "mean": x.mean(axis=0).tolist(),
        "m2": ((x - x.mean(axis=0)) ** 2).sum(axis=0).tolist(),
        "min": x.min(axis=0).tolist(),
        "max": x.max(axis=0).tolist(),
    }


def image_moments(frames_sum: np.ndarray, frames_sumsq: np.ndarray, count: int) -> dict[str, Any]:
    """Per-channel moments from running sums of pixel values in [0, 1]."""
    mean = frames_sum / max(count, 1)
    return {
        "count": int(count),
        "mean": mean.tolist(),
        "m2": np.maximum(frames_sumsq - count * mean**2, 0.0).tolist(),
        "min": [0.0] * len(mean),
        "max": [1.0] * len(mean),
    }


def merge(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two moment records (Chan et al.'s parallel variance update)."""
    if a is None or a["count"] == 0:
        return dict(b)
    na, nb = a["count"], b["count"]
    ma, mb = np.asarray(a["mean"]), np.asarray(b["mean"])
    n = na + nb
    delta = mb - ma
    return {
        "count": n,
        "mean": (ma + delta * nb / n).tolist(),
        "m2": (np.asarray(a["m2"]) + np.asarray(b["m2"]) + delta**2 * na * nb / n).tolist(),
        "min": np.minimum(a["min"], b["min"]).tolist(),
        "max": np.maximum(a["max"], b["max"]).tolist(),
    }


def finalize(record: Mapping[str, Any]) -> dict[str, Any]:
    """Public statistics (mean, std, min, max, count, quantiles) from a moment record."""
    out = {k: record[k] for k in ("count", "mean", "min", "max")}
    out["std"] = np.sqrt(np.asarray(record["m2"]) / max(record["count"], 1)).tolist()
    if "quantiles" in record:
        out["quantiles"] = record["quantiles"]
    return out


def quantiles(x: np.ndarray) -> dict[str, list[float]]:
    """Quantiles of ``x`` (N, *shape) over its first axis, keyed like ``"q01"``."""
    q = np.quantile(np.asarray(x, dtype=np.float64), QUANTILES, axis=0)
    return {f"q{round(p * 100):02d}": q[i].tolist() for i, p in enumerate(QUANTILES)}


def pixel_sums(rows: np.ndarray, group: int = 16) -> np.ndarray:
    """``(2, C)``: over frames, the sum of each frame's mean pixel value and mean squared value
    (in [0, 1]), from a strided subsample. Integer sums over a few frames at a time: each numpy
    call is short, so the GIL passes to the control loop between them (one call over a whole
    shard held it ~15 ms)."""
    px = rows[:, ::IMAGE_STRIDE, ::IMAGE_STRIDE]
    per_frame = px.shape[1] * px.shape[2]
    total = np.zeros((2, rows.shape[-1]), dtype=np.uint64)
    for i in range(0, len(px), group):
        g = px[i : i + group].astype(np.uint32)
        total[0] += g.sum(axis=(0, 1, 2), dtype=np.uint64)
        total[1] += (g * g).sum(axis=(0, 1, 2), dtype=np.uint64)
    return total / np.array([[255.0 * per_frame], [255.0**2 * per_frame]])
