"""Benchmark of deployment over the ROS bridge, against `playworld twin serve` in a subprocess
rehearsing a bad link (`--latency-ms 30 --jitter-ms 10 --drop 0.01`).

    python bench/deploy.py [--quick]

Prints `name: value` lines:
- deploy_success_direct: `scripted_perception` (the scripted experts reading only joints,
  gripper and the perception stream's object poses) deployed in direct mode; success judged by
  the served twin's `/playworld/task_success`.
- deploy_success_twin_follow: `scripted` (the privileged experts) deployed in twin-follow mode
  (Real-is-Sim: they act in a local twin synced from the robot, the robot follows).
- eval_success_same_policy: the same expert (`scripted`), tasks and episode seeds through
  `evaluate` (in process, the twin in simulated time).
- deploy_vs_eval: min(deploy_success_direct, deploy_success_twin_follow) / eval_success_same_policy.
- latency_ms_p50 / latency_ms_p99: observation in hand -> command sent, client side, every tick
  of every deployed episode (both modes). One control period is 100 ms.
- stall_stop_periods: the policy stalled on purpose mid-motion (open_drawer, 1 s in): control
  periods from the last command sent until the arm stood still (the first of two successive
  joint states within 0.005 rad, from every state the robot published, on its clock); the worst
  of the stalled episodes.
- twin_robot_divergence_p99_rad: twin-follow, the robot's joints against the twin's recent path.
Figures from a shared 2-core machine: timing is noisy (say so when quoting them).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

LINK = ["--latency-ms", "30", "--jitter-ms", "10", "--drop", "0.01"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "playworld", "twin", "serve", "--port", str(port), *LINK],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    if "serving the twin" not in line:
        raise SystemExit(f"twin serve did not start: {line}{proc.stdout.read()}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer episodes (<= 5 min)")
    args = parser.parse_args()
    from playworld.collection.evaluation import episode_seed, evaluate
    from playworld.policies import make_policy
    from playworld.policies.deploy_command import run_deploy
    from playworld.sim.tasks import TASKS

    tasks = ["turn_on_light", "open_drawer", "close_drawer"]
    episodes = 3 if args.quick else 10
    max_seconds = 15.0
    order = list(TASKS)
    t0 = time.time()
    port = free_port()
    proc = serve(port)
    results: dict[str, list] = {"direct": [], "twin-follow": []}
    latency: list[float] = []
    divergence: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for mode, policy in (("direct", "scripted_perception"), ("twin-follow", "scripted")):
                for task in tasks:
                    seeds = tuple(episode_seed(0, order.index(task), i) for i in range(episodes))
                    report = run_deploy(
                        policy,
                        "rosbridge_panda",
                        mode,
                        task,
                        episodes,
                        None,
                        max_seconds,
                        port,
                        None,
                        0,
                        None,
                        None,
                        Path(tmp),
                        say=lambda line: None,
                        seeds=seeds,
                    )
                    for e in report["episodes"]:
                        results[mode].append(bool(e["success"]))
                        latency += e["latency_ms"]
                        divergence += e["divergence_rad"]
                    rate = np.mean([e["success"] for e in report["episodes"]])
                    print(f"# {mode} {policy} {task}: {rate:.2f}", flush=True)
            stalls = []
            for i in range(2 if args.quick else 5):
                report = run_deploy(
                    "scripted_perception",
                    "rosbridge_panda",
                    "direct",
                    "open_drawer",
                    1,
                    None,
                    3.0,
                    port,
                    None,
                    100 + i,
                    None,
                    1.0,
                    Path(tmp),
                    say=lambda line: None,
                )
                stalls.append(report["episodes"][0]["stall_stop_periods"])
    finally:
        proc.kill()
        proc.wait(timeout=10)
    ev = evaluate(
        lambda: make_policy("scripted"),
        tasks,
        episodes=episodes,
        seed=0,
        workers=1,
        max_steps=int(max_seconds * 10),
    )
    direct, follow = float(np.mean(results["direct"])), float(np.mean(results["twin-follow"]))
    eval_success = float(ev["overall"]["success_rate"])
    print(f"deploy_success_direct: {direct:.3f}")
    print(f"deploy_success_twin_follow: {follow:.3f}")
    print(f"eval_success_same_policy: {eval_success:.3f}")
    print(f"deploy_vs_eval: {min(direct, follow) / max(eval_success, 1e-9):.3f}")
    print(f"latency_ms_p50: {np.percentile(latency, 50):.2f}")
    print(f"latency_ms_p99: {np.percentile(latency, 99):.2f}")
    valid = [s for s in stalls if s is not None]
    print(f"stall_stop_periods: {max(valid) if len(valid) == len(stalls) else float('nan'):.2f}")
    print(f"twin_robot_divergence_p99_rad: {np.percentile(divergence, 99):.4f}")
    print(
        f"# episodes per mode: {len(results['direct'])}, ticks: {len(latency)}, "
        f"stalls: {[round(s, 2) if s is not None else None for s in stalls]}, "
        f"elapsed {time.time() - t0:.0f} s (shared 2-core machine: timings are noisy)"
    )


if __name__ == "__main__":
    main()
