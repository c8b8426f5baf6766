"""Export a play store to MCAP, the log format Foxglove and ROS 2 tooling read.

    export_mcap(store, "play.mcap", episodes=[0])

One channel per feature, JSON-encoded with a JSON Schema, log and publish times from the recorded
capture times (`playworld.datasets.timeline`: nanoseconds, the first exported episode at 0):

    /<camera>           foxglove.CompressedImage   {timestamp, frame_id, data (JPEG, base64), format}
    /<key> (K, 3)       playworld.Points3          {timestamp, names, points: [{x, y, z}]}
    /<key> otherwise    playworld.Vector           {timestamp, episode, step, names, values, units}
    /annotations        foxglove.Log               episode summaries, task segments, success labels

Foxglove's Image panel shows the cameras, its Plot panel any `/<key>.values[i]`, its Log panel
the annotations. Rows stream in blocks of `BLOCK_ROWS`, so memory holds one block, not a store.
Needs the `mcap` and `imagecodecs` (JPEG) packages: the `view` and `jpeg` extras.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from playworld.datasets import Episode, Feature, PlayStore
from playworld.datasets.timeline import EpisodeClock, time_keys
from playworld.errors import ConfigError

BLOCK_ROWS = 64
JPEG_QUALITY = 90
LOG_INFO, LOG_WARNING = 2, 3  # foxglove.LogLevel

_TIME = {
    "type": "object",
    "title": "time",
    "properties": {
        "sec": {"type": "integer", "minimum": 0},
        "nsec": {"type": "integer", "minimum": 0},
    },
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "foxglove.CompressedImage": {
        "title": "foxglove.CompressedImage",
        "description": "A compressed image",
        "type": "object",
        "properties": {
            "timestamp": _TIME,
            "frame_id": {"type": "string"},
            "data": {"type": "string", "contentEncoding": "base64"},
            "format": {"type": "string"},
        },
    },
    "foxglove.Log": {
        "title": "foxglove.Log",
        "description": "A log message",
        "type": "object",
        "properties": {
            "timestamp": _TIME,
            "level": {"type": "integer", "enum": [0, 1, 2, 3, 4, 5]},
            "message": {"type": "string"},
            "name": {"type": "string"},
            "file": {"type": "string"},
            "line": {"type": "integer", "minimum": 0},
        },
    },
    "playworld.Vector": {
        "title": "playworld.Vector",
        "description": "One recorded step of a state, action or time feature",
        "type": "object",
        "properties": {
            "timestamp": _TIME,
            "episode": {"type": "integer"},
            "step": {"type": "integer"},
            "names": {"type": "array", "items": {"type": "string"}},
            "values": {"type": "array", "items": {"type": "number"}},
            "units": {"type": "string"},
        },
    },
    "playworld.Points3": {
        "title": "playworld.Points3",
        "description": "K named 3-D points (keypoints) of one recorded step",
        "type": "object",
        "properties": {
            "timestamp": _TIME,
            "names": {"type": "array", "items": {"type": "string"}},
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "x": {"type": "number"},
                        "y": {"type": "number"},
                        "z": {"type": "number"},
                    },
                },
            },
        },
    },
}


def schema_of(feature: Feature) -> str:
    if feature.is_image:
        return "foxglove.CompressedImage"
    if len(feature.shape) == 2 and feature.shape[-1] == 3:
        return "playworld.Points3"
    return "playworld.Vector"


def _stamp(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def _names(key: str, f: Feature, info: Mapping[str, Any]) -> list[str]:
    if f.names is not None and len(f.names) == f.shape[0]:
        return list(f.names)
    given = info.get(f"{key}_names", info.get(key))
    if isinstance(given, (list, tuple)) and len(given) == f.shape[0]:
        return [str(n) for n in given]
    size = int(np.prod(f.shape))
    return [key] if size == 1 else [f"{key}[{i}]" for i in range(size)]


class _Encoder:
    """JSON messages of one feature's rows."""

    def __init__(self, key: str, feature: Feature, info: Mapping[str, Any]) -> None:
        self.key, self.f, self.schema = key, feature, schema_of(feature)
        self.names = _names(key, feature, info)
        if self.schema == "foxglove.CompressedImage":
            try:
                import imagecodecs
            except ImportError:
                raise ConfigError(
                    "MCAP export of camera frames needs imagecodecs (JPEG): pip install "
                    "'playworld[jpeg]'"
                ) from None
            self._jpeg = imagecodecs.jpeg_encode

    def message(self, row: np.ndarray, ns: int, episode: int, step: int) -> bytes:
        if self.schema == "foxglove.CompressedImage":
            image = row[..., 0] if row.shape[-1] == 1 else row
            data = self._jpeg(np.ascontiguousarray(image), level=JPEG_QUALITY)
            msg: dict[str, Any] = {
                "timestamp": _stamp(ns),
                "frame_id": self.key,
                "data": base64.b64encode(bytes(data)).decode("ascii"),
                "format": "jpeg",
            }
        elif self.schema == "playworld.Points3":
            msg = {
                "timestamp": _stamp(ns),
                "names": self.names,
                "points": [dict(zip("xyz", map(float, p), strict=True)) for p in row],
            }
        else:
            msg = {
                "timestamp": _stamp(ns),
                "episode": episode,
                "step": step,
                "names": self.names,
                "values": np.asarray(row, np.float64).reshape(-1).tolist(),
                "units": self.f.units,
            }
        return json.dumps(msg, separators=(",", ":")).encode()


