"""The rosbridge relay and rosapi: raw protocol checks, then clients nobody here wrote
(roslibpy, roslibjs under Node) talking to each other and to `playworld twin serve`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

websockets = pytest.importorskip(
    "websockets", reason="websockets not installed (pip install 'playworld[ros]')"
)
from websockets.sync.client import connect  # noqa: E402

from playworld.hardware.rosbridge import msgdefs  # noqa: E402

HERE = Path(__file__).parent


def send(ws, **op):
    ws.send(json.dumps(op))


def recv_op(ws, op, timeout=5.0):
    """The next message with `op` (binary frames decoded as CBOR), skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        raw = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        if isinstance(raw, bytes):
            import cbor2

            m = cbor2.loads(raw)
        else:
            m = json.loads(raw)
        if m["op"] == op:
            return m


def call(ws, service, **args):
    send(ws, op="call_service", id="c", service=service, args=args)
    response = recv_op(ws, "service_response")
    assert response["result"] is True, response
    return response["values"]


def test_any_client_relays_any_topic_with_type_checks(echo_server):
    with connect(echo_server.url) as a, connect(echo_server.url) as b:
        send(b, op="subscribe", id="s", topic="relay/f", type="std_msgs/Float64")
        assert call(b, "rosapi/topic_type", topic="/relay/f") == {"type": "std_msgs/Float64"}
        send(a, op="advertise", topic="/relay/f", type="std_msgs/msg/Float64")  # ROS 2 spelling
        send(a, op="publish", topic="/relay/f", msg={"data": 1.5})
        m = recv_op(b, "publish")
        assert m == {"op": "publish", "topic": "relay/f", "msg": {"data": 1.5}}  # as b spelled it
        for bad, match in [
            ({"op": "advertise", "type": "std_msgs/Int32"}, "expected type std_msgs/Float64"),
            ({"op": "publish", "type": "std_msgs/Int32", "msg": {}}, "expected type"),
            ({"op": "publish", "msg": {"data": "x"}}, "expected data as float64, found 'x'"),
            ({"op": "publish", "msg": {"dtaa": 1.0}}, "std_msgs/Float64 has no field dtaa"),
            ({"op": "subscribe", "type": "std_msgs/String"}, "expected type"),
            ({"op": "subscribe", "compression": "zip"}, "expected compression among"),
            ({"op": "subscribe", "queue_length": -1}, "expected queue_length >= 0"),
        ]:
            send(a, topic="/relay/f", **bad)
            status = recv_op(a, "status")
            assert status["level"] == "error" and match in status["msg"], (bad, status)
        send(a, op="publish", topic="/relay/f", msg={})  # missing fields take their defaults
        assert recv_op(b, "publish")["msg"] == {"data": 0.0}
        # a subscriber of its own topic gets its own messages, as a ROS node does
        send(a, op="subscribe", topic="/relay/f")
        send(a, op="publish", topic="/relay/f", msg={"data": 2.0})
        assert recv_op(a, "publish")["msg"] == {"data": 2.0}
        send(a, op="unadvertise", topic="/relay/nothing")
        assert recv_op(a, "status")["level"] == "warning"


def test_a_topic_is_forgotten_when_its_last_user_leaves(echo_server):
    with connect(echo_server.url) as a:
        send(a, op="advertise", topic="/relay/t", type="std_msgs/String")
        send(a, op="subscribe", id="s1", topic="/relay/t")
        assert "/relay/t" in call(a, "/rosapi/topics")["topics"]
        send(a, op="unadvertise", topic="/relay/t")
        assert "/relay/t" in call(a, "/rosapi/topics")["topics"]  # still subscribed
        send(a, op="unsubscribe", id="s1", topic="/relay/t")
        assert "/relay/t" not in call(a, "/rosapi/topics")["topics"]
        send(a, op="advertise", topic="/relay/t", type="std_msgs/Int32")  # a new type is fine
        assert call(a, "/rosapi/topic_type", topic="/relay/t") == {"type": "std_msgs/Int32"}
    time.sleep(0.1)
    with connect(echo_server.url) as c:  # a closed: its advertisement went with it
        assert "/relay/t" not in call(c, "/rosapi/topics")["topics"]


def test_throttle_rate_with_queue_length_sends_the_newest_spaced(echo_server):
    echo_server.advertise("/relay/q", "std_msgs/Int32")
    with connect(echo_server.url) as b:
        send(b, op="subscribe", topic="/relay/q", throttle_rate=200, queue_length=3)
        call(b, "/rosapi/get_time")  # the subscribe has landed
        for i in range(10):
            echo_server.publish("/relay/q", {"data": i})
        got = [(recv_op(b, "publish")["msg"]["data"], time.monotonic()) for _ in range(4)]
        with pytest.raises(TimeoutError):
            b.recv(timeout=0.5)
    # the first goes at once; the queue of 3 keeps the newest; one leaves every 200 ms
    assert [d for d, _ in got] == [0, 7, 8, 9]
    gaps = [t1 - t0 for (_, t0), (_, t1) in zip(got, got[1:], strict=False)]
    assert min(gaps) > 0.15, gaps


