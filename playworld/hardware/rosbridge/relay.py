"""The subscriber side of the rosbridge relay: per-subscription pacing, queueing and encoding.

One published message (`Outgoing`) is encoded at most once per wire format, however many clients
receive it. Each client's subscription to a topic (`Subscription`) merges that client's
subscribe requests as rosbridge_library does (`capabilities/subscribe.py`): the lowest
`throttle_rate`, the lowest `queue_length`, the lowest `fragment_size` (applied to JSON; binary
CBOR frames go whole), and the strongest compression asked for (none < cbor < cbor-raw; "png"
is answered with a warning and JSON). Pacing follows rosbridge's
`subscription_modifiers.py`:

    throttle_rate 0                    every message, at once
    throttle_rate T, queue_length 0    a message only if T ms passed since the last one sent
    throttle_rate T, queue_length N    the newest N wait in a queue; one leaves every T ms

Everything here runs in the server's asyncio loop thread.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playworld.hardware.rosbridge import msgdefs

COMPRESSIONS = ("none", "cbor", "cbor-raw")  # weakest first; "png" is answered with a warning
_fragment_ids = itertools.count(1)


class ProtocolError(ValueError):
    """A client message breaks the protocol; sent back to that client as a status error."""


class ProtocolWarning(Exception):
    """A client message is dropped with a status warning (rosbridge's level for misuse)."""


def resolve(name: str) -> str:
    """A topic or service name in the root namespace: "chatter" -> "/chatter"."""
    return name if name.startswith("/") else "/" + name


def canonical_type(msg_type: str) -> str:
    """ROS 2 spellings ("std_msgs/msg/String") as ROS 1 ones ("std_msgs/String")."""
    parts = msg_type.split("/")
    return f"{parts[0]}/{parts[2]}" if len(parts) == 3 and parts[1] in ("msg", "srv") else msg_type


@dataclass(frozen=True)
class SubOptions:
    """One subscribe request: throttle (s), queue length, fragment size (chars), compression."""

    throttle: float = 0.0
    queue_length: int = 0
    fragment_size: int | None = None
    compression: str = "none"


def subscribe_options(topic: str, m: dict[str, Any]) -> SubOptions:
    """The options of a subscribe op; a bad value raises ProtocolError naming it."""

    def number(name: str, kind: Any, low: float, default: Any) -> Any:
        value = m.get(name)
        if value is None:
            return default
        if not isinstance(value, kind) or isinstance(value, bool) or value < low:
            raise ProtocolError(f"subscribe {topic}: expected {name} >= {low:g}, found {value!r}")
        return value

    throttle = number("throttle_rate", int | float, 0, 0) / 1000.0
    queue_length = number("queue_length", int, 0, 0)
    fragment_size = number("fragment_size", int, 1, None)
    compression = m.get("compression") or "none"
    if compression == "png":  # PNG-packed JSON: roslibjs reads it, but it only costs CPU here
        compression = "none"
    if compression not in COMPRESSIONS:
        raise ProtocolError(
            f"subscribe {topic}: expected compression among {list(COMPRESSIONS)}, "
            f"found {compression!r}"
        )
    if compression != "none":
        try:
            import cbor2  # noqa: F401
        except ImportError:
            raise ProtocolError(
                f"subscribe {topic}: {compression} needs cbor2 on the server "
                "(pip install 'playworld[ros]')"
            ) from None
    return SubOptions(throttle, queue_length, fragment_size, compression)


class Outgoing:
    """A message on its way to subscribers; each wire format is built once and then reused."""

    def __init__(self, topic: str, msg: dict[str, Any], msg_type: str | None, text: str = ""):
        self.topic, self.msg, self.msg_type = topic, msg, msg_type
        self.stamp = time.time()  # receipt time: cbor-raw carries it as {secs, nsecs}
        self._cache: dict[tuple[str, str], str | bytes] = {}
        if text:
            self._cache[("none", topic)] = text

    def encode(self, compression: str, topic: str) -> str | bytes:
        """The publish op for a subscriber who spells the topic `topic`."""
        key = (compression, topic)
        if key not in self._cache:
            self._cache[key] = _ENCODERS[compression](self, topic)
        return self._cache[key]


def _json(out: Outgoing, topic: str) -> str:
    return json.dumps({"op": "publish", "topic": topic, "msg": out.msg}, separators=(",", ":"))


def _cbor(out: Outgoing, topic: str) -> bytes:
    import cbor2

    msg = msgdefs.cbor_values(out.msg, out.msg_type) if out.msg_type else out.msg
    return cbor2.dumps({"op": "publish", "topic": topic, "msg": msg})


def _cbor_raw(out: Outgoing, topic: str) -> bytes:
    import cbor2

    from playworld.hardware.rosbridge import ros1_wire

    secs, nsecs = divmod(int(out.stamp * 1e9), 1_000_000_000)
    raw = ros1_wire.serialize(out.msg, out.msg_type or "")
    return cbor2.dumps(
        {"op": "publish", "topic": topic, "msg": {"secs": secs, "nsecs": nsecs, "bytes": raw}}
    )


_ENCODERS: dict[str, Callable[[Outgoing, str], str | bytes]] = {
    "none": _json,
    "cbor": _cbor,
    "cbor-raw": _cbor_raw,
}


def fragments(text: str, size: int) -> list[str]:
    """`text` (one JSON op) as rosbridge `fragment` ops of at most `size` characters of data."""
    if len(text) <= size:
        return [text]
    mid = f"fragment:{next(_fragment_ids)}"
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    return [
        json.dumps(
            {"op": "fragment", "id": mid, "data": p, "num": i, "total": len(parts)},
            separators=(",", ":"),
        )
        for i, p in enumerate(parts)
    ]


class Subscription:
    """One client's subscription to one topic (all its subscribe ids), paced and encoded."""

    def __init__(self, topic: str, send: Callable[[str | bytes], None]) -> None:
        self.topic = topic  # as this client spells it, echoed in every publish op
        self.send = send
        self.requests: dict[str, SubOptions] = {}
        self.options = SubOptions()
        self.last_sent = -1e9  # monotonic s
        self.queue: deque[Outgoing] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, sid: str, options: SubOptions) -> None:
        self.requests[sid] = options
        self._merge()

    def remove(self, sid: str | None) -> bool:
        """Drop one subscribe id (all when None); True when none is left."""
        if sid is None:
            self.requests.clear()
        else:
            self.requests.pop(sid, None)
        if self.requests:
            self._merge()
        else:
            self.close()
        return not self.requests

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.queue.clear()

    def _merge(self) -> None:
        reqs = list(self.requests.values())
        sizes = [r.fragment_size for r in reqs if r.fragment_size]
        self.options = SubOptions(
            throttle=min(r.throttle for r in reqs),
            queue_length=min(r.queue_length for r in reqs),
            fragment_size=min(sizes) if sizes else None,
            compression=max((r.compression for r in reqs), key=COMPRESSIONS.index),
        )
        ql = self.options.queue_length
        while ql and len(self.queue) > ql:
            self.queue.popleft()

    def offer(self, out: Outgoing) -> None:
        """Pass `out` on now, later, or never, per throttle_rate and queue_length."""
        opts, now = self.options, time.monotonic()
        if opts.throttle <= 0:
            self._deliver(out, now)
        elif opts.queue_length <= 0:
            if now - self.last_sent >= opts.throttle:
                self._deliver(out, now)
        else:
            self.queue.append(out)
            while len(self.queue) > opts.queue_length:  # full: the oldest makes room
                self.queue.popleft()
            self._schedule(now)

    def _schedule(self, now: float) -> None:
        if self._timer is not None or not self.queue:
            return
        wait = self.last_sent + self.options.throttle - now
        if wait <= 0:
            self._deliver(self.queue.popleft(), now)
            wait = self.options.throttle
            if not self.queue:
                return
        self._timer = asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self.queue:
            self._deliver(self.queue.popleft(), time.monotonic())
        if self.queue:
            self._timer = asyncio.get_running_loop().call_later(self.options.throttle, self._flush)

    def _deliver(self, out: Outgoing, now: float) -> None:
        self.last_sent = now
        compression = self.options.compression
        if compression == "cbor-raw" and not msgdefs.known(out.msg_type or ""):
            compression = "cbor"  # no wire layout known for this type: plain CBOR instead
        payload = out.encode(compression, self.topic)
        size = self.options.fragment_size
        if size and isinstance(payload, str) and len(payload) > size:
            for part in fragments(payload, size):
                self.send(part)
        else:
            self.send(payload)
