"""Where a store lives and how its bytes are encoded: zarr stores, codecs, the writer lock.

Local paths open through `DurableLocalStore` (zarr's `LocalStore`, whose writes are already atomic
renames, plus an fsync so that a committed episode also survives a power cut). URLs open through
zarr's `FsspecStore` (``memory://``, ``s3://`` when s3fs is installed, ...).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import logging
import os
import sys
import traceback
import uuid
import warnings
from pathlib import Path
from typing import Any

import zarr
from zarr.abc.store import Store
from zarr.core.buffer import Buffer
from zarr.storage import FsspecStore, LocalStore

from playworld.errors import ConfigError, StoreLockedError
from playworld.features import Feature

LOCK_NAME = ".playworld-writer.lock"

# Stores with the optional JPEG codec (a numcodecs codec, outside the zarr v3 spec) warn on
# every open; the README says so once instead.
warnings.filterwarnings(
    "ignore", message="Numcodecs codecs are not in the Zarr", category=UserWarning
)


class _ZarrTaskNoise(logging.Filter):
    """Drops asyncio's reports of zarr's own tasks left behind when a read fails part way
    ("Task was destroyed but it is pending!", "Task / _GatheringFuture exception was never
    retrieved": dozens of lines at exit, one per chunk in flight; zarr named in the message or
    its traceback). The read's error itself is raised and reported."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        first = msg.partition("\n")[0]
        noise = first.startswith("Task was destroyed but it is pending") or first.endswith(
            "exception was never retrieved"  # a Task's or a _GatheringFuture's
        )
        if not noise:
            return True
        where = msg
        if record.exc_info and record.exc_info[1] is not None:
            where += "".join(traceback.format_tb(record.exc_info[1].__traceback__))
        return "zarr" not in where


logging.getLogger("asyncio").addFilter(_ZarrTaskNoise())
# The same leftovers when a pending read coroutine of zarr's is collected unstarted (it happens
# under load, at exit: "sys:1: RuntimeWarning: coroutine 'concurrent_map.<locals>.run' was
# never awaited").
warnings.filterwarnings(
    "ignore",
    message=r"coroutine 'concurrent_map\.<locals>\.run' was never awaited",
    category=RuntimeWarning,
)
_previous_unraisablehook = sys.unraisablehook


def _unraisablehook(unraisable: Any) -> None:
    """The same leftovers at interpreter exit: zarr's coroutines finalised after its event loop
    closed ("Exception ignored in: <coroutine ...concurrent_map...>"). Anything else passes on."""
    code = getattr(unraisable.object, "cr_code", None)
    if code is not None and f"{os.sep}zarr{os.sep}" in code.co_filename:
        return
    _previous_unraisablehook(unraisable)


sys.unraisablehook = _unraisablehook


def put_durable(path: Path, value: Buffer, exclusive: bool) -> int:
    """Write ``path`` atomically (temp file, fsync, rename, fsync of the directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with tmp.open("wb") as f:
            n = f.write(value.as_buffer_like())
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # raises FileExistsError, like zarr's own exclusive write
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return n


class DurableLocalStore(LocalStore):
    """zarr's LocalStore with fsync: every write is on disk, not just in the page cache, when
    ``set`` returns. A kill -9 is survived by the atomic rename alone; a power cut needs the fsync."""

    async def _set(self, key: str, value: Buffer, exclusive: bool = False) -> None:
        import asyncio

        if not self._is_open:
            await self._open()
        self._check_writable()
        await asyncio.to_thread(put_durable, self.root / key, value, exclusive)


def local_path(path_or_url: str | os.PathLike[str]) -> Path | None:
    """The filesystem path behind a plain path or ``file://`` URL; ``None`` for other URLs."""
    s = os.fspath(path_or_url)
    if s.startswith("file://"):
        return Path(s[len("file://") :])
    if "://" in s:
        return None
    return Path(s)


