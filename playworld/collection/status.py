"""The live status line of a recording session and its closing summary (rich).

    ● REC  episode 3  12.4 s  |  10.0 Hz (x1.000)  jitter p99 2.1 ms  |  drops: 0 frames, 0 steps
    |  queue 3/40  |  store 124.0 MB, 2 saved

Rebuilt by rich's refresh thread (`Live(get_renderable=...)`) four times a second from numbers
the session keeps; the size of the store on disk is re-measured at most every two seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text

from playworld.datasets.backend import local_path

_WINDOW = 50  # ticks the live rate and jitter are computed over


def disk_bytes(url: str) -> int | None:
    """Bytes of all files under a local store (None for remote stores)."""
    path = local_path(url)
    if path is None or not Path(path).exists():
        return None
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"


class StatusLine:
    """Renders a session's state (see the module docstring); `session` duck-typed."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._disk: int | None = None
        self._disk_at = -1e9

    def __call__(self) -> Text:
        s = self.session
        loop, writer = s.loop, s.writer
        if loop is None:
            return Text("starting...")
        m = loop.metrics
        n = len(m)
        summary = m.summary(since=max(0, n - _WINDOW)) if n > 1 else {}
        phase = s.phase
        if phase == "recording":
            head = Text("● REC ", style="bold red")
            t = (n - s.mark) / loop.fps
            head.append(f" episode {s.episode_number}  {t:5.1f} s", style="bold")
            if s.max_steps:
                head.append(f" / {s.max_steps / loop.fps:g} s")
        elif phase == "resetting":
            left = max(0.0, s.reset_until - time.monotonic())
            head = Text(f"↺ reset {left:4.1f} s", style="bold yellow")
        else:
            head = Text("○ idle ", style="bold")
            head.append("(Enter: record, q: quit)", style="dim")
        frames = m.dropped_frames
        steps = writer.dropped if writer is not None else 0
        now = time.monotonic()
        if now - self._disk_at > 2.0:
            self._disk, self._disk_at = disk_bytes(s.config.store), now
        rate = summary.get("rate_hz")
        head.append("  |  ")
        head.append(
            f"{rate:5.1f} Hz (x{summary.get('rate_ratio', 0):.3f})" if rate else "  -  Hz",
            style="green" if summary.get("rate_ratio", 1) >= 0.99 else "yellow",
        )
        if "jitter_p99_ms" in summary:
            head.append(f"  jitter p99 {summary['jitter_p99_ms']:.1f} ms")
        head.append("  |  drops: ")
        head.append(f"{frames} frames, {steps} steps", style="red" if frames or steps else "")
        if writer is not None:
            head.append(f"  |  queue {writer.queued}/{writer.max_queue}")
        head.append(f"  |  store {human_bytes(self._disk)}, {s.saved} saved")
        return head


def summary_lines(session: Any) -> list[str]:
    """The closing summary of a session, one line each."""
    s = session
    lines = [
        f"session: {s.saved} episodes saved ({s.saved_steps} steps, "
        f"{s.saved_steps / s.fps:.1f} s), {s.discarded} discarded"
    ]
    if s.loop is not None and len(s.loop.metrics) > 1:
        m = s.loop.metrics.summary()
        lines.append(
            f"loop: {m['ticks']} ticks at {m['rate_hz']:.2f} Hz (x{m['rate_ratio']:.3f} of "
            f"{m['fps']:g}), jitter p50 {m['jitter_p50_ms']:.2f} ms / p99 {m['jitter_p99_ms']:.2f} "
            f"ms, {m['overruns']} overruns, {m['dropped_frames']} dropped frames"
        )
    if s.writer is not None:
        lines.append(
            f"writer: {s.writer.written} steps written, {s.writer.dropped} dropped for a full "
            f"queue (max queued {s.writer.max_queued}/{s.writer.max_queue})"
        )
    store = s.store
    if store is not None:
        lines.append(
            f"store: {s.config.store}: {len(store)} episodes, {store.num_steps} steps, "
            f"{human_bytes(disk_bytes(s.config.store))}"
        )
    return lines
