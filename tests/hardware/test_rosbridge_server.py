"""The rosbridge v2 server: protocol conformance, robustness, and clients nobody here wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

websockets = pytest.importorskip(
    "websockets", reason="websockets not installed (pip install 'playworld[ros]')"
)
from websockets.sync.client import connect  # noqa: E402

from playworld.hardware.errors import HardwareError  # noqa: E402
from playworld.hardware.rosbridge.server import RosBridgeServer  # noqa: E402

HERE = Path(__file__).parent


def recv_json(ws, timeout=5.0):
    return json.loads(ws.recv(timeout=timeout))


def recv_op(ws, op, timeout=5.0):
    """The next message with `op`, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        m = recv_json(ws, max(deadline - time.monotonic(), 0.01))
        if m["op"] == op:
            return m


def test_binds_loopback_by_default_on_a_free_port(echo_server):
    assert echo_server.host == "127.0.0.1" and echo_server.port > 0
    with pytest.raises(HardwareError, match="choose another --port"):
        RosBridgeServer(port=echo_server.port).start()


@pytest.mark.parametrize(
    "raw, match",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('{"op": "dance"}', "expected an op among"),
        ('{"id": "x1"}', "found None"),
        ('{"op": "publish", "msg": {}}', "field 'topic'"),
        ('{"op": "publish", "topic": "/nowhere", "msg": {}}', "not advertised"),
        ('{"op": "subscribe", "topic": "/a", "throttle_rate": -5}', "throttle_rate"),
        ('{"op": "advertise", "topic": "/echo_out", "type": "std_msgs/Int32"}', "expected type"),
        ('{"op": "service_response", "id": "nope", "values": {}}', "no call pending"),
    ],
)
def test_malformed_messages_get_a_status_error_and_the_connection_survives(echo_server, raw, match):
    with connect(echo_server.url) as ws:
        ws.send(raw)
        status = recv_json(ws)
        assert status["op"] == "status" and status["level"] == "error"
        assert match in status["msg"]
        ws.send(
            json.dumps(
                {
                    "op": "call_service",
                    "id": "c1",
                    "service": "/add_two_ints",
                    "args": {"a": 1, "b": 2},
                }
            )
        )
        assert recv_op(ws, "service_response")["values"] == {"sum": 3}


def test_oversized_and_binary_messages(echo_server):
    echo_server.max_message_bytes = 1000
    with connect(echo_server.url, max_size=None) as ws:
        ws.send(json.dumps({"op": "publish", "topic": "/echo_in", "msg": {"data": "x" * 2000}}))
        assert "exceeds the limit of 1000" in recv_op(ws, "status")["msg"]
        ws.send(b"\xa1\x62op")
        assert "binary" in recv_op(ws, "status")["msg"]
        ws.send(
            json.dumps(
                {
                    "op": "call_service",
                    "id": 7,
                    "service": "/add_two_ints",
                    "args": {"a": 1, "b": 1},
                }
            )
        )
        response = recv_op(ws, "service_response")
        assert response["id"] == 7 and response["result"] is True


def test_status_carries_the_op_id(echo_server):
    with connect(echo_server.url) as ws:
        ws.send(json.dumps({"op": "call_service", "id": "call:9", "service": "/missing"}))
        response = recv_op(ws, "service_response")
        assert response["result"] is False and response["id"] == "call:9"
        status = recv_op(ws, "status")
        assert status["id"] == "call:9" and "/add_two_ints" in status["msg"]


def test_pub_sub_between_clients_unsubscribe_and_throttle(echo_server):
    with (
        connect(echo_server.url) as a,
        connect(echo_server.url) as b,
        connect(echo_server.url) as c,
    ):
        b.send(
            json.dumps({"op": "subscribe", "id": "s1", "topic": "/chat", "type": "std_msgs/String"})
        )
        c.send(json.dumps({"op": "subscribe", "topic": "/chat", "throttle_rate": 10_000}))
        time.sleep(0.1)
        a.send(json.dumps({"op": "advertise", "topic": "/chat", "type": "std_msgs/String"}))
        for i in range(3):
            a.send(json.dumps({"op": "publish", "topic": "/chat", "msg": {"data": str(i)}}))
        assert [recv_op(b, "publish")["msg"]["data"] for _ in range(3)] == ["0", "1", "2"]
        assert recv_op(c, "publish")["msg"]["data"] == "0"  # throttled: one per 10 s
        with pytest.raises(TimeoutError):
            c.recv(timeout=0.3)
        b.send(json.dumps({"op": "unsubscribe", "id": "s1", "topic": "/chat"}))
        time.sleep(0.1)
        a.send(json.dumps({"op": "publish", "topic": "/chat", "msg": {"data": "late"}}))
        with pytest.raises(TimeoutError):
            b.recv(timeout=0.3)


def test_a_stalled_client_never_stalls_the_others(echo_server):
    """One client subscribes and never reads; another keeps getting every message in time."""
    echo_server.advertise("/big", "std_msgs/String")
    echo_server.queue_size = 8  # per-client send queue: drops start after 8 queued messages
    payload = {"data": "y" * 100_000}
    with connect(echo_server.url, max_size=None, max_queue=1, close_timeout=0.5) as stalled:
        stalled.send(json.dumps({"op": "subscribe", "topic": "/big"}))
        with connect(echo_server.url, max_size=None) as healthy:
            healthy.send(json.dumps({"op": "subscribe", "topic": "/big"}))
            time.sleep(0.2)
            start = time.monotonic()
            for i in range(150):  # 15 MB: more than the stalled socket's buffers hold
                echo_server.publish("/big", {**payload, "i": i})
                m = recv_op(healthy, "publish", timeout=5.0)
                assert m["msg"]["i"] == i
            assert time.monotonic() - start < 20.0
        client = min(echo_server._clients.values(), key=lambda c: c.cid)
        assert client.dropped > 0  # the stalled client lost its oldest messages instead


def run_client(cmd, timeout=60):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, f"client failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])


def test_roslibpy_pub_sub_and_services(echo_server):
    pytest.importorskip("roslibpy", reason="roslibpy not installed (pip install 'playworld[ros]')")
    before = time.time()
    out = run_client([sys.executable, str(HERE / "roslibpy_client.py"), str(echo_server.port)])
    assert out["received"] == [f"hello {i}" for i in range(20)]
    assert out["sum"] == 42 and out["doubled"] == 42
    assert out["missing"] and "/no/such" in out["missing"]
    assert before - 1 <= out["time"]["secs"] <= time.time() + 1


def test_roslibjs_under_node(echo_server):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs)")
    if not (HERE / "js" / "node_modules" / "roslib").is_dir():
        pytest.skip("roslibjs is not installed: run `npm ci --prefix tests/hardware/js`")
    out = run_client([node, str(HERE / "js" / "check.mjs"), str(echo_server.port)])
    assert out == {"received": [f"js {i}" for i in range(5)], "sum": 42}