def open_zarr_store(
    path_or_url: str | os.PathLike[str], *, read_only: bool, durable: bool = True
) -> Store:
    """A zarr store for a local path or an fsspec URL."""
    path = local_path(path_or_url)
    if path is not None:
        cls = DurableLocalStore if durable and not read_only else LocalStore
        return cls(path, read_only=read_only)
    url = os.fspath(path_or_url)
    try:
        return FsspecStore.from_url(url, read_only=read_only)
    except (ImportError, ValueError) as e:
        raise ConfigError(
            f"cannot open {url!r}: {e} (install the fsspec package for its protocol)"
        ) from e


class WriterLock:
    """An exclusive, non-blocking lock held by the one process allowed to write a local store.

    It is an ``flock``: the kernel drops it when the process dies, kill -9 included, so a crashed
    recorder never leaves a stale lock behind.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise StoreLockedError(
                f"{root} is being written by another process; open it with mode='r' to read, "
                "or stop the other writer"
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def exchange_paths(a: Path, b: Path) -> None:
    """Swap two directories atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Falls back to two renames where the call is missing; then a crash in between leaves ``a``
    renamed to ``b`` and the message of `open` tells how to finish.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
    tmp = a.with_name(a.name + ".swap")
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)


def array_codecs(feature: Feature) -> dict[str, Any]:
    """Keyword arguments of ``create_array`` for a feature's codec."""
    if feature.codec == "none":
        return {"compressors": None}
    if feature.codec == "zstd":
        # The checksum (4 bytes a chunk) makes a flipped byte an error instead of a wrong value.
        level = 1 if feature.level is None else feature.level
        return {"compressors": zarr.codecs.ZstdCodec(level=level, checksum=True)}
    if feature.codec == "lz4":
        # Byte shuffle, not zarr's default bitshuffle, which costs camera frames ~40% of their ratio.
        level = 1 if feature.level is None else feature.level
        return {"compressors": zarr.codecs.BloscCodec(cname="lz4", clevel=level, shuffle="shuffle")}
    if feature.codec == "jpeg":
        return {
            "serializer": jpeg_codec(95 if feature.level is None else feature.level),
            "compressors": None,
        }
    if feature.codec == "h264":
        from playworld.datasets import video_codec

        return {"serializer": video_codec.zarr_codec(feature.level), "compressors": None}
    raise ConfigError(f"no codec {feature.codec!r}")  # Feature already validated the name


def jpeg_codec(quality: int) -> Any:
    """imagecodecs' JPEG numcodecs codec, wrapped for zarr v3 as an array-to-bytes codec."""
    return _jpeg_codec_class()(level=quality)


_JPEG_CLASS: Any = None


def _jpeg_codec_class() -> Any:
    global _JPEG_CLASS
    if _JPEG_CLASS is None:
        try:
            import imagecodecs.numcodecs
        except ImportError as e:  # pragma: no cover - depends on the extra
            raise ConfigError(
                "the jpeg codec needs the jpeg extra: pip install 'playworld[jpeg]'"
            ) from e
        from zarr.codecs.numcodecs._codecs import _NumcodecsArrayBytesCodec
        from zarr.registry import register_codec

        imagecodecs.numcodecs.register_codecs(
            codecs=["imagecodecs_jpeg"], force=True, verbose=False
        )

        class ImagecodecsJpeg(_NumcodecsArrayBytesCodec, codec_name="imagecodecs_jpeg"):
            """JPEG for uint8 (1, H, W, C) chunks; lossy, ~10x smaller than lossless."""

        register_codec("numcodecs.imagecodecs_jpeg", ImagecodecsJpeg)
        _JPEG_CLASS = ImagecodecsJpeg
    return _JPEG_CLASS


def register_optional_codecs() -> None:
    """Make stores written with optional codecs readable (called before opening a store)."""
    with contextlib.suppress(ConfigError):
        _jpeg_codec_class()
    with contextlib.suppress(ImportError):
        import playworld.datasets.video_codec  # noqa: F401  (registers numcodecs.playworld_h264)
