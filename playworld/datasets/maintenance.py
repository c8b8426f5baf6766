"""Store maintenance: validate, repair, describe, merge and drop episodes of a play store.

    validate(path)          every problem of a store, one line each (nothing is changed), and the
                            committed episodes each damages
    repair(path)            trim the uncommitted tail and leftover temp files (committed rows
                            untouched); damaged committed data remains listed (see salvage.py)
    info(path)              episodes, steps, features, size on disk, compression per feature
    merge(a, b, out)        a new store with the episodes of ``a`` then ``b``
    drop(path, i, out=None) the store without episode ``i`` (in place: rewrite, then atomic swap)

Copies go through the store's own streaming API (``begin_episode/append/commit``), so every store
they write is valid by construction and its statistics are recomputed by the normal commit path;
rows are read in spans of at most `READ_BUDGET` bytes, so long camera episodes never sit in memory
whole.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from zarr.abc.store import SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from playworld.datasets.backend import exchange_paths, local_path, open_zarr_store
from playworld.datasets.shards import ShardReader
from playworld.datasets.store import IMAGE_SHARD_FRAMES, VECTOR_CHUNK_ROWS, PlayStore
from playworld.errors import ConfigError, FeatureError, StoreError
from playworld.features import Feature

READ_BUDGET = 32 << 20  # bytes per read while scanning or copying (~36 frames at 480x640x3)
PARTIAL_SUFFIX = ".partial"  # zarr's LocalStore writes <name>.<hex>.partial, then renames it
_EMPTY = np.uint64(2**64 - 1)  # a shard index entry for a chunk that was never written


# -- reports -----------------------------------------------------------------------------------
@dataclasses.dataclass
class ValidationReport:
    """What `validate` found. ``problems`` has one self-contained line per problem."""

    url: str
    problems: list[str]
    uncommitted_rows: int = 0  # max over data arrays of rows past the last committed end
    episodes: int = 0
    steps: int = 0
    files: int = 0
    deep: bool = True
    # committed episode -> the first problem that damages it (what `salvage` drops, and why)
    damaged: dict[int, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        if self.problems:
            return list(self.problems)
        how = "every committed block decoded" if self.deep else "quick check: images not decoded"
        return [
            f"{self.url}: valid, {self.episodes} episodes, {self.steps} steps, {self.files} files ({how})"
        ]


@dataclasses.dataclass
class RepairReport:
    """What `repair` removed, and what it cannot fix (missing or corrupt committed data)."""

    url: str
    removed_rows: int  # max over data arrays of the uncommitted rows trimmed
    removed_files: list[str]  # leftover temp files and chunk files past the committed end
    trimmed: dict[str, int] = dataclasses.field(default_factory=dict)  # key -> rows trimmed
    remaining: list[str] = dataclasses.field(default_factory=list)
    damaged: dict[int, str] = dataclasses.field(default_factory=dict)  # as in ValidationReport
    episodes: int = 0

    def lines(self) -> list[str]:
        out = []
        if self.trimmed:
            per_key = ", ".join(f"data/{k}: {n}" for k, n in self.trimmed.items())
            out.append(f"trimmed {self.removed_rows} uncommitted rows ({per_key})")
        out += [f"deleted {f}" for f in self.removed_files]
        if not out and not self.remaining:
            out.append(
                f"{self.url}: nothing to repair (no uncommitted rows, no leftover temp files)"
            )
        out += [f"not repaired: {p}" for p in self.remaining]
        if self.remaining:
            out.append(
                f"committed data is damaged ({len(self.damaged)} of {self.episodes} episodes) and "
                f"repair cannot restore it: `playworld store salvage {self.url} -o NEW` writes "
                "the intact episodes to a new store"
            )
        return out


# -- helpers -----------------------------------------------------------------------------------
class UncheckedStore(PlayStore):
    """A PlayStore that opens although arrays are shorter than the commit record, so that
    `validate` can list every short array instead of stopping at the first one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Unreadable metadata files, (file index, first episode, end episode, error): their
        #: episodes get empty metadata here, so that validate lists them and salvage copies them.
        self.metadata_problems: list[tuple[int, int, int, Exception]] = []
        super().__init__(*args, **kwargs)

    def _check_lengths(self, ends: np.ndarray) -> None:
        pass

    def _metadata_lost(
        self, block: int, lo: int, hi: int, error: Exception
    ) -> list[dict[str, Any]]:
        self.metadata_problems.append((block, lo, hi, error))
        return [{} for _ in range(hi - lo)]


