"""The real `playworld` command in a subprocess: happy paths, exit codes, one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import playworld
from playworld.datasets import Feature, PlayStore

H, W = 24, 32
FEATURES = {
    "cam": Feature((H, W, 3), "uint8", "image"),
    "action": Feature((2,), kind="action", units="m/s"),
}
CONSOLE_SCRIPT = Path(sys.executable).parent / "playworld"


def make_store(path: Path, lengths=(4, 6), seed=0, fps=10.0) -> Path:
    rng = np.random.default_rng(seed)
    with PlayStore.create(path, FEATURES, fps, image_shard_frames=4, vector_chunk_rows=8) as store:
        for n in lengths:
            store.add_episode(
                {
                    "cam": rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8),
                    "action": rng.normal(size=(n, 2)).astype(np.float32),
                },
                {"source": "teleop"},
            )
    return path


def run(*args: object) -> subprocess.CompletedProcess[str]:
    """``python -m playworld ARGS`` (the same `main` as the console script)."""
    cmd = [sys.executable, "-m", "playworld", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def assert_user_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, r
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "play")


def test_console_script_version_and_help() -> None:
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"{CONSOLE_SCRIPT} is missing: run `pip install -e . --no-deps`")
    r = subprocess.run([CONSOLE_SCRIPT, "--version"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, f"playworld {playworld.__version__}")
    r = subprocess.run(
        [CONSOLE_SCRIPT, "store", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0
    assert all(cmd in r.stdout for cmd in ("info", "validate", "repair", "merge", "drop"))


def test_info(store: Path) -> None:
    r = run("store", "info", store, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["episodes"], d["steps"], d["fps"]) == (2, 10, 10.0)
    assert d["features"]["cam"]["shape"] == [H, W, 3]
    r = run("store", "info", store)
    assert r.returncode == 0, r.stderr
    assert "2 episodes, 10 steps" in r.stdout and "cam" in r.stdout and "action" in r.stdout


def test_validate_and_repair(store: Path) -> None:
    r = run("store", "validate", store)
    assert r.returncode == 0 and "valid" in r.stdout, r
    arr = zarr.open_array(store / "data/action", mode="r+")
    arr.resize((13, 2))  # 3 uncommitted rows
    (store / "zarr.json.00ff.partial").write_text("{")
    r = run("store", "validate", store, "--quick")
    assert r.returncode == 1, r
    assert len(r.stdout.splitlines()) == 2
    assert "3 uncommitted rows" in r.stdout and "zarr.json.00ff.partial" in r.stdout
    r = run("store", "repair", store)
    assert r.returncode == 0, r
    assert "trimmed 3 uncommitted rows" in r.stdout and "deleted zarr.json.00ff.partial" in r.stdout
    assert run("store", "validate", store).returncode == 0


def test_validate_names_a_missing_file(store: Path) -> None:
    (store / "data/cam/c/1/0/0/0").unlink()
    r = run("store", "validate", store)
    assert (
        r.returncode == 1
        and "missing file data/cam/c/1/0/0/0" in r.stdout
        and "episode 1" in r.stdout
    )


def test_merge_and_drop(tmp_path: Path) -> None:
    a = make_store(tmp_path / "a", (4, 6), seed=1)
    b = make_store(tmp_path / "b", (5,), seed=2)
    r = run("store", "merge", a, b, "-o", tmp_path / "c")
    assert r.returncode == 0, r.stderr
    merged = PlayStore.open(tmp_path / "c")
    assert list(merged.episode_ends) == [4, 10, 15]
    np.testing.assert_array_equal(
        merged.episode(2)["cam"][:], PlayStore.open(b).episode(0)["cam"][:]
    )

    r = run("store", "drop", tmp_path / "c", "--episode", 0, "-o", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert list(PlayStore.open(tmp_path / "d").episode_ends) == [6, 11]
    r = run("store", "drop", tmp_path / "c", "--episode", -1)
    assert r.returncode == 0, r.stderr
    assert list(PlayStore.open(tmp_path / "c").episode_ends) == [4, 10]


def test_user_errors_are_one_line(tmp_path: Path, store: Path) -> None:
    assert_user_error(
        run("store", "info", tmp_path / "nowhere"), str(tmp_path / "nowhere"), "does not exist"
    )
    assert_user_error(run("store", "drop", store, "--episode", 5), "episode 5 does not exist")
    other = make_store(tmp_path / "other", (3,), fps=30.0)
    assert_user_error(run("store", "merge", store, other, "-o", tmp_path / "m"), "fps 10 vs 30")
    with PlayStore.open(store, "a"):  # a recorder holds the writer lock
        assert_user_error(run("store", "repair", store), "another process")


def test_usage_errors_exit_2_without_traceback(store: Path) -> None:
    for args in (("store", "drop", store), ("store", "nonsense"), ("store", "merge", store)):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r
