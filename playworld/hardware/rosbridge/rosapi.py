"""rosapi's services (ROS 1 `rosapi_node`), answered by the rosbridge server itself.

Foxglove's Rosbridge connection starts with `/rosapi/topics_and_raw_types`; roslibjs's `Ros`
methods (`getTopics`, `getTopicType`, `getMessageDetails`, `getParams` ...) call the others.
Request and response fields follow rosapi's `.srv` files (RobotWebTools/rosbridge_suite,
branch ros1, `rosapi/srv/`). Message definitions come from `msgdefs`; a type it does not know
gets an empty definition text, as rosapi gives for a type it cannot load. Parameters live in
this server's memory (empty at start), JSON-encoded like rosapi's.

    install(server)   # registers every service below on a RosBridgeServer
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from playworld.hardware.rosbridge import msgdefs

Args = dict[str, Any]
BRIDGE_NODE = "/rosbridge_websocket"  # the node a ROS graph shows for rosbridge's clients


def install(server: Any) -> None:
    """Register rosapi's services on `server` (answered in its loop thread: they only read)."""
    params: dict[str, Any] = {}
    server.params = params  # the server's own handlers read the parameters clients set
    services: dict[str, tuple[str, Callable[[Args], Args]]] = {
        "topics": ("Topics", lambda a: _topics(server)),
        "topics_for_type": ("TopicsForType", lambda a: _topics_for_type(server, a)),
        "topics_and_raw_types": ("TopicsAndRawTypes", lambda a: _raw_types(server)),
        "topic_type": ("TopicType", lambda a: {"type": server.topics.get(_name(a, "topic"), "")}),
        "services": ("Services", lambda a: {"services": sorted(server.services)}),
        "services_for_type": ("ServicesForType", lambda a: _services_for_type(server, a)),
        "service_type": (
            "ServiceType",
            lambda a: {"type": server.services.get(_name(a, "service"), "")},
        ),
        "service_providers": ("ServiceProviders", lambda a: _providers(server, a)),
        "service_node": ("ServiceNode", lambda a: _service_node(server, a)),
        "publishers": ("Publishers", lambda a: _nodes_on(server, a, "publishers")),
        "subscribers": ("Subscribers", lambda a: _nodes_on(server, a, "subscribers")),
        "nodes": ("Nodes", lambda a: {"nodes": _nodes(server)}),
        "node_details": ("NodeDetails", lambda a: _node_details(server, a)),
        "action_servers": ("GetActionServers", lambda a: {"action_servers": []}),
        "message_details": ("MessageDetails", lambda a: {"typedefs": _typedefs(a)}),
        "service_request_details": (
            "ServiceRequestDetails",
            lambda a: {"typedefs": msgdefs.service_typedefs(_type(a), "request")},
        ),
        "service_response_details": (
            "ServiceResponseDetails",
            lambda a: {"typedefs": msgdefs.service_typedefs(_type(a), "response")},
        ),
        "get_param": ("GetParam", lambda a: _get_param(params, a)),
        "set_param": ("SetParam", lambda a: _set_param(params, a)),
        "has_param": ("HasParam", lambda a: {"exists": _name(a, "name") in params}),
        "delete_param": ("DeleteParam", lambda a: _delete_param(params, a)),
        "get_param_names": ("GetParamNames", lambda a: {"names": sorted(params)}),
        "get_time": ("GetTime", lambda a: _get_time()),
    }
    for name, (srv, fn) in services.items():
        server.add_service(f"/rosapi/{name}", f"rosapi/{srv}", fn, inline=True)


def _name(args: Args, key: str) -> str:
    value = args.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"expected {key} as a string, found {value!r}")
    return value if value.startswith("/") else "/" + value


def _type(args: Args) -> str:
    value = args.get("type", "")
    if not isinstance(value, str):
        raise ValueError(f"expected type as a string, found {value!r}")
    parts = value.split("/")  # ROS 2 spelling pkg/msg/Name -> pkg/Name
    return f"{parts[0]}/{parts[2]}" if len(parts) == 3 else value


def _topics(server: Any) -> Args:
    names = sorted(server.topics)
    return {"topics": names, "types": [server.topics[n] for n in names]}


def _topics_for_type(server: Any, args: Args) -> Args:
    wanted = _type(args)
    return {"topics": sorted(t for t, ty in server.topics.items() if ty == wanted)}


def _raw_types(server: Any) -> Args:
    """Topics, types and each type's full definition (`gendeps --cat`), "" when unknown."""
    names = sorted(server.topics)
    types = [server.topics[n] for n in names]
    texts = [msgdefs.full_text(t) if msgdefs.known(t) else "" for t in types]
    return {"topics": names, "types": types, "typedefs_full_text": texts}


def _services_for_type(server: Any, args: Args) -> Args:
    wanted = _type(args)
    return {"services": sorted(s for s, ty in server.services.items() if ty == wanted)}


def _providers(server: Any, args: Args) -> Args:
    node = server.graph().providers.get(_name(args, "service"))
    return {"providers": [node] if node else []}


def _service_node(server: Any, args: Args) -> Args:
    return {"node": server.graph().providers.get(_name(args, "service"), "")}


def _nodes_on(server: Any, args: Args, role: str) -> Args:
    nodes = getattr(server.graph(), role).get(_name(args, "topic"), set())
    return {role: sorted(nodes)}


def _nodes(server: Any) -> list[str]:
    graph = server.graph()
    names = {n for ns in (*graph.publishers.values(), *graph.subscribers.values()) for n in ns}
    return sorted(names | set(graph.providers.values()) | {BRIDGE_NODE})


def _node_details(server: Any, args: Args) -> Args:
    node, graph = _name(args, "node"), server.graph()
    return {
        "subscribing": sorted(t for t, ns in graph.subscribers.items() if node in ns),
        "publishing": sorted(t for t, ns in graph.publishers.items() if node in ns),
        "services": sorted(s for s, n in graph.providers.items() if n == node),
    }


def _typedefs(args: Args) -> list[Args]:
    msg_type = _type(args)
    if not msgdefs.known(msg_type):
        raise ValueError(
            f"expected a message type among {msgdefs.known_types()}, found {msg_type!r}"
        )
    return msgdefs.typedefs(msg_type)


def _get_param(params: dict[str, Any], args: Args) -> Args:
    """The value as JSON text; a missing name gives `default` (JSON text or a plain string)."""
    name, default = _name(args, "name"), args.get("default", "")
    if name in params:
        return {"value": json.dumps(params[name])}
    if default in ("", None):
        return {"value": json.dumps(None)}
    try:
        return {"value": json.dumps(json.loads(default))}
    except (TypeError, ValueError):
        return {"value": json.dumps(default)}


def _set_param(params: dict[str, Any], args: Args) -> Args:
    value = args.get("value", "")
    try:
        params[_name(args, "name")] = json.loads(value)
    except (TypeError, ValueError):
        params[_name(args, "name")] = value  # rosapi keeps text that is not JSON as a string
    return {}


def _delete_param(params: dict[str, Any], args: Args) -> Args:
    params.pop(_name(args, "name"), None)
    return {}


def _get_time() -> Args:
    """rosapi/GetTime: this machine's wall clock as {secs, nsecs}."""
    secs, nsecs = divmod(time.time_ns(), 1_000_000_000)
    return {"time": {"secs": secs, "nsecs": nsecs}}