def chunk_key(store: PlayStore, key: str, row: int) -> str:
    """The file (chunk or shard) holding ``row`` of feature ``key``, relative to the store root:
    ``data/<key>/c/<row // block>/0/...`` with one ``/0`` per per-step dimension."""
    return store.chunk_key(key, row)


def list_files(path_or_url: str | os.PathLike[str]) -> dict[str, int]:
    """Every file of a store (temp files and the lock included): relative key -> size in bytes."""
    url = os.fspath(path_or_url)
    root = local_path(url)
    if root is not None:
        out = {}
        for d, _, names in os.walk(root):
            for name in names:
                full = os.path.join(d, name)
                with contextlib.suppress(FileNotFoundError):  # a temp file renamed meanwhile
                    out[os.path.relpath(full, root).replace(os.sep, "/")] = os.path.getsize(full)
        return out
    zs = open_zarr_store(url, read_only=True)

    async def sizes() -> dict[str, int]:
        keys = [k async for k in zs.list()]
        return dict(zip(keys, await asyncio.gather(*(zs.getsize(k) for k in keys)), strict=True))

    return sync(sizes())


def _episodes_of(ends: np.ndarray, lo: int, hi: int) -> str:
    """'episode 3' or 'episodes 3-4' for rows [lo, hi)."""
    a = int(np.searchsorted(ends, lo, side="right"))
    b = int(np.searchsorted(ends, hi - 1, side="right"))
    return f"episode {a}" if a == b else f"episodes {a}-{b}"


