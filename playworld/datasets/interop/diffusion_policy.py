"""Import a diffusion_policy replay buffer (real-stanford/diffusion_policy
``common/replay_buffer.py``): a zarr group (v2 or v3) with ``data/<key>`` arrays ``(N, ...)``
sharing their first axis and ``meta/episode_ends`` ``(E,)`` int64 exclusive end rows.

uint8 ``(N, H, W, 3|1)`` arrays become cameras, ``action`` the action, every other key a state.
Their real-robot buffers compress images with imagecodecs' numcodecs codecs (JPEG 2000...): those
are registered first when imagecodecs is installed. A replay buffer records no rate: ``fps``
defaults to 10 Hz (their real-robot and Push-T setups), ``--fps`` overrides it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import zarr

from playworld.datasets.interop.common import (
    ImportOptions,
    existing_source,
    feature_for,
    fresh_output,
    store_key,
    write_store,
)
from playworld.errors import StoreFormatError

DEFAULT_FPS = 10.0


def import_replay_buffer(
    src: str | os.PathLike[str], out: str | os.PathLike[str], options: ImportOptions
) -> Any:
    """A new play store at ``out`` with every episode of the replay buffer ``src``."""
    existing_source(src, "a diffusion_policy zarr replay buffer (data/<key>, meta/episode_ends)")
    with contextlib.suppress(ImportError):
        import imagecodecs.numcodecs

        imagecodecs.numcodecs.register_codecs(verbose=False)
    try:
        root = zarr.open_group(os.fspath(src), mode="r")
        data, ends = root["data"], np.asarray(root["meta/episode_ends"][:], dtype=np.int64)
    except (KeyError, FileNotFoundError, ValueError, zarr.errors.GroupNotFoundError) as e:
        raise StoreFormatError(
            f"{src} is not a diffusion_policy replay buffer (needs data/<key> and "
            f"meta/episode_ends): {type(e).__name__}: {e}"
        ) from None
    arrays = {k: v for k, v in data.arrays()}
    if not arrays:
        raise StoreFormatError(f"{src}: data/ holds no arrays")
    n = int(ends[-1]) if len(ends) else 0
    short = {k: a.shape[0] for k, a in arrays.items() if a.shape[0] < n}
    if short or (np.diff(ends) <= 0).any() or (ends[:1] <= 0).any():
        raise StoreFormatError(
            f"{src}: meta/episode_ends {ends.tolist()[:5]}... do not fit the data "
            f"(arrays shorter than {n} rows: {short or 'none'})"
        )
    out_path = fresh_output(out, options.overwrite)
    features = {
        store_key(k): feature_for(store_key(k), tuple(a.shape[1:]), a.dtype, options)
        for k, a in sorted(arrays.items())
    }

    def episodes():
        start = 0
        for i, end in enumerate(ends):
            yield (
                {store_key(k): a[start:end] for k, a in arrays.items()},
                {"source": "diffusion_policy", "source_episode": i},
            )
            start = int(end)

    return write_store(
        out_path,
        features,
        options.fps or DEFAULT_FPS,
        episodes(),
        {"imported_from": "diffusion_policy", "source": os.fspath(src)},
        options.overwrite,
    )
