"""Feature descriptions: what every key of a robot observation, an action or a store holds.

A feature is one named stream recorded at every step: a state vector, an action, a camera frame or
a timestamp. Its description (shape, dtype, kind, units, codec) is stored in the store's group
attributes, so a store describes itself, a robot describes its features while disconnected, and a
policy names the features it reads and writes. Every package may import this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from playworld.errors import FeatureError, did_you_mean

KINDS = ("state", "action", "image", "time")
CODECS = ("zstd", "lz4", "jpeg", "h264", "none")
# Lossy codecs of images only; h264 codes groups of frames (see datasets/video_codec.py).
IMAGE_CODECS = ("jpeg", "h264")


@dataclasses.dataclass(frozen=True)
class Feature:
    """One recorded stream, per step.

    Attributes:
        shape: per-step shape, e.g. ``(7,)`` for joints, ``(480, 640, 3)`` for a camera.
        dtype: numpy dtype name; images are ``uint8``.
        kind: one of ``state``, ``action``, ``image``, ``time``.
        units: free text, e.g. ``"rad"``, ``"m"``, ``"s"``.
        codec: ``zstd`` (lossless, default), ``lz4`` (lossless, faster), ``jpeg`` (lossy, images
            only, needs the ``jpeg`` extra), ``h264`` (lossy video chunks of 16 frames, ~20x
            smaller than zstd, RGB images with even sizes, needs the ``interop`` extra) or ``none``.
        level: codec level (zstd level, JPEG quality or H.264 crf); ``None`` picks the codec's
            default.
        names: optional names of the entries along the last axis (``["x", "y", "z"]``), or along
            the first for a set of points (``keypoints`` (K, 3): K site names).
        privileged: True for what only the twin knows (its full state vector, keypoint sites):
            a policy that reads a privileged feature cannot run on a real robot.
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    kind: str = "state"
    units: str = ""
    codec: str = "zstd"
    level: int | None = None
    names: tuple[str, ...] | None = None
    privileged: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))
        if self.kind not in KINDS:
            raise FeatureError(
                f"feature kind {self.kind!r} is unknown.{did_you_mean(self.kind, KINDS)}"
            )
        if self.codec not in CODECS:
            raise FeatureError(
                f"codec {self.codec!r} is unknown.{did_you_mean(self.codec, CODECS)}"
            )
        if any(s <= 0 for s in self.shape):
            raise FeatureError(f"feature shape {self.shape} must have positive sizes")
        if self.kind == "image":
            if self.dtype != "uint8" or len(self.shape) != 3 or self.shape[2] not in (1, 3):
                raise FeatureError(
                    f"image features are uint8 (H, W, 3) or (H, W, 1); got {self.dtype} {self.shape}"
                )
            if self.codec == "h264" and (
                self.shape[2] != 3 or self.shape[0] % 2 or self.shape[1] % 2
            ):
                raise FeatureError(
                    f"the h264 codec needs RGB frames with even height and width; got {self.shape}"
                )
        elif self.codec in IMAGE_CODECS:
            raise FeatureError(
                f"the {self.codec} codec is for image features only; use zstd or lz4"
            )
        if self.names is not None and (
            not self.shape or len(self.names) not in (self.shape[0], self.shape[-1])
        ):
            raise FeatureError(
                f"names has {len(self.names)} entries, the first or last axis of {self.shape}"
            )

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @property
    def nbytes(self) -> int:
        """Bytes of one step, uncompressed."""
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        d["names"] = list(self.names) if self.names is not None else None
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Feature:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise FeatureError(f"unknown feature fields {sorted(unknown)}; valid: {sorted(fields)}")
        return cls(
            **{
                k: (tuple(v) if k in ("shape", "names") and v is not None else v)
                for k, v in d.items()
            }
        )


Features = dict[str, Feature]


def parse_features(features: Mapping[str, Feature | Mapping[str, Any]]) -> Features:
    """Accept ``Feature`` objects or their JSON dicts; check names."""
    if not features:
        raise FeatureError("a store needs at least one feature")
    out: Features = {}
    for name, f in features.items():
        if not name or "/" in name or name.startswith("."):
            raise FeatureError(
                f"feature name {name!r} must be non-empty, without '/' or a leading '.'"
            )
        out[name] = f if isinstance(f, Feature) else Feature.from_json(f)
    return out


def check_value(name: str, feature: Feature, value: Any, *, steps: int | None = None) -> np.ndarray:
    """Return ``value`` as an array of the feature's dtype, or raise naming what is wrong.

    With ``steps=None`` the value is one step, shape ``feature.shape``; else ``(steps, *shape)``.
    Floating-point values must be finite (a NaN action would poison training and robots alike).
    """
    arr = np.asarray(value)
    want = feature.shape if steps is None else (steps, *feature.shape)
    if arr.shape != want:
        raise FeatureError(f"feature {name!r}: expected shape {want}, got {arr.shape}")
    if arr.dtype != feature.dtype:
        same_kind = np.can_cast(arr.dtype, feature.dtype, casting="same_kind")
        if not same_kind or (feature.dtype == "uint8" and arr.dtype != np.uint8):
            raise FeatureError(f"feature {name!r}: expected dtype {feature.dtype}, got {arr.dtype}")
        arr = arr.astype(feature.dtype)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise FeatureError(
            f"feature {name!r} ({feature.kind}) contains {bad}; values must be finite"
        )
    return arr