def _ranges(values: list[int], sep: str = ":") -> str:
    """[4, 5, 6, 9] -> '4:7, 9' (with sep ':', half-open row ranges) or '4-6, 9' (sep '-')."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if i == j:
            out.append(str(values[i]))
        else:
            end = values[j] + 1 if sep == ":" else values[j]
            out.append(f"{values[i]}{sep}{end}")
        i = j + 1
    return ", ".join(out)


def _rows_text(ends: np.ndarray, rows: list[int]) -> str:
    """'row 9 (episode 1, step 4)' or 'rows 9:11, 14 (episodes 1-2)'."""
    if len(rows) == 1:
        i, step = _locate(ends, rows[0])
        return f"row {rows[0]} (episode {i}, step {step})"
    eps = sorted({_locate(ends, r)[0] for r in rows})
    which = f"episode {eps[0]}" if len(eps) == 1 else f"episodes {_ranges(eps, '-')}"
    return f"rows {_ranges(rows)} ({which})"


def _span(features: dict[str, Feature]) -> int:
    """Rows per read so that one read of every feature stays within `READ_BUDGET`."""
    return max(1, READ_BUDGET // sum(f.nbytes for f in features.values()))


def _locate(ends: np.ndarray, row: int) -> tuple[int, int]:
    """(episode, step within it) of a committed row."""
    i = int(np.searchsorted(ends, row, side="right"))
    return i, row - (int(ends[i - 1]) if i else 0)


def _size_problem(size: int, n_inner: int) -> str | None:
    """A file too short to hold any data (zarr reads an empty shard silently as zero frames)."""
    if size == 0:
        return "empty file (0 bytes)"
    index = 16 * n_inner + 4  # a shard ends with (offset, length) uint64 per frame and a crc32c
    if n_inner > 1 and size < index:
        return f"{size} bytes, shorter than its {index}-byte shard index (truncated)"
    return None


def _shard_hole(zs: Any, file: str, size: int, n_inner: int, used: int) -> str | None:
    """A frame of the first ``used`` that a shard's index lists as never written or as lying
    past the end of the file (zarr would read the first silently as zeros)."""
    nbytes = 16 * n_inner + 4
    buf = sync(zs.get(file, default_buffer_prototype(), SuffixByteRequest(nbytes)))
    index = np.frombuffer(buf.to_bytes()[:-4], dtype="<u8").reshape(n_inner, 2)[:used]
    holes = np.flatnonzero(index[:, 0] == _EMPTY)
    if len(holes):
        return (
            f"the shard holds no data for {len(holes)} committed frames (first: frame {holes[0]})"
        )
    if (index[:, 0] + index[:, 1] > size - nbytes).any():
        return "its shard index points past the end of the file (truncated)"
    return None


# -- validate ----------------------------------------------------------------------------------
class _Findings:
    """Problems found so far, and the committed episodes each damages."""

    def __init__(self, ends: np.ndarray) -> None:
        self.ends = ends
        self.lines: list[str] = []
        self.damaged: dict[int, str] = {}

    def add(self, line: str, rows: tuple[int, int] | list[int] | None = None) -> None:
        """A problem; ``rows`` (a range [lo, hi) or a list) are committed rows it damages."""
        self.lines.append(line)
        if rows is None:
            return
        if isinstance(rows, tuple):
            lo, hi = rows
            a = int(np.searchsorted(self.ends, lo, side="right"))
            b = int(np.searchsorted(self.ends, hi - 1, side="right"))
            episodes: Iterable[int] = range(a, min(b, len(self.ends) - 1) + 1)
        else:
            episodes = {_locate(self.ends, r)[0] for r in rows}
        for i in sorted(episodes):
            self.damaged.setdefault(i, line)


def validate(path_or_url: str | os.PathLike[str], *, deep: bool = True) -> ValidationReport:
    """Check a store without changing it; return every problem found, one line each.

    Found: uncommitted rows past the last committed end, arrays shorter than the commit record,
    missing chunk/shard files of committed rows, empty or truncated files, leftover ``*.partial``
    temp files, NaN/inf in committed non-image rows. ``deep`` also decodes every committed image
    frame (non-image features, small, are always read); a camera shard whose index is intact is
    checked frame by frame, so the line names the damaged frames and their episodes. The
    report's ``damaged`` maps each damaged committed episode to its first problem. A non-store
    path raises `StoreNotFoundError`, a wrong format version or unreadable commit record
    `StoreFormatError`.
    """
    store = UncheckedStore.open(path_or_url, "r")
    files = list_files(store.url)
    zs = open_zarr_store(store.url, read_only=True)
    ends, n = store.episode_ends, store.num_steps
    found = _Findings(ends)
    tail = 0
    for key, feature in store.features.items():
        arr = store.array(key)
        rows, block = arr.shape[0], store.blocks[key]
        if rows < n:
            found.add(
                f"data/{key} has {rows} rows, the commit record needs {n}: "
                f"rows {rows}:{n} ({_episodes_of(ends, rows, n)}) are lost",
                (rows, n),
            )
        elif rows > n:
            tail = max(tail, rows - n)
            found.add(
                f"data/{key} has {rows - n} uncommitted rows past the last committed end (row {n}); "
                "`playworld store repair` trims them"
            )
        n_inner = (
            1
            if arr.shards is None
            else int(np.prod(np.asarray(arr.shards) // np.asarray(arr.chunks)))
        )
        frames = ShardReader.for_array(arr) if deep and feature.is_image else None
        bad_rows: list[int] = []
        bad_values = 0
        have = min(rows, n)
        for lo in range(0, have, block):
            hi = min(lo + block, have)
            file = chunk_key(store, key, lo)
            where = f"feature {key!r} rows {lo}:{hi}, {_episodes_of(ends, lo, hi)}"
            if file not in files:
                found.add(f"missing file {file} ({where})", (lo, hi))
                continue
            error = _size_problem(files[file], n_inner)
            if error is None and frames is not None:
                error, damaged = frames.check(lo // block, hi - lo)
                if damaged:
                    rows_bad = [r for r, _ in damaged]
                    found.add(
                        f"corrupt file {file} (feature {key!r}): {len(damaged)} of {hi - lo} "
                        f"frames damaged, {_rows_text(ends, rows_bad)}: {damaged[0][1]}",
                        rows_bad,
                    )
            elif error is None and (deep or not feature.is_image):
                error, nonfinite, count = _scan(arr, feature, lo, hi)
                bad_rows += nonfinite
                bad_values += count
                if error is None and deep and n_inner > 1:
                    used = -(-(hi - lo) // int(arr.chunks[0]))  # chunks of several frames (h264)
                    error = _shard_hole(zs, file, files[file], n_inner, used)
            if error is not None:
                found.add(f"corrupt file {file} ({where}): {error}", (lo, hi))
        if bad_rows:
            i, step = _locate(ends, bad_rows[0])
            found.add(
                f"feature {key!r} ({feature.kind}) has {bad_values} NaN/inf values in committed rows, "
                f"first at row {bad_rows[0]} (episode {i}, step {step})",
                bad_rows,
            )
    for block, lo, hi, error in store.metadata_problems:
        found.add(store.metadata_problem(block, lo, hi, error))
    for file in sorted(files):
        if file.endswith(PARTIAL_SUFFIX):
            found.add(
                f"leftover temp file {file} (an interrupted write); `playworld store repair` deletes it"
            )
    return ValidationReport(
        store.url, found.lines, tail, len(store), n, len(files), deep, found.damaged
    )


def _scan(arr: Any, feature: Feature, lo: int, hi: int) -> tuple[str | None, list[int], int]:
    """Decode rows [lo, hi) span by span through zarr: (error or None, rows with NaN/inf,
    NaN/inf values)."""
    span = max(1, READ_BUDGET // feature.nbytes)
    bad: list[int] = []
    count = 0
    for a in range(lo, hi, span):
        try:
            rows = arr[a : min(a + span, hi)]
        except Exception as e:  # zarr raises codec-specific errors (ValueError, RuntimeError...)
            return f"{type(e).__name__}: {e}", bad, count
        if rows.dtype.kind == "f" and not feature.is_image:
            finite = np.isfinite(rows.reshape(len(rows), -1))
            bad += (a + np.flatnonzero(~finite.all(axis=1))).tolist()
            count += int((~finite).sum())
    return None, bad, count


# -- repair ------------------------------------------------------------------------------------
def repair(path_or_url: str | os.PathLike[str]) -> RepairReport:
    """Trim every array to the last committed end and delete leftover ``*.partial`` files.

    Holds the writer lock while it works (a store being recorded raises `StoreLockedError`);
    never touches committed rows. Problems it cannot fix (damaged committed data, found by a
    full `validate` afterwards, camera frames decoded) are listed in ``remaining``.
    """
    trimmed: dict[str, int] = {}
    before = list_files(path_or_url)  # before open(mode="a"), which deletes temp files itself
    with UncheckedStore.open(path_or_url, "a") as store:  # short arrays are reported, not raised
        url, n = store.url, store.num_steps
        for key in store.features:
            arr = store.array(key)
            if arr.shape[0] > n:
                trimmed[key] = arr.shape[0] - n
                arr.resize((n, *arr.shape[1:]))  # also deletes the chunk files wholly past n
        zs = open_zarr_store(url, read_only=False)
        for file in sorted(before):
            if file.endswith(PARTIAL_SUFFIX):
                sync(zs.delete(file))
        removed = sorted(before.keys() - list_files(url).keys())
    after = validate(url, deep=True)
    return RepairReport(
        url,
        max(trimmed.values(), default=0),
        removed,
        trimmed,
        after.problems,
        after.damaged,
        after.episodes,
    )


# -- info --------------------------------------------------------------------------------------
def info(path_or_url: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON-native description of a store.

    Keys: url, episodes, steps, duration_s, fps, uncommitted_rows, sources (episodes per source),
    features (per key: shape, dtype, kind, units, codec, level, rows, raw_bytes, stored_bytes,
    compression_ratio = raw / stored or None), codecs, size_bytes (all files), files, info.
    """
    store = PlayStore.open(path_or_url, "r")
    files = list_files(store.url)
    features = {}
    tail = 0
    for key, f in store.features.items():
        rows = store.array(key).shape[0]
        tail = max(tail, rows - store.num_steps)
        prefix = f"data/{key}/c/"
        stored = sum(size for file, size in files.items() if file.startswith(prefix))
        raw = rows * f.nbytes
        features[key] = {
            "shape": list(f.shape),
            "dtype": f.dtype,
            "kind": f.kind,
            "units": f.units,
            "codec": f.codec,
            "level": f.level,
            "rows": rows,
            "raw_bytes": raw,
            "stored_bytes": stored,
            "compression_ratio": round(raw / stored, 3) if stored and raw else None,
        }
    sources = collections.Counter(
        str(store.episode_metadata(i).get("source", "unknown")) for i in range(len(store))
    )
    return {
        "url": store.url,
        "episodes": len(store),
        "steps": store.num_steps,
        "duration_s": store.duration_s,
        "fps": store.fps,
        "uncommitted_rows": tail,
        "sources": dict(sorted(sources.items())),
        "features": features,
        "codecs": sorted({f.codec for f in store.features.values()}),
        "size_bytes": sum(files.values()),
        "files": len(files),
        "info": store.info,
    }


