"""LeRobot dataset v3.0, both ways: `export_lerobot` (play store -> LeRobot) and `import_lerobot`.

The layout (huggingface/lerobot ``src/lerobot/datasets/utils.py``, ``CODEBASE_VERSION = "v3.0"``)::

    meta/info.json                           codebase_version, fps, features, totals, path templates
    meta/stats.json                          per feature: mean, std, min, max, count (images (3,1,1))
    meta/tasks.parquet                       task (the pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet one row per episode: length, tasks, row range, video
                                             file and [from, to) timestamps
    data/chunk-000/file-000.parquet          one row per frame: every non-video feature + timestamp,
                                             frame_index, episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4      every episode of one camera back to back

Written with pyarrow and PyAV, without lerobot (its torch pins conflict with ours). Vectors of
shape (n,) are fixed-size lists, shape (1,) plain columns, as lerobot's HF features expect; other
shapes are flattened (their shape is kept under ``"playworld"`` in the feature, for the way back).
Videos are H.264 (yuv420p, crf 18, a keyframe every 2 frames as lerobot encodes, so that a seek
to any timestamp is short). Episode metadata (source, tasks, success...) travels as a JSON string
column ``playworld/metadata`` of the episodes table; each episode's first task label is its task
(``"play"`` when it has none). One data file and one video file per camera: fine up to a few
hours; lerobot splits at 100 / 200 MB, which its readers do not require.
"""

from __future__ import annotations

import fractions
import json
import os
import shutil
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from playworld.datasets.interop.common import (
    ImportOptions,
    existing_source,
    feature_for,
    fresh_output,
    store_key,
    write_store,
)
from playworld.errors import StoreFormatError

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
VIDEO_CRF, VIDEO_GOP = 18, 2
META_COLUMN = "playworld/metadata"


