"""A rosbridge v2 protocol server (JSON over websocket) with no ROS underneath.

Follows `ROSBRIDGE_PROTOCOL.md` of RobotWebTools/rosbridge_suite for the ops advertise,
unadvertise, publish, subscribe, unsubscribe, call_service, advertise_service,
unadvertise_service, service_response and status. It is a full relay: any client may advertise,
publish and subscribe on any topic, and every subscriber gets what any publisher sends, with
rosbridge's `throttle_rate`, `queue_length`, `fragment_size` and `compression` ("cbor": binary
CBOR with typed arrays; "cbor-raw": ROS 1 wire bytes, what Foxglove asks for) per subscription
(`relay.py`). A topic keeps the type it was first advertised or subscribed with while anyone
uses it; an advertise, subscribe or publish with another type, or a message that does not fit a
type `msgdefs` knows, gets a status error, as rosbridge does. Names resolve in the root
namespace ("rosapi/topics" is "/rosapi/topics"). This process publishes topics and offers
services of its own (`publish`, `on_publish`, `add_service`), and answers rosapi's services
(`rosapi.py`: topics_and_raw_types, topic_type, message_details, get_param ...).

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

Rehearsal: `network=NetworkConditions(...)` (`netem.py`) delays every message both ways and loses
topic messages, as a bad link would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from playworld.hardware.errors import HardwareError
from playworld.hardware.rosbridge import msgdefs, rosapi
from playworld.hardware.rosbridge.netem import NetworkConditions
from playworld.hardware.rosbridge.relay import (
    Outgoing,
    ProtocolError,
    ProtocolWarning,
    Subscription,
    canonical_type,
    resolve,
    subscribe_options,
)
from playworld.hardware.rosbridge.rosapi import BRIDGE_NODE

log = logging.getLogger(__name__)

ServiceFn = Callable[[dict[str, Any]], dict[str, Any]]
PublishFn = Callable[[dict[str, Any], int], None]


class Graph(NamedTuple):
    """Who publishes, subscribes and provides what, by ROS node name (for rosapi)."""

    publishers: dict[str, set[str]]
    subscribers: dict[str, set[str]]
    providers: dict[str, str]


ROSAPI_NODE = "/rosapi"


@dataclass
class _Client:
    """One websocket connection: its subscriptions, advertisements and outgoing queue."""

    cid: int
    ws: Any
    queue: asyncio.Queue
    subs: dict[str, Subscription] = field(default_factory=dict)  # resolved topic -> subscription
    advertised: dict[str, set[str]] = field(default_factory=dict)  # topic -> advertise ids
    services: dict[str, str] = field(default_factory=dict)  # resolved -> as the client spells it
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
        node_name: str = "/playworld",
        network: NetworkConditions | None = None,
    ) -> None:
        self.host, self.requested_port = host, port
        self.port: int | None = None
        self.max_message_bytes = max_message_bytes
        self.queue_size = queue_size
        self.service_timeout = service_timeout
        self.node_name = node_name
        self.network = network if network is not None and network.config.active else None
        self.topics: dict[str, str] = {}  # topic -> type, while anyone publishes or subscribes
        self.services: dict[str, str] = {}  # service -> type
        self._published: set[str] = set()  # topics this process publishes
        self._local_subs: dict[str, list[PublishFn]] = {}
        self._local_services: dict[str, ServiceFn] = {}
        self._inline: set[str] = set()  # local services answered in the loop thread
        self._providers: dict[str, _Client] = {}  # service -> client offering it
        self._pending: dict[str, tuple[_Client, Any, str]] = {}  # forwarded id -> (caller, id, srv)
        self._clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        rosapi.install(self)

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
        topic = resolve(topic)
        self.topics[topic] = canonical_type(msg_type)
        self._published.add(topic)

    def on_publish(self, topic: str, msg_type: str, fn: PublishFn) -> None:
        """Call `fn(msg, client_id)` for every client publish on `topic` (in the loop thread).

        `msg` has been checked against `msg_type` and completed with defaults when `msgdefs`
        knows the type. `fn` may raise `ValueError` (or any PlayworldError): the publisher gets
        a status error.
        """
        topic = resolve(topic)
        self.topics.setdefault(topic, canonical_type(msg_type))
        self._local_subs.setdefault(topic, []).append(fn)

    def add_service(self, service: str, srv_type: str, fn: ServiceFn, inline: bool = False) -> None:
        """Offer a service: `fn(args) -> values` runs in a worker thread (`inline`: in the loop
        thread, for quick answers that read the server's state)."""
        service = resolve(service)
        self.services[service] = srv_type
        self._local_services[service] = fn
        if inline:
            self._inline.add(service)

    def publish(self, topic: str, msg: dict[str, Any]) -> None:
        """Send `msg` to every subscriber of `topic`; thread-safe, returns at once."""
        if self._loop is None or self._loop.is_closed():
            return
        topic = resolve(topic)
        # JSON is encoded here, in the caller's thread, to keep that work off the loop.
        out = Outgoing(topic, msg, self.topics.get(topic), "")
        out.encode("none", topic)
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            self._loop.call_soon_threadsafe(self._fanout, out)

    def client_count(self) -> int:
        return len(self._clients)

    def graph(self) -> Graph:
        """Publishers, subscribers (node names by topic) and service providers; loop thread."""
        pubs: dict[str, set[str]] = {t: {self.node_name} for t in self._published}
        subs: dict[str, set[str]] = {t: {self.node_name} for t in self._local_subs}
        for client in self._clients.values():
            for t in client.advertised:
                pubs.setdefault(t, set()).add(BRIDGE_NODE)
            for t in client.subs:
                subs.setdefault(t, set()).add(BRIDGE_NODE)
        providers = {s: BRIDGE_NODE for s in self._providers}
        for s in self._local_services:
            providers[s] = ROSAPI_NODE if s.startswith("/rosapi/") else self.node_name
        return Graph(pubs, subs, providers)

    # -- connections --------------------------------------------------------------------------
    async def _handle(self, ws: Any) -> None:
        client = _Client(next(self._ids), ws, asyncio.Queue(self.queue_size))
        self._clients[client.cid] = client
        writer = asyncio.create_task(self._writer(client))
        inbox: asyncio.Queue | None = None
        reader = None
        if self.network is not None:  # incoming messages wait their delay in order
            inbox = asyncio.Queue()
            reader = asyncio.create_task(self._delayed_reader(client, inbox))
        try:
            async for raw in ws:
                if inbox is None:
                    self._receive(client, raw)
                else:
                    inbox.put_nowait((self._loop.time() + self.network.delay(), raw))
        except Exception as exc:  # connection errors end this client only
            log.debug("client %d closed: %s", client.cid, exc)
        finally:
            writer.cancel()
            if reader is not None:
                reader.cancel()
            self._forget(client)

    async def _writer(self, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, text = await client.queue.get()
            wait = due - loop.time()
            if wait > 0:  # network rehearsal: FIFO, so a late message holds back the rest
                await asyncio.sleep(wait)
            try:
                await client.ws.send(text)
            except Exception:
                return

    async def _delayed_reader(self, client: _Client, inbox: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, raw = await inbox.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if client.cid in self._clients:
                self._receive(client, raw, lossy=True)

    def _forget(self, client: _Client) -> None:
        self._clients.pop(client.cid, None)
        for sub in client.subs.values():
            sub.close()
        for topic in {*client.subs, *client.advertised}:
            self._release(topic)
        for service in client.services:
            if self._providers.get(service) is client:
                del self._providers[service]
                self.services.pop(service, None)
        for key, (caller, _, _) in list(self._pending.items()):
            if caller is client:
                del self._pending[key]

    def _release(self, topic: str) -> None:
        """Forget a topic's type once nobody publishes or subscribes to it (it may change)."""
        if topic in self._published or topic in self._local_subs:
            return
        if any(topic in c.advertised or topic in c.subs for c in self._clients.values()):
            return
        self.topics.pop(topic, None)

    def _send(self, client: _Client, text: str | bytes) -> None:
        """Queue `text` for `client`; a full queue drops its oldest message (never blocks)."""
        due = 0.0 if self.network is None else self._loop.time() + self.network.delay()
        if client.queue.full():
            try:
                client.queue.get_nowait()
                client.dropped += 1
            except asyncio.QueueEmpty:
                pass
        client.queue.put_nowait((due, text))

    def _send_topic(self, client: _Client, text: str | bytes) -> None:
        """A topic message for `client`: lost at the rehearsal's drop ratio, else `_send`."""
        if self.network is not None and self.network.lose():
            return
        self._send(client, text)

    def _send_json(self, client: _Client, message: dict[str, Any]) -> None:
        self._send(client, json.dumps(message, separators=(",", ":")))

    def _status(self, client: _Client, msg: str, op_id: Any = None, level: str = "error") -> None:
        message = {"op": "status", "level": level, "msg": msg}
        if op_id is not None:
            message["id"] = op_id
        self._send_json(client, message)

    def _fanout(self, out: Outgoing) -> None:
        """Offer `out` to every subscription of its topic, its publisher's own included (a ROS
        node subscribed to a topic it publishes receives its own messages)."""
        for client in list(self._clients.values()):
            sub = client.subs.get(out.topic)
            if sub is not None:
                sub.offer(out)

    # -- ops ------------------------------------------------------------------------------------
    def _receive(self, client: _Client, raw: str | bytes, lossy: bool = False) -> None:
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
            if lossy and op == "publish" and self.network.lose():
                return  # lost on the way in
            handler(self, client, message)
        except ProtocolError as exc:
            self._status(client, str(exc), op_id)
        except ProtocolWarning as exc:
            self._status(client, str(exc), op_id, "warning")
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

    def _typed(self, op: str, topic: str, msg_type: Any) -> str | None:
        """`msg_type` (ROS 1 spelling) if it fits the topic's type; a conflict is an error."""
        if msg_type in (None, ""):
            return None
        if not isinstance(msg_type, str) or "/" not in msg_type:
            raise ProtocolError(f"{op} {topic}: expected a type like pkg/Name, found {msg_type!r}")
        msg_type = canonical_type(msg_type)
        known = self.topics.get(topic)
        if known is not None and known != msg_type:
            raise ProtocolError(f"{op} {topic}: expected type {known}, found {msg_type}")
        return msg_type

    def _op_advertise(self, client: _Client, m: dict[str, Any]) -> None:
        topic = resolve(self._field(m, "topic"))
        self.topics[topic] = self._typed("advertise", topic, self._field(m, "type"))
        client.advertised.setdefault(topic, set()).add(str(m.get("id")))

    def _op_unadvertise(self, client: _Client, m: dict[str, Any]) -> None:
        topic = resolve(self._field(m, "topic"))
        ids = client.advertised.get(topic)
        if ids is None:
            raise ProtocolWarning(f"unadvertise {topic}: this client does not advertise it")
        if "id" in m:
            ids.discard(str(m["id"]))
        if "id" not in m or not ids:
            del client.advertised[topic]
            self._release(topic)

    def _op_publish(self, client: _Client, m: dict[str, Any]) -> None:
        topic, msg = resolve(self._field(m, "topic")), self._field(m, "msg", dict)
        self._typed("publish", topic, m.get("type"))
        msg_type = self.topics.get(topic)
        if msg_type is None:
            raise ProtocolError(f"publish {topic}: the topic is not advertised; advertise it first")
        client.advertised.setdefault(topic, set())  # rosbridge registers the publisher too
        try:
            msg = msgdefs.conform(msg, msg_type)
        except ValueError as exc:
            raise ProtocolError(f"publish {topic}: {exc}") from None
        for fn in self._local_subs.get(topic, ()):
            try:
                fn(msg, client.cid)
            except (ValueError, TypeError, KeyError) as exc:
                raise ProtocolError(f"publish {topic}: {exc}") from None
        self._fanout(Outgoing(topic, msg, msg_type))

    def _op_subscribe(self, client: _Client, m: dict[str, Any]) -> None:
        spelled = self._field(m, "topic")
        topic = resolve(spelled)
        msg_type = self._typed("subscribe", topic, m.get("type"))
        options = subscribe_options(topic, m)
        if m.get("compression") == "png":
            self._status(
                client,
                f"subscribe {topic}: png is not supported; sending JSON",
                m.get("id"),
                "warning",
            )
        if msg_type and topic not in self.topics:
            self.topics[topic] = msg_type
        sub = client.subs.get(topic)
        if sub is None:
            sub = client.subs[topic] = Subscription(spelled, partial(self._send_topic, client))
        sub.add(str(m.get("id")), options)

    def _op_unsubscribe(self, client: _Client, m: dict[str, Any]) -> None:
        topic = resolve(self._field(m, "topic"))
        sub = client.subs.get(topic)
        if sub is None:
            return
        if sub.remove(str(m["id"]) if "id" in m else None):
            del client.subs[topic]
            self._release(topic)

    def _op_advertise_service(self, client: _Client, m: dict[str, Any]) -> None:
        spelled, srv_type = self._field(m, "service"), self._field(m, "type")
        service = resolve(spelled)
        if service in self._local_services:
            raise ProtocolError(f"advertise_service {service}: this server already provides it")
        self._providers[service] = client
        self.services[service] = srv_type
        client.services[service] = spelled  # calls are forwarded as the provider named it

    def _op_unadvertise_service(self, client: _Client, m: dict[str, Any]) -> None:
        service = resolve(self._field(m, "service"))
        if self._providers.get(service) is client:
            del self._providers[service]
            self.services.pop(service, None)
        client.services.pop(service, None)

    def _op_call_service(self, client: _Client, m: dict[str, Any]) -> None:
        spelled = self._field(m, "service")
        service = resolve(spelled)
        args = m.get("args") or {}
        if isinstance(args, list):  # positional args are allowed by the protocol; unsupported here
            args = {}
        if not isinstance(args, dict):
            raise ProtocolError(
                f"call_service {service}: expected args as an object, found {args!r}"
            )
        op_id = m.get("id")
        if service in self._inline:
            try:
                values, ok = self._local_services[service](args), True
            except Exception as exc:  # the caller gets result false and the reason
                values, ok = f"{type(exc).__name__}: {exc}", False
            self._respond(client, spelled, op_id, values, ok)
        elif service in self._local_services:
            asyncio.ensure_future(self._call_local(client, service, spelled, args, op_id))
        elif service in self._providers:
            key = f"fwd:{next(self._ids)}"
            self._pending[key] = (client, op_id, spelled)
            provider = self._providers[service]
            self._send_json(
                provider,
                {
                    "op": "call_service",
                    "id": key,
                    "service": provider.services[service],
                    "args": args,
                },
            )
        else:
            self._respond(client, spelled, op_id, f"service {service} does not exist", False)
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

    async def _call_local(
        self, client: _Client, service: str, spelled: str, args: dict, op_id: Any
    ) -> None:
        fn = self._local_services[service]
        try:
            values = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(None, fn, args), self.service_timeout
            )
            self._respond(client, spelled, op_id, values, True)
        except Exception as exc:
            self._respond(client, spelled, op_id, f"{type(exc).__name__}: {exc}", False)

    def _respond(
        self, client: _Client, service: str, op_id: Any, values: Any, result: bool
    ) -> None:
        message = {"op": "service_response", "service": service, "values": values, "result": result}
        if op_id is not None:
            message["id"] = op_id
        self._send_json(client, message)