# -- merge and drop ----------------------------------------------------------------------------
def _differences(a: PlayStore, b: PlayStore) -> list[str]:
    """What keeps two stores from being merged: features and fps, field by field."""
    out = []
    for name, x, y in ((a.url, a, b), (b.url, b, a)):
        only = sorted(x.features.keys() - y.features.keys())
        if only:
            out.append(f"features only in {name}: {', '.join(only)}")
    for key in sorted(a.features.keys() & b.features.keys()):
        fa, fb = a.features[key].to_json(), b.features[key].to_json()
        out += [f"feature {key!r} {k} {fa[k]!r} vs {fb[k]!r}" for k in fa if fa[k] != fb[k]]
    if a.fps != b.fps:
        out.append(f"fps {a.fps:g} vs {b.fps:g}")
    return out


@contextlib.contextmanager
def building_store(out: str | os.PathLike[str], like: PlayStore) -> Iterator[PlayStore]:
    """Create an empty store at ``out`` shaped like ``like``; remove it again if the body raises."""
    path = local_path(out)
    existed = path is not None and path.exists()
    blocks = {f.is_image: like.blocks[k] for k, f in like.features.items()}
    dst = PlayStore.create(  # raises if out is taken: then there is nothing of ours to remove
        out,
        like.features,
        like.fps,
        info=like.info,
        image_shard_frames=blocks.get(True, IMAGE_SHARD_FRAMES),
        vector_chunk_rows=blocks.get(False, VECTOR_CHUNK_ROWS),
    )
    try:
        yield dst
    except BaseException:
        dst.close()
        if path is None:
            sync(open_zarr_store(out, read_only=False).clear())
        else:
            shutil.rmtree(path, ignore_errors=True)
            if existed:
                path.mkdir()
        raise
    dst.close()


