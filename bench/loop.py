"""Benchmark of the control loop and recorder: are they ever the bottleneck?

    python bench/loop.py [--quick] [--view]

Figure 1 (names without prefix): the twin robot (`SimRobot`, joint targets) at 30 Hz, fed by two
camera stand-ins (`StandInCamera`) that deliver pre-rendered 480x640 tabletop frames
(`bench/frames.py`) at 30 fps from their own threads, hardware-synchronised, as real cameras
do; recording on, into a real play store on local disk. Software rendering of the twin cannot
produce two 480x640 frames at 30 Hz on 2 cores, hence the stand-ins.

Figure 2 (prefix `twin_`): the twin's own rendered cameras (front and wrist, 240x320) at 10 Hz,
rendered in the loop's camera stage, recording on.

Criteria: rate_ratio (achieved / target) >= 0.99, jitter_p99_over_period <= 0.2,
dropped_frames = 0. Also printed: CPU time per tick by stage (loop thread), the writer thread's
CPU per step, the process CPU per tick, and steps the writer dropped for a full queue.
Prints `name: value` lines; `--quick` runs each figure for 12 s (full: 60 s).

`--view` runs both figures with a live view on (`playworld.viewer.LiveView` serving rerun's web
viewer, no browser connected: rerun's gRPC server keeps the logged data in memory as it would for
a late viewer) and adds:
- `view_overhead_ms_per_tick` (criterion <= 1 ms): the CPU time the view takes in the recording
  process per loop tick: the loop thread's hand-off (`view(tick)`, wall time, which bounds its
  CPU) plus the CPU of the view's own thread (which turns batches of ticks into columns and
  sends them, holding the process's GIL while it works). It is what the view adds to the
  process that runs the loop, at the loop's priority.
- `view_process_cpu_ms_per_tick`: the CPU of the view's rerun process (rerun's Python API,
  Arrow conversion, rerun's batcher and gRPC server threads), from its start to its finish, per
  tick. That process runs at SCHED_IDLE while the loop runs (only on CPU time no normal-priority
  thread of the machine wants) and shares no GIL with the loop, so it is not in the criterion;
  the loop's own figures above (rate, jitter, dropped frames, with the cores shared) show
  whether it got in the way.
- `view_logged_ticks` and `view_dropped_ticks` (ticks the view skipped because its queue was
  full; the loop never waits for the view).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MUJOCO_GL", "egl")

import playworld.sim  # noqa: E402, F401  (the headless GL backend before mujoco loads)
from playworld.collection.cameras import StandInCamera  # noqa: E402
from playworld.collection.loop import ControlLoop  # noqa: E402
from playworld.collection.metrics import STAGES  # noqa: E402
from playworld.collection.rig import open_rig  # noqa: E402
from playworld.collection.step_queue import StepQueue, leave_a_core_to_the_loop  # noqa: E402
from playworld.datasets import PlayStore  # noqa: E402


class Wave:
    """A source moving every joint slowly around where it started (sinusoid, 0.2 rad, 0.25 Hz)."""

    def __init__(self, fps: float) -> None:
        self.fps, self.k, self.q0 = fps, 0, None

    def __call__(self, obs: dict) -> np.ndarray:
        if self.q0 is None:
            self.q0 = obs["joint_pos"].astype(np.float64)
        phase = 2 * np.pi * 0.25 * self.k / self.fps
        self.k += 1
        q = self.q0 + 0.2 * np.sin(phase + np.arange(7))
        return np.concatenate([q, [0.5 + 0.5 * np.sin(phase)]]).astype(np.float32)


def open_view(on: bool):
    """A live view to rerun's web viewer on free ports, or None."""
    if not on:
        return None
    from playworld.viewer import LiveView, ViewTarget

    return LiveView(ViewTarget(web=True, grpc_port=0, web_port=0), name="bench")