def test_fragment_size_splits_into_fragments_that_reassemble(echo_server):
    echo_server.advertise("/relay/big", "std_msgs/String")
    with connect(echo_server.url) as b:
        send(b, op="subscribe", topic="/relay/big", fragment_size=100)
        call(b, "/rosapi/get_time")
        echo_server.publish("/relay/big", {"data": "z" * 450})
        parts = [recv_op(b, "fragment")]
        parts += [recv_op(b, "fragment") for _ in range(parts[0]["total"] - 1)]
    n = len(parts)
    assert n == 6 and [p["num"] for p in parts] == list(range(n))  # 506 characters of JSON
    assert all(len(p["data"]) <= 100 for p in parts) and len({p["id"] for p in parts}) == 1
    whole = json.loads("".join(p["data"] for p in parts))
    assert whole == {"op": "publish", "topic": "/relay/big", "msg": {"data": "z" * 450}}


def test_cbor_and_cbor_raw_subscriptions(echo_server):
    pytest.importorskip("cbor2", reason="cbor2 not installed (pip install 'playworld[ros]')")
    from playworld.hardware.rosbridge import messages, ros1_wire

    echo_server.advertise("/relay/img", "sensor_msgs/CompressedImage")
    jpeg = b"\xff\xd8" + bytes(range(256)) * 40 + b"\xff\xd9"
    msg = messages.compressed_image(jpeg, 12.5, "jpeg", "front")
    with connect(echo_server.url) as b, connect(echo_server.url) as c:
        send(b, op="subscribe", topic="/relay/img", compression="cbor")
        send(c, op="subscribe", topic="/relay/img", compression="cbor-raw")
        call(b, "/rosapi/get_time")
        call(c, "/rosapi/get_time")
        echo_server.publish("/relay/img", msg)
        m = recv_op(b, "publish")
        raw = recv_op(c, "publish")
    assert m["msg"]["data"] == jpeg and m["msg"]["header"]["frame_id"] == "front"
    assert len(json.dumps(msg)) > len(jpeg) * 4 / 3  # base64 in JSON; raw bytes in CBOR
    assert raw["msg"]["bytes"] == ros1_wire.serialize(msg, "sensor_msgs/CompressedImage")
    assert abs(raw["msg"]["secs"] - time.time()) < 5


def run_client(cmd, timeout=60):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, f"client failed:\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(lines[-1])
    assert "error" not in out, out
    return out


def node_or_skip():
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs)")
    if not (HERE / "js" / "node_modules" / "roslib").is_dir():
        pytest.skip("roslibjs is not installed: run `npm ci --prefix tests/hardware/js`")
    return node


def test_two_roslibjs_clients_relay_json_and_cbor(echo_server):
    out = run_client([node_or_skip(), str(HERE / "js" / "relay.mjs"), str(echo_server.port)])
    assert out["chat"] == [f"js {i}" for i in range(5)] and out["doubled"] == 42
    assert out["positions"] == [[i + 0.5, -i - 0.25] for i in range(3)]
    assert out["positionClass"] == "Float64Array"  # a CBOR typed array, decoded by roslibjs
    assert out["names"] == ["j1", "j2"] and out["stamp"] == {"secs": 0, "nsecs": 0}
    assert out["image"] == {
        "dataClass": "Uint8Array",
        "bytes": [255, 216, 0, 1, 2, 3, 254, 255, 217],
        "format": "jpeg",
    }


def test_two_roslibpy_clients_and_rosapi(echo_server):
    pytest.importorskip("roslibpy", reason="roslibpy not installed (pip install 'playworld[ros]')")
    out = run_client([sys.executable, str(HERE / "roslibpy_relay.py"), str(echo_server.port)])
    assert out["received"] == [f"py {i}" for i in range(20)]
    api = out["rosapi"]
    assert api["topic_type"] == "std_msgs/String"
    assert api["topics_for_type"] == ["/echo_in", "/echo_out", "/relay/py"]
    assert api["node_details"] == {
        "publishing": ["/relay/py"],
        "subscribing": ["/relay/py"],
        "services": [],
    }
    assert "/rosapi/topics_and_raw_types" in api["services"] and "/add_two_ints" in api["services"]
    assert api["service_type"] == "rosapi/Topics" and api["params"] == []
    assert "'fieldnames': ['data']" in api["message_details"]
    assert api["action_servers"] == [[]] and "/relay/py" not in api["after_leaving"]


