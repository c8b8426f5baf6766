"""Damaged stores through the CLI: `store validate` names the damage (frames, files, episodes),
`store repair` exits 1 while committed data is damaged, `store salvage` writes every intact
episode bit for bit and leaves the source untouched; reading names the damaged episode.

Each case asserts the exact output: one line per problem, no traceback, documented exit codes
(validate: 0 valid, 1 problems; repair: 0 repaired, 1 damage remains; salvage: 0 all kept,
1 some dropped; any command: 2 with one `error:` line when the store cannot be opened).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
import zarr
from test_maintenance import (
    FEATURES,
    assert_episode_equal,
    file_hashes,
    make_store,
)  # tests/datasets, on pytest's pythonpath

from playworld.cli import main
from playworld.datasets import Feature, PlayStore
from playworld.errors import StoreFormatError

HINT = (
    "the other episodes stay readable; `playworld store validate` lists the damage, "
    "`playworld store salvage` copies the intact episodes to a new store"
)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    """Run ``playworld ARGS`` in process: (exit code, stdout lines, stderr lines)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out.splitlines(), err.splitlines()


def advice(path: Path, damaged: int, of: int = 3) -> str:
    return (
        f"committed data is damaged ({damaged} of {of} episodes) and repair cannot restore it: "
        f"`playworld store salvage {path} -o NEW` writes the intact episodes to a new store"
    )


