"""Store export formats: a registry name -> exporter, so `playworld store export --format X` grows
by one entry per format.

    export("play.zarr", "play.mcap", "mcap", episode=0)

An exporter is `fn(store: PlayStore, out: path, episodes: list[int] | None) -> dict` (a summary:
episodes, rows, ...); it writes `out` atomically. Register a new one with `register(name, ...)`
next to its module, or add a line to `EXPORTERS` (modules load on first use).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playworld.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Exporter:
    """A format: `module:function` loaded on first use, the suffix its files take, one line of help."""

    target: str
    suffix: str
    help: str

    def load(self) -> Callable[..., dict[str, Any]]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


EXPORTERS: dict[str, Exporter] = {
    "mcap": Exporter(
        "playworld.datasets.export_mcap:export_mcap",
        ".mcap",
        "MCAP with Foxglove schemas (JSON): cameras as JPEG CompressedImage, features as JSON",
    ),
    "lerobot": Exporter(
        "playworld.datasets.export:export_lerobot_folder",
        "",
        "a LeRobot dataset v3.0 folder (parquet data, H.264 mp4 videos, meta/)",
    ),
}


def export_lerobot_folder(store: Any, out: Any, episodes: list[int] | None) -> dict[str, Any]:
    """`datasets.interop.lerobot.export_lerobot` as an exporter (every committed episode)."""
    from playworld.datasets.interop.lerobot import export_lerobot

    if episodes is not None:
        raise ConfigError("--format lerobot exports every committed episode: drop --episode")
    export_lerobot(store.url, out)
    return {"episodes": len(store), "rows": store.num_steps}


def register(name: str, exporter: Exporter) -> None:
    EXPORTERS[name] = exporter


def export(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str,
    *,
    episode: int | None = None,
) -> dict[str, Any]:
    """Export the store at `path` (one `episode`, default all) to `out` in format `fmt`."""
    from playworld.datasets.store import PlayStore

    if fmt not in EXPORTERS:
        raise ConfigError(f"unknown export format {fmt!r}.{did_you_mean(fmt, list(EXPORTERS))}")
    exporter = EXPORTERS[fmt]
    if not os.fspath(out).endswith(exporter.suffix):
        raise ConfigError(
            f"expected an output file ending in {exporter.suffix} for --format {fmt}, found {out}"
        )
    store = PlayStore.open(path)
    episodes = None if episode is None else [store.episode(episode).index]
    if len(store) == 0:
        raise ConfigError(f"{path} has no committed episodes to export")
    return exporter.load()(store, out, episodes)
