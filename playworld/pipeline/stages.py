"""The stages of the demo (`playworld.pipeline.demo`): each takes the shared `Context`, writes
its files under the run folder in the layout `playworld report` reads, prints its figures as
measured, and returns them as a JSON-ready dict.

    STAGES = {"play": stage_play, "world": stage_world, ..., "report": stage_report}
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

import playworld.sim  # noqa: F401  (the headless GL backend before mujoco loads)
from playworld.errors import PlayworldError

WORLD_MODEL = {"kind": "state_diffusion", "history": 4, "horizon": 16, "sample_steps": 3}
DEPLOY_PROFILE = "rosbridge_panda"
SERVE_TIMEOUT_S = 60.0


class StageFailed(PlayworldError):
    """A stage ran but its check failed (the message says which)."""


# -- 1. play --------------------------------------------------------------------------------
def stage_play(ctx: Any) -> dict[str, Any]:
    """autonomous play in the twin, store info, an exact replay check and a video"""
    from playworld.collection.autoplay import AutoplayConfig, autoplay_parallel
    from playworld.collection.replay import replay_episode
    from playworld.datasets import PlayStore
    from playworld.datasets.maintenance import info
    from playworld.datasets.summary import print_info
    from playworld.hardware.profiles import load_profile

    c = ctx.config
    say = ctx.say
    played = autoplay_parallel(
        ctx.path("play.zarr"), AutoplayConfig(seed=c.seed, cameras=()), c.play_steps, c.play_workers
    )
    hz = load_profile(AutoplayConfig().profile).fps  # the profile owns the rate
    say(
        f"      state-only play: {played['episodes']} episodes, {played['steps']} steps "
        f"({played['steps'] / hz / 60:.1f} min of twin time) in {played['elapsed_s']:.0f} s "
        f"over {c.play_workers} player(s), as fast as the CPU allows"
    )
    cam = AutoplayConfig(
        seed=c.seed + 1000,
        cameras=("front", "wrist"),
        height=c.camera_size[0],
        width=c.camera_size[1],
        episode_steps=c.camera_steps,
        realtime=True,
    )
    camera_store = ctx.path("camera", "play.zarr")
    autoplay_parallel(camera_store, cam, c.camera_steps, 1)
    print_info(info(str(ctx.path("play.zarr"))))
    with PlayStore.open(camera_store) as store:
        loop = store.episode_metadata(0)["loop"]
        say(
            f"      camera episode, paced at {store.fps:g} Hz: rate ratio {loop['rate_ratio']:.3f}, "
            f"jitter p99 {loop['jitter_p99_ms']:.1f} ms, dropped frames {loop['dropped_frames']}"
        )
        replay = replay_episode(store, 0)
        verdict = "reproduces" if replay.ok else "DOES NOT reproduce"
        say(
            f"      replay of that episode in a fresh twin: {replay.steps} steps, largest state "
            f"difference {replay.max_state_error:.3g}: {verdict} the recorded states"
        )
        if not replay.ok:
            raise StageFailed(
                f"the replay of {camera_store} episode 0 differs from the recording by "
                f"{replay.max_state_error:.3g}"
            )
        video = write_camera_video(store, 0, ctx.path("camera", "episode_0.mp4"))
    with PlayStore.open(ctx.path("play.zarr")) as store:
        segs = [s for i in range(len(store)) for s in store.episode_metadata(i)["segments"]]
    return {
        "episodes": played["episodes"],
        "steps": played["steps"],
        "segments": len(segs),
        "scripted_segment_success": sum(s["success"] for s in segs) / max(1, len(segs)),
        "camera_rate_ratio": loop["rate_ratio"],
        "camera_jitter_p99_ms": loop["jitter_p99_ms"],
        "replay_max_state_error": replay.max_state_error,
        "video": str(video),
    }


def write_camera_video(store: Any, index: int, path: Path, scale: int = 2) -> Path:
    """H.264 mp4 of one episode's cameras side by side, upscaled `scale` times (nearest)."""
    from playworld.video import write_mp4

    cams = [k for k, f in store.features.items() if f.is_image]
    ep = store.episode(index)
    frames = np.concatenate([ep[c][:] for c in cams], axis=2)  # (T, H, W * n, 3)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    return write_mp4(path, frames, store.fps)


