"""Network rehearsal on the rosbridge server: delay, jitter and loss, with a real roslibpy client."""

from __future__ import annotations

import threading
import time

import pytest

from playworld.errors import ConfigError
from playworld.hardware.rosbridge.netem import NetworkConditions, NetworkConfig
from playworld.hardware.rosbridge.server import RosBridgeServer

roslibpy = pytest.importorskip("roslibpy")


def test_config_is_bounded():
    for bad in ({"latency_ms": -1}, {"jitter_ms": 1e6}, {"drop": 1.0}):
        with pytest.raises(ConfigError, match="expected"):
            NetworkConfig(**bad)
    draws = [NetworkConditions(latency_ms=30, jitter_ms=10, seed=3).delay() for _ in range(2)]
    assert draws[0] == draws[1]  # seeded
    net = NetworkConditions(latency_ms=30, jitter_ms=10, drop=0.25, seed=1)
    delays = [net.delay() for _ in range(2000)]
    assert min(delays) >= 0.020 and max(delays) <= 0.040
    lost = sum(net.lose() for _ in range(4000))
    assert 800 < lost < 1200


def echo_round_trips(network, n=40, period=0.02):
    """Publish n messages on /echo_in; arrival time (s) after sending of each echo received."""
    server = RosBridgeServer(port=0, network=network)
    server.advertise("/echo_out", "std_msgs/String")
    server.on_publish(
        "/echo_in", "std_msgs/String", lambda msg, cid: server.publish("/echo_out", msg)
    )
    sent, got = {}, {}
    done = threading.Event()
    with server:
        ros = roslibpy.Ros("127.0.0.1", server.port)
        ros.run(timeout=10)
        try:
            out = roslibpy.Topic(ros, "/echo_out", "std_msgs/String")

            def on(msg):
                got[msg["data"]] = time.monotonic()
                if len(got) == n:
                    done.set()

            out.subscribe(on)
            pub = roslibpy.Topic(ros, "/echo_in", "std_msgs/String")
            pub.advertise()
            time.sleep(0.5)  # the subscription and advertisement are in place (delayed too)
            for i in range(n):
                sent[str(i)] = time.monotonic()
                pub.publish(roslibpy.Message({"data": str(i)}))
                time.sleep(period)
            done.wait(3.0)
        finally:
            ros.close()
    return [got[k] - sent[k] for k in got], [int(k) for k in got]


def test_delay_both_ways_and_order_kept():
    base, _ = echo_round_trips(None)
    rtts, order = echo_round_trips(NetworkConditions(latency_ms=60, jitter_ms=10, seed=0))
    assert len(rtts) == 40 and order == sorted(order)  # nothing lost, nothing overtaken
    # two passes through the server's delay: in (100..140 ms) above the undisturbed median
    med = sorted(rtts)[20] - sorted(base)[len(base) // 2]
    assert 0.09 < med < 0.2, (med, sorted(rtts)[:3])
    assert min(rtts) >= 0.1


def test_topic_messages_are_lost_at_the_ratio():
    rtts, _ = echo_round_trips(NetworkConditions(drop=0.3, seed=0), n=60, period=0.01)
    # each echo crosses the lossy link twice: P(arrive) = 0.7^2 = 0.49
    assert 15 <= len(rtts) <= 45
