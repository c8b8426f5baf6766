"""ROS 1 binary serialization of rosbridge JSON messages (for `compression: "cbor-raw"`).

The layout of ROS 1's TCPROS and bag files (wiki.ros.org/msg, "Serialization"): fields in
definition order, little-endian, no padding; strings and variable-length arrays carry a uint32
length first; `time` is (uint32 secs, uint32 nsecs), `duration` (int32, int32). Foxglove's
rosbridge connection subscribes with cbor-raw and decodes these bytes with the definitions from
rosapi's `topics_and_raw_types`, so the two must agree (both come from `msgdefs`).

    serialize({"data": 1.5}, "std_msgs/Float64") -> b"\\x00\\x00\\x00\\x00\\x00\\x00\\xf8?"

Missing fields take their defaults; JSON null in a float field is NaN.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from playworld.hardware.rosbridge import msgdefs

CODES = {
    "bool": "?",
    "byte": "b",
    "char": "B",
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
NAN = float("nan")


def serialize(msg: dict[str, Any], msg_type: str) -> bytes:
    """`msg` of a type `msgdefs` knows, as ROS 1 wire bytes; KeyError for an unknown type."""
    buf = bytearray()
    _message(buf, msg, msg_type)
    return bytes(buf)


def _message(buf: bytearray, msg: Any, msg_type: str) -> None:
    msg = msg if isinstance(msg, dict) else {}
    for f in msgdefs.spec(msg_type).fields:
        value = msg.get(f.name)
        if f.array < 0:
            _scalar(buf, value, f)
            continue
        if value is None:
            value = msgdefs.default(f)
        if f.type in msgdefs.BYTES:
            raw = base64.b64decode(value) if isinstance(value, str) else bytes(value)
            if f.array == 0:
                buf += struct.pack("<I", len(raw))
            buf += raw
            continue
        if f.array == 0:
            buf += struct.pack("<I", len(value))
        if f.type in CODES:
            values = [NAN if v is None else v for v in value]
            buf += struct.pack(f"<{len(values)}{CODES[f.type]}", *values)
        else:
            one = f._replace(array=-1)
            for v in value:
                _scalar(buf, v, one)


def _scalar(buf: bytearray, value: Any, f: msgdefs.Field) -> None:
    if f.type in CODES:
        if value is None:
            value = NAN if f.type in msgdefs.FLOATS else msgdefs.default(f)
        buf += struct.pack("<" + CODES[f.type], value)
    elif f.type == "string":
        raw = (value or "").encode()
        buf += struct.pack("<I", len(raw)) + raw
    elif f.type in msgdefs.SPECIALS:
        t = value if isinstance(value, dict) else {}
        secs, nsecs = t.get("secs", t.get("sec", 0)), t.get("nsecs", t.get("nanosec", 0))
        buf += struct.pack("<II" if f.type == "time" else "<ii", secs, nsecs)
    else:
        _message(buf, value, f.type)
