"""LiveView: a real control loop on the twin's robot, logged to an .rrd, read back with rerun."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rerun")

from rerun.chunk import RrdReader  # noqa: E402
from tiny_store import rows_per_entity  # noqa: E402

import playworld.sim  # noqa: E402, F401  (the headless GL backend before mujoco loads)
from playworld.collection.cameras import StandInCamera  # noqa: E402
from playworld.collection.loop import ControlLoop  # noqa: E402
from playworld.errors import ConfigError  # noqa: E402
from playworld.hardware.profiles import robot_from_profile  # noqa: E402
from playworld.viewer import LiveView, ViewTarget  # noqa: E402


@pytest.fixture
def sim_robot():
    robot = robot_from_profile("sim_panda", cameras={}, action_space="joint_pos")
    robot.connect()
    yield robot
    robot.disconnect()


def hold(obs: dict) -> np.ndarray:
    return np.concatenate([obs["joint_pos"], obs["gripper"]]).astype(np.float32)


def test_live_view_logs_every_tick_off_the_loop(sim_robot, tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    cam = StandInCamera(frames, 30.0, name="front")
    cam.connect()
    out = tmp_path / "live.rrd"
    view = LiveView(ViewTarget(save=str(out)), image_hz=10.0, image_width=32)
    try:
        loop = ControlLoop(sim_robot, hold, 30.0, cameras={"front": cam}, view=view)
        m = loop.run(duration=1.5).summary()
        # rerun's work runs in a child process at idle priority, not in the loop's process
        assert view.pid != os.getpid()
        assert os.sched_getscheduler(view.pid) == os.SCHED_IDLE
    finally:
        cam.disconnect()
        view.close()
    assert view.error is None
    assert not any(t.name == "live-view" for t in threading.enumerate())
    assert not os.path.exists(f"/proc/{view.pid}")  # the process has finished (and is reaped)
    ticks = m["ticks"]
    assert view.seen == ticks and view.logged + view.dropped == ticks
    assert view.dropped == 0
    assert view.overhead_ms_per_tick < 1.0
    rows, times = rows_per_entity(out)
    for path in ("/state/joint_pos", "/state/ee_pos", "/time/t", "/action/action"):
        assert rows[path] == ticks, path
    # images at most 10 per second of loop time; the twin's clock drives `time` from 0
    assert 10 <= rows["/cameras/front"] <= 17, rows["/cameras/front"]
    t = np.sort(times["/time/t"])
    assert t[0] == 0 and np.all(np.diff(t) > 0)
    # images subsampled to at most 32 pixels across: every 2nd pixel of 48x64
    sizes = set()
    for chunk in RrdReader(out).stream():
        if chunk.entity_path == "/cameras/front" and not chunk.is_static:
            buffers = chunk.to_record_batch().column("Image:buffer").to_pylist()
            sizes |= {len(b[0]) for b in buffers}
    assert sizes == {24 * 32 * 3}


def test_bad_targets() -> None:
    with pytest.raises(ConfigError, match="needs a target"):
        ViewTarget()
    with pytest.raises(ConfigError, match="LiveView needs a target"):
        LiveView()
    with pytest.raises(ConfigError, match="expected image_hz >= 0, image_width >= 0"):
        LiveView(ViewTarget(save="x.rrd"), image_hz=-1)


def test_busy_port_is_one_line_from_the_rerun_process() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} for the viewer's data .* is in use"):
            LiveView(ViewTarget(web=True, grpc_port=port, web_port=0))


def test_autoplay_view_save(tmp_path: Path, capsys) -> None:
    """`playworld autoplay --view-save`: the command hands every tick of its loop to a LiveView."""
    from playworld.cli import main

    out = tmp_path / "live.rrd"
    store = tmp_path / "play.zarr"
    args = ["autoplay", "--store", str(store), "--minutes", "0.05", "--episode-steps", "20"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--cameras", "none", "--view-save", str(out)])
    assert e.value.code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    from playworld.datasets import PlayStore

    steps = PlayStore.open(store).num_steps
    rows, _ = rows_per_entity(out)
    # the loop also runs the ticks of a last, discarded episode part: at least every stored step
    assert rows["/action/action"] >= steps > 0
    assert rows["/state/joint_pos"] == rows["/action/action"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--workers", "2", "--view"])
    assert e.value.code == 2
    assert "pass --workers 1" in capsys.readouterr().err


def test_eval_view_save(tmp_path: Path, capsys) -> None:
    """`playworld eval --view-save`: every tick of the evaluation's loop reaches the view."""
    import json

    from playworld.cli import main

    out = tmp_path / "eval.rrd"
    args = ["eval", "--policy", "scripted", "--tasks", "open_drawer", "--episodes", "2"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--workers", "1", "--out", str(tmp_path / "ev"), "--view-save", str(out)])
    assert e.value.code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "ev" / "eval.json").read_text())
    ticks = sum(report["tasks"]["open_drawer"]["lengths"])
    rows, _ = rows_per_entity(out)
    assert rows["/action/action"] == ticks > 0
    with pytest.raises(SystemExit) as e:
        main([*args, "--workers", "2", "--view", "--out", str(tmp_path / "ev2")])
    assert e.value.code == 2
    assert "--workers 1" in capsys.readouterr().err


def test_web_live_view_serves_until_stopped() -> None:
    """A web LiveView: close() logs everything, the page stays served until stop_serving()."""
    import urllib.request

    from playworld.collection.loop import Tick

    view = LiveView(ViewTarget(web=True, grpc_port=0, web_port=0))
    assert view.url is not None and view.url.startswith("http://127.0.0.1:")
    for i in range(20):
        obs = {"t": np.array([i / 30]), "joint_pos": np.full(7, i, np.float32)}
        view(Tick(i, i / 30, obs, np.zeros(8, np.float32), None, True))
    view.close()
    assert view.error is None and view.logged == 20 and view.dropped == 0
    with urllib.request.urlopen(view.url, timeout=10) as page:
        assert page.status == 200 and b"<html" in page.read().lower()
    view.stop_serving()
    assert not os.path.exists(f"/proc/{view.pid}")
