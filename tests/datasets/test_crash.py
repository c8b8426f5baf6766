"""Crash safety of the play store, with real processes and real signals.

A writer subprocess (`crash_writer.py`) records episodes of deterministic content; the tests kill
it with SIGKILL at random moments (during data writes, during commits, during the trim of a
resumed store), interrupt it with SIGINT, or let it raise, and then check what the store promises:
every committed episode reads back bit-identical, the store opens, `validate` reports an
uncommitted tail, `repair` trims it, and a resumed writer carries on from there.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from types import ModuleType

import crash_writer as cw  # tests/datasets, on pytest's pythonpath
import pytest

from playworld.datasets import PlayStore

SEED = 1234
CREATE = ("--create", "--seed", str(SEED))
SIGINT_EXIT = (1, -signal.SIGINT, 130)  # KeyboardInterrupt: re-raised as the signal, or status 1


@pytest.fixture(scope="module")
def maintenance() -> ModuleType:
    return pytest.importorskip(
        "playworld.datasets.maintenance",
        reason="playworld.datasets.maintenance (validate, repair) is not in this tree yet",
    )


def _stray_files(path: Path) -> list[str]:
    """Temporary files of interrupted atomic writes (``*.partial``) left in the store."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*.partial"))


def _lines(report: object) -> str:
    return "\n".join(report.lines())  # type: ignore[attr-defined]


def _check_after_crash(
    path: Path, w: cw.WriterProcess, reported: int, mt: ModuleType, *, repair: bool, since_row: int
) -> tuple[int, str]:
    """Check the store after writer ``w`` died; return (uncommitted rows on disk, where it died).

    ``reported``: episodes the writers printed ``committed`` for, over all runs. The store may
    hold one more: committed, killed before its line came out (then its last line is
    ``committing``). Episodes from ``since_row`` on are compared with the regenerated data.
    """
    last = w.lines[-1] if w.lines else "(nothing)"
    phase = last.split()[0]
    store = PlayStore.open(path)
    n = len(store)
    assert n in (reported, reported + 1), f"{n} episodes, the writers reported {reported} committed"
    if n == reported + 1:
        assert last == f"committing {n - 1}", (
            f"episode {n - 1} is committed, the last line is {last!r}"
        )
        phase = "committed-unreported"
    cw.check_store(store, SEED, w.lengths, since_row)

    rows = cw.on_disk_rows(path)
    assert min(rows.values()) >= store.num_steps, f"arrays {rows} shorter than the commit record"
    tail = max(rows.values()) - store.num_steps
    report = mt.validate(path, deep=False)  # check_store has compared every image already
    if tail:
        assert report.uncommitted_rows == tail, (
            f"validate: {report.uncommitted_rows}, arrays {rows}"
        )
        assert not report.ok and "uncommitted" in "\n".join(report.problems).lower(), _lines(report)
    else:
        assert report.uncommitted_rows == 0, f"{report.uncommitted_rows} uncommitted, arrays {rows}"
        assert report.ok or _stray_files(path), _lines(report)
    if repair:
        rep = mt.repair(path)
        assert rep.removed_rows == tail, (
            f"repair removed {rep.removed_rows} rows, the tail was {tail}"
        )
        assert not rep.remaining, "\n".join(rep.lines())  # repair re-validates (quick) itself
        assert set(cw.on_disk_rows(path).values()) == {store.num_steps}
        assert not _stray_files(path), f"repair left temporary files {_stray_files(path)}"
        cw.check_store(PlayStore.open(path), SEED, w.lengths, since_row)
    return tail, phase