def copy_episode(src: PlayStore, index: int, dst: PlayStore) -> int:
    """Append committed episode ``index`` of ``src`` to ``dst`` span by span; return its new index.

    The metadata is kept (``committed_at`` becomes the time of this commit); ``dst`` recomputes
    its statistics. Nothing is committed if a read or write raises.
    """
    copy_episodes(src, [index], dst)
    return len(dst) - 1


#: Bytes of rows per record write of `copy_episodes` (a batch of whole episodes).
COPY_BATCH_BYTES = 64 << 20


def copy_episodes(src: PlayStore, indices: Iterable[int], dst: PlayStore) -> None:
    """`copy_episode` for many episodes, committed in batches of whole episodes of about
    `COPY_BATCH_BYTES` (`PlayStore.commit_episodes`): each commit writes every array's partial
    chunk and the record, so one commit per episode costs ~50 ms for 10 features however short
    the episode. Rows of consecutive episodes are read together, in spans of `READ_BUDGET`
    bytes (a read decodes whole chunks: reading episode by episode decoded each 16384-row
    chunk once per episode in it). A batch is committed whole or not at all."""
    episodes = [src.episode(i) for i in indices]
    span = _span(src.features)
    batch_rows = max(1, COPY_BATCH_BYTES // sum(f.nbytes for f in src.features.values()))
    # The last row of the run of consecutive episodes each index belongs to: reads stop there.
    run_stop = [0] * len(episodes)
    for j in range(len(episodes) - 1, -1, -1):
        follows = j + 1 < len(episodes) and episodes[j + 1].index == episodes[j].index + 1
        run_stop[j] = run_stop[j + 1] if follows else episodes[j].stop
    lengths: list[int] = []
    metas: list[dict[str, Any]] = []
    read: tuple[int, int, dict[str, np.ndarray]] = (0, 0, {})
    try:
        for j, ep in enumerate(episodes):
            if not lengths:
                dst.begin_episode()
            row = ep.start
            while row < ep.stop:
                lo, hi, rows = read
                if not lo <= row < hi:
                    lo, hi = row, min(row + span, run_stop[j])
                    rows = {k: src.read(k, lo, hi) for k in src.features}
                    read = lo, hi, rows
                for t in range(row - lo, min(hi, ep.stop) - lo):
                    dst.append({k: v[t] for k, v in rows.items()})
                row = min(hi, ep.stop)
            lengths.append(ep.stop - ep.start)
            metas.append(ep.metadata)
            if sum(lengths) >= batch_rows:
                dst.commit_episodes(lengths, metas)
                lengths, metas = [], []
        if lengths:
            dst.commit_episodes(lengths, metas)
    except BaseException:
        dst.discard()
        raise


def merge(
    a: str | os.PathLike[str], b: str | os.PathLike[str], out: str | os.PathLike[str]
) -> PlayStore:
    """Write a new store at ``out`` with the committed episodes of ``a``, then those of ``b``.

    Both must have the same features and fps (`FeatureError` naming every difference otherwise).
    Store-level ``info`` and layout come from ``a``. Returns ``out`` opened read-only.
    """
    sa, sb = PlayStore.open(a, "r"), PlayStore.open(b, "r")
    diff = _differences(sa, sb)
    if diff:
        raise FeatureError(
            f"cannot merge {sa.url} and {sb.url}: features and fps must match; they differ in: "
            + "; ".join(diff)
        )
    with building_store(out, sa) as dst:
        for src in (sa, sb):
            copy_episodes(src, range(len(src)), dst)
    return PlayStore.open(out, "r")


def drop(
    path: str | os.PathLike[str], episode: int, out: str | os.PathLike[str] | None = None
) -> PlayStore:
    """The store without episode ``episode`` (negative counts from the end); returns it read-only.

    With ``out`` a new store is written there. Without, the store is rewritten in place: into a
    sibling temp store, which is then swapped in atomically (`exchange_paths`) and the old one
    deleted; the writer lock is held throughout, and if the rewrite raises the original is
    untouched. Uncommitted rows and temp files are not carried over.
    """
    if out is not None:
        src = PlayStore.open(path, "r")
        skip = src.episode(episode).index  # raises naming how many episodes there are
        with building_store(out, src) as dst:
            copy_episodes(src, [i for i in range(len(src)) if i != skip], dst)
        return PlayStore.open(out, "r")
    local = local_path(path)
    if local is None:
        raise ConfigError(
            f"dropping an episode in place needs a local path, got {os.fspath(path)}; "
            "pass out=... (--out) to write the result to a new store"
        )
    local = Path(os.path.abspath(local))
    tmp = local.with_name(f"{local.name}.drop-{uuid.uuid4().hex[:8]}")
    with PlayStore.open(local, "a") as src:  # the lock keeps recorders out until the swap is done
        skip = src.episode(episode).index
        with building_store(tmp, src) as dst:
            copy_episodes(src, [i for i in range(len(src)) if i != skip], dst)
        try:
            exchange_paths(local, tmp)
        except OSError as e:
            raise StoreError(
                f"could not swap the rewritten store {tmp} into {local} ({e}); {local} is unchanged"
            ) from None
    shutil.rmtree(tmp, ignore_errors=True)  # the old store, now at tmp
    return PlayStore.open(local, "r")
