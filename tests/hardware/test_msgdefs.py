"""ROS 1 message definitions: texts, full texts, TypeDefs, checks and CBOR values."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest

from playworld.hardware.rosbridge import msgdefs
from playworld.hardware.rosbridge.msg_texts import MSGS

# Debian's genpy-generated classes (python3-sensor-msgs ...) carry `_full_text`, which is exactly
# what rosapi's topics_and_raw_types returns on a ROS 1 machine: the reference to match.
ORACLE = """
import importlib, json, sys
out = {}
for t in json.load(sys.stdin):
    pkg, name = t.split("/")
    try:
        cls = getattr(importlib.import_module(pkg + ".msg"), name)
    except (ImportError, AttributeError):
        continue
    out[t] = {"full": cls._full_text, "slots": list(cls.__slots__), "types": list(cls._slot_types)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def debian_classes():
    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        pytest.skip("Debian's /usr/bin/python3 is missing")
    proc = subprocess.run(
        [python, "-c", ORACLE], input=json.dumps(sorted(MSGS)), capture_output=True, text=True
    )
    found = json.loads(proc.stdout or "{}")
    if not found:
        pytest.skip(
            "Debian's ROS message classes are not installed (apt-get install python3-sensor-msgs ...)"
        )
    return found


def test_full_texts_match_debian_ros1_classes(debian_classes):
    assert len(debian_classes) == len(MSGS), sorted(set(MSGS) - set(debian_classes))
    for msg_type, ref in debian_classes.items():
        assert msgdefs.full_text(msg_type) == ref["full"], msg_type
        fields = msgdefs.spec(msg_type).fields
        assert [f.name for f in fields] == ref["slots"], msg_type


def test_joint_state_definition_and_dependencies():
    text = msgdefs.full_text("sensor_msgs/JointState")
    assert text.startswith("# This is a message that holds data to describe the state")
    assert "float64[] position\n" in text and "\nMSG: std_msgs/Header\n" in text
    assert msgdefs.dependencies("trajectory_msgs/JointTrajectory") == [
        "std_msgs/Header",
        "trajectory_msgs/JointTrajectoryPoint",
    ]
    assert msgdefs.dependencies("std_msgs/Float64MultiArray") == [
        "std_msgs/MultiArrayLayout",
        "std_msgs/MultiArrayDimension",
    ]
    assert msgdefs.full_text("std_msgs/Float64") == "float64 data"


def test_typedefs_as_rosapi_message_details():
    defs = msgdefs.typedefs("sensor_msgs/JointState")
    assert [d["type"] for d in defs] == ["sensor_msgs/JointState", "std_msgs/Header", "time"]
    top = defs[0]
    assert top["fieldnames"] == ["header", "name", "position", "velocity", "effort"]
    assert top["fieldtypes"] == ["std_msgs/Header", "string", "float64", "float64", "float64"]
    assert top["fieldarraylen"] == [-1, 0, 0, 0, 0]
    assert top["examples"] == ["{}", "[]", "[]", "[]", "[]"]
    assert defs[2]["fieldnames"] == ["secs", "nsecs"]
    request = msgdefs.service_typedefs("std_srvs/SetBool", "request")
    assert request[0]["type"] == "std_srvs/SetBoolRequest" and request[0]["fieldnames"] == ["data"]
    response = msgdefs.service_typedefs("std_srvs/Trigger", "response")
    assert response[0]["fieldnames"] == ["success", "message"]


def test_conform_fills_defaults_and_refuses_mismatches():
    msg = msgdefs.conform({"position": [1.0, 2]}, "sensor_msgs/JointState")
    assert msg["position"] == [1.0, 2] and msg["name"] == [] and msg["effort"] == []
    assert msg["header"] == {"seq": 0, "stamp": {"secs": 0, "nsecs": 0}, "frame_id": ""}
    assert msgdefs.conform({"x": 1}, "my_pkg/Unknown") == {"x": 1}  # relayed as is
    for bad, match in [
        ({"data": "1.5"}, "expected data as float64"),
        ({"dat": 1.5}, "has no field dat"),
        ({"data": True}, "expected data as float64"),
    ]:
        with pytest.raises(ValueError, match=match):
            msgdefs.conform(bad, "std_msgs/Float64")
    with pytest.raises(ValueError, match="header.stamp"):
        msgdefs.conform({"header": {"stamp": 5}}, "sensor_msgs/JointState")
    with pytest.raises(ValueError, match="base64"):
        msgdefs.conform({"data": "not base64!"}, "sensor_msgs/CompressedImage")


def test_cbor_values_pack_arrays_as_rosbridge_does():
    import base64

    cbor2 = pytest.importorskip(
        "cbor2", reason="cbor2 not installed (pip install 'playworld[ros]')"
    )
    msg = {"format": "jpeg", "data": base64.b64encode(b"\xff\xd8abc").decode()}
    values = msgdefs.cbor_values(msg, "sensor_msgs/CompressedImage")
    assert values["data"] == b"\xff\xd8abc"
    state = msgdefs.cbor_values({"position": [1.5, -2.0], "name": ["a"]}, "sensor_msgs/JointState")
    assert state["position"].tag == 86 and len(state["position"].value) == 16
    decoded = cbor2.loads(cbor2.dumps(state))  # Python's cbor2 leaves typed arrays as tags
    assert decoded["position"].tag == 86
    assert struct.unpack("<2d", decoded["position"].value) == (1.5, -2.0)


WIRE_ORACLE = """
import importlib, json, sys
out = []
for msg_type, hexed in json.load(sys.stdin):
    pkg, name = msg_type.split("/")
    cls = getattr(importlib.import_module(pkg + ".msg"), name)
    m = cls().deserialize(bytes.fromhex(hexed))
    buf = __import__("io").BytesIO()
    m.serialize(buf)
    out.append({"same": buf.getvalue().hex() == hexed, "text": str(m)})
print(json.dumps(out))
"""


def test_ros1_wire_bytes_read_back_by_debian_genpy(debian_classes):
    """Our cbor-raw bytes, deserialized and re-serialized by ROS 1's own generated classes."""
    from playworld.hardware.rosbridge import messages, ros1_wire

    names = ["panda_joint1", "panda_joint2"]
    cases = [
        ("sensor_msgs/JointState", messages.joint_state(names, [0.5, -1.25], 12.5, [0.1, 0.2])),
        (
            "sensor_msgs/CompressedImage",
            messages.compressed_image(b"\xff\xd8xyz", 3.0, "jpeg", "f"),
        ),
        (
            "trajectory_msgs/JointTrajectory",
            messages.joint_command("trajectory_msgs/JointTrajectory", names, [0.1, 0.2], 0.5),
        ),
        (
            "std_msgs/Float64MultiArray",
            {"layout": {"dim": [{"label": "q", "size": 2, "stride": 2}]}, "data": [0.1, None]},
        ),
        ("std_msgs/Float64", {"data": -2.5}),
        (
            "geometry_msgs/TransformStamped",
            {
                "child_frame_id": "hand",
                "transform": {"translation": {"x": 1.0}, "rotation": {"w": 1.0}},
            },
        ),
        ("sensor_msgs/CameraInfo", {"height": 480, "width": 640, "K": [1.0] * 9, "D": [0.5]}),
        ("std_msgs/Bool", {"data": True}),
    ]
    payload = [(t, ros1_wire.serialize(m, t).hex()) for t, m in cases]
    proc = subprocess.run(
        ["/usr/bin/python3", "-c", WIRE_ORACLE],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert all(r["same"] for r in results), results
    state, image, trajectory, multi = (r["text"] for r in results[:4])
    assert "position: [0.5, -1.25]" in state and "secs: 12" in state and "nsecs: 500000000" in state
    assert "jpeg" in image and 'frame_id: "f"' in image
    assert "time_from_start" in trajectory and "nsecs: 500000000" in trajectory
    assert "data: [0.1, nan]" in multi and 'label: "q"' in multi
    assert 'child_frame_id: "hand"' in results[5]["text"] and "w: 1.0" in results[5]["text"]
    assert "height: 480" in results[6]["text"] and "D: [0.5]" in results[6]["text"]
    assert "data: True" in results[7]["text"]
