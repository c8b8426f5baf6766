"""A background store writer: the control loop hands steps over and never waits for the disk.

    with StepQueue(store, max_queue=120) as writer:
        writer.begin()
        ok = writer.put(step)            # False: the queue was full, the step was dropped (counted)
        future = writer.commit(meta)     # resolves to the episode index once it is durable
        writer.discard()

One thread owns the store and applies the messages in order. With ``frame_compressor=True`` (the
recorder's real-time loops) the store compresses and writes camera frames in a child process,
see `playworld.datasets.frame_compressor`. Steps wait in a bounded queue
(`max_queue` steps); when it is full, `put` refuses the step at once and counts it, so a slow
disk shows up as dropped steps in the episode metadata (`writer_dropped_steps`) and in the live
status, never as a slower loop. Control messages (begin / commit / discard) are never refused.
A store error (a full disk, a wrong shape) discards the episode in progress, refuses the rest of
its steps, and is raised on the caller's thread by the next `check()` / `commit().result()`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from playworld.errors import StoreError

#: Niceness added to the writer thread (and the store's block-writer threads it starts): the
#: control loop's thread wins the CPU when compression and the loop compete for it.
WRITER_NICE = 5

_BEGIN, _STEP, _COMMIT, _DISCARD, _STOP = "begin", "step", "commit", "discard", "stop"


class StepQueue:
    """Applies begin / step / commit / discard to a `PlayStore` from its own thread.

    Counters (read from any thread): `queued` steps waiting now, `max_queued` (high-water
    mark), `dropped` steps refused because the queue was full (in all), `written` steps
    appended, `cpu_s` CPU seconds the writer thread spent, `busy_s` wall seconds it worked.
    """

    def __init__(
        self,
        store: Any,
        max_queue: int = 120,
        name: str = "store-writer",
        *,
        frame_compressor: bool = False,
    ) -> None:
        if max_queue < 1:
            raise StoreError(f"expected max_queue >= 1 step, found {max_queue}")
        if frame_compressor:  # camera frames compressed and written by a child process
            store.use_frame_compressor()
        self.store = store
        self.max_queue = max_queue
        self._messages: deque[tuple[str, Any, Any]] = deque()
        self._cond = threading.Condition()
        self.queued = 0
        self.max_queued = 0
        self.dropped = 0
        self.written = 0
        self.cpu_s = 0.0
        self.busy_s = 0.0
        self._episode_dropped = 0
        self._in_episode = False
        self._error: BaseException | None = None
        self._working = False  # the thread is applying a message
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- the caller's side (the control loop) -------------------------------------------------
    @property
    def in_episode(self) -> bool:
        return self._in_episode

    @property
    def episode_dropped(self) -> int:
        """Steps of the episode in progress refused because the queue was full."""
        return self._episode_dropped

    def begin(self) -> None:
        """Start an episode (an episode in progress is discarded first)."""
        self.check()
        if self._in_episode:
            self.discard()
        self._episode_dropped = 0
        self._in_episode = True
        self._send(_BEGIN)

    def put(self, step: Mapping[str, Any], wait: bool = False) -> bool:
        """Queue one step of the episode in progress; False (and counted) if the queue is full.

        `wait=True` waits for room instead (for loops without a deadline, e.g. autoplay in
        simulated time). The arrays are queued by reference: do not modify them afterwards.
        """
        if not self._in_episode:
            raise StoreError("expected an episode in progress, found none; call begin() first")
        with self._cond:
            while wait and self.queued >= self.max_queue and self._thread.is_alive():
                self._cond.wait(0.1)
            if self.queued >= self.max_queue:
                self.dropped += 1
                self._episode_dropped += 1
                return False
            self.queued += 1
            self.max_queued = max(self.max_queued, self.queued)
            self._messages.append((_STEP, step, None))
            self._cond.notify()
        return True

    def commit(self, metadata: Mapping[str, Any] | None = None) -> Future[int]:
        """End the episode and keep it; the future gives its index (or raises the store error).

        `writer_dropped_steps` (steps refused for a full queue) is added to the metadata.
        """
        if not self._in_episode:
            raise StoreError("expected an episode in progress to commit, found none")
        meta = {**dict(metadata or {}), "writer_dropped_steps": self._episode_dropped}
        self._in_episode = False
        future: Future[int] = Future()
        self._send(_COMMIT, meta, future)
        return future

    def discard(self) -> None:
        """End the episode and drop it; the store stays as after its last commit."""
        if self._in_episode:
            self._in_episode = False
            self._send(_DISCARD)

    def check(self) -> None:
        """Raise (once) the error of a failed background write, if any."""
        if self._error is not None:
            err, self._error = self._error, None
            raise StoreError(f"recording failed: {err}") from err

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued message is applied; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._messages or self._working:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Discard an uncommitted episode, apply everything queued, stop the thread."""
        if not self._thread.is_alive():
            return
        self.discard()
        self._send(_STOP)
        self._thread.join()

    def __enter__(self) -> StepQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, kind: str, payload: Any = None, future: Future | None = None) -> None:
        with self._cond:
            self._messages.append((kind, payload, future))
            self._cond.notify()

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        # Threads inherit it: the store's per-key writers start from this thread.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)
        failed: BaseException | None = None  # the episode in progress hit it: skip its steps
        while True:
            with self._cond:
                while not self._messages:
                    self._working = False
                    self._cond.notify_all()
                    self._cond.wait()
                kind, payload, future = self._messages.popleft()
                self._working = True
                if kind == _STEP:
                    self.queued -= 1
                    self._cond.notify_all()
            if kind == _STOP:
                with self._cond:
                    self._working = False
                    self._cond.notify_all()
                return
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                if kind == _BEGIN:
                    failed = None
                    self.store.begin_episode()
                elif kind == _STEP and failed is None:
                    self.store.append(payload)
                    self.written += 1
                elif kind == _DISCARD:
                    failed = None
                    self.store.discard()
                elif kind == _COMMIT:
                    if failed is not None:
                        future.set_exception(
                            StoreError(f"the episode was lost to a store error: {failed}")
                        )
                    else:
                        future.set_result(self.store.commit(payload))
                    failed = None
            except BaseException as e:  # reported on the caller's thread
                failed = e if kind in (_BEGIN, _STEP) else None
                self._error = e
                if future is not None and not future.done():
                    future.set_exception(e)
                with contextlib.suppress(BaseException):
                    self.store.discard()
            finally:
                self.cpu_s += time.thread_time() - c0
                self.busy_s += time.perf_counter() - t0


def leave_a_core_to_the_loop() -> int:
    """Cap zarr's compression threads at (cores - 1), at least 1; return the cap.

    Compressing a finished shard of frames is a burst of CPU; on a small machine it must not
    take every core from the control loop. Takes effect only before the process's first zarr
    I/O (zarr sizes its pool then), so recorders call it first thing.
    """
    import zarr

    n = max(1, (os.cpu_count() or 2) - 1)
    zarr.config.set({"threading.max_workers": n})
    return n
