"""Per-feature normalisation for training, from a play store's statistics.

Every mode is an affine map ``y = (x - center) * scale`` per element (or per image channel), so
``unnormalize`` is exact and the whole normaliser is a few lists that fit in a checkpoint's
``config.json`` (never a pickle):

    mean_std   y = (x - mean) / std                       zero mean, unit variance
    min_max    [min, max]  -> [-1, 1]                     state vectors
    quantile   [q01, q99]  -> [-1, 1]                     actions (robust to outliers)
    identity   y = x

A zero std or range (a joint that never moved) is replaced by ``eps`` on the way in: the constant
maps to 0 instead of NaN. Image statistics are in pixel values scaled to [0, 1]; with
``features`` given, image keys also fold in the 1/255 so that uint8 frames map directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from playworld.errors import ConfigError, did_you_mean
from playworld.features import Feature

FORMAT = "playworld.normalizer/1"


# Each mode returns (center, scale). Centering first keeps float32 precise when |mean| >> std.
def _mean_std(s: Mapping[str, Any], eps: float) -> tuple[np.ndarray, np.ndarray]:
    mean, std = np.asarray(s["mean"], np.float64), np.asarray(s["std"], np.float64)
    return mean, 1.0 / np.maximum(std, eps)


def _range(lo: np.ndarray, hi: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    return (lo + hi) / 2.0, 2.0 / np.maximum(hi - lo, eps)


def _min_max(s: Mapping[str, Any], eps: float) -> tuple[np.ndarray, np.ndarray]:
    return _range(np.asarray(s["min"], np.float64), np.asarray(s["max"], np.float64), eps)


def _quantile(s: Mapping[str, Any], eps: float) -> tuple[np.ndarray, np.ndarray]:
    q = s.get("quantiles")
    if not q or "q01" not in q or "q99" not in q:
        raise ConfigError(
            "mode 'quantile' needs q01 and q99 in the statistics (the store keeps them for "
            "action features only); use 'min_max' or 'mean_std' for this key"
        )
    return _range(np.asarray(q["q01"], np.float64), np.asarray(q["q99"], np.float64), eps)


def _identity(s: Mapping[str, Any], eps: float) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(1), np.ones(1)


# mode name -> (statistics of one key, eps) -> (center, scale)
MODES: dict[str, Callable[[Mapping[str, Any], float], tuple[np.ndarray, np.ndarray]]] = {
    "mean_std": _mean_std,
    "min_max": _min_max,
    "quantile": _quantile,
    "identity": _identity,
}


class Normalizer:
    """Affine per-key normalisation: ``normalize(key, x) = (x - center) * scale``.

    ``center`` and ``scale`` broadcast against the trailing axes of ``x``: a feature's shape for
    vectors (``(T, 7)`` against ``(7,)``), the channel axis for images (``(T, H, W, 3)`` against
    ``(3,)``). Works on numpy arrays and torch tensors (any device); integer input (uint8 frames)
    becomes float32, floating input keeps its dtype.
    """

    def __init__(self, params: Mapping[str, Mapping[str, Any]]) -> None:
        """``params[key] = {"mode", "center", "scale"}`` (lists); prefer `from_stats`."""
        self.modes: dict[str, str] = {}
        self._center: dict[str, np.ndarray] = {}
        self._scale: dict[str, np.ndarray] = {}
        self._torch_cache: dict[tuple[str, str, Any], tuple[Any, Any]] = {}
        for key, p in params.items():
            mode = p.get("mode")
            if mode not in MODES:
                raise ConfigError(
                    f"normalizer mode {mode!r} for {key!r} is unknown.{did_you_mean(str(mode), list(MODES))}"
                )
            center, scale = np.asarray(p["center"], np.float64), np.asarray(p["scale"], np.float64)
            if not (np.isfinite(center).all() and np.isfinite(scale).all()):
                raise ConfigError(f"normalizer {key!r}: center and scale must be finite")
            if (scale == 0).any():
                raise ConfigError(f"normalizer {key!r}: a zero scale cannot be inverted")
            self.modes[key] = mode
            self._center[key], self._scale[key] = center, scale

    @classmethod
    def from_stats(
        cls,
        stats: Mapping[str, Mapping[str, Any]],
        modes: Mapping[str, str],
        *,
        features: Mapping[str, Feature] | None = None,
        eps: float = 1e-6,
    ) -> Normalizer:
        """Build from a store's (or dataset's) ``stats`` and a mode per key.

        Args:
            stats: ``store.stats``: per key mean, std, min, max (flat lists) and quantiles.
            modes: key -> one of ``mean_std``, ``min_max``, ``quantile``, ``identity``.
            features: the keys' features: vector parameters are reshaped to the feature shape,
                image parameters (per channel, pixel values in [0, 1]) are scaled to 0..255.
            eps: the floor of a std or a range, in the feature's units.
        """
        params: dict[str, dict[str, Any]] = {}
        for key, mode in modes.items():
            if mode not in MODES:
                raise ConfigError(
                    f"normalizer mode {mode!r} for {key!r} is unknown.{did_you_mean(mode, list(MODES))}"
                )
            if mode != "identity" and key not in stats:
                raise ConfigError(f"no statistics for key {key!r}.{did_you_mean(key, list(stats))}")
            center, scale = MODES[mode](stats.get(key, {}), eps)
            f = features.get(key) if features is not None else None
            if f is not None and f.is_image and mode != "identity":
                center, scale = center * 255.0, scale / 255.0
            elif f is not None and mode != "identity" and scale.size == int(np.prod(f.shape)):
                center, scale = center.reshape(f.shape), scale.reshape(f.shape)
            params[key] = {"mode": mode, "center": center.tolist(), "scale": scale.tolist()}
        return cls(params)

    def _params(self, key: str, x: Any) -> tuple[Any, Any, Any]:
        if key not in self._scale:
            raise ConfigError(
                f"the normalizer has no key {key!r}.{did_you_mean(key, list(self._scale))}"
            )
        if isinstance(x, np.ndarray) or np.isscalar(x):
            x = np.asarray(x)
            dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
            return (
                x.astype(dtype, copy=False),
                self._center[key].astype(dtype),
                self._scale[key].astype(dtype),
            )
        import torch

        if not isinstance(x, torch.Tensor):
            raise ConfigError(
                f"normalize expects a numpy array or a torch tensor, got {type(x).__name__}"
            )
        if not x.is_floating_point():
            x = x.float()
        cache_key = (key, str(x.device), x.dtype)
        if cache_key not in self._torch_cache:
            self._torch_cache[cache_key] = (
                torch.as_tensor(self._center[key], dtype=x.dtype, device=x.device),
                torch.as_tensor(self._scale[key], dtype=x.dtype, device=x.device),
            )
        center, scale = self._torch_cache[cache_key]
        return x, center, scale

    def normalize(self, key: str, x: Any) -> Any:
        """``x`` (..., *feature shape) in the feature's units -> normalised, same shape."""
        x, center, scale = self._params(key, x)
        return (x - center) * scale

    def unnormalize(self, key: str, y: Any) -> Any:
        """Inverse of `normalize`: normalised values -> the feature's units."""
        y, center, scale = self._params(key, y)
        return y / scale + center

    def normalize_batch(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Normalise every key this normaliser knows; other entries (pad, index...) pass through."""
        return {k: self.normalize(k, v) if k in self._scale else v for k, v in batch.items()}

    def unnormalize_batch(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of `normalize_batch`."""
        return {k: self.unnormalize(k, v) if k in self._scale else v for k, v in batch.items()}

    def keys(self) -> list[str]:
        return list(self._scale)

    def to_json(self) -> dict[str, Any]:
        """A JSON-native dict (for a checkpoint's ``config.json``); `from_json` restores it."""
        return {
            "format": FORMAT,
            "keys": {
                k: {
                    "mode": self.modes[k],
                    "center": self._center[k].tolist(),
                    "scale": self._scale[k].tolist(),
                }
                for k in self._scale
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> Normalizer:
        """Rebuild from `to_json` output (a dict or its JSON text)."""
        d = json.loads(data) if isinstance(data, str) else data
        if (
            not isinstance(d, Mapping)
            or d.get("format") != FORMAT
            or not isinstance(d.get("keys"), Mapping)
        ):
            found = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise ConfigError(f"expected a normalizer in format {FORMAT!r}, found {found!r}")
        return cls(d["keys"])

    def __repr__(self) -> str:
        return f"Normalizer({', '.join(f'{k}={m}' for k, m in self.modes.items())})"
