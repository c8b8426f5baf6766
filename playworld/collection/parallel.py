"""Spread independent chunks of work over this process and `workers - 1` spawned ones.

Spawned interpreters take a while to start (imports, then building a twin): about 0.5 s of CPU
each here. Rather than wait idle for them, this process works too, taking chunks from the back
of the list while the spawned processes take them from the front; chunks are small so that
everyone finishes at about the same time. Which process runs which chunk therefore varies from
run to run: the work must depend on its inputs alone (see `seed_globals`), never on what ran
before it in the same process.

    results = run_chunks(remote_fn, local_fn, chunks, workers)  # results[i] = fn(chunks[i])
"""

from __future__ import annotations

import math
import multiprocessing as mp
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

#: Chunks per process: more balance the load better (a process waits for at most about two
#: chunks of another at the end), fewer cost less inter-process traffic (~1 ms per chunk).
CHUNKS_PER_WORKER = 24


def split(items: Sequence, workers: int, per_worker: int = CHUNKS_PER_WORKER) -> list[list]:
    """Consecutive chunks of `items`: one when `workers` <= 1, else about `per_worker` each."""
    if workers <= 1:
        return [list(items)] if items else []
    size = max(1, math.ceil(len(items) / (workers * per_worker)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_chunks(
    remote_fn: Callable[[Any], Any],
    local_fn: Callable[[Any], Any],
    chunks: Sequence,
    workers: int,
) -> list:
    """`[fn(c) for c in chunks]` computed by this process and `workers - 1` spawned ones.

    `remote_fn` must be picklable (a module-level function) and runs in the spawned processes;
    `local_fn` runs here (it may reuse objects this process already built). Both must compute
    the same thing. An exception in any chunk is raised here after pending chunks are dropped.
    """
    if workers <= 1 or len(chunks) <= 1:
        return [local_fn(c) for c in chunks]
    results: list = [None] * len(chunks)
    done_here: set[int] = set()
    # spawn, not fork: the caller may hold threads (torch, zarr) or GL contexts.
    spawned = min(workers, len(chunks)) - 1
    with ProcessPoolExecutor(max_workers=spawned, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(remote_fn, c) for c in chunks]
        try:
            # A future that can still be cancelled has not reached a spawned process: run it
            # here. The first one that cannot be cancelled marks where the others have got to.
            for i in reversed(range(len(chunks))):
                if not futures[i].cancel():
                    break
                results[i] = local_fn(chunks[i])
                done_here.add(i)
            for i, future in enumerate(futures):
                if i not in done_here:
                    results[i] = future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def seed_globals(seed: int) -> None:
    """Seed the process-wide generators (`random`, `numpy.random`, torch when loaded).

    A policy that samples from them then behaves the same whichever process runs an episode.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


@contextmanager
def preserved_globals() -> Iterator[None]:
    """Restore the process-wide generators on exit (work run in the caller's own process)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch is not None:
            torch.set_rng_state(torch_state)
