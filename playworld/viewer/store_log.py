"""A play store in rerun: every feature on the recorded timeline, episode by episode.

    view_store("play.zarr", ViewTarget(save="play.rrd"), episodes=range(2))

Entities (one per feature, so a store's features map one to one):

    cameras/<key>      images, at their capture times `<key>_t` (the robot's time without one)
    state/<key>        scalar series (joints, end effector, twin state...), one line per element
    action/<key>       scalar series (`action`, `command`)
    time/<key>         the recorded clocks themselves (s)
    world/<key>        (K, 3) features (keypoints): 3-D points, labelled with their names
    annotations/...    episodes, task segments and success labels (text logs, success scalars)
    loop/...           per-episode loop timing and drop counts (episode metadata `loop`)

Timelines: `time` (duration, s) is the recorded capture time, moved so that the first episode
shown starts at 0 and no episode overlaps an earlier one (a twin reset or a merged store restarts
its clock); `step` is the store row. Episodes stream in blocks of `BLOCK_ROWS` rows with
`send_columns`, so memory holds one block of camera frames, not a store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from playworld.datasets import Episode, Feature, PlayStore
from playworld.datasets.timeline import EpisodeClock, time_keys
from playworld.viewer.sinks import ViewTarget, import_rerun, open_recording

BLOCK_ROWS = 32
ROOTS = {"image": "cameras", "state": "state", "action": "action", "time": "time"}
LOOP_SERIES = ("rate_hz", "jitter_p99_ms", "overruns", "missed_ticks", "dropped_frames")


# -- layout (shared with the live view) --------------------------------------------------------
def is_points(feature: Feature) -> bool:
    """(K, 3) non-image features are 3-D points (keypoints), not K*3 scalar lines."""
    return not feature.is_image and len(feature.shape) == 2 and feature.shape[-1] == 3


def entity(key: str, feature: Feature) -> str:
    """The rerun entity path of a feature (see the module docstring)."""
    return (
        f"world/{key}" if is_points(feature) else f"{ROOTS.get(feature.kind, feature.kind)}/{key}"
    )


def point_labels(key: str, feature: Feature, info: Mapping[str, Any]) -> list[str] | None:
    """Names of K points: the feature's names when they name the points, else `info[key]`."""
    if feature.names is not None and len(feature.names) == feature.shape[0]:
        return list(feature.names)
    names = info.get(f"{key}_names", info.get(key))
    if isinstance(names, (list, tuple)) and len(names) == feature.shape[0]:
        return [str(n) for n in names]
    return None


def series_names(key: str, feature: Feature) -> list[str]:
    size = int(np.prod(feature.shape))
    if feature.names is not None and len(feature.shape) == 1:
        return list(feature.names)
    return [key] if size == 1 else [f"{key}[{i}]" for i in range(size)]


def log_static(rec: Any, features: Mapping[str, Feature], info: Mapping[str, Any]) -> None:
    """What does not change over time: image formats, series names, point labels."""
    rr = import_rerun()
    for key, f in features.items():
        path = entity(key, f)
        if f.is_image:
            fmt = rr.components.ImageFormat(
                width=f.shape[1],
                height=f.shape[0],
                color_model="RGB" if f.shape[2] == 3 else "L",
                channel_datatype="U8",
            )
            rec.log(path, rr.Image.from_fields(format=fmt), static=True)
        elif is_points(f):
            labels = point_labels(key, f, info)
            rec.log(
                path,
                rr.Points3D.from_fields(labels=labels, show_labels=labels is not None),
                static=True,
            )
        else:
            rec.log(path, rr.SeriesLines(names=series_names(key, f)), static=True)


def feature_columns(rr: Any, feature: Feature, rows: np.ndarray) -> Any:
    """rerun columns of `rows` (n, *shape) of one feature."""
    n = len(rows)
    if feature.is_image:
        return rr.Image.columns(buffer=rows.reshape(n, -1))
    if is_points(feature):
        k = feature.shape[0]
        return rr.Points3D.columns(positions=rows.reshape(-1, 3)).partition([k] * n)
    return rr.Scalars.columns(scalars=rows.reshape(n, -1).astype(np.float64))


