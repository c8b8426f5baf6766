"""`playworld record` end to end over the ROS bridge: `playworld twin serve` in a subprocess
(a real websocket), ee deltas replayed from an autoplay store onto the rosbridge robot (IK on
the client side), and the recorded end-effector path checked against the source's."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("roslibpy", reason="the rosbridge robot needs roslibpy (playworld[ros])")

from playworld.collection.autoplay import AutoplayConfig, autoplay  # noqa: E402
from playworld.datasets import PlayStore  # noqa: E402
from playworld.datasets.maintenance import validate  # noqa: E402
from playworld.hardware.profiles import resolve_profile  # noqa: E402

pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def path_deviation(recorded: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per recorded step (T,), m: distance of the recorded position to the nearest point of
    the source's path (segments between its rows); both start at the same reset state."""
    rec, src = recorded, source
    a, b = src[:-1], src[1:]  # (S, 3) segments
    ab = b - a
    t = np.einsum("tsk,sk->ts", rec[:, None] - a[None], ab) / np.maximum((ab * ab).sum(-1), 1e-12)
    nearest = a[None] + np.clip(t, 0, 1)[..., None] * ab[None]
    return np.linalg.norm(rec[:, None] - nearest, axis=-1).min(axis=1)


def test_record_replays_a_stored_episode_through_the_ros_bridge(tmp_path):
    # A twin that resets to one state (no object randomisation), for autoplay and the server:
    # every replayed episode starts where the source episode started.
    twin_yaml = tmp_path / "twin.yaml"
    twin_yaml.write_text("randomization: {object_poses: false}\n")
    sim = yaml.safe_load(resolve_profile("sim_panda").read_text())
    sim.update(twin=str(twin_yaml), cameras={})
    sim_profile = tmp_path / "sim.yaml"
    sim_profile.write_text(yaml.safe_dump(sim))
    source = tmp_path / "source.zarr"
    # Tasks whose contacts are brief (a push, a lift): a stall of the loop mid-pull (drawer,
    # door) changes the contact and with it the path, which is physics, not tracking.
    tasks = ("lift_red_block", "push_green_block_right", "push_blue_block_left")
    cfg = AutoplayConfig(
        cameras=(), episode_steps=20, seed=0, profile=str(sim_profile), tasks=tasks
    )
    autoplay(source, cfg, steps=20)
    src = PlayStore.open(source)
    src_ee = src.episode(0)["ee_pos"][:].astype(float)
    n_src = len(src_ee)
    assert np.linalg.norm(np.diff(src_ee, axis=0), axis=1).sum() > 0.3  # a path worth following

    port = free_port()
    profile = yaml.safe_load(resolve_profile("rosbridge_panda").read_text())
    profile.update(port=port, cameras={})
    profile_path = tmp_path / "rosbridge_test.yaml"
    profile_path.write_text(yaml.safe_dump(profile))
    server = subprocess.Popen(
        [sys.executable, "-m", "playworld", "twin", "serve", "--port", str(port)]
        + ["--profile", str(profile_path), "--twin", str(twin_yaml)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert "serving the twin" in line and "10 Hz" in line, line + server.stdout.read()
        out = tmp_path / "out.zarr"
        rec = subprocess.run(
            [sys.executable, "-m", "playworld", "record", "--robot", str(profile_path)]
            + ["--teleop", f"replay:{source}:0", "--episodes", "2", "--reset-s", "0.5"]
            + ["--store", str(out)],
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert rec.returncode == 0, rec.stdout + rec.stderr
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert validate(out).ok
    s = PlayStore.open(out)
    assert len(s) == 2 and s.fps == src.fps == 10
    assert s.features["action"].shape == (7,) and s.features["command"].shape == (8,)
    on_time, late = [], []
    for ep in s.episodes():
        assert ep.metadata["robot"] == "rosbridge_panda" and len(ep) == n_src
        np.testing.assert_allclose(ep["action"][:], src.episode(0)["action"][:], atol=1e-7)
        dev = path_deviation(ep["ee_pos"][:].astype(float), src_ee)
        overruns = ep.metadata["loop"]["overruns"]
        # Joint states arrive once per server tick: a gap or a repeat is a late server tick.
        gaps = np.diff(ep["t"][:][:, 0])
        server_late = int(np.sum((gaps > 0.15) | (gaps < 0.05)))
        # A loop or a server that ran late (a loaded machine) paused the replay, mid-contact
        # perhaps, which changes the physics: such an episode is reported, not compared.
        (on_time if overruns == 0 and server_late == 0 else late).append(dev)
        print(
            f"replay_path_deviation_max_m: {dev.max():.4f}  mean: {dev.mean():.4f}  "
            f"loop overruns: {overruns}  late server ticks: {server_late}"
        )
    if not on_time:
        pytest.skip(f"every episode ran late on this loaded machine (max {np.max(late):.3f} m)")
    # Within 1 cm: 95% of the steps (a server tick that runs late under CPU contention can put
    # one observation a step off the path), and 1 cm on average by a wide margin.
    dev = np.concatenate(on_time)
    assert np.percentile(dev, 95) < 0.01 and dev.mean() < 0.003, on_time
