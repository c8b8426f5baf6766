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