# -- export ------------------------------------------------------------------------------------
def export_lerobot(store_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the committed episodes of a play store as a LeRobot v3.0 dataset at ``out``.

    Written into ``<out>.partial`` and renamed when complete: a failed export leaves no
    half-written dataset at ``out``."""
    from playworld.datasets.store import PlayStore

    store = PlayStore.open(store_path)
    final = fresh_output(out)
    root = final.with_name(final.name + ".partial")
    shutil.rmtree(root, ignore_errors=True)
    try:
        _export(store, store_path, root)
        if final.exists():
            final.rmdir()  # empty (fresh_output checked)
        os.replace(root, final)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return final


def _export(store: Any, store_path: str | os.PathLike[str], root: Path) -> None:
    fps = int(round(store.fps))
    if abs(fps - store.fps) > 1e-6:
        raise StoreFormatError(f"LeRobot needs an integer fps; {store_path} has {store.fps:g} Hz")
    if not len(store):
        raise StoreFormatError(f"{store_path} has no committed episode to export")
    cameras = [k for k, f in store.features.items() if f.is_image]
    vectors = [k for k, f in store.features.items() if not f.is_image]

    tasks: dict[str, int] = {}
    episode_task = []
    for i in range(len(store)):
        labels = store.episode_metadata(i).get("tasks") or [store.episode_metadata(i).get("task")]
        label = str(labels[0]) if labels and labels[0] else "play"
        episode_task.append(tasks.setdefault(label, len(tasks)))

    ends = store.episode_ends
    starts = np.concatenate([[0], ends[:-1]])
    lengths = ends - starts
    n = store.num_steps
    episode_index = np.repeat(np.arange(len(store)), lengths)
    frame_index = np.arange(n) - np.repeat(starts, lengths)
    columns: dict[str, pa.Array] = {}
    for key in vectors:
        f = store.features[key]
        values = store.read(key, 0, n).reshape(n, -1)
        if values.shape[1] == 1:
            columns[key] = pa.array(values[:, 0])
        else:
            columns[key] = pa.FixedSizeListArray.from_arrays(
                pa.array(values.reshape(-1)), values.shape[1]
            )
    columns["timestamp"] = pa.array((frame_index / fps).astype(np.float32))
    columns["frame_index"] = pa.array(frame_index.astype(np.int64))
    columns["episode_index"] = pa.array(episode_index.astype(np.int64))
    columns["index"] = pa.array(np.arange(n, dtype=np.int64))
    columns["task_index"] = pa.array(np.repeat(episode_task, lengths).astype(np.int64))
    _write_parquet(root / DATA_PATH.format(chunk_index=0, file_index=0), pa.table(columns))

    features: dict[str, Any] = {}
    for key in cameras:
        path = root / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
        features[key] = _encode_video(store, key, path, fps)
    for key in vectors:
        f = store.features[key]
        size = int(np.prod(f.shape))
        names = list(f.names) if f.names is not None and len(f.names) == size else None
        features[key] = {
            "dtype": f.dtype,
            "shape": [size],
            "names": names,
            "playworld": {
                "kind": f.kind,
                "units": f.units,
                "privileged": f.privileged,
                "shape": list(f.shape),
            },
        }
    features.update(DEFAULT_FEATURES)

    episodes: dict[str, Any] = {
        "episode_index": pa.array(np.arange(len(store), dtype=np.int64)),
        "tasks": pa.array([[list(tasks)[t]] for t in episode_task], pa.list_(pa.string())),
        "length": pa.array(lengths.astype(np.int64)),
        "data/chunk_index": pa.array(np.zeros(len(store), np.int64)),
        "data/file_index": pa.array(np.zeros(len(store), np.int64)),
        "dataset_from_index": pa.array(starts.astype(np.int64)),
        "dataset_to_index": pa.array(ends.astype(np.int64)),
    }
    for key in cameras:
        episodes[f"videos/{key}/chunk_index"] = pa.array(np.zeros(len(store), np.int64))
        episodes[f"videos/{key}/file_index"] = pa.array(np.zeros(len(store), np.int64))
        episodes[f"videos/{key}/from_timestamp"] = pa.array(starts / fps)
        episodes[f"videos/{key}/to_timestamp"] = pa.array(ends / fps)
    episodes["meta/episodes/chunk_index"] = pa.array(np.zeros(len(store), np.int64))
    episodes["meta/episodes/file_index"] = pa.array(np.zeros(len(store), np.int64))
    episodes[META_COLUMN] = pa.array(
        [json.dumps(store.episode_metadata(i)) for i in range(len(store))]
    )
    _write_parquet(root / EPISODES_PATH, pa.table(episodes))
    _write_tasks(root / "meta/tasks.parquet", list(tasks))
    _write_json(root / "meta/stats.json", _stats(store))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": store.info.get("robot_type") or store.info.get("robot"),
        "total_episodes": len(store),
        "total_frames": n,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{len(store)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cameras else None,
        "features": features,
    }
    if not isinstance(info["robot_type"], str):
        info["robot_type"] = None
    _write_json(root / "meta/info.json", info)


def _encode_video(store: Any, key: str, path: Path, fps: int) -> dict[str, Any]:
    """Every committed frame of camera ``key`` into one mp4; the feature's description."""
    h, w, c = store.features[key].shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = fractions.Fraction(1, fps)
        stream.options = {"crf": str(VIDEO_CRF), "g": str(VIDEO_GOP), "preset": "veryfast"}
        pts = 0
        for lo in range(0, store.num_steps, 256):
            frames = store.read(key, lo, min(lo + 256, store.num_steps))
            for frame in frames:
                rgb = frame if c == 3 else np.repeat(frame, 3, axis=2)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                vf.pts = pts
                pts += 1
                container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
    return {
        "dtype": "video",
        "shape": [h, w, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": h,
            "video.width": w,
            "video.codec": "h264",
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def _stats(store: Any) -> dict[str, Any]:
    """lerobot's stats.json: per feature lists; image statistics per channel, shape (3, 1, 1)."""
    out: dict[str, Any] = {}
    for key, s in store.stats.items():
        f = store.features[key]
        if f.is_image:
            c = lambda v: [[[x]] for x in v]  # noqa: E731
            out[key] = {k: c(s[k]) for k in ("mean", "std", "min", "max")} | {"count": [s["count"]]}
        else:
            out[key] = {k: list(np.ravel(s[k])) for k in ("mean", "std", "min", "max")}
            out[key]["count"] = [s["count"]]
            for q, v in (s.get("quantiles") or {}).items():
                out[key][q] = list(np.ravel(v))
    return out


def _write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes it (``task`` is the index: lerobot looks tasks up by it)."""
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), pa.int64()),
            "task": pa.array(tasks, pa.string()),
        }
    )
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    _write_parquet(path, table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}))


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(value, indent=4))
    os.replace(tmp, path)


# -- import ------------------------------------------------------------------------------------
def import_lerobot(
    src: str | os.PathLike[str], out: str | os.PathLike[str], options: ImportOptions
) -> Any:
    """A new play store at ``out`` with every episode of the LeRobot v3.0 dataset ``src``."""
    root = existing_source(src, "a LeRobot v3.0 dataset folder")
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise StoreFormatError(f"{src} is not a LeRobot dataset (no meta/info.json)")
    try:
        info = json.loads(info_path.read_text())
        version, fps, lfeatures = str(info["codebase_version"]), info["fps"], info["features"]
    except (ValueError, KeyError, TypeError) as e:
        raise StoreFormatError(f"{info_path}: malformed LeRobot info ({e})") from None
    if not version.startswith("v3."):
        raise StoreFormatError(
            f"{src} is LeRobot dataset {version}; only v3.x imports (convert it with lerobot's "
            "convert_dataset_v21_to_v30)"
        )
    out_path = fresh_output(out, options.overwrite)
    data = _read_parquet_dir(root / "data", "data")
    episodes = _read_parquet_dir(root / "meta" / "episodes", "episode").to_pylist()
    episodes.sort(key=lambda e: e["episode_index"])

    features, sources = {}, {}
    for name, ft in lfeatures.items():
        if name in DEFAULT_FEATURES:
            continue
        key = store_key(name)
        extra = dict(ft.get("playworld") or {})
        shape = tuple(extra.pop("shape", None) or ft["shape"])
        names = ft.get("names")
        if (
            isinstance(names, list)
            and all(isinstance(x, str) for x in names)
            and ft["dtype"] not in ("video", "image")
            and len(names) in (shape[0], shape[-1])
        ):
            extra["names"] = names
        if ft["dtype"] in ("video", "image"):
            extra["kind"] = "image"
            h, w, c = ft["shape"]
            if (ft.get("names") or [None])[0] == "channels":  # (C, H, W) in some datasets
                c, h, w = ft["shape"]
            features[key] = feature_for(key, (h, w, 3), "uint8", options, **extra)
        else:
            features[key] = feature_for(key, shape, ft["dtype"], options, **extra)
        sources[key] = (name, ft)

    def episodes_iter():
        ep_column = np.asarray(data.column("episode_index").to_numpy())
        order = np.argsort(np.asarray(data.column("index").to_numpy()), kind="stable")
        for ep in episodes:
            rows = order[ep_column[order] == ep["episode_index"]]
            out_data = {}
            for key, (name, ft) in sources.items():
                if ft["dtype"] == "video":
                    out_data[key] = _decode_episode_video(root, info, name, ep, len(rows))
                elif ft["dtype"] == "image":
                    out_data[key] = _decode_images(data.column(name).take(rows).to_pylist())
                else:
                    col = data.column(name).take(rows)
                    out_data[key] = _column_numpy(col, ft["dtype"])
            meta = {"source": "lerobot", "tasks": list(ep.get("tasks") or [])}
            if ep.get(META_COLUMN):
                meta = json.loads(ep[META_COLUMN])
                meta.pop("committed_at", None)
            yield out_data, meta

    return write_store(
        out_path,
        features,
        float(fps),
        episodes_iter(),
        {"imported_from": "lerobot", "source": str(src), "robot_type": info.get("robot_type")},
        options.overwrite,
    )


def _column_numpy(col: pa.ChunkedArray, dtype: str) -> np.ndarray:
    """(T, n) or (T,) values of a scalar or (fixed-size) list column, without Python lists."""
    arr = col.combine_chunks()
    if pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        values = arr.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(arr), -1).astype(dtype, copy=False)
    return arr.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _read_parquet_dir(folder: Path, what: str) -> pa.Table:
    files = sorted(folder.glob("*/*.parquet"))
    if not files:
        raise StoreFormatError(f"{folder} holds no {what} parquet files (chunk-*/file-*.parquet)")
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")


def _decode_episode_video(
    root: Path, info: dict[str, Any], key: str, ep: dict[str, Any], length: int
) -> np.ndarray:
    """The ``length`` frames of one episode from its camera's video file, by timestamp."""
    template = info.get("video_path") or VIDEO_PATH
    path = root / template.format(
        video_key=key,
        chunk_index=ep.get(f"videos/{key}/chunk_index", 0),
        file_index=ep.get(f"videos/{key}/file_index", 0),
    )
    if not path.is_file():
        raise StoreFormatError(f"episode {ep['episode_index']}: video {path} is missing")
    fps = float(info["fps"])
    first = ep.get(f"videos/{key}/from_timestamp", 0.0)
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(first / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t < first - 0.5 / fps:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == length:
                break
    if len(frames) != length:
        raise StoreFormatError(
            f"episode {ep['episode_index']}: {path} holds {len(frames)} frames from "
            f"{first:.3f} s, the episode has {length}"
        )
    return np.stack(frames)


def _decode_images(cells: list[Any]) -> np.ndarray:
    """Images stored in parquet (``{"bytes": png, "path": ...}`` structs) as (T, H, W, 3)."""
    import imagecodecs

    out = []
    for cell in cells:
        img = imagecodecs.imread(cell["bytes"]) if isinstance(cell, dict) else np.asarray(cell)
        out.append(img[..., :3] if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2))
    return np.stack(out).astype(np.uint8)
