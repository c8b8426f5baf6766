"""A reader in one process while a writer appends in another: only whole committed episodes.

The writer (`crash_writer.py`, a subprocess) records short episodes as fast as it can, so that
commits, shard rewrites across episode boundaries and array resizes happen all the time. The test
polls the store two ways, a fresh ``PlayStore.open(path, "r")`` and ``refresh()`` of a reader held
open, and compares every episode it sees with the regenerated data.
"""

from __future__ import annotations

import time
from pathlib import Path

import crash_writer as cw  # tests/datasets, on pytest's pythonpath
import numpy as np
import pytest

from playworld.datasets import PlayStore

SEED = 77
REFRESH_BURST = 8


@pytest.mark.parametrize("seconds", [4.0, pytest.param(60.0, marks=pytest.mark.slow)])
def test_reader_sees_only_whole_committed_episodes(tmp_path: Path, seconds: float) -> None:
    path = tmp_path / "store"
    w = cw.WriterProcess(path, "--create", "--seed", str(SEED), "--lengths", "1", "12")
    try:
        w.wait_for("ready")
        held = PlayStore.open(path, "r")
        seen_ends = np.zeros(0, dtype=np.int64)
        polls = {"open": 0, "refresh": 0}
        grew = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for how in ("open", "refresh"):
                if how == "open":
                    store = PlayStore.open(path, "r")
                else:
                    # Refresh in a burst: each call races the writer's next commit on its own.
                    for _ in range(REFRESH_BURST):
                        held.refresh()
                        assert len(held) >= len(seen_ends), (
                            f"{len(held)} episodes after {len(seen_ends)}"
                        )
                    store = held
                ends = store.episode_ends
                # Committed episodes are never taken back or changed: the old ends are a prefix.
                assert len(ends) >= len(seen_ends), (
                    f"{how}: {len(ends)} episodes after {len(seen_ends)}"
                )
                assert ends[: len(seen_ends)].tolist() == seen_ends.tolist(), f"{how}: ends changed"
                since = int(seen_ends[-1]) if len(seen_ends) else 0
                cw.check_store(store, SEED, w.wait_lengths(len(ends)), since)
                grew += len(ends) > len(seen_ends)
                seen_ends = ends
                polls[how] += 1
        assert w.proc.poll() is None, f"the writer died while the reader polled:\n{w.log()}"
    finally:
        w.kill()
    # The writer must have committed while we read, many times, else this proves nothing.
    assert grew >= 10, f"the reader saw the store grow only {grew} times in {polls} polls"
    final = PlayStore.open(path, "r")
    cw.check_store(final, SEED, w.lengths)


def test_refresh_with_a_commit_between_its_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving the test above hits now and then, made certain: a commit lands right after
    `refresh` has re-read the first array's metadata. A reader must still see a consistent store
    (the old episodes or the new ones), never an error.

    The commit is scheduled from inside ``zarr.open_array`` (the seam where `refresh` reads array
    metadata); the writer is an in-process `PlayStore` opened with mode "a", as another process's
    would be, and its writes do not go through ``zarr.open_array``.
    """
    import zarr

    path = tmp_path / "store"
    lengths: dict[int, int] = {}
    writer = PlayStore.create(
        path,
        cw.FEATURES,
        cw.FPS,
        info={"seed": SEED},
        image_shard_frames=cw.IMAGE_SHARD_FRAMES,
        vector_chunk_rows=cw.VECTOR_CHUNK_ROWS,
    )

    def record(steps: int) -> None:
        i = len(writer)
        lengths[i] = steps
        writer.add_episode(cw.expected_episode(SEED, i, steps), cw.episode_metadata(SEED, i, steps))

    record(5)
    reader = PlayStore.open(path, "r")
    real_open_array = zarr.open_array
    fired = []

    def open_array(*args: object, **kwargs: object) -> zarr.Array:
        out = real_open_array(*args, **kwargs)
        if not fired:
            fired.append(True)
            record(9)  # the writer process commits now
        return out

    monkeypatch.setattr(zarr, "open_array", open_array)
    reader.refresh()
    monkeypatch.undo()
    assert fired, "refresh() no longer reads array metadata through zarr.open_array; move the seam"
    assert len(reader) in (1, 2)
    cw.check_store(reader, SEED, lengths)
    reader.refresh()
    assert len(reader) == 2
    cw.check_store(reader, SEED, lengths)
    writer.close()
