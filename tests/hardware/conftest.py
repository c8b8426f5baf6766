"""Fixtures of the hardware tests: servers on free 127.0.0.1 ports, cleaned up after each test."""

from __future__ import annotations

import threading

import pytest

from playworld.hardware.rosbridge.server import RosBridgeServer


@pytest.fixture
def echo_server():
    """A rosbridge server that echoes /echo_in to /echo_out and adds two ints."""
    server = RosBridgeServer(port=0)
    server.advertise("/echo_out", "std_msgs/String")
    server.on_publish(
        "/echo_in", "std_msgs/String", lambda msg, cid: server.publish("/echo_out", msg)
    )
    server.add_service(
        "/add_two_ints", "rospy_tutorials/AddTwoInts", lambda a: {"sum": a["a"] + a["b"]}
    )
    with server:
        yield server


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every test stops the threads it started (daemon helpers of libraries excepted)."""
    before = set(threading.enumerate())
    yield
    import time

    deadline = time.monotonic() + 5.0
    ours = ("rosbridge", "watchdog", "capture", "keyboard", "twin", "spacemouse", "gamepad")
    while time.monotonic() < deadline:
        leaked = [
            t
            for t in set(threading.enumerate()) - before
            if t.is_alive() and any(k in t.name for k in ours)
        ]
        if not leaked:
            return
        time.sleep(0.05)
    pytest.fail(f"threads left running: {[t.name for t in leaked]}")
