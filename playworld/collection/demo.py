"""The main job, end to end on the built-in twin (`make demo`).

    python -m playworld.collection.demo --out out/demo [--minutes 3] [--workers 2] [--fast]

1. Autonomous play in the twin (`playworld.collection.autoplay`) with both cameras, paced at
   the control rate (`--fast`: as fast as the CPU allows), `--workers` players merged into
   `OUT/play.zarr`.
2. Prints `playworld store info` of that store.
3. Replays one episode in a fresh twin and checks that it reproduces the recorded states.
4. Writes `OUT/episode_0.mp4` (front and wrist cameras side by side) and `OUT/summary.png`
   (loop rate and jitter per episode, task counts and successes), and `OUT/summary.json`.

Exits 1 if the replay does not reproduce the recording.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import playworld.sim  # noqa: F401  (the headless GL backend before mujoco loads)
from playworld.collection.autoplay import AutoplayConfig, autoplay_parallel
from playworld.collection.replay import replay_episode
from playworld.datasets import PlayStore


def write_video(store: PlayStore, index: int, path: Path, scale: int = 2) -> Path:
    """MP4 (mp4v) of one episode's camera features side by side, upscaled `scale` times."""
    import cv2

    cams = [k for k, f in store.features.items() if f.is_image]
    ep = store.episode(index)
    frames = np.concatenate([ep[c][:] for c in cams], axis=2)  # (T, H, W * n, 3)
    h, w = frames.shape[1] * scale, frames.shape[2] * scale
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), store.fps, (w, h))
    try:
        for frame in frames:
            big = cv2.resize(frame, (w, h), interpolation=cv2.INTER_NEAREST)
            writer.write(big[:, :, ::-1])
    finally:
        writer.release()
    return path


def summary_plot(store: PlayStore, path: Path) -> Path:
    """PNG: loop rate / target and jitter p50, p99 per episode; attempts and successes per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metas = [store.episode_metadata(i) for i in range(len(store))]
    loops = [m.get("loop", {}) for m in metas]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    x = np.arange(len(metas))
    axes[0].bar(x, [lp.get("rate_ratio", np.nan) for lp in loops], color="tab:blue")
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set_ylim(0.9, 1.05)
    axes[0].set(title=f"achieved / target rate ({store.fps:g} Hz)", xlabel="episode")
    axes[1].plot(x, [lp.get("jitter_p50_ms", np.nan) for lp in loops], "o-", label="p50")
    axes[1].plot(x, [lp.get("jitter_p99_ms", np.nan) for lp in loops], "s-", label="p99")
    axes[1].set(title="tick period jitter |period - 1/fps| (ms)", xlabel="episode")
    axes[1].legend()
    tried, won = collections.Counter(), collections.Counter()
    for m in metas:
        for s in m.get("segments", []):
            tried[s["task"]] += 1
            won[s["task"]] += bool(s["success"])
    names = sorted(tried)
    y = np.arange(len(names))
    axes[2].barh(y, [tried[n] for n in names], color="lightgray", label="attempts")
    axes[2].barh(y, [won[n] for n in names], color="tab:green", label="successes")
    axes[2].set_yticks(y, names, fontsize=7)
    axes[2].set(title="tasks played")
    axes[2].legend(fontsize=7)
    from matplotlib.ticker import MaxNLocator

    for ax in axes[:2]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(out: Path, minutes: float, workers: int, fast: bool, seed: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "play.zarr"
    shutil.rmtree(path, ignore_errors=True)
    config = AutoplayConfig(
        seed=seed, cameras=("front", "wrist"), height=120, width=160, realtime=not fast
    )
    from playworld.hardware.profiles import load_profile

    steps = int(minutes * 60 * load_profile(config.profile).fps)  # the profile owns the rate
    pace = "as fast as possible" if fast else "in real time"
    print(f"[1/4] autonomous play: {minutes:g} min of twin time, {workers} worker(s), {pace}")
    t0 = time.perf_counter()
    played = autoplay_parallel(path, config, steps, workers=workers)
    print(
        f"      {played['episodes']} episodes, {played['steps']} steps in "
        f"{time.perf_counter() - t0:.0f} s, {played['resets']} resets"
    )

    print("[2/4] playworld store info")
    from playworld.datasets.maintenance import info
    from playworld.datasets.summary import print_info

    print_info(info(str(path)))

    store = PlayStore.open(path)
    print("[3/4] replay episode 0 in a fresh twin")
    report = replay_episode(store, 0)
    verdict = "reproduces" if report.ok else "DOES NOT reproduce"
    print(
        f"      {report.steps} steps, largest state difference {report.max_state_error:.3g}: "
        f"{verdict} the recorded states"
    )

    print("[4/4] video and summary plot")
    video = write_video(store, 0, out / "episode_0.mp4")
    plot = summary_plot(store, out / "summary.png")
    segs = [s for i in range(len(store)) for s in store.episode_metadata(i)["segments"]]
    loops = [store.episode_metadata(i)["loop"] for i in range(len(store))]
    summary = {
        "store": str(path),
        "episodes": len(store),
        "steps": store.num_steps,
        "segments": len(segs),
        "task_success": sum(s["success"] for s in segs) / max(1, len(segs)),
        "rate_ratio_min": min(lp.get("rate_ratio", 1.0) for lp in loops),
        "jitter_p99_over_period_max": max(lp.get("jitter_p99_over_period", 0.0) for lp in loops),
        "dropped_frames": sum(lp["dropped_frames"] for lp in loops),
        "writer_dropped_steps": sum(
            store.episode_metadata(i)["writer_dropped_steps"] for i in range(len(store))
        ),
        "replay_max_state_error": report.max_state_error,
        "replay_ok": report.ok,
        "video": str(video),
        "plot": str(plot),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    for k, v in summary.items():
        print(f"{k}: {v}")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--minutes", type=float, default=3.0, help="twin time to play")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="do not pace at the control rate")
    args = parser.parse_args(argv)
    summary = run(args.out, args.minutes, args.workers, args.fast, args.seed)
    sys.exit(0 if summary["replay_ok"] else 1)


if __name__ == "__main__":
    main()
