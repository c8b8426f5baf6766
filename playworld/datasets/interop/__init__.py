"""Bringing other datasets in and handing play stores out, one module per format.

    EXPORTERS["lerobot"](store_path, out)               a LeRobot dataset v3.0 (parquet + mp4)
    IMPORTERS["lerobot" | "diffusion-policy" | "robomimic"](src, out, options)   a new play store

`export_store` / `import_store` look the format up (an unknown name raises `ConfigError` listing
the valid ones). Each format's module imports its heavy libraries (pyarrow, PyAV, h5py: the
``interop`` extra) only when it runs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from playworld.datasets.interop.common import ImportOptions
from playworld.errors import ConfigError, did_you_mean

# name -> "module:function"; modules are imported on use (pyarrow / PyAV / h5py are optional).
EXPORTERS: dict[str, str] = {
    "lerobot": "playworld.datasets.interop.lerobot:export_lerobot",
}
IMPORTERS: dict[str, str] = {
    "lerobot": "playworld.datasets.interop.lerobot:import_lerobot",
    "diffusion-policy": "playworld.datasets.interop.diffusion_policy:import_replay_buffer",
    "robomimic": "playworld.datasets.interop.robomimic:import_robomimic",
}

__all__ = ["EXPORTERS", "IMPORTERS", "ImportOptions", "export_store", "import_store"]


def _lookup(table: dict[str, str], fmt: str, what: str) -> Callable[..., Any]:
    if fmt not in table:
        raise ConfigError(f"unknown {what} format {fmt!r}.{did_you_mean(fmt, list(table))}")
    module, name = table[fmt].split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ConfigError(
            f"the {fmt} format needs the interop extra ({e.name} is missing): "
            "pip install 'playworld[interop]'"
        ) from None


def export_store(fmt: str, store: str | os.PathLike[str], out: str | os.PathLike[str]) -> Any:
    """Write the committed episodes of the play store ``store`` to ``out`` in format ``fmt``."""
    return _lookup(EXPORTERS, fmt, "export")(store, out)


def import_store(
    fmt: str,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ImportOptions | None = None,
) -> Any:
    """Write a new play store at ``out`` from the dataset ``src`` in format ``fmt``."""
    return _lookup(IMPORTERS, fmt, "import")(src, out, options or ImportOptions())
