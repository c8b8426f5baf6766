"""Camera shards compressed and written by a child process, for real-time recording.

A recorder's control loop shares its process with the store's writer. Even with the writer's
threads at a lower priority and the GIL handed over every millisecond, compressing and writing
a shard of frames in the same process stalled a 30 Hz loop for 12-30 ms a few times a minute
(measured with `bench/loop.py`: up to 6 dropped camera frames a minute on 2 cores); the same
writing done by a separate process left the loop's longest tick at 10 ms and dropped nothing.
So, as diffusion_policy's recorders do, the heavy part moves to a process of its own:

- the store (its lock, metadata, commit record) stays in the recording process, and so do the
  block buffers that `append` copies steps into;
- when a block of camera frames is to be written, the store's writer thread for that camera
  sends the raw frames over a socket to `FrameCompressor`'s child, which compresses them and
  writes the shard (`ShardEncoder`: the same bytes, atomic and fsynced), computes the frames'
  pixel statistics, and answers. The thread waits for the answer, so a commit still makes every
  step durable before the commit record is written.

The child is started with `subprocess` (``python -c``, calling `_main`), not
`multiprocessing`, so it never re-imports the recorder's ``__main__``; it exits when the
recording process closes its end, or dies (kill -9 included). Local stores only.
"""

from __future__ import annotations

import json
import mmap
import os
import socket
import subprocess
import sys
import threading
from multiprocessing import reduction
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from playworld.datasets.shards import default_threads
from playworld.errors import StoreError
from playworld.priority import lower_priority

_CHILD = "import sys; from playworld.datasets.frame_compressor import _main; _main(sys.argv[1])"


class FrameCompressor:
    """A child process writing rows of the given image arrays of a local store.

    ``arrays`` maps each key to its array path inside the store (``data/<key>``). `write` is
    called from one thread per key (the store's writer threads); each key has its own socket.
    """

    def __init__(self, root: Path, arrays: dict[str, str]) -> None:
        self.keys = list(arrays)
        ours, theirs = zip(*(socket.socketpair() for _ in self.keys), strict=True)
        spec = {
            "root": str(root),
            "threads": default_threads(),
            "arrays": [
                {"key": k, "path": p, "fd": s.fileno()}
                for (k, p), s in zip(arrays.items(), theirs, strict=True)
            ],
        }
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, json.dumps(spec)],
                pass_fds=[s.fileno() for s in theirs],
                stdin=subprocess.DEVNULL,
            )
        finally:
            for s in theirs:
                s.close()
        self._conns = {k: Connection(s.detach()) for k, s in zip(self.keys, ours, strict=True)}
        self._locks = {k: threading.Lock() for k in self.keys}
        self._buffers: dict[str, list[tuple[int, int]]] = {k: [] for k in self.keys}
        self.copied_writes = 0  # writes whose rows were not in a shared buffer (socket copies)

    def shared_buffer(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        """A uint8 array in memory the child maps too (``memfd``; not bounded by /dev/shm), its
        pages touched now: `write` of rows in it sends their place, not their bytes."""
        nbytes = int(np.prod(shape))
        fd = os.memfd_create(f"playworld-frames-{key}", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, nbytes)
            region = mmap.mmap(fd, nbytes, mmap.MAP_SHARED)
            conn = self._conns[key]
            with self._locks[key]:
                try:
                    conn.send(("buffer", len(self._buffers[key]), nbytes))
                    reduction.send_handle(conn, fd, self._proc.pid)
                except (EOFError, OSError) as e:
                    raise self._stopped(e) from None
        finally:
            os.close(fd)
        rows = np.frombuffer(region, dtype=np.uint8).reshape(shape)
        rows.fill(0)
        self._buffers[key].append((rows.ctypes.data, nbytes))
        return rows

    def write(self, key: str, start: int, rows: np.ndarray) -> np.ndarray:
        """Write ``rows`` (all in one shard) at row ``start``; the ``(2, C)`` pixel sums of the
        frames (see `stats.pixel_sums`) once they are durable in the store. Rows inside a
        `shared_buffer` are not copied; others go over the socket."""
        conn = self._conns[key]
        rows = np.ascontiguousarray(rows)
        addr = rows.ctypes.data
        shared = next(
            (
                (i, addr - base)
                for i, (base, size) in enumerate(self._buffers[key])
                if base <= addr and addr + rows.nbytes <= base + size
            ),
            None,
        )
        with self._locks[key]:
            try:
                if shared is not None:
                    conn.send(("shared", start, len(rows), *shared))
                else:
                    self.copied_writes += 1
                    conn.send(("write", start, len(rows)))
                    conn.send_bytes(memoryview(rows).cast("B"))
                status, value = conn.recv()
            except (EOFError, OSError) as e:
                raise self._stopped(e) from None
        if status != "ok":
            raise StoreError(value)
        return value

    def _stopped(self, e: BaseException) -> StoreError:
        return StoreError(
            f"the frame writer process stopped (exit status {self._proc.poll()}): {e}"
        )

    def close(self, timeout: float = 10.0) -> None:
        """Stop the child after the writes already answered; kill it if it does not exit."""
        for conn in self._conns.values():
            conn.close()  # the child sees end-of-file and exits
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    @property
    def pid(self) -> int:
        return self._proc.pid


# -- the child -------------------------------------------------------------------------------
def _serve_key(root: str, path: str, conn: Connection) -> None:
    """Answer one key's write requests until the recording process closes the socket."""
    import zarr

    from playworld.datasets.backend import DurableLocalStore
    from playworld.datasets.shards import ShardEncoder
    from playworld.datasets.stats import pixel_sums

    array = zarr.open_array(DurableLocalStore(root), path=path, mode="r+")
    writer = ShardEncoder.for_array(array)
    frame_shape = tuple(array.shape[1:])
    buf = np.zeros((array.shards[0], *frame_shape), dtype=array.dtype)
    buf.fill(0)  # pages touched now, not while the recording runs
    shared: list[np.ndarray] = []  # the recording process's block buffers, mapped
    frame_bytes = int(np.prod(frame_shape))
    while True:
        try:
            kind, *args = conn.recv()
            if kind == "buffer":
                _, nbytes = args
                fd = reduction.recv_handle(conn)
                with open(fd, "rb", buffering=0, closefd=True) as f:
                    region = mmap.mmap(f.fileno(), nbytes, mmap.MAP_SHARED, mmap.PROT_READ)
                shared.append(np.frombuffer(region, dtype=np.uint8))
                continue
            if kind == "shared":
                start, n, index, offset = args
                flat = shared[index][offset : offset + n * frame_bytes]
                rows = flat.reshape(n, *frame_shape)
            else:
                start, n = args
                conn.recv_bytes_into(memoryview(buf).cast("B"))
                rows = buf[:n]
        except (EOFError, OSError):
            return
        try:
            if writer is None:
                raise StoreError(f"{path}: not a layout the frame writer handles")
            writer.write(start, rows)
            conn.send(("ok", pixel_sums(rows)))
        except Exception as e:  # sent to the recording process, which raises it
            conn.send(("error", f"{path}: {type(e).__name__}: {e}"))


def _main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    lower_priority()
    import zarr

    zarr.config.set({"threading.max_workers": spec["threads"]})  # the recorder's choice
    threads = [
        threading.Thread(
            target=_serve_key,
            args=(spec["root"], a["path"], Connection(a["fd"])),
            name=f"frame-writer-{a['key']}",
        )
        for a in spec["arrays"]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
