"""`playworld deploy` end to end: a real websocket to `playworld twin serve` in a child process,
over a rehearsed bad link (30 ms +- 10 ms each way, 1% of topic messages lost)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("roslibpy", reason="roslibpy not installed (pip install 'playworld[ros]')")

from playworld.errors import DeployError, PlayworldError  # noqa: E402
from playworld.policies.deploy_command import run_deploy  # noqa: E402

LINK = ["--latency-ms", "30", "--jitter-ms", "10", "--drop", "0.01"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, *extra: str) -> subprocess.Popen:
    """`playworld twin serve` in a child process; returns once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "playworld", "twin", "serve", "--port", str(port), *LINK, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    assert "serving the twin" in line, line + proc.stdout.read()
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # never block its logging
    return proc


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = serve(port)
    yield port
    proc.kill()
    proc.wait(timeout=10)


def deploy(port, tmp_path, policy="scripted_perception", mode="direct", say=None, **kw):
    args = {
        "task": "turn_on_light",
        "episodes": 1,
        "record": None,
        "max_seconds": 20.0,
        "host": None,
        "seed": 0,
        "ensemble": None,
        "stall_at": None,
        "profile": "rosbridge_panda",
    }
    args.update(kw)
    return run_deploy(
        policy,
        args["profile"],
        mode,
        args["task"],
        args["episodes"],
        args["record"],
        args["max_seconds"],
        port,
        args["host"],
        args["seed"],
        args["ensemble"],
        args["stall_at"],
        tmp_path / "out",
        say=say or (lambda line: None),
    )


def test_direct_deploy_succeeds_and_records_latency(server, tmp_path):
    from playworld.datasets import PlayStore

    report = deploy(server, tmp_path, record=tmp_path / "deploy.zarr")
    (episode,) = report["episodes"]
    brief = {k: v for k, v in episode.items() if k not in ("latency_ms", "divergence_rad")}
    assert episode["success"] is True and episode["ended_by"] == "success", brief
    assert len(episode["latency_ms"]) >= 5 and report["latency_ms_p99"] < 100.0  # one period
    on_disk = json.loads((tmp_path / "out" / "deploy.json").read_text())
    assert on_disk["success_rate"] == 1.0 and on_disk["latency_ms"] == report["latency_ms"]
    with PlayStore.open(tmp_path / "deploy.zarr") as store:
        assert len(store) == 1
        meta = store.episode_metadata(0)
        assert meta["source"] == "policy" and meta["success"] is True
        assert (
            meta["policy"]["type"] == "scripted_perception" and len(meta["policy"]["sha256"]) == 64
        )
        assert meta["latency_ms"] == episode["latency_ms"]
        assert "object_poses" in store.features and not store.features["object_poses"].privileged


@pytest.mark.slow
def test_twin_follow_with_the_privileged_expert(server, tmp_path):
    report = deploy(server, tmp_path, policy="scripted", mode="twin-follow")
    (episode,) = report["episodes"]
    assert episode["success"] is True
    assert len(episode["divergence_rad"]) == episode["ticks"]
    assert report["divergence_rad_p99"] is not None


@pytest.mark.slow
def test_a_stalled_policy_stops_the_arm(server, tmp_path):
    report = deploy(server, tmp_path, task="open_drawer", stall_at=1.0, max_seconds=3.0)
    (episode,) = report["episodes"]
    assert episode["braked_without_action"] >= 5  # the stall: the loop holds the arm here
    assert (
        episode["stall_stop_periods"] is not None and episode["stall_stop_periods"] <= 3.5
        # measured here: 2.0-3.3 periods on a loaded machine; the brake command crosses the 30 ms
        # link and waits for the served arm's next control tick
    )  # incl. the 30 ms link back


def test_privileged_policy_refused_on_a_real_arm(tmp_path):
    with pytest.raises(DeployError, match="privileged twin features") as err:
        deploy(free_port(), tmp_path, policy="scripted")  # refused before connecting
    assert "\n" not in str(err.value) and "twin-follow" in str(err.value)


def test_cli_refusal_is_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "playworld",
            "deploy",
            "--policy",
            "scripted",
            "--robot",
            "rosbridge_panda",
            "--task",
            "turn_on_light",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "privileged" in lines[0]


def test_faults_are_one_line(tmp_path):
    # unreachable bridge
    with pytest.raises(PlayworldError, match="expected a rosbridge server") as err:
        deploy(free_port(), tmp_path)
    assert "\n" not in str(err.value)
    # a policy whose features the robot does not give (a profile without the perception stream)
    profile = tmp_path / "no_perception.yaml"
    text = Path("configs/robots/rosbridge_panda.yaml").read_text()
    profile.write_text(text.split("perception:")[0])
    with pytest.raises(DeployError, match="'object_poses'.*no such key"):
        deploy(free_port(), tmp_path, profile=str(profile))


@pytest.mark.slow
def test_wrong_topic_and_a_server_killed_mid_run(tmp_path):
    from playworld.datasets import PlayStore

    port = free_port()
    proc = serve(port)
    try:
        profile = tmp_path / "wrong_topic.yaml"
        text = Path("configs/robots/rosbridge_panda.yaml").read_text()
        profile.write_text(text.replace("/playworld/object_poses", "/tracker/poses"))
        with pytest.raises(PlayworldError, match="/tracker/poses") as err:
            deploy(port, tmp_path, profile=str(profile))
        assert "\n" not in str(err.value)

        # two episodes; the server dies during the second: one line, the first stays committed
        def kill_during_the_second(line):
            if line.startswith("episode 0"):
                threading.Timer(1.0, lambda: os.kill(proc.pid, signal.SIGKILL)).start()

        with pytest.raises(DeployError, match="after 1 committed episode") as err:
            deploy(
                port,
                tmp_path,
                task="open_drawer",
                episodes=2,
                max_seconds=8.0,
                record=tmp_path / "kept.zarr",
                say=kill_during_the_second,
            )
        assert "\n" not in str(err.value)
        with PlayStore.open(tmp_path / "kept.zarr") as store:
            assert len(store) == 1
    finally:
        proc.kill()
        proc.wait(timeout=10)
