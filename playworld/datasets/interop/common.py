"""What every importer shares: options, naming the kind of a key, writing episodes to a store."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError, StoreError, StoreNotFoundError
from playworld.features import CODECS, Feature


@dataclasses.dataclass(frozen=True)
class ImportOptions:
    """How an import writes its store.

    Attributes:
        image_codec: codec of the imported cameras (``zstd`` lossless, ``h264`` compact lossy...).
        fps: the control rate in Hz for formats that do not record one (diffusion_policy replay
            buffers, robomimic files); ``None`` takes the format's usual rate.
        overwrite: replace ``out`` if it exists.
    """

    image_codec: str = "zstd"
    fps: float | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.image_codec not in CODECS:
            raise ConfigError(
                f"image codec {self.image_codec!r} is unknown; valid: {', '.join(CODECS)}"
            )
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"fps must be positive, got {self.fps}")


def existing_source(src: str | os.PathLike[str], what: str) -> Path:
    """``src`` as a path that exists, else one clear error."""
    path = Path(src)
    if not path.exists():
        raise StoreNotFoundError(f"{src} does not exist (expected {what})")
    return path


def fresh_output(out: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """``out`` as a path to write a new dataset to: absent or empty (or ``overwrite``)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{out} is a file; pick a directory path")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise StoreError(f"{out} exists and is not empty; pick a new path")
    return path


def kind_of(key: str, value_shape: tuple[int, ...], dtype: np.dtype) -> str:
    """``image`` for uint8 (H, W, 3|1), ``action`` for action keys, else ``state``."""
    if dtype == np.uint8 and len(value_shape) == 3 and value_shape[2] in (1, 3):
        return "image"
    if key == "action" or key.startswith(("action.", "actions")):
        return "action"
    return "state"


def feature_for(
    key: str, shape: tuple[int, ...], dtype: Any, options: ImportOptions, **extra: Any
) -> Feature:
    """The play-store feature of an imported key (cameras get ``options.image_codec``)."""
    dtype = np.dtype(dtype)
    kind = extra.pop("kind", None) or kind_of(key, shape, dtype)
    if kind == "image":
        codec = options.image_codec
        if codec == "h264" and (shape[2] != 3 or shape[0] % 2 or shape[1] % 2):
            codec = "zstd"  # h264 needs RGB with even sizes
        return Feature(shape, "uint8", "image", codec=codec, **extra)
    if dtype.kind not in "fiub":
        raise StoreError(f"key {key!r} has dtype {dtype}, not a number; it cannot be imported")
    return Feature(shape or (1,), dtype.name, kind, **extra)


def store_key(name: str) -> str:
    """A feature name from a source key (no '/', no leading '.')."""
    return name.replace("/", ".").lstrip(".")


def write_store(
    out: Path,
    features: Mapping[str, Feature],
    fps: float,
    episodes: Iterable[tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
    info: Mapping[str, Any],
    overwrite: bool = False,
) -> Any:
    """Create the play store ``out`` and add each ``(data, metadata)`` episode; return it."""
    from playworld.datasets.store import PlayStore

    store = PlayStore.create(out, features, fps=fps, info=info, overwrite=overwrite)
    try:
        for data, meta in episodes:
            fixed = {k: np.asarray(v).reshape(len(v), *features[k].shape) for k, v in data.items()}
            store.add_episode(fixed, meta)
    finally:
        store.close()
    return PlayStore.open(out)