def _log(ns: int, level: int, message: str) -> bytes:
    msg = {
        "timestamp": _stamp(ns),
        "level": level,
        "message": message,
        "name": "playworld",
        "file": "",
        "line": 0,
    }
    return json.dumps(msg).encode()


def _annotations(ep: Episode, t_ns: np.ndarray) -> list[tuple[int, int, str]]:
    """(log time ns, level, message) of an episode's summary, segments and loop figures."""
    meta, n = ep.metadata, len(ep)
    parts = [f"episode {ep.index}: {n} steps, source {meta.get('source', '?')}"]
    parts += [
        f"{k} {meta[k]}" for k in ("tasks", "success", "notes") if meta.get(k) not in (None, "", [])
    ]
    out = [(int(t_ns[0]), LOG_INFO, ", ".join(parts))]
    for seg in meta.get("segments") or []:
        s, e = int(seg["start"]), int(seg["end"])
        if 0 <= s < n:
            ok = bool(seg.get("success"))
            out.append((int(t_ns[s]), LOG_INFO, f"{seg['task']} starts (rows {s}..{e - 1})"))
            end = min(max(e, s), n - 1)
            out.append(
                (
                    int(t_ns[end]),
                    LOG_INFO if ok else LOG_WARNING,
                    f"{seg['task']}: {'success' if ok else 'failed'}",
                )
            )
    loop = meta.get("loop")
    if isinstance(loop, Mapping):
        keys = ("rate_hz", "jitter_p99_ms", "overruns", "missed_ticks", "dropped_frames")
        figures = ", ".join(f"{k} {loop[k]}" for k in keys if k in loop)
        out.append((int(t_ns[-1]), LOG_INFO, f"episode {ep.index} loop: {figures}"))
    return sorted(out, key=lambda x: x[0])


def export_mcap(
    store: PlayStore, out: str | os.PathLike[str], episodes: Iterable[int] | None = None
) -> dict[str, Any]:
    """Write `episodes` (default: all) of `store` to the MCAP file `out` (atomic: tmp + rename).

    Returns {episodes, rows, messages, channels}.
    """
    from mcap.writer import Writer

    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: folder {out.parent} does not exist")
    indices = (
        list(range(len(store))) if episodes is None else [store.episode(i).index for i in episodes]
    )
    encoders = {k: _Encoder(k, f, store.info) for k, f in store.features.items()}
    tmp = out.with_name(out.name + ".partial")
    messages = rows = 0
    with open(tmp, "wb") as fh:
        writer = Writer(fh)
        writer.start(profile="", library="playworld")
        schema_ids = {
            name: writer.register_schema(
                name=name, encoding="jsonschema", data=json.dumps(s).encode()
            )
            for name, s in SCHEMAS.items()
        }
        channels = {
            k: writer.register_channel(
                topic=f"/{k}",
                message_encoding="json",
                schema_id=schema_ids[e.schema],
                metadata={"kind": e.f.kind, "units": e.f.units},
            )
            for k, e in encoders.items()
        }
        log_channel = writer.register_channel(
            topic="/annotations", message_encoding="json", schema_id=schema_ids["foxglove.Log"]
        )
        clock = EpisodeClock(store.fps)
        main, cams = time_keys(store.features)
        for i in indices:
            ep = store.episode(i)
            n = len(ep)
            times = {k: np.round(v * 1e9).astype(np.int64) for k, v in clock.place(ep).items()}
            for a in range(0, n, BLOCK_ROWS):
                b = min(n, a + BLOCK_ROWS)
                for key, enc in encoders.items():
                    block = store.read(key, ep.start + a, ep.start + b)
                    for j in range(b - a):
                        ns = int(times[key][a + j])
                        writer.add_message(
                            channels[key],
                            log_time=ns,
                            publish_time=ns,
                            data=enc.message(block[j], ns, i, a + j),
                            sequence=ep.start + a + j,
                        )
                        messages += 1
            robot_key = main or next(k for k in store.features if k not in cams)
            for ns, level, text in _annotations(ep, times[robot_key]):
                writer.add_message(
                    log_channel, log_time=ns, publish_time=ns, data=_log(ns, level, text)
                )
                messages += 1
            rows += n
        writer.finish()
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    return {
        "episodes": len(indices),
        "rows": rows,
        "messages": messages,
        "channels": len(channels) + 1,
    }
