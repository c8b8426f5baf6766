"""Asynchronous chunked inference: the policy predicts in its own thread, the loop never waits
for it longer than a budget.

    actor = AsyncActor(predict_chunk, budget_s=0.05, ensemble=None).start()
    actor.submit(tick, obs)                  # the newest observation (an older unread one is replaced)
    action = actor.take(tick)                # the action for this tick, or None (send nothing)
    actor.close()

A chunk predicted from the observation of tick k holds the actions of ticks k, k+1, ... k+n-1
(n = the policy's `n_action_steps`). `take(k)` waits up to `budget_s` for a chunk that covers
tick k; entries for ticks already past are dropped (counted in `stale`): an action is never
sent late. With several chunks covering a tick, the newest wins, or with `ensemble=m` they are
averaged with ACT's temporal-ensembling weights exp(-m * i), i = 0 for the oldest prediction.
`stall(seconds)` makes the next prediction wait first (a stalled policy, on purpose, for the
watchdog figures).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Predict = Callable[[Mapping[str, np.ndarray]], np.ndarray]  # obs -> (n, A) actions


class AsyncActor:
    """The policy's thread and its tick-indexed action queue (see the module docstring)."""

    def __init__(self, predict: Predict, budget_s: float, ensemble: float | None = None) -> None:
        self.predict = predict
        self.budget_s = float(budget_s)
        self.ensemble = ensemble
        self._cond = threading.Condition()
        self._pending: tuple[int, Mapping[str, np.ndarray]] | None = None
        self._chunks: dict[int, list[tuple[int, np.ndarray]]] = {}  # tick -> [(chunk no, action)]
        self._chunk_no = 0
        self._busy = False
        self._stop = False
        self._stall_s = 0.0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="policy-actor", daemon=True)
        self.stale = 0  # actions dropped because their tick had passed
        self.chunks = 0
        self.inference_ms: list[float] = []

    def start(self) -> AsyncActor:
        self._thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5.0)

    def reset(self) -> None:
        """Forget queued actions and a pending observation (a new episode); waits for a running
        prediction to finish so that none of the old episode lands in the new one."""
        with self._cond:
            self._pending = None
            while self._busy and not self._stop:
                self._cond.wait(0.05)
            self._chunks.clear()
            self._stall_s = 0.0
            self.stale = self.chunks = 0
            self.inference_ms = []

    def stall(self, seconds: float) -> None:
        """The next prediction first sleeps `seconds` (a policy stalled on purpose)."""
        self._stall_s = float(seconds)

    def submit(self, tick: int, obs: Mapping[str, np.ndarray]) -> None:
        """Hand over the newest observation (replaces one the thread has not taken yet)."""
        with self._cond:
            self._pending = (tick, obs)
            self._cond.notify_all()

    def take(self, tick: int) -> np.ndarray | None:
        """The action for `tick`, waiting up to `budget_s` for it; None if none came in time."""
        deadline = time.monotonic() + self.budget_s
        with self._cond:
            self._raise()
            while tick not in self._chunks:
                left = deadline - time.monotonic()
                if left <= 0 or (not self._busy and self._pending is None):
                    break
                self._cond.wait(left)
                self._raise()
            for old in [t for t in self._chunks if t < tick]:
                self.stale += len(self._chunks.pop(old))
            entries = self._chunks.pop(tick, None)
        if not entries:
            return None
        if self.ensemble is None:
            return entries[-1][1]
        entries.sort(key=lambda e: e[0])
        w = np.exp(-self.ensemble * np.arange(len(entries)))
        actions = np.stack([a for _, a in entries])
        return (w[:, None] * actions).sum(0) / w.sum()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                tick, obs = self._pending
                self._pending = None
                self._busy = True
                stall, self._stall_s = self._stall_s, 0.0
            try:
                if stall > 0:
                    time.sleep(stall)
                t0 = time.perf_counter()
                chunk = np.asarray(self.predict(obs), np.float32)
                ms = (time.perf_counter() - t0) * 1000.0
            except BaseException as exc:  # raised on the loop's thread by take()
                with self._cond:
                    self._error, self._busy = exc, False
                    self._cond.notify_all()
                continue
            with self._cond:
                self._busy = False
                self.inference_ms.append(ms)
                self._chunk_no += 1
                self.chunks += 1
                for i, action in enumerate(chunk):
                    self._chunks.setdefault(tick + i, []).append((self._chunk_no, action))
                self._cond.notify_all()


def chunk_predictor(policy: Any) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """obs -> (n_action_steps, A) from a `Policy`-like object (duck-typed: collection does not
    import policies): keeps its last `n_obs_steps` observations (the first repeated to fill) and
    calls `predict_chunk` on a batch of one."""
    from collections import deque

    keys = list(policy.observation_features)
    history: deque[dict[str, np.ndarray]] = deque(maxlen=policy.n_obs_steps)

    def predict(obs: Mapping[str, np.ndarray]) -> np.ndarray:
        history.append({k: np.asarray(obs[k]) for k in keys})
        while len(history) < policy.n_obs_steps:
            history.appendleft(history[0])
        batch = {k: np.stack([h[k] for h in history])[None] for k in keys}
        return np.asarray(policy.predict_chunk(batch))[0]

    predict.history = history  # type: ignore[attr-defined]  (cleared per episode)
    return predict