@pytest.mark.parametrize(
    "kills", [25, pytest.param(150, marks=[pytest.mark.slow, pytest.mark.timeout(1200)])]
)
def test_sigkill_at_random_moments(tmp_path: Path, maintenance: ModuleType, kills: int) -> None:
    """Kill -9 a writer ``kills`` times at random moments; check, repair every other time, resume.

    Odd runs record 1-3 step episodes, so that most of their time goes to commits; even runs
    20-120 steps, so that kills land while blocks of frames are written. Odd kills are followed
    by a repair, even ones by a writer that resumes over the uncommitted tail by itself.
    """
    path = tmp_path / "store"
    rng = random.Random(kills)
    lengths: dict[int, int] = {}
    reported = since_row = 0
    tails, phases = [], []
    for k in range(kills):
        span = ("--lengths", "1", "3") if k % 2 else ("--lengths", "20", "120")
        w = cw.WriterProcess(path, *(CREATE if k == 0 else ()), *span, lengths=lengths)
        try:
            w.wait_for("ready")
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            rc = w.kill()
        assert rc == -signal.SIGKILL, f"writer ended by itself ({rc}) before the kill:\n{w.log()}"
        full = k % 5 == 4  # now and then compare every episode, not only the rewritten ones
        tail, phase = _check_after_crash(
            path,
            w,
            reported + len(w.committed()),
            maintenance,
            repair=k % 2 == 1,
            since_row=0 if full else since_row,
        )
        tails.append(tail)
        phases.append(phase)
        store = PlayStore.open(path)
        reported, since_row = len(store), store.num_steps

    w = cw.WriterProcess(path, "--episodes", "4", lengths=lengths)
    assert w.finish() == 0, w.log()
    store = PlayStore.open(path)
    assert len(store) == reported + 4
    cw.check_store(store, SEED, lengths)
    for i in range(len(store)):  # every episode through the per-episode path as well
        cw.check_episode(store, SEED, i, lengths[i])
    report = maintenance.validate(path)
    # The resumed writer trimmed the tail of the last kill; temp files of interrupted writes
    # stay until a repair (the store itself never lists them).
    others = [p for p in report.problems if not p.startswith("leftover temp file")]
    assert report.uncommitted_rows == 0 and not others, _lines(report)
    assert maintenance.repair(path).removed_rows == 0
    assert maintenance.validate(path).ok
    # The random kills must have hit both kinds of moment, else this test proves little.
    assert any(tails), f"no kill left uncommitted rows on disk (kill moments: {phases})"
    assert "begin" in phases, f"no kill during data writes (kill moments: {phases})"
    assert {"committing", "committed-unreported"} & set(phases), f"no kill in a commit: {phases}"


def test_sigkill_mid_episode_leaves_a_tail_that_repair_trims(
    tmp_path: Path, maintenance: ModuleType
) -> None:
    """Killed with blocks of an unfinished episode on disk: validate reports the tail, repair
    trims exactly it, and a resumed writer appends after the committed episodes."""
    path = tmp_path / "store"
    lengths: dict[int, int] = {}
    w = cw.WriterProcess(
        path, *CREATE, "--episodes", "3", "--then", "hang", "--partial-steps", "20", lengths=lengths
    )
    try:
        w.wait_for("partial")
    finally:
        w.kill()
    store = PlayStore.open(path)
    assert len(store) == 3
    cw.check_store(store, SEED, lengths)
    tail = max(cw.on_disk_rows(path).values()) - store.num_steps
    assert tail > 0, "the writer waited for blocks of its episode to be on disk, yet no tail"

    report = maintenance.validate(path)
    assert not report.ok and report.uncommitted_rows == tail, _lines(report)
    assert any("uncommitted" in p.lower() for p in report.problems), report.problems
    rep = maintenance.repair(path)
    assert rep.removed_rows == tail, "\n".join(rep.lines())
    report = maintenance.validate(path)
    assert report.ok and report.uncommitted_rows == 0, _lines(report)
    assert set(cw.on_disk_rows(path).values()) == {store.num_steps}

    w = cw.WriterProcess(path, "--episodes", "3", lengths=lengths)
    assert w.finish() == 0, w.log()
    store = PlayStore.open(path)
    assert len(store) == 6
    cw.check_store(store, SEED, lengths)
    assert maintenance.validate(path).ok


