"""The play store: play trajectories in a zarr v3 group, crash-safe, chunked, fast to sample.

Layout (see README "Data contract")::

    zarr.json                 attributes["playworld"]: format, version, fps, features, blocks, info
    data/<key>                (N, *shape) one row per recorded step across all episodes, in order
    meta/zarr.json            attributes: the commit record
                                episode_ends    exclusive end row of every committed episode
                                metadata_block  episodes per file of meta/episodes/
                                stats           summary statistics per feature (with the
                                                actions' quantile sketches, merged per commit)
    meta/episodes/<k>.json    per-episode metadata (source, tasks, success, notes...) of
                              episodes [k * metadata_block, (k + 1) * metadata_block), a JSON list

The commit record is one JSON document written in one atomic write (a rename on local disks, a
single PUT on object stores): committing an episode is that write, after its rows and its
metadata file are written, so a crash at any moment leaves either the old record or the new one.
Rows past the last episode end, and metadata entries past the record's episode count, are
uncommitted: readers never look at them and `repair` trims the rows. The metadata lives in files
of a bounded number of episodes, so a commit writes O(episode) bytes however long the store;
format version 1 kept it in the record, which made committing the n-th episode cost O(n) (with
~3 KB of autoplay metadata per episode, the record write took ~85 ms of a commit at 600 episodes;
now ~6 ms). Version 1 stores are read, and appended to in their own layout. Image rows are grouped into
shards of ``blocks[key]`` frames, one frame per chunk (16 for the lossy ``h264`` codec, see
video_codec.py), so an hour at 30 Hz with two cameras makes well under a thousand files.

Why the record is not an array ``meta/episode_ends`` as in diffusion_policy: an array's shape and
its values live in two files, and no order of two writes makes the commit atomic.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from playworld.datasets import stats as _stats
from playworld.datasets.backend import (
    LOCK_NAME,
    WriterLock,
    array_codecs,
    local_path,
    open_zarr_store,
    register_optional_codecs,
)
from playworld.datasets.episode import Episode
from playworld.datasets.episode_buffer import EpisodeBuffer
from playworld.datasets.frame_compressor import FrameCompressor
from playworld.datasets.shards import FrameError, ShardEncoder, ShardReader
from playworld.errors import (
    FeatureError,
    StoreError,
    StoreFormatError,
    StoreNotFoundError,
    did_you_mean,
)
from playworld.features import Feature, Features, check_value, parse_features

if TYPE_CHECKING:
    from playworld.datasets.video_shards import VideoShardReader

FORMAT_NAME = "playworld.store"
FORMAT_VERSION = 2
#: Versions this playworld reads and appends to (1: every episode's metadata inline in the record).
READ_VERSIONS = (1, 2)
#: Episodes per metadata file ``meta/episodes/<k>.json`` (format 2). A commit rewrites the file of
#: its episode: ~2 KB of autoplay metadata each, so at most ~0.5 MB.
METADATA_BLOCK = 256
IMAGE_SHARD_FRAMES = 256
VECTOR_CHUNK_ROWS = 16384
VIDEO_CHUNK_FRAMES = 16  # frames per chunk of an h264 camera (video_codec.CHUNK_FRAMES)
# Every chunk is written, even one equal to the fill value: a missing file then always means a
# lost file (validate can say so), and zarr's emptiness test costs more CPU than compressing.
ARRAY_CONFIG = {"write_empty_chunks": True}


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if caught and callable(old):
            old(signal.SIGINT, caught[0])  # the default handler raises KeyboardInterrupt here
        elif caught and old == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGINT)


def _jsonable(x: Any) -> Any:
    """Turn numpy scalars and arrays into JSON-native values (zarr attributes must be)."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


