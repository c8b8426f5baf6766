"""A roslibpy client run in its own process (twisted's reactor cannot restart in one process).

    python roslibpy_client.py PORT   -> one JSON line with what it saw

Exercises the playworld rosbridge server with a client nobody here wrote: publish/subscribe
through a server-side echo, a server service, a service offered by this client itself and
forwarded by the server, and rosapi's get_time.
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
    ros = roslibpy.Ros("127.0.0.1", port)
    ros.run(timeout=10)
    got: list[str] = []
    listener = roslibpy.Topic(ros, "/echo_out", "std_msgs/String")
    listener.subscribe(lambda m: got.append(m["data"]))
    talker = roslibpy.Topic(ros, "/echo_in", "std_msgs/String")
    talker.advertise()
    for i in range(20):
        talker.publish(roslibpy.Message({"data": f"hello {i}"}))
    wait_for(lambda: len(got) >= 20)

    add = roslibpy.Service(ros, "/add_two_ints", "rospy_tutorials/AddTwoInts")
    total = add.call(roslibpy.ServiceRequest({"a": 2, "b": 40}), timeout=5)["sum"]

    def double(request, response):
        response["y"] = request["x"] * 2
        return True

    provider = roslibpy.Service(ros, "/py/double", "playworld_test/Double")
    provider.advertise(double)
    time.sleep(0.2)  # the advertise_service goes out asynchronously
    doubled = roslibpy.Service(ros, "/py/double", "playworld_test/Double").call(
        roslibpy.ServiceRequest({"x": 21}), timeout=5
    )["y"]
    missing = None
    try:
        roslibpy.Service(ros, "/no/such", "x/Y").call(roslibpy.ServiceRequest({}), timeout=5)
    except Exception as exc:  # roslibpy raises on result: false
        missing = str(exc)
    server_time = ros.get_time()  # rosapi/GetTime
    print(
        json.dumps(
            {
                "received": got,
                "sum": total,
                "doubled": doubled,
                "missing": missing,
                "time": {"secs": server_time.secs, "nsecs": server_time.nsecs},
            }
        ),
        flush=True,
    )
    listener.unsubscribe()
    ros.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
