"""Summary statistics per feature, merged episode by episode on commit.

For every non-image feature: count, mean, std, min, max over all committed steps (exact, merged
with Chan's parallel update), and for actions the quantiles that normalisers clip to. For images:
per-channel mean and std of pixel values in [0, 1], from a strided subsample of every frame.

Quantiles come from one mergeable KLL sketch per element (Apache DataSketches), so a commit
merges the episode's sketch into the store's instead of re-reading every committed row: O(episode)
per commit. The sketches are saved in the commit record (base64 of their serialized bytes, see
`QuantileSketch.to_json`). While a sketch has seen fewer rows than it keeps (~``SKETCH_K``), it
holds every value and the quantiles are exactly numpy's; past that they are within the sketch's
rank error (~0.4% of rank at ``SKETCH_K = 400``, e.g. q01 lies between the 0.6th and 1.4th
percentiles, with 99% confidence).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
from datasketches import kll_doubles_sketch

QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)
IMAGE_STRIDE = 16  # pixels; a 480x640 frame contributes 30x40 samples
SKETCH_K = 400  # KLL accuracy parameter: ~0.4% rank error, ~10 KB per element serialized


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
    # (the sketch itself stays in the record: it is for merging, not for users)
    if "quantiles" in record:
        out["quantiles"] = record["quantiles"]
    return out


def quantiles(x: np.ndarray) -> dict[str, list[float]]:
    """Quantiles of ``x`` (N, *shape) over its first axis, keyed like ``"q01"``."""
    q = np.quantile(np.asarray(x, dtype=np.float64), QUANTILES, axis=0)
    return _keyed(q)


def _keyed(q: np.ndarray) -> dict[str, list[float]]:
    """``(len(QUANTILES), D)`` -> ``{"q01": [...], ...}``."""
    return {f"q{round(p * 100):02d}": q[i].tolist() for i, p in enumerate(QUANTILES)}


class QuantileSketch:
    """One KLL sketch per element of a feature, for quantiles merged episode by episode.

    ``update(rows)`` adds ``(N, D)`` rows, ``merge(other)`` adds another sketch's values,
    ``quantiles()`` gives ``{"q01": [D floats], ...}``. `to_json`/`from_json` round-trip it
    through the commit record (JSON-native: base64 strings).
    """

    def __init__(self, dims: int, k: int = SKETCH_K) -> None:
        self.k = k
        self.sketches = [kll_doubles_sketch(k) for _ in range(dims)]

    @property
    def count(self) -> int:
        return int(self.sketches[0].n) if self.sketches else 0

    def update(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        if rows.shape[1] != len(self.sketches):
            raise ValueError(f"rows have {rows.shape[1]} elements, the sketch {len(self.sketches)}")
        for d, sketch in enumerate(self.sketches):
            sketch.update(np.ascontiguousarray(rows[:, d]))

    def merge(self, other: QuantileSketch) -> None:
        if len(other.sketches) != len(self.sketches):
            raise ValueError("cannot merge sketches of features of different sizes")
        for a, b in zip(self.sketches, other.sketches, strict=True):
            a.merge(b)

    def quantiles(self) -> dict[str, list[float]]:
        """Exactly numpy's quantiles while every value is still held, else the sketch's."""
        q = np.empty((len(QUANTILES), len(self.sketches)))
        for d, sketch in enumerate(self.sketches):
            if sketch.is_empty():
                q[:, d] = np.nan
            elif not sketch.is_estimation_mode():
                q[:, d] = np.quantile(np.fromiter((v for v, _ in sketch), float), QUANTILES)
            else:
                q[:, d] = sketch.get_quantiles(list(QUANTILES))
        return _keyed(q)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "kll_doubles",
            "k": self.k,
            "data": [base64.b64encode(s.serialize()).decode("ascii") for s in self.sketches],
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> QuantileSketch:
        """Raises ValueError for a record this version does not read."""
        if record.get("kind") != "kll_doubles":
            raise ValueError(f"unknown sketch kind {record.get('kind')!r}")
        out = cls(0, int(record["k"]))
        out.sketches = [kll_doubles_sketch.deserialize(base64.b64decode(b)) for b in record["data"]]
        return out

    @classmethod
    def of(cls, rows: np.ndarray) -> QuantileSketch:
        """A sketch of ``rows`` (N, *shape)."""
        rows = np.asarray(rows).reshape(len(rows), -1)
        out = cls(rows.shape[1])
        out.update(rows)
        return out


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