class PlayStore:
    """A play store on a local path or an fsspec URL. Build with `create` or `open`.

    Reading: ``len(store)`` committed episodes, ``store.episode(i)`` (lazy), ``store.stats``.
    Streaming writes: ``begin_episode()``, ``append(step)`` per step, then ``commit(metadata)`` or
    ``discard()``. Whole episodes: ``add_episode(data, metadata)``.
    """

    def __init__(self, group: zarr.Group, url: str, mode: str, lock: WriterLock | None) -> None:
        self._group = group
        self.url = url
        self.mode = mode
        self._lock = lock
        self._writer: EpisodeBuffer | None = None
        self._frame_compressor = False
        self._in_episode = False
        attrs = group.attrs.asdict().get("playworld")
        if not isinstance(attrs, dict) or attrs.get("format") != FORMAT_NAME:
            raise StoreNotFoundError(
                f"{url} is a zarr group but not a play store (no 'playworld' format attribute)"
            )
        version = attrs.get("version")
        if version not in READ_VERSIONS:
            raise StoreFormatError(
                f"{url}: store format version {version!r}, this playworld reads versions "
                f"{', '.join(map(str, READ_VERSIONS))}; upgrade playworld or convert the store"
            )
        self.version = int(version)
        # Format 2: complete metadata files read so far (they never change), and the serialised
        # entries of the file the next commit rewrites (the writer's; index -> JSON text).
        self._metadata_read: dict[int, list[dict[str, Any]]] = {}
        self._metadata_text: dict[int, str] = {}
        try:
            self.features: Features = parse_features(attrs["features"])
            self.fps = float(attrs["fps"])
            self.blocks: dict[str, int] = {k: int(v) for k, v in attrs["blocks"].items()}
            self.info: dict[str, Any] = dict(attrs.get("info", {}))
        except (KeyError, TypeError, ValueError) as e:
            raise StoreFormatError(f"{url}: malformed store attributes ({e})") from e
        self._arrays: dict[str, zarr.Array] = {}
        self.refresh()

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path_or_url: str | os.PathLike[str],
        features: Mapping[str, Feature | Mapping[str, Any]],
        fps: float,
        *,
        overwrite: bool = False,
        info: Mapping[str, Any] | None = None,
        image_shard_frames: int = IMAGE_SHARD_FRAMES,
        vector_chunk_rows: int = VECTOR_CHUNK_ROWS,
        durable: bool = True,
    ) -> PlayStore:
        """Create an empty store.

        Args:
            features: name -> `Feature` (or its JSON dict) for every per-step key.
            fps: the control rate the store is recorded at, in Hz.
            info: free JSON metadata about the setup (robot, cameras, operator...).
            image_shard_frames: frames per shard file for image features.
            vector_chunk_rows: rows per chunk file for non-image features.
            durable: fsync every write (a committed episode survives a power cut, not only a kill).
        """
        feats = parse_features(features)
        if not fps > 0:
            raise FeatureError(f"fps must be positive, got {fps}")
        if image_shard_frames < 1 or vector_chunk_rows < 1:
            raise FeatureError("image_shard_frames and vector_chunk_rows must be >= 1")
        url = os.fspath(path_or_url)
        path = local_path(url)
        lock = None
        if path is not None:
            if path.exists() and not path.is_dir():
                raise StoreError(f"{url} is a file; pick a directory path for the store")
            if path.exists() and not overwrite and any(path.iterdir()):
                raise StoreError(
                    f"{url} exists and is not empty; pass overwrite=True or pick a new path"
                )
            path.mkdir(parents=True, exist_ok=True)
            lock = WriterLock(path)  # before clearing: never overwrite a store being recorded
            for child in path.iterdir():
                if child.name != LOCK_NAME:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        store = open_zarr_store(url, read_only=False, durable=durable)
        try:
            if path is not None:
                root = zarr.open_group(store, mode="a")
            else:
                root = zarr.open_group(store, mode="w" if overwrite else "w-")
            blocks = {}
            data = root.create_group("data")
            for key, f in feats.items():
                if f.is_image:
                    block = image_shard_frames
                    # h264 codes a group of frames per chunk (datasets/video_codec.py)
                    frames = VIDEO_CHUNK_FRAMES if f.codec == "h264" else 1
                    if block % frames:
                        raise FeatureError(
                            f"image_shard_frames must be a multiple of {frames} for the "
                            f"{f.codec} codec of {key!r}; got {block}"
                        )
                    layout = {"chunks": (frames, *f.shape), "shards": (block, *f.shape)}
                else:
                    block = vector_chunk_rows
                    layout = {"chunks": (block, *f.shape)}
                blocks[key] = block
                data.create_array(
                    key,
                    shape=(0, *f.shape),
                    dtype=f.dtype,
                    fill_value=0,
                    config=ARRAY_CONFIG,
                    **layout,
                    **array_codecs(f),
                )
            root.create_group(
                "meta",
                attributes={"episode_ends": [], "metadata_block": METADATA_BLOCK, "stats": {}},
            )
            root.attrs["playworld"] = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "fps": float(fps),
                "features": {k: f.to_json() for k, f in feats.items()},
                "blocks": blocks,
                "info": _jsonable(dict(info or {})),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(root, url, "a", lock)

    @classmethod
    def open(
        cls, path_or_url: str | os.PathLike[str], mode: str = "r", *, durable: bool = True
    ) -> PlayStore:
        """Open an existing store: ``mode="r"`` to read, ``"a"`` to read and append episodes."""
        if mode not in ("r", "a"):
            raise StoreError(f"mode must be 'r' or 'a', got {mode!r}")
        url = os.fspath(path_or_url)
        path = local_path(url)
        if path is not None and not (path / "zarr.json").is_file():
            hint = ""
            if path.with_name(path.name + ".swap").exists():
                hint = f" (an interrupted rewrite left {path.name}.swap: rename it back to {path.name})"
            what = "does not exist" if not path.exists() else "is not a play store (no zarr.json)"
            raise StoreNotFoundError(f"{url} {what}{hint}")
        register_optional_codecs()
        store = open_zarr_store(url, read_only=(mode == "r"), durable=durable)
        try:
            group = zarr.open_group(store, mode="r" if mode == "r" else "r+")
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as e:
            raise StoreNotFoundError(f"{url} is not a play store ({e})") from None
        except (ValueError, json.JSONDecodeError) as e:
            raise StoreFormatError(f"{url}: unreadable zarr metadata ({e})") from None
        lock = WriterLock(path) if (mode == "a" and path is not None) else None
        if lock is not None:  # the only writer now: temp files of a killed one are garbage
            for tmp in path.glob("**/*.partial"):
                tmp.unlink(missing_ok=True)
        try:
            return cls(group, url, mode, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def close(self) -> None:
        """Discard an episode in progress (never half-commit it) and release the writer lock."""
        if self._writer is not None:
            if self._in_episode:
                self.discard()
            self._writer.close()
            self._writer = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> PlayStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the commit record ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the commit record (to see episodes committed by another process since open)."""
        try:
            rec = zarr.open_group(self._group.store_path / "meta", mode="r").attrs.asdict()
        except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError) as e:
            raise StoreFormatError(
                f"{self.url}: missing or unreadable commit record meta/zarr.json ({e}); without "
                "it no episode can be located: restore the file from a backup"
            ) from None
        try:
            ends = np.asarray(rec["episode_ends"], dtype=np.int64)
            if self.version == 1:
                episodes = list(rec["episodes"])
            else:
                self._metadata_block = int(rec["metadata_block"])
                if self._metadata_block < 1:
                    raise ValueError(f"metadata_block {self._metadata_block} < 1")
                episodes = []
            stats = dict(rec["stats"])
        except (KeyError, TypeError, ValueError) as e:
            raise StoreFormatError(
                f"{self.url}: malformed commit record in meta/zarr.json ({e}); without it no "
                "episode can be located: restore the file from a backup"
            ) from None
        if self.version > 1 and ends.ndim == 1:
            episodes = self._read_metadata(len(ends))
        if (
            ends.ndim != 1
            or len(episodes) != len(ends)
            or (np.diff(ends) <= 0).any()
            or (ends[:1] <= 0).any()
        ):
            raise StoreFormatError(
                f"{self.url}: meta/zarr.json episode_ends are not increasing positive rows"
            )
        if self._writer is None:
            # A reader: the writer may have grown the arrays since. Arrays grow before the commit
            # record names their rows, so arrays read after the record always hold its rows.
            self._open_arrays()
        self._check_lengths(ends)
        self._ends, self._episodes, self._stats_rec = ends, episodes, stats

    def _metadata_key(self, block: int) -> str:
        return f"meta/episodes/{block}.json"

    def _read_metadata(self, n: int) -> list[dict[str, Any]]:
        """The metadata of episodes [0, n) from their files (format 2); complete files are read
        once. A file may hold entries past n (a commit that did not land): they are ignored."""
        size = self._metadata_block
        out: list[dict[str, Any]] = []
        prefix = self._group.store_path.path
        for block in range(-(-n // size)):
            want = min(size, n - block * size)
            entries = self._metadata_read.get(block)
            if entries is None:
                key = self._metadata_key(block)
                try:
                    value = sync(
                        self._group.store.get(
                            f"{prefix}/{key}" if prefix else key, default_buffer_prototype()
                        )
                    )
                    if value is None:
                        raise FileNotFoundError("missing")
                    entries = json.loads(value.to_bytes())
                    if not isinstance(entries, list) or len(entries) < want:
                        raise ValueError(
                            f"{len(entries) if isinstance(entries, list) else 'no'} entries, "
                            f"the commit record needs {want}"
                        )
                    if not all(isinstance(e, dict) for e in entries[:want]):
                        raise ValueError("an entry is not a JSON object")
                except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError too
                    entries = self._metadata_lost(block, block * size, block * size + want, e)
                if len(entries) >= size:
                    self._metadata_read[block] = entries[:size]
            out += entries[:want]
        return out

    def _metadata_lost(
        self, block: int, lo: int, hi: int, error: Exception
    ) -> list[dict[str, Any]]:
        """A metadata file that cannot be read: raise (`UncheckedStore`, for validate and
        salvage, reports it and goes on with empty metadata)."""
        raise StoreFormatError(
            f"{self.url}: {self.metadata_problem(block, lo, hi, error)}"
        ) from None

    @staticmethod
    def metadata_problem(block: int, lo: int, hi: int, error: Exception) -> str:
        return (
            f"episode metadata file meta/episodes/{block}.json is missing or unreadable "
            f"({error}): the metadata of episodes {lo}:{hi} is lost, their rows are intact; "
            "`playworld store salvage` copies them to a new store with empty metadata"
        )

    def _check_lengths(self, ends: np.ndarray) -> None:
        """Every array holds the rows the commit record names (`validate` lists them instead)."""
        for key, arr in self._arrays.items():
            if len(ends) and arr.shape[0] < ends[-1]:
                raise StoreFormatError(
                    f"{self.url}: data/{key} has {arr.shape[0]} rows, "
                    f"the commit record needs {ends[-1]}"
                )

    def _open_arrays(self) -> None:
        """(Re)open every feature's array, checking it exists and matches its description."""
        mode = "r" if self.mode == "r" else "r+"
        for key, feature in self.features.items():
            try:
                arr = zarr.open_array(self._group.store_path / f"data/{key}", mode=mode)
            except (FileNotFoundError, KeyError, zarr.errors.ArrayNotFoundError):
                raise StoreFormatError(
                    f"{self.url}: feature {key!r} has no array data/{key}"
                ) from None
            if arr.shape[1:] != feature.shape:
                raise StoreFormatError(
                    f"{self.url}: data/{key} does not match its feature description"
                )
            self._arrays[key] = arr.with_config(ARRAY_CONFIG)
        self._readers: dict[str, ShardReader | VideoShardReader | None] = {}

    @property
    def episode_ends(self) -> np.ndarray:
        """(E,) int64 exclusive end row of each committed episode."""
        return self._ends.copy()

    @property
    def num_steps(self) -> int:
        """Committed steps in all episodes."""
        return int(self._ends[-1]) if len(self._ends) else 0

    def __len__(self) -> int:
        return len(self._ends)

    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per feature: count, mean, std, min, max (lists, per element or per image channel);
        actions also have ``quantiles`` (q01, q05, q50, q95, q99), from the KLL sketches the
        commit record keeps (exact up to ~400 rows, then within ~0.4% of rank; see stats.py)."""
        return {k: _stats.finalize(v) for k, v in self._stats_rec.items()}

    @property
    def duration_s(self) -> float:
        return self.num_steps / self.fps

    def episode_metadata(self, index: int) -> dict[str, Any]:
        return dict(self._episodes[self._check_index(index)])

    def episode(self, index: int) -> Episode:
        """Committed episode ``index`` (negative counts from the end); reads nothing yet."""
        i = self._check_index(index)
        start = int(self._ends[i - 1]) if i else 0
        return Episode(self, i, start, int(self._ends[i]), dict(self._episodes[i]))

    def episodes(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.episode(i)

    def _check_index(self, index: int) -> int:
        n = len(self)
        if not -n <= index < n:
            raise StoreError(f"{self.url} has {n} episodes; episode {index} does not exist")
        return index % n

    def array(self, key: str) -> zarr.Array:
        """The raw zarr array of a feature (all rows, uncommitted tail included)."""
        if key not in self._arrays:
            raise FeatureError(
                f"no feature {key!r} in {self.url}.{did_you_mean(key, list(self._arrays))}"
            )
        return self._arrays[key]

    def chunk_key(self, key: str, row: int) -> str:
        """The file (chunk or shard) holding ``row`` of feature ``key``, relative to the root."""
        return f"data/{key}/c/{row // self.blocks[key]}" + "/0" * len(self.features[key].shape)

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of a feature; a missing, empty or corrupt file raises naming it.

        (zarr itself reads a missing chunk, or a frame missing from a shard, as zeros.)
        """
        arr = self.array(key)
        block = self.blocks[key]
        for row in range(start - start % block, stop, block):
            chunk = self.chunk_key(key, row)
            size = self._file_size(chunk)
            if not size:
                what = "missing" if size is None else "empty"
                raise StoreFormatError(
                    f"{self.url}: file {chunk} of feature {key!r} is {what} ({self._where(row)}); "
                    "run `playworld store validate` for the whole list"
                )
        reader = self._readers.get(key, False)
        if reader is False:  # built on first read: camera shards decode without zarr's
            reader = self._readers[key] = self._frame_reader(key, arr)  # per-chunk machinery
        hint = (
            "the other episodes stay readable; `playworld store validate` lists the damage, "
            "`playworld store salvage` copies the intact episodes to a new store"
        )
        try:
            return arr[start:stop] if reader is None else reader.read(start, stop)
        except FrameError as e:
            raise StoreFormatError(
                f"{self.url}: feature {key!r}, {self._where(e.row, step=True)} (row {e.row}) is "
                f"damaged: its frame in {e.key} {e.reason}; {hint}"
            ) from None
        except Exception as e:
            file, row = self._failing_file(key, start, stop, e)
            reason = str(e) if isinstance(e, StoreError) else f"{type(e).__name__}: {e}"
            reason = reason.removeprefix(f"{file}: ")
            raise StoreFormatError(
                f"{self.url}: feature {key!r}, {self._where(row)}: cannot read {file} ({reason}); "
                f"{hint}"
            ) from None

    def _frame_reader(self, key: str, arr: zarr.Array) -> ShardReader | VideoShardReader | None:
        """The direct shard reader of a camera array (lossless or ``h264``), or None (zarr)."""
        if self.features[key].codec == "h264":
            from playworld.datasets.video_shards import VideoShardReader

            return VideoShardReader.for_array(arr)
        return ShardReader.for_array(arr)

    def _failing_file(self, key: str, start: int, stop: int, error: Exception) -> tuple[str, int]:
        """The file (and its first row in ``[start, stop)``) that a read of ``[start, stop)``
        failed on: read again block by block (zarr's error does not say which chunk)."""
        block = self.blocks[key]
        if isinstance(error, StoreError) and str(error).startswith("data/"):
            file = str(error).split(":", 1)[0]  # ShardReader names the shard it could not use
            for row in range(start - start % block, stop, block):
                if self.chunk_key(key, row) == file:
                    return file, max(row, start)
        arr = self.array(key)
        for row in range(start - start % block, stop, block):
            lo, hi = max(row, start), min(row + block, stop)
            try:
                arr[lo:hi]
            except Exception:
                return self.chunk_key(key, lo), lo
        return self.chunk_key(key, start), start

    def _where(self, row: int, step: bool = False) -> str:
        i = int(np.searchsorted(self._ends, row, side="right"))
        if i >= len(self._ends):
            return "uncommitted rows"
        first = int(self._ends[i - 1]) if i else 0
        return f"episode {i}, step {row - first}" if step else f"episode {i}"

    def _file_size(self, key: str) -> int | None:
        """Size of a file of the store in bytes, ``None`` if it does not exist."""
        path = local_path(self.url)
        if path is not None:
            try:
                return (path / key).stat().st_size
            except (FileNotFoundError, NotADirectoryError):
                return None
        return sync(self._group.store.getsize(key)) if sync(self._group.store.exists(key)) else None

    # -- writing -------------------------------------------------------------------------------
    def _require_writer_mode(self) -> None:
        if self.mode != "a":
            raise StoreError(f"{self.url} is open read-only; open it with mode='a' to record")

    def _require_writer(self) -> EpisodeBuffer:
        self._require_writer_mode()
        if self._writer is None:
            frames = None
            if self._frame_compressor:
                frames = self._start_frame_compressor()
            self._writer = EpisodeBuffer(
                self._arrays, self.features, self.blocks, self.num_steps, frame_compressor=frames
            )
        return self._writer

    def use_frame_compressor(self) -> None:
        """Compress and write camera frames in a child process from the next episode on (see
        `playworld.datasets.frame_compressor`): for real-time recording, where that work must stay
        off the control loop's process. Local stores only; elsewhere it changes nothing."""
        self._require_writer_mode()
        if not self._frame_compressor:
            self._frame_compressor = True
            if self._writer is not None and not self._in_episode:
                self._writer.close()
                self._writer = None

    def _start_frame_compressor(self) -> FrameCompressor | None:
        root = local_path(self.url)
        keys = {
            k: f"data/{k}"
            for k, arr in self._arrays.items()
            if self.features[k].is_image and ShardEncoder.for_array(arr) is not None
        }
        if root is None or not keys:
            return None
        return FrameCompressor(root, keys)

    def begin_episode(self) -> None:
        """Start recording an episode (an episode in progress must be committed or discarded first)."""
        w = self._require_writer()
        if self._in_episode:
            raise StoreError("an episode is already in progress; commit() or discard() it first")
        w.reset(self.num_steps)
        self._in_episode = True

    def append(self, step: Mapping[str, Any]) -> None:
        """Append one step (a dict with every feature) to the episode in progress."""
        if not self._in_episode:
            raise StoreError("no episode in progress; call begin_episode() first")
        self._writer_checked().append(step)

    def _writer_checked(self) -> EpisodeBuffer:
        assert self._writer is not None
        return self._writer

    def discard(self) -> None:
        """Drop the episode in progress; the store is left as after the last commit."""
        if not self._in_episode:
            return
        self._in_episode = False
        w = self._writer_checked()
        try:
            w.reset(self.num_steps)
        except StoreError:
            # A failed background write (e.g. a full disk) is already reported; the rows it left
            # are uncommitted and `repair` or the next episode trims them.
            w.buffers.clear()

    def commit(self, metadata: Mapping[str, Any] | None = None) -> int:
        """Make the episode in progress durable and visible; return its index.

        Every step is written (and fsynced on local disks) before the one write that commits it.
        On failure (a full disk...) the episode is discarded, committed episodes are untouched,
        and the error is raised.
        """
        return self._commit(None, [metadata])

    def commit_episodes(
        self, lengths: Sequence[int], metadata: Sequence[Mapping[str, Any] | None]
    ) -> int:
        """Commit the rows in progress as several episodes at once, of `lengths` steps (summing
        to the rows appended) with one metadata each, in one record write; return the last
        one's index. What bulk copies use (`maintenance.copy_episodes`): every commit writes each
        array's partial chunk and the record (~50 ms for 10 features), so committing N short
        episodes one by one costs N times that. All or none are committed, as with `commit`."""
        lengths = [int(n) for n in lengths]
        if len(lengths) != len(metadata) or not lengths or min(lengths) < 1:
            raise StoreError(
                f"expected one metadata per episode and lengths >= 1, found {len(lengths)} "
                f"lengths (min {min(lengths, default=0)}) and {len(metadata)} metadata"
            )
        return self._commit(lengths, metadata)

    def _commit(
        self, lengths: list[int] | None, metadata: Sequence[Mapping[str, Any] | None]
    ) -> int:
        if not self._in_episode:
            raise StoreError("no episode in progress; call begin_episode() first")
        w = self._writer_checked()
        if w.steps == 0:
            raise StoreError("cannot commit an empty episode; append steps first, or discard()")
        if lengths is not None and sum(lengths) != w.steps:
            raise StoreError(
                f"expected episode lengths summing to the {w.steps} rows appended, found "
                f"{sum(lengths)}"
            )
        try:
            metas = [json.loads(json.dumps(_jsonable(dict(m or {})))) for m in metadata]
        except (TypeError, ValueError) as e:
            raise FeatureError(f"episode metadata must be JSON-serialisable: {e}") from None
        start, end = w.committed, w.committed + w.steps
        ends = (start + np.cumsum(lengths)).tolist() if lengths is not None else [end]
        try:
            w.flush()
            record = self._next_record(start, ends, metas, w)
            episodes = self._episodes + metas
        except BaseException:
            self.discard()
            raise
        # The record write is the commit: once it may have landed, never trim the episode's rows.
        # A Ctrl-C would interrupt only the wait in zarr's sync() (the write goes on in zarr's
        # I/O thread), and discard() would then trim rows that the new record names.
        with _sigint_deferred():
            try:
                if self.version > 1:
                    self._put_metadata(episodes, len(self._episodes))
                self._put_record(record)
            except OSError as e:
                self.discard()
                raise StoreError(
                    f"{self.url}: committing the episode failed ({e}); it is discarded, the "
                    "committed episodes are untouched"
                ) from e
            self._ends = np.append(self._ends, ends).astype(np.int64)
            self._episodes = episodes
            self._stats_rec = record["stats"]
            self._in_episode = False
        w.reset(end)
        return len(self._ends) - 1

    def add_episode(
        self, data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> int:
        """Write a whole episode at once: ``data[key]`` is ``(T, *shape)`` for every feature."""
        lengths = {k: len(np.asarray(v)) for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise FeatureError(f"episode arrays differ in length: {lengths}")
        missing = sorted(self.features.keys() - data.keys())
        if missing or data.keys() - self.features.keys():
            raise FeatureError(
                f"episode keys do not match the store's features: missing {missing}, "
                f"unexpected {sorted(data.keys() - self.features.keys())}"
            )
        steps = next(iter(lengths.values()))
        checked = {k: check_value(k, self.features[k], v, steps=steps) for k, v in data.items()}
        self.begin_episode()
        try:
            for t in range(steps):
                self.append({k: v[t] for k, v in checked.items()})
        except BaseException:
            self.discard()
            raise
        return self.commit(metadata)

    def _next_record(
        self, start: int, ends: list[int], metas: list[dict[str, Any]], w: EpisodeBuffer
    ) -> dict[str, Any]:
        """The commit record with the episodes ending at ``ends`` (rows ``[start, ends[-1])``)
        added: their statistics (gathered by the writer as it wrote the rows) merged into the
        store's, O(episodes)."""
        end = ends[-1]
        stats_rec = dict(self._stats_rec)
        for key, f in self.features.items():
            if f.is_image:
                s = w.image_sums[key]
                new = _stats.image_moments(s[0], s[1], end - start)
                stats_rec[key] = _stats.merge(stats_rec.get(key), new)
                continue
            episode = w.moments[key]
            if episode is None:  # (every key gets rows on flush; kept for safety)
                episode = _stats.moments(self._arrays[key][start:end].reshape(end - start, -1))
            merged = _stats.merge(stats_rec.get(key), episode)
            if key in w.sketches:
                sketch = self._quantile_sketch(key, start)
                sketch.merge(w.sketches[key])
                merged["quantiles"] = sketch.quantiles()
                merged["sketch"] = sketch.to_json()
            stats_rec[key] = merged
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
        for meta in metas:
            meta.setdefault("source", "teleop")
            meta["committed_at"] = now
        if self.version == 1:
            return {
                "episode_ends": [*self._ends.tolist(), *ends],
                "episodes": [*self._episodes, *metas],
                "stats": stats_rec,
            }
        return {
            "episode_ends": [*self._ends.tolist(), *ends],
            "metadata_block": self._metadata_block,
            "stats": stats_rec,
        }

    def _put_metadata(self, episodes: list[dict[str, Any]], first: int) -> None:
        """Write the metadata files holding episodes [first, len(episodes)) (format 2), each in
        one atomic write; entries already serialised by an earlier commit are not again."""
        size = self._metadata_block
        for block in range(first // size, -(-len(episodes) // size)):
            lo, hi = block * size, min((block + 1) * size, len(episodes))
            cache = self._metadata_text
            if any(i < lo for i in cache):  # a new file: the previous one is complete
                cache.clear()
            for i in range(lo, hi):
                if i >= first or i not in cache:  # (a discarded commit may have left its own)
                    cache[i] = json.dumps(episodes[i], allow_nan=True)
            self._put(self._metadata_key(block), f"[{','.join(cache[i] for i in range(lo, hi))}]")

    def _put(self, key: str, text: str) -> None:
        """One atomic write of ``text`` at ``key`` (relative to the store root) through the zarr
        store: a rename on local disks (fsynced when durable), one PUT on object stores."""
        value = default_buffer_prototype().buffer.from_bytes(text.encode())
        prefix = self._group.store_path.path
        sync(self._group.store.set(f"{prefix}/{key}" if prefix else key, value))

    def _put_record(self, record: dict[str, Any]) -> None:
        """Write the commit record: ``meta/zarr.json`` (a zarr group document whose attributes
        are the record) in one atomic write through the zarr store (a rename on local disks, one
        PUT on object stores). The document is the one zarr's ``attrs.put`` writes, serialised
        here because zarr deep-copies the attributes first (``dataclasses.asdict``: ~30 ms per
        1000 episodes, the one cost of a commit that grew with the store)."""
        doc = {"attributes": record, "zarr_format": 3, "node_type": "group"}
        self._put("meta/zarr.json", json.dumps(doc, allow_nan=True))

    def _quantile_sketch(self, key: str, start: int) -> _stats.QuantileSketch:
        """The store's sketch of ``key`` over committed rows ``[0, start)``, from the commit
        record; rebuilt from the rows once for a store written before sketches were saved."""
        saved = self._stats_rec.get(key, {}).get("sketch")
        if saved is not None:
            try:
                sketch = _stats.QuantileSketch.from_json(saved)
                if sketch.count == start:
                    return sketch
            except (KeyError, TypeError, ValueError, RuntimeError):
                pass  # unreadable: rebuilt below, like an old store's
        arr = self._arrays[key]
        sketch = _stats.QuantileSketch(int(np.prod(self.features[key].shape, dtype=int)))
        span = max(1, (64 << 20) // max(self.features[key].nbytes, 1))
        for lo in range(0, start, span):
            sketch.update(arr[lo : min(lo + span, start)])
        return sketch

    def __repr__(self) -> str:
        return f"PlayStore({self.url!r}, episodes={len(self)}, steps={self.num_steps}, fps={self.fps:g})"