# -- logging a store -----------------------------------------------------------------------------
def log_episode(
    rec: Any,
    store: PlayStore,
    index: int,
    clock: EpisodeClock,
    *,
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Log episode `index` of `store` to `rec`; returns its rows. `on_rows(k)` after each block."""
    rr = import_rerun()
    ep = store.episode(index)
    n = len(ep)
    times = clock.place(ep)
    steps = np.arange(ep.start, ep.stop)
    for a in range(0, n, BLOCK_ROWS):
        b = min(n, a + BLOCK_ROWS)
        for key, f in store.features.items():
            t = times[key]
            rec.send_columns(
                entity(key, f),
                indexes=[
                    rr.TimeColumn("time", duration=t[a:b]),
                    rr.TimeColumn("step", sequence=steps[a:b]),
                ],
                columns=feature_columns(rr, f, store.read(key, ep.start + a, ep.start + b)),
            )
        if on_rows is not None:
            on_rows(b - a)
    log_annotations(rec, ep, robot_times(ep, times))
    return n


def robot_times(ep: Episode, times: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n,) timeline times of the robot's rows (annotations sit on them)."""
    main, cams = time_keys(ep.store.features)
    key = main or next((k for k in times if k not in cams), next(iter(times)))
    return times[key]


def _at(rec: Any, t: float, step: int) -> None:
    rec.set_time("time", duration=float(t))
    rec.set_time("step", sequence=int(step))


def log_annotations(rec: Any, ep: Episode, t: np.ndarray) -> None:
    """Episode summary, task segments, success labels and loop figures as text logs and scalars."""
    rr = import_rerun()
    meta, n = ep.metadata, len(ep)
    _at(rec, t[0], ep.start)
    parts = [f"episode {ep.index}: {n} steps", f"source {meta.get('source', '?')}"]
    for key in ("tasks", "task", "success", "notes"):
        if meta.get(key) not in (None, "", []):
            parts.append(f"{key} {meta[key]}")
    rec.log("annotations/episodes", rr.TextLog(", ".join(parts), level="INFO"))
    for seg in meta.get("segments") or []:
        s, e = int(seg["start"]), int(seg["end"])
        if not 0 <= s < n:
            continue
        _at(rec, t[s], ep.start + s)
        rec.log("annotations/segments", rr.TextLog(f"{seg['task']} starts (rows {s}..{e - 1})"))
        end = min(max(e, s), n - 1)  # the row the segment is judged on
        _at(rec, t[end], ep.start + end)
        ok = bool(seg.get("success"))
        rec.log(
            "annotations/segments",
            rr.TextLog(
                f"{seg['task']}: {'success' if ok else 'failed'}", level="INFO" if ok else "WARN"
            ),
        )
        rec.log("annotations/segment_success", rr.Scalars(float(ok)))
    _at(rec, t[-1], ep.stop - 1)
    success = meta.get("success")
    if isinstance(success, (bool, int, float)):
        rec.log("annotations/episode_success", rr.Scalars(float(success)))
    loop = meta.get("loop")
    if isinstance(loop, Mapping):
        for name in LOOP_SERIES:
            if isinstance(loop.get(name), (int, float)):
                rec.log(f"loop/{name}", rr.Scalars(float(loop[name])))
        figures = ", ".join(f"{k} {loop[k]}" for k in LOOP_SERIES if k in loop)
        rec.log("annotations/loop", rr.TextLog(f"episode {ep.index} loop: {figures}"))


def select_episodes(store: PlayStore, episode: int | None, episodes: str | None) -> list[int]:
    """Indices chosen by `--episode E` (negative from the end) or `--episodes A:B` (half-open)."""
    from playworld.errors import ConfigError

    if episode is not None and episodes is not None:
        raise ConfigError("pass --episode E or --episodes A:B, not both")
    n = len(store)
    if n == 0:
        raise ConfigError(f"{store.url} has no committed episodes to view")
    if episode is not None:
        return [store.episode(episode).index]  # raises naming the valid range
    if episodes is None:
        return list(range(n))
    try:
        a, b = (int(x) if x.strip() else None for x in episodes.split(":"))
    except ValueError:
        raise ConfigError(f"expected --episodes A:B (e.g. 0:10), found {episodes!r}") from None
    chosen = list(range(n))[slice(a, b)]
    if not chosen:
        raise ConfigError(
            f"{store.url} has {n} episodes (0..{n - 1}); --episodes {episodes} selects none"
        )
    return chosen


def log_store(rec: Any, store: PlayStore, indices: Iterable[int], *, progress: bool = True) -> int:
    """Log the chosen episodes of `store` to `rec`, one at a time, with a progress bar; rows."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    indices = list(indices)
    log_static(rec, store.features, store.info)
    clock = EpisodeClock(store.fps)
    total = sum(len(store.episode(i)) for i in indices)
    rows = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
    ) as bar:
        task = bar.add_task("logging", total=total)
        for i in indices:
            bar.update(task, description=f"episode {i}")
            rows += log_episode(rec, store, i, clock, on_rows=lambda k: bar.advance(task, k))
            rec.flush()
    return rows


def view_store(
    path: str | os.PathLike[str],
    target: ViewTarget,
    *,
    episode: int | None = None,
    episodes: str | None = None,
    progress: bool = False,
    on_url: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Log a store to `target`; {episodes, rows, url}. With `web`, the servers live on until exit."""
    store = PlayStore.open(path)
    indices = select_episodes(store, episode, episodes)
    rec, url = open_recording(target, os.fspath(path))
    if url is not None and on_url is not None:
        on_url(url)
    rows = log_store(rec, store, indices, progress=progress)
    rec.flush()
    if not target.web:
        rec.disconnect()  # finishes the .rrd (its footer) and lets a native viewer keep the data
    return {"episodes": len(indices), "rows": rows, "url": url, "recording": rec}
