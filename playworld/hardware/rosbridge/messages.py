"""ROS message dicts as rosbridge sends them (JSON), built and parsed as pure functions.

    joint_state(names, q, stamp)            sensor_msgs/JointState
    compressed_image(jpeg_bytes, stamp)     sensor_msgs/CompressedImage (data base64, as rosbridge)
    joint_command(kind, names, q)           trajectory_msgs/JointTrajectory | std_msgs/Float64MultiArray
    parse_joint_command(kind, msg, names)   -> q (n,) float64 in `names` order

Stamps are ROS 1 style `{secs, nsecs}`; `stamp_to_float` also reads ROS 2 `{sec, nanosec}`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def stamp(t: float) -> dict[str, int]:
    """{secs, nsecs} of a time in seconds."""
    secs = math.floor(t)
    return {"secs": int(secs), "nsecs": int(round((t - secs) * 1e9)) % 1_000_000_000}


def stamp_to_float(s: dict[str, Any]) -> float:
    """Seconds of a ROS 1 `{secs, nsecs}` or ROS 2 `{sec, nanosec}` stamp."""
    secs = s.get("secs", s.get("sec", 0))
    nsecs = s.get("nsecs", s.get("nanosec", 0))
    return float(secs) + float(nsecs) * 1e-9


def header(t: float, frame_id: str = "") -> dict[str, Any]:
    return {"stamp": stamp(t), "frame_id": frame_id}


def joint_state(names: Sequence[str], q: np.ndarray, t: float, velocity=None) -> dict[str, Any]:
    """sensor_msgs/JointState with positions (rad or m) and optional velocities."""
    return {
        "header": header(t),
        "name": list(names),
        "position": [float(x) for x in q],
        "velocity": [] if velocity is None else [float(x) for x in velocity],
        "effort": [],
    }


def parse_joint_state(msg: dict[str, Any], names: Sequence[str]) -> tuple[np.ndarray, float]:
    """Positions (len(names),) in `names` order and the stamp (s) of a JointState message.

    Extra joints are ignored; a missing joint raises `ValueError` naming it.
    """
    index = {n: i for i, n in enumerate(msg.get("name", []))}
    position = msg.get("position", [])
    missing = [n for n in names if n not in index or index[n] >= len(position)]
    if missing:
        raise ValueError(f"expected joints {list(names)} in JointState, found {missing} missing")
    q = np.array([float(position[index[n]]) for n in names])
    return q, stamp_to_float(msg.get("header", {}).get("stamp", {}))


def parse_joint_velocity(msg: dict[str, Any], names: Sequence[str]) -> np.ndarray | None:
    """Velocities (len(names),) in `names` order, or None when the JointState carries none
    (`velocity` is optional in ROS: empty, or shorter than `name`)."""
    velocity = msg.get("velocity") or []
    index = {n: i for i, n in enumerate(msg.get("name", []))}
    if any(n not in index or index[n] >= len(velocity) for n in names):
        return None
    return np.array([float(velocity[index[n]]) for n in names])


def compressed_image(data: bytes, t: float, fmt: str = "jpeg", frame_id: str = "") -> dict:
    """sensor_msgs/CompressedImage; `data` travels base64-encoded as rosbridge sends uint8[]."""
    return {
        "header": header(t, frame_id),
        "format": fmt,
        "data": base64.b64encode(data).decode("ascii"),
    }


def parse_compressed_image(msg: dict[str, Any]) -> tuple[bytes, float]:
    """Encoded bytes and stamp (s); `data` may be base64 text or a list of ints."""
    data = msg.get("data", "")
    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
    return raw, stamp_to_float(msg.get("header", {}).get("stamp", {}))


def _trajectory(names: Sequence[str], q: np.ndarray, t: float) -> dict[str, Any]:
    return {
        "header": header(0.0),
        "joint_names": list(names),
        "points": [
            {
                "positions": [float(x) for x in q],
                "velocities": [],
                "accelerations": [],
                "effort": [],
                "time_from_start": stamp(t),
            }
        ],
    }


def _parse_trajectory(msg: dict[str, Any], names: Sequence[str]) -> np.ndarray:
    points = msg.get("points") or []
    if not points:
        raise ValueError("expected a JointTrajectory with at least one point, found none")
    joint_names = msg.get("joint_names") or list(names)
    positions = points[-1].get("positions", [])
    if len(positions) != len(joint_names):
        raise ValueError(
            f"expected {len(joint_names)} positions in the trajectory point, found {len(positions)}"
        )
    given = dict(zip(joint_names, positions, strict=True))
    missing = [n for n in names if n not in given]
    if missing:
        raise ValueError(f"expected joints {list(names)}, found {missing} missing")
    return np.array([_number(given[n]) for n in names])


def _multiarray(names: Sequence[str], q: np.ndarray, t: float) -> dict[str, Any]:
    return {"layout": {"dim": [], "data_offset": 0}, "data": [float(x) for x in q]}


def _parse_multiarray(msg: dict[str, Any], names: Sequence[str]) -> np.ndarray:
    data = msg.get("data", [])
    if len(data) != len(names):
        raise ValueError(f"expected {len(names)} values in Float64MultiArray, found {len(data)}")
    return np.array([_number(x) for x in data])


def _number(x: Any) -> float:
    # JSON has no NaN: rosbridge clients send null (or the non-standard NaN literal) for it.
    return float("nan") if x is None else float(x)


#: Command message type -> (build(names, q, duration_s), parse(msg, names) -> q).
COMMAND_TYPES: dict[str, tuple[Callable[..., dict], Callable[..., np.ndarray]]] = {
    "trajectory_msgs/JointTrajectory": (_trajectory, _parse_trajectory),
    "std_msgs/Float64MultiArray": (_multiarray, _parse_multiarray),
}


def joint_command(msg_type: str, names: Sequence[str], q: np.ndarray, t: float = 0.1) -> dict:
    """A joint position command of `msg_type` reaching `q` (n,) in `t` seconds."""
    return COMMAND_TYPES[msg_type][0](names, q, t)


def stop_command(msg_type: str, names: Sequence[str]) -> dict[str, Any] | None:
    """The message that stops the arm where it is now, or None where `msg_type` has none.

    An empty JointTrajectory: ros_control's joint_trajectory_controller (and `twin serve`)
    holds the current position on one. Float64MultiArray position streams have no such message.
    """
    if msg_type == "trajectory_msgs/JointTrajectory":
        return {"header": header(0.0), "joint_names": list(names), "points": []}
    return None


def is_stop_command(msg_type: str, msg: dict[str, Any]) -> bool:
    """Whether `msg` is `msg_type`'s stop message (see `stop_command`)."""
    return msg_type == "trajectory_msgs/JointTrajectory" and not msg.get("points")