# -- 2. world model -------------------------------------------------------------------------
def stage_world(ctx: Any) -> dict[str, Any]:
    """train the state world model, score it on held-out episodes, imagine one rollout"""
    from playworld.datasets import PlayStore
    from playworld.world_models.build import load_world_model, train_world_model
    from playworld.world_models.commands import imagine_command
    from playworld.world_models.data import split_of
    from playworld.world_models.score import score_state, write_report

    c = ctx.config
    store, out = str(ctx.path("play.zarr")), ctx.path("world_model")
    run = {
        "model": dict(WORLD_MODEL),
        "data": {"val_ratio": 0.2, "split_seed": c.seed},
        "train": {
            "steps": c.world_steps,
            "minutes": c.world_minutes,
            "batch_size": 256,
            "lr": 1e-3,
            "warmup_steps": 50,
            "ema_decay": 0.995,  # a short run: the EMA should follow within ~200 steps
            "threads": 1,  # one thread beats two spinning ones on a shared machine
            "keep_checkpoints": 1,  # ~40 MB each (weights, EMA, optimiser)
            "seed": c.seed,
            "progress": c.progress,
        },
    }
    result = train_world_model(run, store, out)
    ctx.say(
        f"      trained {WORLD_MODEL['kind']} to step {result.step} ({result.stopped}) in "
        f"{result.seconds:.0f} s, {result.samples_per_s:.0f} samples/s"
    )
    model = load_world_model(out)
    score = score_state(model, store, split="val", val_ratio=0.2, seed=c.seed, samples=4)
    for line in write_report(score, out):
        ctx.say("      " + line)
    with PlayStore.open(store) as s:
        val = split_of(len(s), "val", 0.2, c.seed)
        episode = int(val[0]) if len(val) else 0
    imagine_command(
        model=str(out), store=store, episode=episode, out=str(out), start=None, steps=64, seed=0
    )
    return {
        "kind": WORLD_MODEL["kind"],
        "steps": result.step,
        "train_s": round(result.seconds, 1),
        "horizons": score["horizons"],
        "rmse": score["rmse"],
        "imagined_episode": episode,
    }


# -- 3. policies ----------------------------------------------------------------------------
def stage_policies(ctx: Any) -> dict[str, Any]:
    """train GCBC on play and build a Tether library from play's successful tasks"""
    from playworld.policies.tether.library import demos_from_store
    from playworld.policies.tether.policy import TetherPolicy
    from playworld.policies.train import train_policy
    from playworld.sim.tasks import resolve_tasks

    c = ctx.config
    store = str(ctx.path("play.zarr"))
    gcbc, result = train_policy(
        "gcbc",
        store,
        ctx.path("policies", "gcbc"),
        minutes=c.policy_minutes,
        steps=c.policy_steps,
        config={"train": {"seed": c.seed}},
        progress=c.progress,
    )
    ctx.say(
        f"      gcbc: {result.step} steps ({result.stopped}) in {result.seconds:.0f} s, "
        f"final loss {gcbc.info['final_loss']:.3f}"
    )
    demos = demos_from_store(store, resolve_tasks("all"), c.tether_per_task)
    if not demos:
        raise StageFailed(f"expected successful labelled tasks in {store}, found none")
    TetherPolicy.from_demos(demos).save(ctx.path("policies", "tether"))
    per_task: dict[str, int] = {}
    for d in demos:
        per_task[d.info.task] = per_task.get(d.info.task, 0) + 1
    ctx.say(
        f"      tether library: {len(demos)} demos over {len(per_task)} tasks "
        f"(at most {c.tether_per_task} per task)"
    )
    return {
        "gcbc_steps": result.step,
        "gcbc_train_s": round(result.seconds, 1),
        "gcbc_final_loss": gcbc.info["final_loss"],
        "tether_demos": per_task,
    }


# -- 4. evaluation --------------------------------------------------------------------------
def policies_to_evaluate(ctx: Any) -> dict[str, tuple[str, str]]:
    """name -> (policy spec, goal mode): the scripted experts as reference, then the learned."""
    return {
        "scripted": ("scripted", "task"),
        "gcbc": (str(ctx.path("policies", "gcbc", "policy")), "expert"),
        "tether": (str(ctx.path("policies", "tether")), "task"),
    }


def stage_eval(ctx: Any) -> dict[str, Any]:
    """evaluate each policy in the twin: success per task with 95% Wilson intervals"""
    from playworld.collection.eval_report import run_eval_cli
    from playworld.policies import make_policy

    c = ctx.config
    results = {}
    for name, (spec, goals) in policies_to_evaluate(ctx).items():
        out = ctx.path("eval", name)
        run_eval_cli(
            functools.partial(make_policy, spec),
            name,
            tasks=",".join(c.eval_tasks),
            episodes=c.eval_episodes,
            workers=c.eval_workers,
            out=out,
            seed=c.seed,
            chains=c.eval_chains,
            videos=0 if name == "scripted" else c.eval_videos,
            goals=goals,
        )
        report = json.loads((out / "eval.json").read_text())
        o = report["overall"]
        results[name] = {
            "spec": spec,
            "goals": goals,
            "success_rate": o["success_rate"],
            "ci95": o["ci95"],
            "episodes": o["episodes"],
            "tasks": {t: r["success_rate"] for t, r in report["tasks"].items()},
            "chain_avg_len": (report.get("chains") or {}).get("avg_len"),
        }
    ctx.say(
        "      overall success: "
        + ", ".join(
            f"{n} {r['success_rate']:.0%} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
            for n, r in results.items()
        )
    )
    return results