@pytest.fixture
def profile_server():
    """A server with the topics and services `twin serve` declares for the rosbridge_panda
    profile, publishing joint states at 50 Hz (no MuJoCo: the fast stand-in)."""
    import threading

    import numpy as np

    from playworld.hardware.profiles import read_profile
    from playworld.hardware.rosbridge import messages
    from playworld.hardware.rosbridge.server import RosBridgeServer

    p = read_profile("rosbridge_panda")
    server = RosBridgeServer(port=0)
    server.advertise(p["joint_state_topic"], "sensor_msgs/JointState")
    for cam in p["cameras"].values():
        server.advertise(cam["topic"], "sensor_msgs/CompressedImage")
    server.on_publish(p["command_topic"], p["command_type"], lambda m, c: None)
    server.on_publish(p["gripper_topic"], "std_msgs/Float64", lambda m, c: None)
    server.add_service(p["reset_service"], "std_srvs/Trigger", lambda a: {"success": True})
    server.add_service(p["estop_service"], "std_srvs/SetBool", lambda a: {"success": True})
    names = p["joints"] + p["gripper_joints"]
    stop = threading.Event()

    jpeg = b"\xff\xd8\xff" + bytes(1000) + b"\xff\xd9"
    camera = p["cameras"]["front"]["topic"]

    def publish():
        while not stop.wait(0.02):
            q = np.linspace(-1, 1, len(names))
            server.publish(p["joint_state_topic"], messages.joint_state(names, q, time.time()))
            server.publish(camera, messages.compressed_image(jpeg, time.time(), "jpeg", "front"))

    with server:
        thread = threading.Thread(target=publish, name="rosbridge-test-publisher")
        thread.start()
        yield server.port
        stop.set()
        thread.join()


@pytest.fixture(scope="module")
def twin_serve():
    """`playworld twin serve --port 0` in its own process; yields the port it bound."""
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    cmd = [sys.executable, "-m", "playworld.cli", "twin", "serve", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        if "ws://127.0.0.1:" not in line:
            pytest.fail(f"twin serve did not start: {line}{proc.stderr.read()}")
        yield int(line.split("ws://127.0.0.1:")[1].split()[0])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize(
    "server", ["profile_server", pytest.param("twin_serve", marks=pytest.mark.slow)]
)
def test_roslibjs_rosapi_as_foxglove_asks(server, request):
    node = node_or_skip()
    out = run_client([node, str(HERE / "js" / "rosapi.mjs"), str(request.getfixturevalue(server))])
    raw = out["raw"]
    assert raw["type"] == "sensor_msgs/JointState"
    assert raw["text"] == msgdefs.full_text("sensor_msgs/JointState")
    assert raw["text"].startswith("# This is a message that holds data to describe the state")
    assert "\nMSG: std_msgs/Header\n" in raw["text"]
    assert out["topicType"] == "sensor_msgs/JointState"
    assert out["topics"]["topics"] == raw["topics"] and "/arm_controller/command" in raw["topics"]
    assert out["topicsForType"] == ["/joint_states"]
    # twin serve also offers the task referee, another std_srvs/Trigger
    referee = ["/playworld/task_success"] if server == "twin_serve" else []
    assert out["serviceType"] == "std_srvs/SetBool"
    assert sorted(out["servicesForType"]) == sorted(["/playworld/reset", *referee])
    assert "/rosapi/topics_and_raw_types" in out["services"]
    assert out["details"]["header"] == {"seq": "uint32", "stamp": "time", "frame_id": "string"}
    assert out["details"]["position"] == ["float64"]
    assert out["request"]["typedefs"][0]["fieldnames"] == ["data"]
    assert out["response"]["typedefs"][0]["fieldnames"] == ["success", "message"]
    assert {"/playworld", "/rosapi", "/rosbridge_websocket"} <= set(out["nodes"])
    assert "/joint_states" in out["nodeDetails"]["publishing"]
    assert "/arm_controller/command" in out["nodeDetails"]["subscribing"]
    assert out["actionServers"] == [] and out["paramsBefore"] == []
    assert out["paramValue"] == {"kp": 2.5} and out["paramsAfter"] == ["/playworld/gain"]
    assert out["paramsDeleted"] == [] and out["publishers"] == ["/playworld"]
    state = out["rawState"]  # ROS 1 wire bytes decoded in JavaScript
    assert state["left"] == 0 and state["name"][0] == "panda_joint1" and len(state["position"]) == 9
    assert abs(state["secs"] - time.time()) < 30 and abs(out["rawReceipt"] - time.time()) < 30
    fox = out["foxgloveState"]  # decoded by Foxglove's own ROS 1 reader
    assert fox["name"] == state["name"] and fox["position"] == state["position"]
    assert fox["stamp"]["sec"] == state["secs"]
    image = out["foxgloveImage"]
    assert image["format"] == "jpeg" and image["head"] == [255, 216, 255] and image["size"] > 500
