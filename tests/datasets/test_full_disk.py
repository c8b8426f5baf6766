"""A store on a disk that fills up: a real 2 MiB tmpfs, real ENOSPC.

The failing call (append, commit, or the begin of the next episode) must raise a `StoreError`
that says the disk is full; every committed episode stays bit-identical; the store opens,
validates after `repair`, and takes new episodes once space is freed. Frames are noise, so they
do not compress and the disk really fills. Needs root (to mount); skipped with the reason if not.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import crash_writer as cw  # tests/datasets, on pytest's pythonpath
import pytest

from playworld.datasets import PlayStore
from playworld.errors import StoreError

SEED = 99
PAGE = 4096  # tmpfs accounts space in pages
STEPS = 20  # per attempt in the sweep: 3 shards of frames, 2 chunks per vector, the record
SPACE = re.compile(r"space|ENOSPC|disk (is )?full", re.IGNORECASE)


@pytest.fixture(scope="module")
def maintenance() -> ModuleType:
    return pytest.importorskip(
        "playworld.datasets.maintenance",
        reason="playworld.datasets.maintenance (validate, repair) is not in this tree yet",
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 2 MiB tmpfs mounted under ``tmp_path``; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the full-disk tests mount a tmpfs, which needs root; run them as root")
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot run mount for the full-disk test: {e}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 2 MiB tmpfs at {disk}: {(done.stderr or done.stdout).strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _create(path: Path) -> PlayStore:
    return PlayStore.create(
        path,
        cw.FEATURES,
        cw.FPS,
        info={"seed": SEED},
        image_shard_frames=cw.IMAGE_SHARD_FRAMES,
        vector_chunk_rows=cw.VECTOR_CHUNK_ROWS,
    )


Failure = tuple[str, BaseException]  # (the call that failed, what it raised)


def _attempt(what: str, call: Callable[[], object]) -> Failure | None:
    """Run one store call; return (``what``, the exception) if it raised."""
    try:
        call()
    except BaseException as e:  # noqa: BLE001 - which type it is is the point of the test
        return what, e
    return None


def _wrong(failure: Failure) -> str | None:
    """Why a failure is not what a full disk must raise (a one-line `StoreError` that says so)."""
    what, err = failure
    if not isinstance(err, StoreError):
        return f"{what} raised {type(err).__name__}, not a StoreError: {err}"
    if not SPACE.search(str(err)):
        return f"{what} raised a StoreError that does not say the disk is full: {err}"
    if "\n" in str(err).strip():
        return f"{what}: the message is not one line: {err!r}"
    return None


def _record(store: PlayStore, lengths: dict[int, int], steps: int) -> Failure | None:
    """Record one episode of ``steps`` steps; return the first failing call, if one failed."""
    i = len(store)
    failed = _attempt("begin_episode", store.begin_episode)
    for t in range(steps):
        failed = failed or _attempt("append", lambda t=t: store.append(cw.step_data(SEED, i, t)))
    if failed is None:
        lengths[i] = steps
        failed = _attempt("commit", lambda: store.commit(cw.episode_metadata(SEED, i, steps)))
    if failed is not None:
        lengths.pop(i, None)
        again = _attempt("discard", store.discard)
        assert again is None, f"discard() after {failed} raised {again}"
        assert len(store) == i, "a failed episode changed the number of committed episodes"
    return failed


def _fill(filler: Path, free_pages: int) -> None:
    """Grow ``filler`` until the disk is full, then shrink it to leave ``free_pages`` pages."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        block = os.urandom(PAGE)
        while True:
            try:
                os.write(fd, block)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        os.ftruncate(fd, max(0, os.fstat(fd).st_size // PAGE * PAGE - free_pages * PAGE))
    finally:
        os.close(fd)


def test_recording_until_the_disk_is_full(small_disk: Path, maintenance: ModuleType) -> None:
    """Record until a write fails; then what a user does: look, repair, free space, go on."""
    path = small_disk / "store"
    ballast = small_disk / "other-recording.bin"  # another file on the disk, deletable
    ballast.write_bytes(os.urandom(256 << 10))
    lengths: dict[int, int] = {}
    store = _create(path)
    for _ in range(3):
        assert _record(store, lengths, 10) is None
    failed = None
    for k in range(500):
        failed = _record(store, lengths, 5 + 7 * k % 23)
        if failed is not None:
            break
    assert failed is not None, "500 episodes fit on a 2 MiB disk: the test does not fill it"
    assert _wrong(failed) is None, _wrong(failed)
    committed = len(store)
    assert committed > 3
    closing = _attempt("close", store.close)
    assert closing is None, f"close() after the failure raised {closing!r}"

    reader = PlayStore.open(path)  # reading needs no space
    assert len(reader) == committed
    cw.check_store(reader, SEED, lengths)
    report = maintenance.validate(path)
    assert report.episodes == committed
    assert all("uncommitted" in p or "leftover temp file" in p for p in report.problems), (
        report.lines()
    )

    freed_first = False
    try:
        maintenance.repair(path)
    except StoreError as e:  # repair itself writes (trimmed array metadata): may need space
        assert SPACE.search(str(e)), f"repair on a full disk: {e}"
        freed_first = True
        ballast.unlink()
        maintenance.repair(path)
    report = maintenance.validate(path)
    assert report.ok, "\n".join(report.lines())
    cw.check_store(PlayStore.open(path), SEED, lengths)

    if not freed_first:
        ballast.unlink()
    with PlayStore.open(path, "a") as store:  # recording goes on once there is space again
        assert _record(store, lengths, 3) is None
    store = PlayStore.open(path)
    assert len(store) == committed + 1
    cw.check_store(store, SEED, lengths)
    assert maintenance.validate(path).ok


def test_every_failure_point_of_a_commit(small_disk: Path, maintenance: ModuleType) -> None:
    """Leave 0, 1, 2, ... free pages and record a 20-step episode each time, until one fits.

    Each page more lets the episode's writes get one file further (frames, vectors, array
    metadata, the commit record), so together the attempts fail at every write of an append
    and a commit. Every failure must be a `StoreError`, leave the committed episodes intact and
    the same store object able to record the next episode (the one that fits).
    """
    path = small_disk / "store"
    filler = small_disk / "filler.bin"
    lengths: dict[int, int] = {}
    store = _create(path)
    for steps in (11, 6):  # the next episode starts mid-shard and mid-chunk
        assert _record(store, lengths, steps) is None
    failures: list[str] = []
    wrong: list[str] = []
    for free in range(64):
        _fill(filler, free)
        failed = _record(store, lengths, STEPS)
        if failed is None:
            break
        failures.append(f"{free} free pages: {failed[0]}: {failed[1]}")
        wrong += [f"{free} free pages: {_wrong(failed)}"] if _wrong(failed) else []
        reader = PlayStore.open(path)
        assert len(reader) == 2
        cw.check_store(reader, SEED, lengths)
    else:
        pytest.fail(f"a {STEPS}-step episode did not fit in 64 free pages")
    assert len(failures) >= 5, "too few failure points exercised:\n" + "\n".join(failures)
    assert not wrong, "\n".join(wrong)
    store.close()
    filler.unlink()
    maintenance.repair(path)
    report = maintenance.validate(path)
    assert report.ok, "\n".join(report.lines())
    store = PlayStore.open(path)
    assert len(store) == 3
    cw.check_store(store, SEED, lengths)
