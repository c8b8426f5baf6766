"""A recorder that the reliability tests start as a subprocess, kill, interrupt and restart.

Run as a script::

    python crash_writer.py STORE --create [--seed S]   # create STORE, then record
    python crash_writer.py STORE                       # resume: open STORE with mode "a"

It records episodes of deterministic content: every value is a function of (seed, episode index,
step), so a test regenerates exactly what each committed episode must hold (`expected_episode`).
The seed lives in the store's ``info``, so a resumed writer continues with the same content.
Episode ``i`` is always the store's ``i``-th episode: a resumed writer starts at ``len(store)``.

Protocol on stdout, one flushed line each::

    ready <episodes>            the store is open (created, or resumed with that many episodes)
    begin <i> <steps>           episode i starts and will have that many steps
    committing <i>              all steps appended, commit() is called
    committed <i>               commit() returned
    partial <i> <steps>         (--then raise/close/hang) steps appended and on disk, not committed
    interrupting                (--then sigint-in-*) SIGINT is sent during a write of the commit

Images are small (24x32x3 uint8 noise, incompressible) in shards of 8 frames and vectors in
chunks of 16 rows, so episodes share shards and chunks with their neighbours and every commit
rewrites a block that holds committed rows of the previous episode.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from playworld.datasets import Feature, PlayStore

IMAGE_SHAPE = (24, 32, 3)
FPS = 10.0
IMAGE_SHARD_FRAMES = 8
VECTOR_CHUNK_ROWS = 16
FEATURES = {
    "cam": Feature(IMAGE_SHAPE, "uint8", kind="image"),
    "state": Feature((7,), "float32", kind="state", units="rad"),
    "action": Feature((7,), "float32", kind="action", units="rad"),
    "time": Feature((1,), "float64", kind="time", units="s"),
}


# -- the content contract: what every step and episode holds ------------------------------------
def step_data(seed: int, episode: int, step: int) -> dict[str, np.ndarray]:
    """Step ``step`` of episode ``episode``: cam (24, 32, 3) uint8 noise, state and action (7,)
    float32, time (1,) float64 seconds. A pure function of its arguments."""
    rng = np.random.default_rng([seed, episode, step])
    return {
        "cam": rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8),
        "state": rng.standard_normal(7).astype(np.float32),
        "action": rng.uniform(-1.0, 1.0, 7).astype(np.float32),
        "time": np.array([step / FPS], dtype=np.float64),
    }


@functools.lru_cache(maxsize=4096)
def expected_episode(seed: int, episode: int, steps: int) -> dict[str, np.ndarray]:
    """The whole episode as the store must return it: key -> (steps, *shape). Cached: do not
    modify the arrays."""
    rows = [step_data(seed, episode, t) for t in range(steps)]
    return {k: np.stack([r[k] for r in rows]) for k in FEATURES}


def episode_metadata(seed: int, episode: int, steps: int) -> dict[str, Any]:
    """The metadata the writer commits with episode ``episode``."""
    return {
        "source": "autoplay",
        "tasks": [f"task-{episode % 3}"],
        "index": episode,
        "steps": steps,
        "seed": seed,
    }


def check_episode(store: PlayStore, seed: int, index: int, steps: int) -> None:
    """Assert that committed episode ``index`` of ``store`` holds exactly the regenerated data."""
    ep = store.episode(index)
    assert len(ep) == steps, (
        f"episode {index}: {len(ep)} steps in the store, the writer recorded {steps}"
    )
    want = expected_episode(seed, index, steps)
    for key, value in want.items():
        got = ep[key][:]
        assert got.dtype == value.dtype and got.shape == value.shape, (
            f"episode {index} {key}: {got.dtype}{got.shape}, expected {value.dtype}{value.shape}"
        )
        if not np.array_equal(got, value):
            bad = np.flatnonzero(
                [not np.array_equal(a, b) for a, b in zip(got, value, strict=True)]
            )
            raise AssertionError(
                f"episode {index} {key}: steps {bad.tolist()} differ from what was recorded"
            )
    meta = ep.metadata
    want_meta = episode_metadata(seed, index, steps)
    assert {k: meta.get(k) for k in want_meta} == want_meta, f"episode {index} metadata {meta}"


def check_store(
    store: PlayStore, seed: int, lengths: Mapping[int, int], since_row: int = 0
) -> None:
    """Assert that the committed episodes of ``store`` are bit-identical to the regenerated data.

    ``lengths``: episode index -> steps, as the writers announced them (``begin`` lines).
    ``since_row``: only episodes from the one holding the block boundary at or before that row
    are compared (the rows a writer that started there can have rewritten); 0 compares all.
    Reads every key in one call (the fast path), and the last two episodes through `Episode`.
    """
    n = len(store)
    missing = [i for i in range(n) if i not in lengths]
    assert not missing, f"the store has episodes {missing} that no writer announced"
    ends = np.cumsum([lengths[i] for i in range(n)], dtype=np.int64)
    assert store.episode_ends.tolist() == ends.tolist(), (
        f"episode_ends {store.episode_ends.tolist()}, the writers recorded {ends.tolist()}"
    )
    if n == 0:
        return
    boundary = since_row - since_row % max(store.blocks.values())
    first = int(np.searchsorted(ends, boundary, side="right"))
    start = int(ends[first - 1]) if first else 0
    want = [expected_episode(seed, i, lengths[i]) for i in range(first, n)]
    for key in FEATURES if want else ():
        got = store.read(key, start, int(ends[-1]))
        flat = np.concatenate([w[key] for w in want])
        if not np.array_equal(got, flat):
            rows = start + np.flatnonzero(
                [not np.array_equal(a, b) for a, b in zip(got, flat, strict=True)]
            )
            eps = sorted(set(np.searchsorted(ends, rows, side="right").tolist()))
            raise AssertionError(f"{key}: rows {rows[:20].tolist()} (episodes {eps}) differ")
    for i in range(max(0, n - 2), n):
        check_episode(store, seed, i, lengths[i])


def on_disk_rows(path: str | Path) -> dict[str, int]:
    """Rows of every data array as its zarr.json says now (uncommitted tail included)."""
    return {k: zarr.open_array(Path(path) / "data" / k, mode="r").shape[0] for k in FEATURES}


# -- the test side: a writer process and what it printed -----------------------------------------
class WriterProcess:
    """This script running as a subprocess; ``lines`` collects its stdout as it comes.

    ``lengths`` (shared between the runs of one test) is updated from every ``begin`` line, so it
    always holds the length of every episode any run started, including one that was committed
    but killed before it could print ``committed``.
    """

    def __init__(
        self, store: str | Path, *args: str, lengths: dict[int, int] | None = None
    ) -> None:
        env = dict(os.environ)
        repo = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, [env.get("PYTHONPATH")])])
        self.lengths = lengths if lengths is not None else {}
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(store), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for th in self._threads:
            th.start()

    def _pump(self, stream: Any, out: list[str]) -> None:
        for line in stream:
            if out is self.lines and not line.endswith("\n"):
                continue  # cut by a kill: not a message (each is written in one write)
            with self._cond:
                out.append(line.rstrip("\n"))
                words = line.split()
                if out is self.lines and words[:1] == ["begin"]:
                    self.lengths[int(words[1])] = int(words[2])
                self._cond.notify_all()

    def wait_for(self, word: str, timeout_s: float = 30.0) -> str:
        """Block until a stdout line starts with ``word``; return it (fail on exit or timeout)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for line in self.lines:
                    if line.split()[:1] == [word]:
                        return line
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise AssertionError(
                        f"writer exited ({self.proc.returncode}) before {word!r}:\n{self.log()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"writer printed no {word!r} in {timeout_s} s:\n{self.log()}"
                    )
                self._cond.wait(min(left, 0.1))

    def wait_lengths(self, episodes: int, timeout_s: float = 10.0) -> dict[int, int]:
        """Block until the ``begin`` lines of episodes ``0 .. episodes - 1`` are in ``lengths``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while any(i not in self.lengths for i in range(episodes)):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [i for i in range(episodes) if i not in self.lengths]
                    raise AssertionError(f"no begin line for episodes {missing}:\n{self.log()}")
                self._cond.wait(min(left, 0.1))
        return self.lengths

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout_s: float = 60.0) -> int:
        """Wait for the process to end (killing it after ``timeout_s``); return its exit status."""
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"writer still running after {timeout_s} s:\n{self.log()}"
            ) from None
        finally:
            for th in self._threads:
                th.join(10)
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL the writer (if still running) and collect what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.finish()

    def committed(self) -> list[int]:
        """Episodes whose ``committed`` line came out."""
        return [int(x.split()[1]) for x in self.lines if x.startswith("committed ")]

    def log(self) -> str:
        tail = self.lines[-5:] + self.stderr[-30:]
        return "\n".join(tail)


# -- the program ---------------------------------------------------------------------------------
def _say(*words: object) -> None:
    """One line in one write (a kill between the pieces of a print() would cut the line)."""
    sys.stdout.write(" ".join(map(str, words)) + "\n")
    sys.stdout.flush()


def _wait_for_tail(path: str, committed: int, timeout_s: float = 20.0) -> None:
    """Wait until the background writer has put uncommitted rows of every key on disk."""
    deadline = time.monotonic() + timeout_s
    while min(on_disk_rows(path).values()) <= committed:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"no uncommitted rows on disk after {timeout_s} s: {on_disk_rows(path)}"
            )
        time.sleep(0.01)


# Where --then sigint-in-* sends the SIGINT: (file the next atomic write renames, before/after).
INTERRUPTS = {
    # After the commit record is renamed into place: commit() still waits for its fsync.
    "sigint-in-commit": (("meta", "zarr.json"), "after"),
    # Before the camera array's metadata (its new length) lands: a flush write still in flight.
    "sigint-in-flush": (("data", "cam", "zarr.json"), "before"),
}


def _sigint_at_next_write(target: tuple[str, ...], when: str, delay_s: float = 0.3) -> None:
    """Send this process SIGINT at the next atomic write of ``target`` (path suffix), as a Ctrl-C
    that arrives while the main thread waits for that write would; with ``when="before"`` the
    write then lands ``delay_s`` later, so the interrupted code must wait for it.

    Fault injection at the OS seam: ``os.replace`` is what the local store's atomic writes call.
    """
    real = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if Path(os.fspath(dst)).parts[-len(target) :] != target:
            return real(src, dst, **kwargs)
        os.replace = real
        if when == "after":
            real(src, dst, **kwargs)
        _say("interrupting")
        os.kill(os.getpid(), signal.SIGINT)
        if when == "before":
            time.sleep(delay_s)
            real(src, dst, **kwargs)
        return None

    os.replace = replace


def _record(
    store: PlayStore, args: argparse.Namespace, seed: int, rng: np.random.Generator
) -> None:
    done = 0
    while args.episodes is None or done < args.episodes:
        i = len(store)
        steps = int(rng.integers(args.lengths[0], args.lengths[1] + 1))
        _say("begin", i, steps)
        store.begin_episode()
        for t in range(steps):
            store.append(step_data(seed, i, t))
        _say("committing", i)
        assert store.commit(episode_metadata(seed, i, steps)) == i
        _say("committed", i)
        done += 1
    if args.then == "exit":
        return
    if args.then in INTERRUPTS:
        _sigint_at_next_write(*INTERRUPTS[args.then])
        i = len(store)
        _say("begin", i, args.partial_steps)
        store.begin_episode()
        for t in range(args.partial_steps):
            store.append(step_data(seed, i, t))
        _say("committing", i)
        store.commit(episode_metadata(seed, i, args.partial_steps))
        _say("committed", i)  # only if the interrupt was swallowed
        return
    i = len(store)
    store.begin_episode()
    for t in range(args.partial_steps):
        store.append(step_data(seed, i, t))
    _wait_for_tail(store.url, store.num_steps)
    _say("partial", i, args.partial_steps)
    if args.then == "raise":
        raise RuntimeError("simulated crash of the recording program")
    if args.then == "close":
        store.close()
        return
    while True:  # "hang": the test sends SIGINT or SIGKILL
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store")
    p.add_argument("--create", action="store_true", help="create the store (else resume it)")
    p.add_argument("--seed", type=int, default=0, help="content seed (stored in info on create)")
    p.add_argument("--lengths", type=int, nargs=2, default=(5, 40), metavar=("MIN", "MAX"))
    p.add_argument(
        "--episodes", type=int, default=None, help="episodes to commit (default: forever)"
    )
    p.add_argument(
        "--then",
        choices=("exit", "raise", "close", "hang", *INTERRUPTS),
        default="exit",
        help="after --episodes: exit, or record --partial-steps more and raise/close/"
        "hang, or commit them with a SIGINT during a write of the commit (see INTERRUPTS)",
    )
    p.add_argument("--partial-steps", type=int, default=20)
    args = p.parse_args(argv)
    if args.create:
        store = PlayStore.create(
            args.store,
            FEATURES,
            FPS,
            info={"seed": args.seed},
            image_shard_frames=IMAGE_SHARD_FRAMES,
            vector_chunk_rows=VECTOR_CHUNK_ROWS,
        )
    else:
        store = PlayStore.open(args.store, "a")
    seed = int(store.info["seed"])
    rng = np.random.default_rng([seed, len(store), 7919])  # episode lengths; content is separate
    with store:
        _say("ready", len(store))
        _record(store, args, seed, rng)
    return 0


if __name__ == "__main__":
    # Ctrl-C as in a terminal, however the tests were started: a shell without job control
    # starts background commands (`make test &`) with SIGINT ignored, and children inherit that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
