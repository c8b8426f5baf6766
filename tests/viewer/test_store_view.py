"""`playworld view`: a tiny store saved as .rrd and read back with rerun's own reader."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from playworld.datasets import PlayStore

rr = pytest.importorskip("rerun")
from tiny_store import FEATURES, LENGTHS, rows_per_entity  # noqa: E402


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run(capsys):
    """`playworld ARGS` in this process (the CLI's own entry, error lines and exit codes)."""
    from playworld.cli import main

    def call(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return call


ENTITIES = {
    "front": "/cameras/front",
    "front_t": "/time/front_t",
    "joint_pos": "/state/joint_pos",
    "ee_pos": "/state/ee_pos",
    "keypoints": "/world/keypoints",
    "t": "/time/t",
    "action": "/action/action",
    "command": "/action/command",
}


def test_rrd_has_every_feature_with_its_rows(run, tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.rrd"
    r = run("view", str(tiny_store), "--save", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}: 3 episodes, {sum(LENGTHS)} steps" in r.stdout
    rows, times = rows_per_entity(out)
    assert set(ENTITIES) == set(FEATURES)
    for key, path in ENTITIES.items():
        assert rows[path] == sum(LENGTHS), (key, rows[path])
    # annotations: one summary per episode, two segments per episode (start + outcome logs)
    assert rows["/annotations/episodes"] == 3
    assert rows["/annotations/segments"] == 4 * 3
    assert rows["/annotations/segment_success"] == 2 * 3
    assert rows["/loop/dropped_frames"] == 3
    # cameras sit at their capture times (40 ms before the robot's), episodes never overlap
    # although episode 1 restarted its clock at 0
    cam, robot = np.sort(times["/cameras/front"]), np.sort(times["/time/t"])
    assert np.all(np.diff(cam) > 0) and np.all(np.diff(robot) > 0)
    assert np.allclose(robot - cam, 40e6)
    assert cam[0] == 0


def test_episode_selection(run, tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.rrd"
    r = run("view", str(tiny_store), "--episodes", "1:", "--save", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    rows, _ = rows_per_entity(out)
    assert rows["/cameras/front"] == LENGTHS[1] + LENGTHS[2]
    r = run("view", str(tiny_store), "-e", "-1", "--save", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert rows_per_entity(out)[0]["/state/joint_pos"] == LENGTHS[2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/nothing.zarr", "--save", "{tmp}/x.rrd"], "does not exist"),
        (["{tmp}", "--save", "{tmp}/x.rrd"], "not a play store"),
        (
            ["{store}", "-e", "3", "--save", "{tmp}/x.rrd"],
            "has 3 episodes; episode 3 does not exist",
        ),
        (["{store}", "--episodes", "5:9", "--save", "{tmp}/x.rrd"], "selects none"),
        (["{store}", "--episodes", "a-b", "--save", "{tmp}/x.rrd"], "expected --episodes A:B"),
        (["{store}", "--save", "{tmp}/x.txt"], "expected an .rrd file"),
        (["{store}", "--save", "{tmp}/no/x.rrd"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2(run, tiny_store, tmp_path, args, message) -> None:
    r = run("view", *(a.format(tmp=tmp_path, store=tiny_store) for a in args))
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr


def test_port_in_use_is_one_line_exit_2(run, tiny_store: Path) -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("view", str(tiny_store), "--web", "--web-port", str(port), "--grpc-port", "0")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: port {port} for the web viewer is in use (another viewer or server?); pass "
        "--web-port with a free port, or 0 for any"
    )


def test_store_without_times_logs_on_rows(tmp_path: Path) -> None:
    """No time feature at all: rows / fps are the timeline."""
    from playworld.datasets import Feature
    from playworld.viewer import ViewTarget, view_store

    path = tmp_path / "plain.zarr"
    with PlayStore.create(path, {"x": Feature((2,))}, fps=5.0) as store:
        store.add_episode({"x": np.ones((4, 2), np.float32)})
        store.add_episode({"x": np.zeros((3, 2), np.float32)})
    out = tmp_path / "plain.rrd"
    view_store(path, ViewTarget(save=str(out)))
    rows, times = rows_per_entity(out)
    assert rows["/state/x"] == 7
    assert np.allclose(np.sort(times["/state/x"]), np.arange(7) * 200e6)


def test_native_viewer_without_a_display(run, tiny_store: Path, monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    r = run("view", str(tiny_store))
    assert r.returncode == 2 and "no display for rerun's native viewer" in r.stderr