# -- 5. deployment --------------------------------------------------------------------------
def best_deployable(evals: dict[str, Any]) -> tuple[str, str]:
    """(policy name, task): the learned policy with the highest overall success among those
    `deploy` can reset with a task name (goal-conditioned ones need a goal observation), and
    its best task (the first of the evaluation's order on ties)."""
    from playworld.policies import make_policy

    learned = {
        n: r
        for n, r in evals.items()
        if n != "scripted" and not getattr(make_policy(r["spec"]), "goal_conditioned", False)
    }
    pool = learned or {n: r for n, r in evals.items() if n == "scripted"}
    if not pool:
        raise StageFailed("expected a policy that takes a task name to deploy, found none")
    name = max(pool, key=lambda n: pool[n]["success_rate"])
    tasks = pool[name]["tasks"]
    return name, max(tasks, key=lambda t: tasks[t])


def serve_twin(seed: int) -> tuple[subprocess.Popen, int]:
    """`playworld twin serve --port 0` in a child process; returns it and the port it bound."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "playworld", "twin", "serve", "--port", "0", "--seed", str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first: list[str] = []  # its first line, read in a thread to bound the wait
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(SERVE_TIMEOUT_S)
    line = first[0] if first else ""
    match = re.search(r"serving the twin at ws://[^:]+:(\d+)", line)
    if match is None:
        proc.kill()
        if first:  # it answered with something else (an error): show all of it
            line += proc.stdout.read()
        said = " ".join(line.split())[-300:] or f"no output in {SERVE_TIMEOUT_S:.0f} s"
        raise StageFailed(f"`playworld twin serve` did not start: {said}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # never block its logging
    return proc, int(match.group(1))


def stage_deploy(ctx: Any) -> dict[str, Any]:
    """deploy the best learned policy over the ROS bridge to `twin serve`, twin-follow mode"""
    from playworld.datasets import PlayStore
    from playworld.policies.deploy_command import run_deploy

    c = ctx.config
    evals = ctx.results["eval"]
    name, task = best_deployable(evals)
    ctx.say(
        f"      deploying {name} ({evals[name]['success_rate']:.0%} overall in eval) on {task} "
        f"to a `playworld twin serve` child process, twin-follow, {c.deploy_episodes} episode(s)"
    )
    proc, port = serve_twin(c.seed)
    try:
        report = run_deploy(
            evals[name]["spec"],
            DEPLOY_PROFILE,
            "twin-follow",
            task,
            c.deploy_episodes,
            ctx.path("deploy", "deploy.zarr"),
            c.deploy_seconds,
            port,
            None,
            c.seed,
            None,
            None,
            ctx.path("deploy"),
            say=lambda line: ctx.say("      " + line),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with PlayStore.open(ctx.path("deploy", "deploy.zarr")) as store:
        if len(store) and any(f.is_image for f in store.features.values()):
            write_camera_video(store, 0, ctx.path("deploy", "episode_0.mp4"))
    keys = ("success_rate", "latency_ms_p50", "latency_ms_p99", "divergence_rad_p99")
    figures = {k: report.get(k) for k in keys}
    ctx.say("      " + ", ".join(f"{k} {_fmt(v)}" for k, v in figures.items()))
    return {"policy": name, "task": task, "episodes": len(report["episodes"]), **figures}


def _fmt(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


# -- 6. report ------------------------------------------------------------------------------
def stage_report(ctx: Any) -> dict[str, Any]:
    """build the HTML report of the run folder"""
    from playworld.pipeline.report import build_report, links

    page = build_report(ctx.out, title="playworld demo")
    missing = [link for link in links(page.read_text()) if not (ctx.out / link).is_file()]
    if missing:
        raise StageFailed(f"the report links files that do not exist: {missing[:3]}")
    ctx.say(f"      wrote {page}: open it in a browser (it works offline)")
    return {"report": str(page)}


STAGES = {
    "play": stage_play,
    "world": stage_world,
    "policies": stage_policies,
    "eval": stage_eval,
    "deploy": stage_deploy,
    "report": stage_report,
}