def record(robot, cameras: dict, fps: float, seconds: float, store_dir: Path, view=None) -> dict:
    """Run the loop for `seconds` with recording on (one episode); the measured figures."""
    loop = ControlLoop(robot, Wave(fps), fps, cameras=cameras, view=view)
    store = PlayStore.create(store_dir, loop.features, fps=fps)
    writer = StepQueue(store, max_queue=math.ceil(4 * fps), frame_compressor=True)
    loop.writer = writer
    cpu0 = time.process_time()
    try:
        writer.begin()
        loop.recording = True
        m = loop.run(duration=seconds).summary()
        cpu = time.process_time() - cpu0
        t0 = time.perf_counter()
        writer.commit({"loop": m}).result()
        commit_s = time.perf_counter() - t0
    finally:
        writer.close()
        store.close()
        if view is not None:
            view.close()
            view.stop_serving()
    out = {
        "rate_ratio": m["rate_ratio"],
        "jitter_p99_over_period": m["jitter_p99_over_period"],
        "dropped_frames": m["dropped_frames"],
        "rate_hz": m["rate_hz"],
        "ticks": m["ticks"],
        "overruns": m["overruns"],
        "jitter_p50_ms": m["jitter_p50_ms"],
        "jitter_p99_ms": m["jitter_p99_ms"],
        "repeated_frames": sum(c["repeated"] for c in m["cameras"].values()),
        "frame_age_ms_p50": max((c["age_ms_p50"] or 0) for c in m["cameras"].values()),
        "writer_dropped_steps": writer.dropped,
        "writer_max_queued": writer.max_queued,
        "writer_cpu_ms_per_step": round(writer.cpu_s / max(1, writer.written) * 1e3, 3),
        "process_cpu_ms_per_tick": round(cpu / max(1, m["ticks"]) * 1e3, 3),
        "final_commit_s": round(commit_s, 3),
        "store_mb": round(
            sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file()) / 2**20, 1
        ),
    }
    for s in STAGES:
        out[f"cpu_ms_per_tick_{s}"] = m["stage_cpu_ms"][s]
    for s in STAGES:
        out[f"wall_ms_per_tick_{s}"] = m["stage_ms"][s]["mean"]
    out["cpu_ms_per_tick_loop"] = m["tick_cpu_ms"]
    if view is not None:
        out["view_overhead_ms_per_tick"] = round(view.overhead_ms_per_tick, 4)
        out["view_thread_cpu_ms_per_tick"] = round(view.cpu_s / max(1, view.seen) * 1e3, 3)
        out["view_process_cpu_ms_per_tick"] = round(view.child_cpu_s / max(1, view.seen) * 1e3, 3)
        out["view_logged_ticks"] = view.logged
        out["view_dropped_ticks"] = view.dropped
        out["view_errors"] = 0 if view.error is None else repr(view.error)
    return out


def figure_standins(seconds: float, tmp: Path, view: bool) -> dict:
    from frames import render_frames

    frames = render_frames(60, 480, 640)
    rig = open_rig("sim", action_space="joint_pos", cameras={})
    with rig:
        start = time.monotonic() + 0.1
        cams = {
            name: StandInCamera(frames[name], 30.0, name=name, start=start)
            for name in ("front", "wrist")
        }
        for cam in cams.values():
            cam.connect()
        try:
            return record(rig.robot, cams, 30.0, seconds, tmp / "standins.zarr", open_view(view))
        finally:
            for cam in cams.values():
                cam.disconnect()


def figure_twin(seconds: float, tmp: Path, view: bool) -> dict:
    cams = {
        name: {"type": "sim", "camera": name, "height": 240, "width": 320, "fps": 10}
        for name in ("front", "wrist")
    }
    with open_rig("sim", action_space="joint_pos", cameras=cams) as rig:
        return record(rig.robot, rig.cameras, 10.0, seconds, tmp / "twin.zarr", open_view(view))


def check(prefix: str, f: dict) -> list[str]:
    bad = []
    if f["rate_ratio"] < 0.99:
        bad.append(f"{prefix}rate_ratio {f['rate_ratio']} < 0.99")
    if f["jitter_p99_over_period"] > 0.2:
        bad.append(f"{prefix}jitter_p99_over_period {f['jitter_p99_over_period']} > 0.2")
    if f["dropped_frames"] != 0:
        bad.append(f"{prefix}dropped_frames {f['dropped_frames']} != 0")
    if f.get("view_overhead_ms_per_tick", 0) > 1.0:
        bad.append(f"{prefix}view_overhead_ms_per_tick {f['view_overhead_ms_per_tick']} > 1")
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 s per figure (full: 60 s)")
    parser.add_argument("--view", action="store_true", help="with a live view (rerun) on")
    args = parser.parse_args()
    seconds = 12.0 if args.quick else 60.0
    print(f"cpus: {os.cpu_count()}")
    print(f"zarr_threads: {leave_a_core_to_the_loop()}")
    print(f"load_average_1min: {os.getloadavg()[0]:.2f}")
    print(f"seconds_per_figure: {seconds:g}")
    print(f"view: {args.view}")
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as d:
        tmp = Path(d)
        one = figure_standins(seconds, tmp, args.view)
        print("# figure 1: SimRobot at 30 Hz, two 480x640 camera stand-ins at 30 fps, recording")
        for k, v in one.items():
            print(f"{k}: {v}")
        two = figure_twin(seconds, tmp, args.view)
        print("# figure 2: SimRobot at 10 Hz, the twin's own cameras 2x 240x320, recording")
        for k, v in two.items():
            print(f"twin_{k}: {v}")
    bad = check("", one) + check("twin_", two)
    print(f"criteria_met: {not bad}")
    for line in bad:
        print(f"# not met: {line}")


if __name__ == "__main__":
    main()
