"""RosBridgeRobot against the twin server, end to end over real websockets."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("roslibpy", reason="roslibpy not installed (pip install 'playworld[ros]')")

websockets = pytest.importorskip(
    "websockets", reason="websockets not installed (pip install 'playworld[ros]')"
)
from websockets.sync.client import connect  # noqa: E402

from playworld.collection.twin_server import TwinServer  # noqa: E402
from playworld.hardware.errors import RobotConnectionError  # noqa: E402
from playworld.hardware.profiles import robot_from_profile  # noqa: E402
from playworld.hardware.rosbridge import messages  # noqa: E402
from playworld.hardware.rosbridge.robot import STOP_COPIES  # noqa: E402

UPPER4 = -0.45  # the profile's upper limit of panda_joint4 (rad)


@pytest.fixture(scope="module")
def twin_server():
    with TwinServer(port=0) as server:
        yield server


def settle(server):
    """Let commands still in flight from an earlier client land, then reset the twin."""
    time.sleep(0.3)
    server._reset({})


@pytest.fixture
def robot(twin_server):
    settle(twin_server)
    r = robot_from_profile("rosbridge_panda", port=twin_server.port)
    with r:
        yield r


def twin_q(server) -> np.ndarray:
    with server.robot._lock:
        return server.robot._joints()[0]


def drive(robot, target, seconds, rate=20.0):
    """Send `target` (8,) at `rate` Hz for `seconds`; the last action actually sent."""
    sent = None
    for _ in range(int(seconds * rate)):
        sent = robot.send_action(target)
        time.sleep(1.0 / rate)
    return sent


def test_reads_states_and_the_twin_follows_commands(robot, twin_server):
    obs = robot.get_observation()
    assert obs["joint_pos"].shape == (7,) and obs["gripper"].shape == (1,)
    np.testing.assert_allclose(obs["joint_pos"], twin_q(twin_server), atol=0.02)
    target = np.concatenate([obs["joint_pos"] + [0.3, 0.2, 0, 0.2, 0, -0.2, 0.3], [0.25]])
    way, toward = target[:7] - obs["joint_pos"], []
    for _ in range(15):  # on the way there, the joint states carry the arm's velocities
        robot.send_action(target)
        robot.get_observation()
        toward.append(way @ robot.state_velocity)
        time.sleep(0.02)
    assert max(toward) > 0.1, toward
    drive(robot, target, 2.0)
    np.testing.assert_allclose(twin_q(twin_server), target[:7], atol=0.03)
    assert abs(robot.get_observation()["gripper"][0] - 0.25) < 0.05
    assert np.abs(robot.state_velocity).max() < 0.05  # settled: the states' velocities
    frame = robot.cameras["front"].read(timeout=3.0)
    assert frame.image.shape == (96, 128, 3) and frame.image.mean() > 10


def test_out_of_limit_and_nan_commands_are_clipped_or_refused(robot, twin_server):
    q0 = robot.get_observation()["joint_pos"].astype(float)
    target = np.concatenate([q0, [1.0]])
    target[3] = 1.0  # joint 4 far above its upper limit
    sent = drive(robot, target, 1.5)
    assert sent[3] <= UPPER4 + 1e-6
    assert twin_q(twin_server)[3] <= UPPER4 + 0.02
    nan = target.copy()
    nan[0] = np.nan
    held = robot.send_action(nan)
    assert robot.last_command.kind == "hold" and np.all(np.isfinite(held))
    np.testing.assert_allclose(held, sent, atol=1e-6)  # held at the previous command
    time.sleep(1.0)  # the twin settles on the held command, not on anything NaN made
    np.testing.assert_allclose(twin_q(twin_server), sent[:7], atol=0.03)


def test_stale_and_malformed_commands_are_refused_by_the_twin(twin_server):
    settle(twin_server)
    q0 = twin_q(twin_server)
    msg = messages.joint_command("trajectory_msgs/JointTrajectory", twin_server.joints, q0 + 0.3)
    msg["header"] = messages.header(time.time() - 5.0)
    with connect(f"ws://127.0.0.1:{twin_server.port}") as ws:
        ws.send(json.dumps({"op": "publish", "topic": "/arm_controller/command", "msg": msg}))
        status = json.loads(ws.recv(timeout=5))
        assert status["op"] == "status" and "stale" in status["msg"]
        bad = {"joint_names": ["panda_joint1"], "points": [{"positions": [0.1]}]}
        ws.send(json.dumps({"op": "publish", "topic": "/arm_controller/command", "msg": bad}))
        assert "missing" in json.loads(ws.recv(timeout=5))["msg"]
    time.sleep(0.3)
    np.testing.assert_allclose(twin_q(twin_server), q0, atol=0.02)


def test_estop_and_reset_services(robot, twin_server):
    q0 = robot.get_observation()["joint_pos"].astype(float)
    robot.estop("test")
    assert twin_server.robot.guard.estopped
    target = np.concatenate([q0 + 0.2, [1.0]])
    sent = robot.send_action(target)
    assert robot.last_command.kind == "stop"
    np.testing.assert_allclose(sent[:7], q0, atol=1e-3)
    time.sleep(0.3)
    np.testing.assert_allclose(twin_q(twin_server), q0, atol=0.02)
    robot.release_estop()
    drive(robot, target, 1.0)
    np.testing.assert_allclose(twin_q(twin_server), target[:7], atol=0.03)
    assert robot.reset()["success"] is True
    time.sleep(0.3)
    assert np.abs(twin_q(twin_server) - target[:7]).max() > 0.1  # back home


def test_brake_stops_a_moving_arm_where_it_is(robot, twin_server):
    """`Robot.brake` sends an empty JointTrajectory; the twin brakes where the arm is then
    (not at the last target, not back where the link last measured it)."""
    q0 = robot.get_observation()["joint_pos"].astype(float)
    target = np.concatenate([q0 + np.array([0.8, 0, 0, 0, 0, 0, 0]), [1.0]])
    drive(robot, target, 0.4)  # moving, about halfway
    moving = twin_q(twin_server)
    stops = twin_server.stops
    robot.brake("test")
    assert robot.last_command.kind == "stop"
    time.sleep(0.25)  # the stop crosses the link, the arm decelerates
    got = twin_server.stops - stops  # each stop goes in copies: a lossy link may lose one
    assert got >= STOP_COPIES and got % STOP_COPIES == 0, got
    stopped = twin_q(twin_server)
    time.sleep(0.3)
    assert np.abs(twin_q(twin_server) - stopped).max() < 0.005  # stands still
    assert 0.05 < stopped[0] - q0[0] < 0.7  # between the start and the target
    assert stopped[0] >= moving[0] - 0.01  # not sent back
    drive(robot, target, 0.2)  # the next action moves again
    assert twin_q(twin_server)[0] > stopped[0] + 0.05


def test_ee_delta_actions_are_solved_client_side_and_guarded(twin_server):
    """ee_delta (7,) on a rosbridge arm: IK here, FK observation, the guard's workspace box."""
    from playworld.hardware.ee import MAX_POS_STEP

    settle(twin_server)
    r = robot_from_profile(
        "rosbridge_panda", port=twin_server.port, action_space="ee_delta", cameras={}
    )
    assert r.action_features["action"].shape == (7,)
    assert {"ee_pos", "ee_quat"} <= set(r.observation_features)
    with r:
        obs = r.get_observation()
        with twin_server.robot._lock:
            pos, _ = twin_server.robot.twin.ee_pose()
        np.testing.assert_allclose(obs["ee_pos"], pos, atol=0.01)
        p0 = obs["ee_pos"].astype(float)
        for _ in range(10):  # 20 cm straight down
            sent = r.send_action(np.array([0, 0, -0.02, 0, 0, 0, 1.0]))
            time.sleep(0.1)
        assert sent.shape == (7,) and sent[2] == np.float32(-0.02)  # the delta, not an FK guess
        time.sleep(0.5)
        p = r.get_observation()["ee_pos"]
        assert p[2] < p0[2] - 0.15 and np.abs(p[:2] - p0[:2]).max() < 0.02
        assert r.send_action(np.array([0.5, 0, 0, 0, 0, 0, 1.0]))[0] == np.float32(MAX_POS_STEP)
        held = r.send_action(np.array([np.nan, 0, 0, 0, 0, 0, 1.0]))
        assert r.last_command.kind == "hold" and np.all(np.isfinite(r.last_command.q))
        assert held.shape == (7,) and np.all(np.isfinite(held))
        box = r.guard.workspace
        for _ in range(20):  # far below the table: pulled back into the guard's box
            r.send_action(np.array([0, 0, -0.05, 0, 0, 0, 1.0]))
            assert r.kinematics.fk_pos(r.last_command.q)[2] >= box[4] - 1e-9
            time.sleep(0.05)
        time.sleep(0.5)
        assert r.get_observation()["ee_pos"][2] >= box[4] - 2e-3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int) -> subprocess.Popen:
    """`playworld twin serve` in a child process; returns once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "playworld", "twin", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    assert "serving the twin" in line, line + proc.stdout.read()
    return proc


def test_server_killed_mid_run_then_back(caplog):
    port = free_port()
    proc = serve(port)
    robot = robot_from_profile("rosbridge_panda", port=port, reconnect_delay=0.3)
    try:
        robot.connect()
        q0 = robot.get_observation()["joint_pos"].astype(float)
        target = np.concatenate([q0 + 0.1, [1.0]])
        drive(robot, target, 0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        caplog.set_level(logging.ERROR, logger="playworld.hardware.rosbridge.robot")
        errors, statuses = [], []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # the control loop carries on sending
            try:
                robot.send_action(target)
            except RobotConnectionError as exc:
                errors.append(str(exc))
            statuses.append(robot.guard.status(robot.clock()))
            time.sleep(0.05)
        assert errors and "\n" not in errors[-1] and f"127.0.0.1:{port}" in errors[-1]
        assert "no joint state" in errors[-1]
        logged = [r for r in caplog.records if "lost the rosbridge link" in r.getMessage()]
        assert len(logged) == 1  # one clear error, not one per tick
        assert "hold" in statuses and statuses[-1] == "stop"
        assert statuses.index("hold") < statuses.index("stop")  # hold first, then stop
        assert robot.last_command.kind == "stop"

        proc = serve(port)  # the server comes back: roslibpy reconnects and resubscribes
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            try:
                robot.get_observation()
                break
            except RobotConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("the robot did not reconnect within 15 s")
        sent = drive(robot, target, 0.5)
        assert robot.last_command.kind == "move" and np.all(np.isfinite(sent))
    finally:
        robot.disconnect()
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("connected_s", [0.6, 0.0], ids=["after-a-few-states", "at-connect"])
def test_a_loop_ticks_just_after_the_arms_states_arrive(robot, connected_s):
    """Also a loop started the moment the robot connects (`playworld record`), before the
    stream's phase is known: started free, it kept an aliasing phase for the whole session."""
    from playworld.collection.loop import STATE_LEAD_PERIODS, ControlLoop

    time.sleep(connected_s)
    stamps, starts = [], []

    def source(obs):
        stamps.append(robot.state_stamp)
        return None  # send nothing

    loop = ControlLoop(robot, source, 10.0, align_to_states=True)
    loop.run(max_ticks=20, on_tick=lambda tick: starts.append(tick.start))
    arrival, period = robot.state_phase()
    assert abs(period - 0.1) < 0.01  # the served arm publishes at its 10 Hz control rate
    # each tick sees a state the previous one did not (two 10 Hz clocks, phase-locked)
    assert len(set(stamps)) >= 19, np.diff(stamps)
    # and ticks a fifth of a period after a typical arrival
    offset = (np.array(starts) - arrival - STATE_LEAD_PERIODS * period) % period
    offset = np.minimum(offset, period - offset)
    assert np.median(offset) < 0.01, offset


def test_the_served_arm_keeps_one_tick_grid_while_its_measurements_rotate():
    server = TwinServer(port=0)
    server.metrics_period_s = 0.3
    with server:
        time.sleep(1.0)
        assert server._thread.is_alive() and server.metrics is not None
        assert server.metrics["ticks"] >= 2  # a summary of the last 0.3 s, not of the whole run
        assert server.metrics["ticks"] <= 4 and server.loop.metrics.summary()["ticks"] <= 4