def flip_frame(path: Path, shard: str, frame: int, frames: int = 4) -> None:
    """Flip one byte in the middle of frame ``frame`` of a shard (its index stays intact)."""
    f = path / shard
    raw = bytearray(f.read_bytes())
    n = 16 * frames + 4
    offset, length = np.frombuffer(bytes(raw[-n:-4]), "<u8").reshape(frames, 2)[frame]
    raw[int(offset + length // 2)] ^= 0xFF
    f.write_bytes(bytes(raw))


def check_salvage(
    capsys, tmp_path: Path, path: Path, episodes: list, keep: list[int], dropped_lines: list[str]
) -> None:
    """`store salvage` keeps exactly ``keep``, bit for bit, prints ``dropped_lines`` then the
    summary, exits 1 (0 if nothing dropped) and leaves the source unchanged."""
    before = file_hashes(path)
    out = tmp_path / "salvaged"
    code, lines, err = cli(capsys, "store", "salvage", path, "-o", out)
    n_dropped = len(episodes) - len(keep)
    steps = sum(len(episodes[i]["state"]) for i in keep)
    assert lines == [
        *dropped_lines,
        f"wrote {out}: kept {len(keep)} of {len(episodes)} episodes ({steps} steps), "
        f"dropped {n_dropped}; {path} is unchanged",
    ]
    assert (code, err) == (1 if n_dropped else 0, [])
    assert file_hashes(path) == before
    new = PlayStore.open(out)
    assert len(new) == len(keep)
    for j, i in enumerate(keep):
        assert_episode_equal(new, j, episodes[i])
    assert cli(capsys, "store", "validate", out)[0] == 0


# -- the cases ---------------------------------------------------------------------------------
def test_flipped_bytes_in_one_frame(tmp_path: Path, capsys) -> None:
    path, episodes, _ = make_store(tmp_path / "play")  # episodes rows 0:5, 5:12, 12:18
    flip_frame(path, "data/cam/c/2/0/0/0", 1)  # row 9: episode 1, step 4
    problem = (
        "corrupt file data/cam/c/2/0/0/0 (feature 'cam'): 1 of 4 frames damaged, row 9 "
        '(episode 1, step 4): cannot decode (Zstd decompression error: b"Restored data '
        "doesn't match checksum\")"
    )
    assert cli(capsys, "store", "validate", path) == (1, [problem], [])
    assert cli(capsys, "store", "repair", path) == (
        1,
        [f"not repaired: {problem}", advice(path, 1)],
        [],
    )
    store = PlayStore.open(path)
    with pytest.raises(StoreFormatError) as e:
        store.episode(1)["cam"][:]
    assert str(e.value) == (
        f"{path}: feature 'cam', episode 1, step 4 (row 9) is damaged: its frame in "
        "data/cam/c/2/0/0/0 cannot decode (Zstd decompression error: b\"Restored data doesn't "
        f'match checksum"); {HINT}'
    )
    assert_episode_equal(store, 0, episodes[0])  # the others stay readable, the same
    assert_episode_equal(store, 2, episodes[2])  # shard's other frames included (row 8 is ep 1)
    np.testing.assert_array_equal(store.episode(1)["cam"][3], episodes[1]["cam"][3])  # row 8
    check_salvage(capsys, tmp_path, path, episodes, [0, 2], [f"dropped episode 1: {problem}"])


def test_truncated_shard_index(tmp_path: Path, capsys) -> None:
    path, episodes, _ = make_store(tmp_path / "play")
    f = path / "data/cam/c/3/0/0/0"  # rows 12:16, episode 2
    f.write_bytes(f.read_bytes()[:-10])
    problem = (
        "corrupt file data/cam/c/3/0/0/0 (feature 'cam' rows 12:16, episode 2): shard index "
        "checksum mismatch (the file is corrupted)"
    )
    assert cli(capsys, "store", "validate", path) == (1, [problem], [])
    assert cli(capsys, "store", "repair", path)[:2] == (
        1,
        [f"not repaired: {problem}", advice(path, 1)],
    )
    with pytest.raises(StoreFormatError) as e:
        PlayStore.open(path).episode(2)["cam"][:]
    assert str(e.value) == (
        f"{path}: feature 'cam', episode 2: cannot read data/cam/c/3/0/0/0 (shard index checksum "
        f"mismatch (the file is corrupted)); {HINT}"
    )
    check_salvage(capsys, tmp_path, path, episodes, [0, 1], [f"dropped episode 2: {problem}"])


@pytest.mark.parametrize(
    ("file", "where", "keep"),
    [
        ("data/cam/c/0/0/0/0", "feature 'cam' rows 0:4, episode 0", [1, 2]),
        ("data/state/c/1/0", "feature 'state' rows 8:16, episodes 1-2", [0]),
    ],
)
def test_deleted_chunk_or_shard(tmp_path: Path, capsys, file: str, where: str, keep) -> None:
    path, episodes, _ = make_store(tmp_path / "play")
    (path / file).unlink()
    problem = f"missing file {file} ({where})"
    assert cli(capsys, "store", "validate", path) == (1, [problem], [])
    dropped = 3 - len(keep)
    assert cli(capsys, "store", "repair", path) == (
        1,
        [f"not repaired: {problem}", advice(path, dropped)],
        [],
    )
    lost = [i for i in range(3) if i not in keep]
    check_salvage(
        capsys, tmp_path, path, episodes, keep, [f"dropped episode {i}: {problem}" for i in lost]
    )


def test_frame_missing_from_an_intact_shard_index(tmp_path: Path, capsys) -> None:
    path, episodes, _ = make_store(tmp_path / "play")
    f = path / "data/cam/c/1/0/0/0"  # rows 4:8: frame 2 is row 6, episode 1 step 1
    raw = bytearray(f.read_bytes())
    index = np.frombuffer(bytes(raw[-68:-4]), "<u8").reshape(4, 2).copy()
    index[2] = 2**64 - 1
    body = index.astype("<u8").tobytes()
    raw[-68:] = body + np.uint32(google_crc32c.value(body)).tobytes()
    f.write_bytes(bytes(raw))
    problem = (
        "corrupt file data/cam/c/1/0/0/0 (feature 'cam'): 1 of 4 frames damaged, row 6 "
        "(episode 1, step 1): no data (its shard index lists it as never written)"
    )
    assert cli(capsys, "store", "validate", path) == (1, [problem], [])
    check_salvage(capsys, tmp_path, path, episodes, [0, 2], [f"dropped episode 1: {problem}"])


def test_garbage_commit_record(tmp_path: Path, capsys) -> None:
    path = make_store(tmp_path / "play")[0]
    (path / "meta/zarr.json").write_bytes(b"\x00\x01 not json")
    before = file_hashes(path)
    for args in (("validate", path), ("repair", path), ("salvage", path, "-o", tmp_path / "s")):
        code, out, err = cli(capsys, "store", *args)
        assert (code, out, len(err)) == (2, [], 1), args
        assert err[0].startswith(
            f"error: {path}: missing or unreadable commit record meta/zarr.json"
        )
        assert err[0].endswith(
            "without it no episode can be located: restore the file from a backup"
        )
    assert file_hashes(path) == before and not (tmp_path / "s").exists()


def test_episode_ends_past_the_data(tmp_path: Path, capsys) -> None:
    path, episodes, _ = make_store(tmp_path / "play")
    doc = json.loads((path / "meta/zarr.json").read_text())
    doc["attributes"]["episode_ends"][-1] = (
        25  # the last episode claims rows 12:25; data ends at 18
    )
    (path / "meta/zarr.json").write_text(json.dumps(doc))
    problems = [
        f"data/{key} has 18 rows, the commit record needs 25: rows 18:25 (episode 2) are lost"
        for key in FEATURES
    ]
    assert cli(capsys, "store", "validate", path) == (1, problems, [])
    assert cli(capsys, "store", "repair", path) == (
        1,
        [*(f"not repaired: {p}" for p in problems), advice(path, 1)],
        [],
    )
    code, out, err = cli(capsys, "store", "info", path)
    assert (code, out) == (2, []) and err == [
        f"error: {path}: data/cam has 18 rows, the commit record needs 25"
    ]
    check_salvage(capsys, tmp_path, path, episodes, [0, 1], [f"dropped episode 2: {problems[0]}"])


def test_nan_in_committed_actions(tmp_path: Path, capsys) -> None:
    path, episodes, _ = make_store(tmp_path / "play")
    arr = zarr.open_array(path / "data/action", mode="r+")
    arr[3] = [np.nan, 0.0]  # episode 0, step 3
    problem = "feature 'action' (action) has 1 NaN/inf values in committed rows, first at row 3 (episode 0, step 3)"
    assert cli(capsys, "store", "validate", path) == (1, [problem], [])
    check_salvage(capsys, tmp_path, path, episodes, [1, 2], [f"dropped episode 0: {problem}"])


def test_uncommitted_tail_is_repaired_with_exit_0(tmp_path: Path, capsys) -> None:
    path, episodes, _ = make_store(tmp_path / "play")
    arr = zarr.open_array(path / "data/state", mode="r+")
    arr.resize((21, 3))
    code, out, _ = cli(capsys, "store", "validate", path)
    assert (code, len(out)) == (1, 1) and "3 uncommitted rows" in out[0]
    assert cli(capsys, "store", "repair", path) == (
        0,
        ["trimmed 3 uncommitted rows (data/state: 3)"],
        [],
    )
    assert cli(capsys, "store", "validate", path)[0] == 0
    check_salvage(capsys, tmp_path, path, episodes, [0, 1, 2], [])


def test_salvage_refuses_an_existing_destination(tmp_path: Path, capsys) -> None:
    path = make_store(tmp_path / "play")[0]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken/x").write_text("mine")
    code, out, err = cli(capsys, "store", "salvage", path, "-o", tmp_path / "taken")
    assert (code, out) == (2, []) and len(err) == 1 and "exists and is not empty" in err[0]
    assert (tmp_path / "taken/x").read_text() == "mine"


# -- the terminal, as a user sees it -----------------------------------------------------------
def test_no_zarr_or_asyncio_noise_reaches_the_terminal(tmp_path: Path) -> None:
    """The issue's case: full-size shards (256 frames, two cameras), three damaged frames in
    one. A real process, so that anything printed at interpreter exit is seen too."""
    features = {
        "cam": Feature((48, 64, 3), "uint8", "image"),
        "wrist": Feature((48, 64, 3), "uint8", "image"),
        "state": Feature((3,)),
        "action": Feature((2,), kind="action"),
    }
    rng = np.random.default_rng(0)
    path = tmp_path / "play"
    with PlayStore.create(path, features, 10) as s:
        for n in (60, 70, 80):
            s.add_episode(
                {
                    k: rng.integers(0, 256, (n, *f.shape), dtype=np.uint8)
                    if f.is_image
                    else rng.normal(size=(n, *f.shape)).astype(np.float32)
                    for k, f in features.items()
                }
            )
    for frame in (65, 100, 101):  # episode 1 (rows 60:130)
        flip_frame(path, "data/cam/c/0/0/0/0", frame, frames=256)
    problem = (
        "corrupt file data/cam/c/0/0/0/0 (feature 'cam'): 3 of 210 frames damaged, rows 65, "
        "100:102 (episode 1): cannot decode (Zstd decompression error: b\"Restored data doesn't "
        'match checksum")'
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "playworld", *args], capture_output=True, text=True, env=env
        )

    r = run("store", "validate", str(path))
    assert (r.returncode, r.stdout.splitlines(), r.stderr) == (1, [problem], "")
    r = run("store", "repair", str(path))
    assert (r.returncode, r.stdout.splitlines(), r.stderr) == (
        1,
        [f"not repaired: {problem}", advice(path, 1)],
        "",
    )


def test_zarr_leftover_tasks_are_silenced() -> None:
    """The filter itself: zarr's read of a damaged shard in a child process prints nothing but
    the error it raised (without the filter: dozens of 'Task was destroyed' blocks at exit)."""
    code = _noise_script()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "RuntimeError" and r.stderr == "", r.stderr[:2000]


def _noise_script() -> str:
    return """
import tempfile, numpy as np, zarr
import playworld.datasets  # installs the filters
d = tempfile.mkdtemp()
a = zarr.create_array(d, shape=(64, 8, 8), chunks=(1, 8, 8), shards=(64, 8, 8), dtype="uint8",
                      compressors=zarr.codecs.ZstdCodec(level=1, checksum=True))
a[:] = np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8)
import pathlib
f = pathlib.Path(d, "c/0/0/0"); raw = bytearray(f.read_bytes()); raw[100] ^= 0xFF
f.write_bytes(bytes(raw))
try:
    a[:]
except Exception as e:
    print(type(e).__name__)
"""


def test_lost_episode_metadata_file(tmp_path: Path, capsys) -> None:
    """The metadata files hold no rows: losing one loses those episodes' metadata, not their
    rows. Opening says so in one line; validate lists it; salvage keeps every episode."""
    path, episodes, _ = make_store(tmp_path / "play")
    (path / "meta/episodes/0.json").unlink()
    problem = (
        "episode metadata file meta/episodes/0.json is missing or unreadable (missing): the "
        "metadata of episodes 0:3 is lost, their rows are intact; `playworld store salvage` "
        "copies them to a new store with empty metadata"
    )
    assert cli(capsys, "store", "info", path) == (2, [], [f"error: {path}: {problem}"])
    assert cli(capsys, "store", "validate", path) == (1, [problem], [])
    check_salvage(capsys, tmp_path, path, episodes, [0, 1, 2], [])
    assert [
        PlayStore.open(tmp_path / "salvaged").episode_metadata(i)["source"] for i in range(3)
    ] == ["teleop"] * 3  # the copies' metadata is empty but for the source every commit records


def test_garbage_episode_metadata_file(tmp_path: Path, capsys) -> None:
    path = make_store(tmp_path / "play")[0]
    (path / "meta/episodes/0.json").write_text('[{"source": "teleop"}]')  # 1 of 3 entries
    code, out, err = cli(capsys, "store", "validate", path)
    assert (code, len(out), err) == (1, 1, [])
    assert "(1 entries, the commit record needs 3)" in out[0]
