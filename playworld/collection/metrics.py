"""What the control loop measures about itself, tick by tick, and its summaries.

Per tick: the start time on the loop clock (s), wall and CPU time of each stage (s), and per
camera whether the frame was new, how many frames were dropped (captured but replaced before
any tick read them) and the frame's age (tick start - capture time, s). `summary(since)` turns
any range of ticks (an episode, a whole session) into JSON-native numbers:

    rate_hz                 achieved ticks per second: (ticks - 1) / (last start - first start)
    rate_ratio              rate_hz / target fps
    period_p50_ms, _p99_ms  tick period percentiles
    jitter_p50_ms, _p99_ms  percentiles of |period - 1 / fps|
    jitter_p99_over_period  jitter_p99 / target period
    overruns                ticks whose work ran past the next tick's start
    missed_ticks            grid slots skipped to catch up after overruns
    stage_ms / stage_cpu_ms mean (and p99 for wall time) per stage
    cameras                 per camera: frames, new, dropped, repeated, age_ms_p50 / _p99
"""

from __future__ import annotations

from typing import Any

import numpy as np

STAGES = ("read", "camera", "source", "send", "write")


class LoopMetrics:
    """Append-only per-tick records of one control loop (see the module docstring)."""

    def __init__(self, fps: float, cameras: tuple[str, ...] = (), realtime: bool = True) -> None:
        self.fps = float(fps)
        self.cameras = tuple(cameras)
        self.realtime = realtime
        self.starts: list[float] = []
        self.wall: list[tuple[float, ...]] = []  # (len(STAGES),) s per tick
        self.cpu: list[tuple[float, ...]] = []
        self.cam: list[tuple[tuple[int, int, float], ...]] = []  # per camera (new, dropped, age)
        self.overrun_ticks: list[tuple[int, int]] = []
        self.dropped_frames = (
            0  # running total over every camera and tick  # (tick, grid slots skipped after it)
        )

    def __len__(self) -> int:
        return len(self.starts)

    def add(
        self,
        start: float,
        wall: tuple[float, ...],
        cpu: tuple[float, ...],
        cam: tuple[tuple[int, int, float], ...],
    ) -> None:
        self.starts.append(start)
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.cam.append(cam)
        self.dropped_frames += sum(c[1] for c in cam)

    def extend_last(self, stage: str, wall: float, cpu: float) -> None:
        """Add time (s) to one stage of the last tick (work done after it was recorded)."""
        i = STAGES.index(stage)
        w, c = list(self.wall[-1]), list(self.cpu[-1])
        w[i] += wall
        c[i] += cpu
        self.wall[-1], self.cpu[-1] = tuple(w), tuple(c)

    def overrun(self, missed: int) -> None:
        """The tick just recorded ran past the next tick's start; `missed` slots are skipped."""
        self.overrun_ticks.append((len(self.starts) - 1, missed))

    def summary(self, since: int = 0, until: int | None = None) -> dict[str, Any]:
        """JSON-native summary of ticks [since, until) (see the module docstring)."""
        until = len(self.starts) if until is None else until
        starts = np.asarray(self.starts[since:until])
        n = len(starts)
        period = 1.0 / self.fps
        out: dict[str, Any] = {"fps": self.fps, "ticks": n, "realtime": self.realtime}
        periods = np.diff(starts)
        if len(periods):
            jitter = np.abs(periods - period)
            elapsed = float(starts[-1] - starts[0])
            rate = (n - 1) / elapsed if elapsed > 0 else float("inf")
            out.update(
                elapsed_s=round(elapsed, 4),
                rate_hz=round(rate, 4),
                rate_ratio=round(rate / self.fps, 5),
                period_p50_ms=_ms(np.percentile(periods, 50)),
                period_p99_ms=_ms(np.percentile(periods, 99)),
                jitter_p50_ms=_ms(np.percentile(jitter, 50)),
                jitter_p99_ms=_ms(np.percentile(jitter, 99)),
                jitter_p99_over_period=round(float(np.percentile(jitter, 99)) / period, 5),
            )
        over = [m for i, m in self.overrun_ticks if since <= i < until]
        out["overruns"], out["missed_ticks"] = len(over), int(sum(over))
        if n:
            wall = np.asarray(self.wall[since:until])
            cpu = np.asarray(self.cpu[since:until])
            out["stage_ms"] = {
                s: {"mean": _ms(wall[:, i].mean()), "p99": _ms(np.percentile(wall[:, i], 99))}
                for i, s in enumerate(STAGES)
            }
            out["stage_cpu_ms"] = {s: _ms(cpu[:, i].mean()) for i, s in enumerate(STAGES)}
            out["tick_cpu_ms"] = _ms(cpu.sum(axis=1).mean())
        cams = {}
        for j, name in enumerate(self.cameras):
            rows = np.asarray([c[j] for c in self.cam[since:until]], dtype=float).reshape(-1, 3)
            new = rows[:, 0] > 0
            ages = rows[new, 2]
            cams[name] = {
                "new": int(new.sum()),
                "repeated": int((~new).sum()),
                "dropped": int(rows[:, 1].sum()),
                "age_ms_p50": _ms(np.percentile(ages, 50)) if len(ages) else None,
                "age_ms_p99": _ms(np.percentile(ages, 99)) if len(ages) else None,
            }
        out["cameras"] = cams
        out["dropped_frames"] = int(sum(c["dropped"] for c in cams.values()))
        return out


def _ms(seconds: float) -> float:
    return round(float(seconds) * 1e3, 4)