@pytest.mark.parametrize("how", ["sigint", "raise", "close"])
def test_interrupted_writer_discards_the_episode_in_progress(
    tmp_path: Path, maintenance: ModuleType, how: str
) -> None:
    """SIGINT, an exception in the recording program (context manager exit), or close() in the
    middle of an episode whose first blocks are on disk: the episode is discarded and its rows
    trimmed, the committed episodes stay, the writer lock is free again."""
    path = tmp_path / "store"
    lengths: dict[int, int] = {}
    then = {"sigint": "hang", "raise": "raise", "close": "close"}[how]
    w = cw.WriterProcess(
        path, *CREATE, "--episodes", "3", "--then", then, "--partial-steps", "20", lengths=lengths
    )
    try:
        w.wait_for("partial")
        if how == "sigint":
            w.signal(signal.SIGINT)
        rc = w.finish(30)
    finally:
        w.kill()
    err = "\n".join(w.stderr)
    expected_rc = {"sigint": SIGINT_EXIT, "raise": (1,), "close": (0,)}[how]
    assert rc in expected_rc, f"exit status {rc}:\n{w.log()}"
    if how != "close":
        assert {"sigint": "KeyboardInterrupt", "raise": "simulated crash"}[how] in err, err

    store = PlayStore.open(path)
    assert len(store) == 3
    cw.check_store(store, SEED, lengths)
    assert set(cw.on_disk_rows(path).values()) == {store.num_steps}, (
        "discarded rows are still on disk"
    )
    report = maintenance.validate(path)
    assert report.ok and report.uncommitted_rows == 0, _lines(report)
    with PlayStore.open(path, "a") as again:  # the writer lock went with the process
        assert len(again) == 3


@pytest.mark.parametrize("moment", ["sigint-in-flush", "sigint-in-commit"])
def test_sigint_while_commit_waits_for_a_write(
    tmp_path: Path, maintenance: ModuleType, moment: str
) -> None:
    """Ctrl-C while commit() waits for one of its writes (injected at the OS seam, see
    `crash_writer.INTERRUPTS`):

    - ``sigint-in-flush``: before the camera block of the episode lands (it lands 0.3 s later).
      The episode is not committed, so it must be discarded, including that late write.
    - ``sigint-in-commit``: right after meta/zarr.json is renamed into place. The record on
      disk commits the episode, so its rows must stay.
    """
    path = tmp_path / "store"
    lengths: dict[int, int] = {}
    args = ("--episodes", "3", "--then", moment, "--partial-steps", "3")
    w = cw.WriterProcess(path, *CREATE, *args, lengths=lengths)
    rc = w.finish(30)
    assert "interrupting" in w.lines, f"the SIGINT was never injected:\n{w.log()}"
    assert rc in SIGINT_EXIT or rc == 0, f"exit status {rc}:\n{w.log()}"
    store = PlayStore.open(path)  # raises if the record and the arrays disagree
    assert len(store) == {"sigint-in-flush": 3, "sigint-in-commit": 4}[moment]
    cw.check_store(store, SEED, lengths)
    rows = cw.on_disk_rows(path)
    assert set(rows.values()) == {store.num_steps}, (
        f"arrays {rows} after the interrupted commit, {store.num_steps} rows committed"
    )
    report = maintenance.validate(path)
    assert report.ok, _lines(report)


@pytest.mark.parametrize("interrupts", [6, pytest.param(60, marks=pytest.mark.slow)])
def test_sigint_at_random_moments(tmp_path: Path, maintenance: ModuleType, interrupts: int) -> None:
    """Ctrl-C at random moments of a writer that mostly commits (1-3 step episodes): the store
    stays valid, holds every reported episode, and no uncommitted rows."""
    path = tmp_path / "store"
    rng = random.Random(interrupts)
    lengths: dict[int, int] = {}
    reported = 0
    for k in range(interrupts):
        w = cw.WriterProcess(
            path, *(CREATE if k == 0 else ()), "--lengths", "1", "3", lengths=lengths
        )
        try:
            w.wait_for("ready")
            time.sleep(rng.uniform(0.05, 0.4))
            w.signal(signal.SIGINT)
            rc = w.finish(30)
        finally:
            w.kill()
        assert rc in SIGINT_EXIT and "KeyboardInterrupt" in "\n".join(w.stderr), (
            f"exit {rc}:\n{w.log()}"
        )
        store = PlayStore.open(path)  # raises if the commit record and the arrays disagree
        n, reported = len(store), reported + len(w.committed())
        assert n in (reported, reported + 1), f"{n} episodes, {reported} reported committed"
        cw.check_store(store, SEED, lengths)
        assert set(cw.on_disk_rows(path).values()) == {store.num_steps}, (
            f"after Ctrl-C at {w.lines[-1]!r}: arrays {cw.on_disk_rows(path)}, {store.num_steps} committed"
        )
        report = maintenance.validate(path, deep=False)
        assert report.ok, _lines(report)
        reported = n
