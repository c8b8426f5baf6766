"""Import a robomimic hdf5 dataset (ARISE-Initiative/robomimic, "Dataset Structure" docs)::

    data                      attrs: total, env_args (JSON)
    data/demo_<i>             attrs: num_samples (and model_file for MuJoCo demos)
      actions                 (T, A)
      obs/<key>               (T, ...)   e.g. robot0_eef_pos, agentview_image (uint8 H x W x 3)
      states                  (T, D)     the simulator's flattened state (privileged here)
      rewards, dones          (T,)
    mask/<filter>             demo names of a split (train, valid...)

Keys become ``action``, ``observation.<key>`` (uint8 images become cameras) and
``observation.sim_state`` (privileged: only a simulator has it); rewards and dones become
``reward`` and ``done`` state features. Demos are imported in numeric order (demo_2 before
demo_10); the filter masks they appear in are kept in each episode's ``tasks``-free metadata as
``splits``. robomimic files record no rate: ``fps`` defaults to 20 Hz (robosuite's control
rate), ``--fps`` overrides it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from playworld.datasets.interop.common import (
    ImportOptions,
    existing_source,
    feature_for,
    fresh_output,
    store_key,
    write_store,
)
from playworld.errors import StoreFormatError

DEFAULT_FPS = 20.0


def _demo_number(name: str) -> tuple[int, str]:
    m = re.search(r"(\d+)$", name)
    return (int(m.group(1)) if m else -1, name)


def import_robomimic(
    src: str | os.PathLike[str], out: str | os.PathLike[str], options: ImportOptions
) -> Any:
    """A new play store at ``out`` with every demo of the robomimic hdf5 file ``src``."""
    import h5py

    existing_source(src, "a robomimic hdf5 file")
    try:
        f = h5py.File(os.fspath(src), "r")
    except OSError as e:
        raise StoreFormatError(f"{src} is not an hdf5 file ({e})") from None
    with f:
        if "data" not in f or not len(f["data"]):
            raise StoreFormatError(f"{src} is not a robomimic file (no data/demo_* groups)")
        demos = sorted(f["data"].keys(), key=_demo_number)
        first = f["data"][demos[0]]
        if "actions" not in first:
            raise StoreFormatError(f"{src}: data/{demos[0]} has no actions")
        paths = {"action": "actions"}
        for key in sorted(first.get("obs", {}).keys()):
            paths[f"observation.{store_key(key)}"] = f"obs/{key}"
        for name, key in (
            ("observation.sim_state", "states"),
            ("reward", "rewards"),
            ("done", "dones"),
        ):
            if key in first:
                paths[name] = key
        features = {}
        for name, path in paths.items():
            ds = first[path]
            extra = {"privileged": True} if name == "observation.sim_state" else {}
            dtype = np.float32 if ds.dtype == bool else ds.dtype
            features[name] = feature_for(name, tuple(ds.shape[1:]), dtype, options, **extra)
        masks = {
            str(k): {v.decode() if isinstance(v, bytes) else str(v) for v in f["mask"][k][:]}
            for k in f.get("mask", {})
        }
        env_args = f["data"].attrs.get("env_args")

        def episodes():
            for demo in demos:
                g = f["data"][demo]
                missing = [p for p in paths.values() if p not in g]
                if missing:
                    raise StoreFormatError(f"{src}: data/{demo} lacks {missing}")
                data = {name: np.asarray(g[p][()]) for name, p in paths.items()}
                for name in ("reward", "done"):
                    if name in data:
                        data[name] = data[name].astype(features[name].dtype)
                meta: dict[str, Any] = {"source": "robomimic", "source_episode": demo}
                splits = sorted(k for k, names in masks.items() if demo in names)
                if splits:
                    meta["splits"] = splits
                yield data, meta

        info: dict[str, Any] = {"imported_from": "robomimic", "source": os.fspath(src)}
        if env_args is not None:
            try:
                info["env_args"] = json.loads(env_args)
            except (TypeError, ValueError):
                info["env_args"] = str(env_args)
        return write_store(
            fresh_output(out, options.overwrite),
            features,
            options.fps or DEFAULT_FPS,
            episodes(),
            info,
            options.overwrite,
        )
