"""ROS 1 message definitions as rosbridge and rosapi use them, from the texts in `msg_texts`.

    spec("sensor_msgs/JointState")      -> MsgSpec(fields, constants)
    full_text("sensor_msgs/JointState") -> the definition with its dependencies, as genpy's
                                           `_full_text` and `gendeps --cat` write it
    typedefs("sensor_msgs/JointState")  -> rosapi TypeDef dicts, this type first (message_details)
    conform(msg, "std_msgs/Float64")    -> msg checked and completed with defaults (rosbridge's
                                           populate_instance); a mismatch raises ValueError
    cbor_values(msg, type)              -> msg with byte arrays as bytes and numeric arrays as
                                           RFC 8746 typed-array tags (rosbridge's CBOR encoding)

Types without a definition here are relayed untouched (`known(type)` is False).
"""

from __future__ import annotations

import base64
import binascii
import functools
import struct
from typing import Any, NamedTuple

from playworld.hardware.rosbridge.msg_texts import MSGS, SRVS

INTS = {"byte", "char", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
FLOATS = {"float32", "float64"}
ATOMICS = INTS | FLOATS | {"bool", "string"}
SPECIALS = {"time", "duration"}  # builtin {secs, nsecs} pairs
BYTES = {"uint8", "char"}  # arrays of these travel as base64 text (JSON) or bytes (CBOR)
#: element type -> (typed-array tag, struct format), little-endian as rosbridge packs them.
TYPED_ARRAYS = {
    "uint16": (69, "<{}H"),
    "uint32": (70, "<{}I"),
    "uint64": (71, "<{}Q"),
    "byte": (72, "{}b"),
    "int8": (72, "{}b"),
    "int16": (77, "<{}h"),
    "int32": (78, "<{}i"),
    "int64": (79, "<{}q"),
    "float32": (85, "<{}f"),
    "float64": (86, "<{}d"),
}
SEPARATOR = "=" * 80 + "\n"


class Field(NamedTuple):
    """One field: `type` fully qualified ("std_msgs/Header", "float64", "time"); `array` -1 for a
    scalar, 0 for a variable-length array, n for a fixed array of n."""

    type: str
    name: str
    array: int


class MsgSpec(NamedTuple):
    type: str
    fields: tuple[Field, ...]
    constants: tuple[tuple[str, str, str], ...]  # (type, name, value text)


def known(msg_type: str) -> bool:
    return msg_type in MSGS


def known_types() -> list[str]:
    return sorted(MSGS)


@functools.cache
def spec(msg_type: str) -> MsgSpec:
    """The parsed definition of `msg_type`; an unknown type raises KeyError naming the known ones."""
    if msg_type not in MSGS:
        raise KeyError(f"expected a message type among {known_types()}, found {msg_type!r}")
    return _parse(msg_type, MSGS[msg_type])


def _parse(msg_type: str, text: str) -> MsgSpec:
    package = msg_type.split("/")[0]
    fields, constants = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        type_text, rest = line.split(None, 1)
        if "=" in rest.split("#", 1)[0]:  # a constant; string constants keep the whole line
            name, value = rest.split("=", 1)
            if type_text != "string":
                value = value.split("#", 1)[0]
            constants.append((type_text, name.strip(), value.strip()))
            continue
        name = rest.split("#", 1)[0].strip()
        base, array = type_text, -1
        if type_text.endswith("]"):
            base, size = type_text[:-1].split("[")
            array = int(size) if size else 0
        fields.append(Field(_resolve(base, package), name, array))
    return MsgSpec(msg_type, tuple(fields), tuple(constants))


def _resolve(base: str, package: str) -> str:
    if base in ATOMICS or base in SPECIALS:
        return base
    if base == "Header":
        return "std_msgs/Header"
    return base if "/" in base else f"{package}/{base}"


def _embedded(msg_type: str) -> list[str]:
    """Direct message-type dependencies in field order, each once (genmsg's `get_depends`)."""
    out: list[str] = []
    for f in spec(msg_type).fields:
        if f.type not in ATOMICS and f.type not in SPECIALS and f.type not in out:
            out.append(f.type)
    return out


def dependencies(msg_type: str) -> list[str]:
    """Every embedded type, depth first, each once (the order `gendeps --cat` prints them)."""
    out: list[str] = []
    for d in _embedded(msg_type):
        for t in [d, *dependencies(d)]:
            if t not in out:
                out.append(t)
    return out


@functools.cache
def full_text(msg_type: str) -> str:
    """The definition of `msg_type` followed by `MSG: <type>` sections for its dependencies."""
    parts = [MSGS[msg_type] + "\n"]
    parts += [f"{SEPARATOR}MSG: {d}\n{MSGS[d]}\n" for d in dependencies(msg_type)]
    return "".join(parts)[:-1]


# -- rosapi TypeDefs ---------------------------------------------------------------------------
def _example(f: Field) -> str:
    if f.array >= 0:
        return "[]"
    if f.type in INTS:
        return "0"
    if f.type in FLOATS:
        return "0.0"
    if f.type == "bool":
        return "False"
    return "" if f.type == "string" else "{}"


def typedef(msg_type: str) -> dict[str, Any]:
    """rosapi/TypeDef of one type (time and duration as {secs, nsecs} int32 pairs)."""
    if msg_type in SPECIALS:
        pair = (Field("int32", "secs", -1), Field("int32", "nsecs", -1))
        return _typedef(MsgSpec(msg_type, pair, ()))
    return _typedef(spec(msg_type))


def _typedef(parsed: MsgSpec) -> dict[str, Any]:
    fields = parsed.fields
    consts = sorted((name, value) for _, name, value in parsed.constants)  # rosapi sorts by name
    return {
        "type": parsed.type,
        "fieldnames": [f.name for f in fields],
        "fieldtypes": [f.type for f in fields],
        "fieldarraylen": [f.array for f in fields],
        "examples": [_example(f) for f in fields],
        "constnames": [n for n, _ in consts],
        "constvalues": [v for _, v in consts],
    }


def typedefs(msg_type: str, seen: set[str] | None = None) -> list[dict[str, Any]]:
    """TypeDefs of `msg_type` and every type inside it, depth first (rosapi message_details)."""
    seen = set() if seen is None else seen
    if msg_type in seen or msg_type in ATOMICS:
        return []
    seen.add(msg_type)
    out = [typedef(msg_type)]
    for f in out[0]["fieldtypes"]:
        out += typedefs(f, seen)
    return out


def service_typedefs(srv_type: str, part: str) -> list[dict[str, Any]]:
    """TypeDefs of a service's request or response (`part`), named `<srv>Request`/`Response`."""
    if srv_type not in SRVS:
        raise KeyError(f"expected a service type among {sorted(SRVS)}, found {srv_type!r}")
    request, response = SRVS[srv_type].split("---\n", 1)
    name = f"{srv_type}{part.capitalize()}"
    parsed = _parse(name, request if part == "request" else response)
    top = _typedef(parsed)
    seen: set[str] = {name}
    out = [top]
    for f in top["fieldtypes"]:
        out += typedefs(f, seen)
    return out


# -- checking and completing published messages -------------------------------------------------
def default(f: Field) -> Any:
    if f.array > 0:
        return [default(f._replace(array=-1)) for _ in range(f.array)]
    if f.array == 0:
        return []
    if f.type in INTS:
        return 0
    if f.type in FLOATS:
        return 0.0
    if f.type == "bool":
        return False
    if f.type == "string":
        return ""
    if f.type in SPECIALS:
        return {"secs": 0, "nsecs": 0}
    return {g.name: default(g) for g in spec(f.type).fields}


def conform(msg: Any, msg_type: str, where: str = "") -> dict[str, Any]:
    """`msg` checked against `msg_type` with missing fields set to their defaults.

    Raises ValueError naming the field path for unknown fields and wrong JSON types (as
    rosbridge refuses a publish that does not fit the topic's type). Unknown types pass as is.
    """
    if not known(msg_type):
        return msg
    if not isinstance(msg, dict):
        raise ValueError(f"expected {where or 'the message'} as a {msg_type} object, found {msg!r}")
    fields = {f.name: f for f in spec(msg_type).fields}
    extra = sorted(set(msg) - set(fields))
    if extra:
        raise ValueError(
            f"{msg_type} has no field {where}{extra[0]}; its fields are {list(fields)}"
        )
    return {
        name: _value(msg[name], f, f"{where}{name}") if name in msg else default(f)
        for name, f in fields.items()
    }


def _value(value: Any, f: Field, where: str) -> Any:
    if f.array >= 0:
        if f.type in BYTES and isinstance(value, str):
            _b64(value, where)
            return value
        if not isinstance(value, list):
            raise ValueError(f"expected {where} as an array of {f.type}, found {value!r:.60}")
        if f.array > 0 and len(value) != f.array:
            raise ValueError(f"expected {where} with {f.array} elements, found {len(value)}")
        scalar = f._replace(array=-1)
        return [_value(v, scalar, f"{where}[{i}]") for i, v in enumerate(value)]
    if f.type in INTS:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif f.type in FLOATS:  # null stands for NaN, which JSON cannot spell
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    elif f.type == "bool":
        ok = isinstance(value, bool)
    elif f.type == "string":
        ok = isinstance(value, str)
    elif f.type in SPECIALS:
        return _time(value, f.type, where)
    else:
        return conform(value, f.type, where + ".")
    if not ok:
        raise ValueError(f"expected {where} as {f.type}, found {value!r:.60}")
    return value


def _time(value: Any, kind: str, where: str) -> dict[str, int]:
    if isinstance(value, dict):  # ROS 1 {secs, nsecs}; ROS 2 clients send {sec, nanosec}
        secs, nsecs = (
            value.get("secs", value.get("sec", 0)),
            value.get("nsecs", value.get("nanosec", 0)),
        )
        if isinstance(secs, int) and isinstance(nsecs, int):
            return {"secs": secs, "nsecs": nsecs}
    raise ValueError(f"expected {where} as a {kind} {{secs, nsecs}}, found {value!r:.60}")


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"expected {where} as base64 text or an array of ints") from None


# -- CBOR ----------------------------------------------------------------------------------------
def cbor_values(msg: Any, msg_type: str) -> Any:
    """`msg` ready for `cbor2.dumps`: uint8[]/char[] as bytes, numeric arrays as typed arrays."""
    if not known(msg_type) or not isinstance(msg, dict):
        return msg
    from cbor2 import CBORTag

    out = dict(msg)
    for f in spec(msg_type).fields:
        value = msg.get(f.name)
        if value is None:
            continue
        if f.array < 0:
            if f.type in MSGS:
                out[f.name] = cbor_values(value, f.type)
        elif f.type in BYTES:
            out[f.name] = base64.b64decode(value) if isinstance(value, str) else bytes(value)
        elif f.type in TYPED_ARRAYS and isinstance(value, list) and None not in value:
            tag, fmt = TYPED_ARRAYS[f.type]
            out[f.name] = CBORTag(tag, struct.pack(fmt.format(len(value)), *value))
        elif f.type in MSGS and isinstance(value, list):
            out[f.name] = [cbor_values(v, f.type) for v in value]
    return out