def parse_joint_command(msg_type: str, msg: dict[str, Any], names: Sequence[str]) -> np.ndarray:
    """Joint targets (n,) in `names` order from a command message; bad messages raise ValueError."""
    return COMMAND_TYPES[msg_type][1](msg, names)


def pose_array(poses: np.ndarray, t: float, frame_id: str = "world") -> dict[str, Any]:
    """geometry_msgs/PoseArray from poses (K, 7) x y z qw qx qy qz; a row with NaN (not
    detected) travels as an all-zero pose (a zero quaternion is no rotation: the mark of absence)."""
    out = []
    for p in np.asarray(poses, float):
        if not np.all(np.isfinite(p)):
            p = np.zeros(7)
        out.append(
            {
                "position": {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])},
                "orientation": {
                    "x": float(p[4]),
                    "y": float(p[5]),
                    "z": float(p[6]),
                    "w": float(p[3]),
                },
            }
        )
    return {"header": header(t, frame_id), "poses": out}


def parse_pose_array(msg: dict[str, Any], count: int) -> tuple[np.ndarray, float]:
    """Poses (count, 7) float64 (NaN rows: not detected) and the stamp (s) of a PoseArray."""
    poses = msg.get("poses")
    if not isinstance(poses, list) or len(poses) != count:
        found = len(poses) if isinstance(poses, list) else type(poses).__name__
        raise ValueError(f"expected a PoseArray of {count} poses, found {found}")
    out = np.empty((count, 7))
    for i, p in enumerate(poses):
        pos, q = p.get("position", {}), p.get("orientation", {})
        out[i] = [_number(pos.get(k, 0.0)) for k in "xyz"] + [
            _number(q.get(k, 0.0)) for k in "wxyz"
        ]
        if not np.linalg.norm(out[i, 3:]) > 0:
            out[i] = np.nan
    return out, stamp_to_float(msg.get("header", {}).get("stamp", {}))
