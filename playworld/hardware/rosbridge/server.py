"""A rosbridge v2 protocol server (JSON over websocket) with no ROS underneath.

Follows `ROSBRIDGE_PROTOCOL.md` of RobotWebTools/rosbridge_suite for the ops advertise,
unadvertise, publish, subscribe (with throttle_rate), unsubscribe, call_service,
advertise_service, unadvertise_service, service_response and status. Clients talk to each other
(a roslibpy publisher and a roslibjs subscriber) and to this process, which publishes topics and
offers services of its own (`publish`, `on_publish`, `add_service`); it also answers
`/rosapi/get_time`, `/rosapi/topics` and `/rosapi/services` like rosapi does.

    with RosBridgeServer(port=9090) as server:         # 127.0.0.1 unless host= says otherwise
        server.advertise("/joint_states", "sensor_msgs/JointState")
        server.on_publish("/cmd", handler)             # handler(msg, client_id), in the loop thread
        server.add_service("/reset", "std_srvs/Trigger", fn)   # fn(args) -> values, in a worker
        server.publish("/joint_states", {...})         # thread-safe, never blocks

Robustness: every client has its own bounded send queue and writer task, so a slow or stalled
client loses its oldest messages instead of stalling the others; a malformed message (not JSON,
not an object, unknown op, missing field, too large) is answered with a `status` error and the
connection stays open. Text messages above `max_message_bytes` get a status error; above four
times that the websocket itself closes the connection (code 1009).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playworld.hardware.errors import HardwareError

log = logging.getLogger(__name__)

ServiceFn = Callable[[dict[str, Any]], dict[str, Any]]
PublishFn = Callable[[dict[str, Any], int], None]


class ProtocolError(ValueError):
    """A client message breaks the protocol; sent back to that client as a status error."""


@dataclass
class _Client:
    """One websocket connection: its subscriptions, advertisements and outgoing queue."""

    cid: int
    ws: Any
    queue: asyncio.Queue
    subs: dict[str, dict[str, float]] = field(default_factory=dict)  # topic -> {sub id: throttle s}
    last_sent: dict[str, float] = field(default_factory=dict)  # topic -> time of last delivery
    advertised: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    dropped: int = 0


class RosBridgeServer:
    """The server; `start()` runs it on its own asyncio loop in a daemon thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9090,
        max_message_bytes: int = 1 << 20,
        queue_size: int = 64,
        service_timeout: float = 10.0,
    ) -> None:
        self.host, self.requested_port = host, port
        self.port: int | None = None
        self.max_message_bytes = max_message_bytes
        self.queue_size = queue_size
        self.service_timeout = service_timeout
        self.topics: dict[str, str] = {}  # topic -> type
        self.services: dict[str, str] = {}  # service -> type
        self._local_subs: dict[str, list[PublishFn]] = {}
        self._local_services: dict[str, ServiceFn] = {}
        self._providers: dict[str, _Client] = {}  # service -> client offering it
        self._pending: dict[str, tuple[_Client, Any, str]] = {}  # forwarded id -> (caller, id, srv)
        self._clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.add_service("/rosapi/get_time", "rosapi/GetTime", _get_time)
        self.add_service("/rosapi/topics", "rosapi/Topics", self._rosapi_topics)
        self.add_service("/rosapi/services", "rosapi/Services", self._rosapi_services)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> RosBridgeServer:
        """Bind and serve in a background thread; raise `HardwareError` if the port is taken."""
        self._thread = threading.Thread(target=self._run, name="rosbridge-server", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise HardwareError(
                f"expected to serve rosbridge on {self.host}:{self.requested_port}, found: "
                f"{self._error}; choose another --port"
            ) from self._error
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket; wait for the thread."""
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=10.0)
        self._thread = None

    def __enter__(self) -> RosBridgeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self.requested_port,
            max_size=4 * self.max_message_bytes,
            compression=None,
            ping_interval=None,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopped.wait()
            server.close()

    # -- this process as a ROS node -----------------------------------------------------------
    def advertise(self, topic: str, msg_type: str) -> None:
        """Declare a topic this process publishes (clients may subscribe before it does)."""
        self.topics[topic] = msg_type

    def on_publish(self, topic: str, msg_type: str, fn: PublishFn) -> None:
        """Call `fn(msg, client_id)` for every client publish on `topic` (in the loop thread).

        `fn` may raise `ValueError` (or any PlayworldError): the publisher gets a status error.
        """
        self.topics.setdefault(topic, msg_type)
        self._local_subs.setdefault(topic, []).append(fn)

    def add_service(self, service: str, srv_type: str, fn: ServiceFn) -> None:
        """Offer a service: `fn(args) -> values` runs in a worker thread."""
        self.services[service] = srv_type
        self._local_services[service] = fn

    def publish(self, topic: str, msg: dict[str, Any]) -> None:
        """Send `msg` to every subscriber of `topic`; thread-safe, returns at once."""
        if self._loop is None or self._loop.is_closed():
            return
        text = json.dumps({"op": "publish", "topic": topic, "msg": msg}, separators=(",", ":"))
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            self._loop.call_soon_threadsafe(self._fanout, topic, text, None)

    def client_count(self) -> int:
        return len(self._clients)

    # -- connections --------------------------------------------------------------------------
    async def _handle(self, ws: Any) -> None:
        client = _Client(next(self._ids), ws, asyncio.Queue(self.queue_size))
        self._clients[client.cid] = client
        writer = asyncio.create_task(self._writer(client))
        try:
            async for raw in ws:
                self._receive(client, raw)
        except Exception as exc:  # connection errors end this client only
            log.debug("client %d closed: %s", client.cid, exc)
        finally:
            writer.cancel()
            self._forget(client)

    async def _writer(self, client: _Client) -> None:
        while True:
            text = await client.queue.get()
            try:
                await client.ws.send(text)
            except Exception:
                return

    def _forget(self, client: _Client) -> None:
        self._clients.pop(client.cid, None)
        for service in client.services:
            if self._providers.get(service) is client:
                del self._providers[service]
                self.services.pop(service, None)
        for key, (caller, _, _) in list(self._pending.items()):
            if caller is client:
                del self._pending[key]

    def _send(self, client: _Client, text: str) -> None:
        """Queue `text` for `client`; a full queue drops its oldest message (never blocks)."""
        if client.queue.full():
            try:
                client.queue.get_nowait()
                client.dropped += 1
            except asyncio.QueueEmpty:
                pass
        client.queue.put_nowait(text)

    def _send_json(self, client: _Client, message: dict[str, Any]) -> None:
        self._send(client, json.dumps(message, separators=(",", ":")))

    def _status(self, client: _Client, msg: str, op_id: Any = None, level: str = "error") -> None:
        message = {"op": "status", "level": level, "msg": msg}
        if op_id is not None:
            message["id"] = op_id
        self._send_json(client, message)

    def _fanout(self, topic: str, text: str, sender: _Client | None) -> None:
        now = time.monotonic()
        for client in list(self._clients.values()):
            subs = client.subs.get(topic)
            if not subs or client is sender:
                continue
            throttle = min(subs.values())
            if throttle > 0 and now - client.last_sent.get(topic, -1e9) < throttle:
                continue
            client.last_sent[topic] = now
            self._send(client, text)

    # -- ops ------------------------------------------------------------------------------------
    def _receive(self, client: _Client, raw: str | bytes) -> None:
        op_id = None
        try:
            if isinstance(raw, bytes):
                raise ProtocolError(
                    "binary messages (CBOR, BSON) are not supported; send JSON text"
                )
            if len(raw) > self.max_message_bytes:
                raise ProtocolError(
                    f"message of {len(raw)} bytes exceeds the limit of {self.max_message_bytes}"
                )
            try:
                message = json.loads(raw)
            except ValueError as exc:
                raise ProtocolError(f"expected a JSON object, found invalid JSON ({exc})") from None
            if not isinstance(message, dict):
                raise ProtocolError(f"expected a JSON object, found {type(message).__name__}")
            op_id = message.get("id")
            op = message.get("op")
            handler = self._OPS.get(op) if isinstance(op, str) else None
            if handler is None:
                raise ProtocolError(f"expected an op among {sorted(self._OPS)}, found {op!r}")
            handler(self, client, message)
        except ProtocolError as exc:
            self._status(client, str(exc), op_id)
        except Exception as exc:  # a bug in a handler must not kill the connection
            log.exception("rosbridge op failed")
            self._status(client, f"internal error: {type(exc).__name__}: {exc}", op_id)

    @staticmethod
    def _field(message: dict[str, Any], name: str, kind: type = str) -> Any:
        value = message.get(name)
        if not isinstance(value, kind):
            raise ProtocolError(
                f"{message.get('op')}: expected field {name!r} of type {kind.__name__}, "
                f"found {type(value).__name__ if name in message else 'none'}"
            )
        return value

    def _op_advertise(self, client: _Client, m: dict[str, Any]) -> None:
        topic, msg_type = self._field(m, "topic"), self._field(m, "type")
        known = self.topics.get(topic)
        if known is not None and known != msg_type:
            raise ProtocolError(f"advertise {topic}: expected type {known}, found {msg_type}")
        self.topics[topic] = msg_type
        client.advertised.add(topic)

    def _op_unadvertise(self, client: _Client, m: dict[str, Any]) -> None:
        client.advertised.discard(self._field(m, "topic"))

    def _op_publish(self, client: _Client, m: dict[str, Any]) -> None:
        topic, msg = self._field(m, "topic"), self._field(m, "msg", dict)
        if topic not in self.topics:
            raise ProtocolError(f"publish {topic}: the topic is not advertised; advertise it first")
        for fn in self._local_subs.get(topic, ()):
            try:
                fn(msg, client.cid)
            except (ValueError, TypeError, KeyError) as exc:
                raise ProtocolError(f"publish {topic}: {exc}") from None
        text = json.dumps({"op": "publish", "topic": topic, "msg": msg}, separators=(",", ":"))
        self._fanout(topic, text, client)

    def _op_subscribe(self, client: _Client, m: dict[str, Any]) -> None:
        topic = self._field(m, "topic")
        msg_type = m.get("type")
        known = self.topics.get(topic)
        if msg_type and known and msg_type != known:
            raise ProtocolError(f"subscribe {topic}: expected type {known}, found {msg_type}")
        if msg_type and not known:
            self.topics[topic] = msg_type
        throttle = m.get("throttle_rate", 0) or 0
        if not isinstance(throttle, int | float) or throttle < 0:
            raise ProtocolError(
                f"subscribe {topic}: expected throttle_rate >= 0 ms, found {throttle!r}"
            )
        compression = m.get("compression", "none") or "none"
        if compression != "none":
            self._status(
                client,
                f"compression {compression!r} is not supported; sending JSON",
                m.get("id"),
                "warning",
            )
        client.subs.setdefault(topic, {})[str(m.get("id"))] = throttle / 1000.0

    def _op_unsubscribe(self, client: _Client, m: dict[str, Any]) -> None:
        topic = self._field(m, "topic")
        subs = client.subs.get(topic, {})
        if "id" in m:
            subs.pop(str(m["id"]), None)
        else:
            subs.clear()
        if not subs:
            client.subs.pop(topic, None)

    def _op_advertise_service(self, client: _Client, m: dict[str, Any]) -> None:
        service, srv_type = self._field(m, "service"), self._field(m, "type")
        if service in self._local_services:
            raise ProtocolError(f"advertise_service {service}: this server already provides it")
        self._providers[service] = client
        self.services[service] = srv_type
        client.services.add(service)

    def _op_unadvertise_service(self, client: _Client, m: dict[str, Any]) -> None:
        service = self._field(m, "service")
        if self._providers.get(service) is client:
            del self._providers[service]
            self.services.pop(service, None)
        client.services.discard(service)

    def _op_call_service(self, client: _Client, m: dict[str, Any]) -> None:
        service = self._field(m, "service")
        args = m.get("args", {})
        if isinstance(args, list):  # positional args are allowed by the protocol; unsupported here
            args = {}
        if not isinstance(args, dict):
            raise ProtocolError(
                f"call_service {service}: expected args as an object, found {args!r}"
            )
        op_id = m.get("id")
        if service in self._local_services:
            asyncio.ensure_future(self._call_local(client, service, args, op_id))
        elif service in self._providers:
            key = f"fwd:{next(self._ids)}"
            self._pending[key] = (client, op_id, service)
            self._send_json(
                self._providers[service],
                {"op": "call_service", "id": key, "service": service, "args": args},
            )
        else:
            self._respond(client, service, op_id, f"service {service} does not exist", False)
            raise ProtocolError(
                f"call_service: expected a service among {sorted(self.services)}, found {service!r}"
            )

    def _op_service_response(self, client: _Client, m: dict[str, Any]) -> None:
        pending = self._pending.pop(str(m.get("id")), None)
        if pending is None:
            raise ProtocolError(f"service_response: no call pending with id {m.get('id')!r}")
        caller, op_id, service = pending
        if caller.cid in self._clients:
            self._respond(caller, service, op_id, m.get("values", {}), bool(m.get("result", True)))

    def _op_set_level(self, client: _Client, m: dict[str, Any]) -> None:
        """`set_level` (status verbosity): accepted; this server only sends warnings and errors."""

    def _op_status(self, client: _Client, m: dict[str, Any]) -> None:
        log.info("status from client %d: %s", client.cid, m.get("msg"))

    _OPS: dict[str, Callable[[RosBridgeServer, _Client, dict[str, Any]], None]] = {
        "advertise": _op_advertise,
        "unadvertise": _op_unadvertise,
        "publish": _op_publish,
        "subscribe": _op_subscribe,
        "unsubscribe": _op_unsubscribe,
        "call_service": _op_call_service,
        "advertise_service": _op_advertise_service,
        "unadvertise_service": _op_unadvertise_service,
        "service_response": _op_service_response,
        "set_level": _op_set_level,
        "status": _op_status,
    }

    async def _call_local(self, client: _Client, service: str, args: dict, op_id: Any) -> None:
        fn = self._local_services[service]
        try:
            values = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(None, fn, args), self.service_timeout
            )
            self._respond(client, service, op_id, values, True)
        except Exception as exc:
            self._respond(client, service, op_id, f"{type(exc).__name__}: {exc}", False)

    def _respond(
        self, client: _Client, service: str, op_id: Any, values: Any, result: bool
    ) -> None:
        message = {"op": "service_response", "service": service, "values": values, "result": result}
        if op_id is not None:
            message["id"] = op_id
        self._send_json(client, message)

    def _rosapi_topics(self, args: dict) -> dict:
        names = sorted(self.topics)
        return {"topics": names, "types": [self.topics[n] for n in names]}

    def _rosapi_services(self, args: dict) -> dict:
        return {"services": sorted(self.services)}


def _get_time(args: dict) -> dict:
    """rosapi/GetTime: this machine's wall clock as {secs, nsecs}."""
    ns = time.time_ns()
    return {"time": {"secs": ns // 1_000_000_000, "nsecs": ns % 1_000_000_000}}
