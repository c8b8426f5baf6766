"""Network conditions for rehearsal: delay, jitter and loss on a rosbridge server's messages.

    conditions = NetworkConditions(latency_ms=30, jitter_ms=10, drop=0.01, seed=0)
    server = RosBridgeServer(port=9090, network=conditions)   # `playworld twin serve --latency-ms 30`

Like Linux `netem` on the server's side of the link, both ways: every message to or from a
client waits `latency_ms` plus a uniform jitter in [-jitter_ms, +jitter_ms] (bounded: never
below 0), and each topic message (`publish` op, either direction) is lost with probability
`drop`. Delivery order per client and direction is kept (a websocket is one TCP stream: a late
message holds back those behind it, it never overtakes them). Service calls, responses and the
subscribe / advertise bookkeeping are delayed but never lost: rosbridge rides on TCP, so what a
bad link costs a deployment is late and missing *samples* (joint states, commands, poses), which
is what `drop` rehearses. Draws come from one seeded generator: a rehearsal repeats.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from playworld.hardware.errors import ConfigError

MAX_LATENCY_MS = 5000.0


@dataclass(frozen=True)
class NetworkConfig:
    """Delay (ms), jitter (ms, uniform +-) and the loss ratio of topic messages, each way."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    drop: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise ConfigError(
                f"expected --latency-ms in 0..{MAX_LATENCY_MS:g}, found {self.latency_ms:g}"
            )
        if not 0.0 <= self.jitter_ms <= MAX_LATENCY_MS:
            raise ConfigError(
                f"expected --jitter-ms in 0..{MAX_LATENCY_MS:g}, found {self.jitter_ms:g}"
            )
        if not 0.0 <= self.drop < 1.0:
            raise ConfigError(f"expected --drop as a ratio in [0, 1), found {self.drop:g}")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.jitter_ms > 0 or self.drop > 0


class NetworkConditions:
    """Seeded draws of per-message delay (s) and loss; thread-safe (one lock)."""

    def __init__(self, config: NetworkConfig | None = None, **kwargs: float) -> None:
        self.config = config if config is not None else NetworkConfig(**kwargs)
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self.dropped = 0  # topic messages lost, both directions
        self.delayed = 0

    def delay(self) -> float:
        """Seconds this message waits: latency + U(-jitter, +jitter), at least 0."""
        c = self.config
        with self._lock:
            jitter = self._rng.uniform(-c.jitter_ms, c.jitter_ms) if c.jitter_ms > 0 else 0.0
            self.delayed += 1
        return max(0.0, c.latency_ms + jitter) / 1000.0

    def lose(self) -> bool:
        """Whether this topic message is lost."""
        if self.config.drop <= 0:
            return False
        with self._lock:
            lost = self._rng.random() < self.config.drop
            self.dropped += lost
        return lost

    def __repr__(self) -> str:
        c = self.config
        return f"NetworkConditions(latency_ms={c.latency_ms:g}, jitter_ms={c.jitter_ms:g}, drop={c.drop:g})"
