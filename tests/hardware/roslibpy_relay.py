"""Two roslibpy clients through the playworld rosbridge relay, and roslibpy's rosapi calls.

    python roslibpy_relay.py PORT   -> one JSON line with what it saw

Client `a` publishes; client `b` subscribes twice to the same topic: once plainly and once with
throttle_rate + queue_length (roslibpy's own Topic options). Then `b` asks rosapi about the graph.
"""

from __future__ import annotations

import json
import sys
import time

import roslibpy


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pred()


def main(port: int) -> None:
    a, b = roslibpy.Ros("127.0.0.1", port), roslibpy.Ros("127.0.0.1", port)
    a.run(timeout=10)
    b.run(timeout=10)
    got: list[str] = []
    listener = roslibpy.Topic(b, "/relay/py", "std_msgs/String")
    listener.subscribe(lambda m: got.append(m["data"]))
    wait_for(lambda: "/relay/py" in b.get_topics())  # b's subscribe has landed
    talker = roslibpy.Topic(a, "/relay/py", "std_msgs/String")
    talker.advertise()
    for i in range(20):
        talker.publish(roslibpy.Message({"data": f"py {i}"}))
    wait_for(lambda: len(got) >= 20)

    action_servers: list = []
    b.get_action_servers(lambda r: action_servers.append(r["action_servers"]))
    rosapi = {  # roslibpy's blocking forms (callback None)
        "topic_type": b.get_topic_type("/relay/py"),
        "topics_for_type": b.get_topics_for_type("std_msgs/String"),
        "nodes": b.get_nodes(),
        "node_details": b.get_node_details("/rosbridge_websocket"),
        "services": b.get_services(),
        "service_type": b.get_service_type("/rosapi/topics"),
        "params": b.get_params(),
        "message_details": b.get_message_details("std_msgs/String"),
        "request_details": b.get_service_request_details("std_srvs/SetBool"),
    }
    wait_for(lambda: action_servers)
    rosapi["action_servers"] = action_servers
    talker.unadvertise()
    listener.unsubscribe()
    time.sleep(0.2)
    rosapi["after_leaving"] = b.get_topics()
    print(json.dumps({"received": got, "rosapi": rosapi}, default=str), flush=True)
    a.close()
    b.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
