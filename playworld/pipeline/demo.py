"""The whole pipeline on the built-in twin (`make demo`), each stage timed and printed.

    python -m playworld.pipeline.demo --out out/demo [--quick] [--seed 0]

Stages (`playworld.pipeline.stages`), all in this process except the served twin:

1. play       autonomous play: state-only into OUT/play.zarr (fast, 2 players), and one
              short episode paced at the control rate with both cameras into
              OUT/camera/play.zarr; store info, a replay check of that episode in a fresh
              twin (exact), its video OUT/camera/episode_0.mp4 (H.264)
2. world      the state world model (EDM diffusion) for a short budget, scored on held-out
              episodes (error vs horizon) and one rollout imagined against the recorded twin
              states: OUT/world_model/{score.json,score.png,imagined.png}
3. policies   GCBC on play's hindsight windows (OUT/policies/gcbc/policy) and a Tether
              library of at most 5 demos per task (OUT/policies/tether)
4. eval       each policy (scripted as reference) in the twin on a few tasks: per-task success
              with Wilson intervals, OUT/eval/<policy>/eval.json
5. deploy     the best task-conditioned policy over the ROS bridge to a `playworld twin serve`
              child process in twin-follow mode, recorded: OUT/deploy/{deploy.json,deploy.zarr}
6. report     `build_report(OUT)`: OUT/report.html

Figures are whatever this run measures on its short budget. Exit 0 when every stage ran; a
failing stage ends the demo with one `error: ...` line (exit 1; the traceback goes to
OUT/demo_error.log).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playworld.errors import ConfigError

OUTPUTS = ("play.zarr", "camera", "world_model", "policies", "eval", "deploy")
FILES = ("demo.json", "demo_error.log", "report.html")
OLD_DEMO_FILES = ("episode_0.mp4", "summary.png", "summary.json")  # the demo before the pipeline
EVAL_TASKS = ("turn_on_light", "open_drawer", "slide_door_left", "lift_red_block", "close_drawer")


@dataclass(frozen=True)
class DemoConfig:
    """Budgets of the demo. The defaults take ~6 minutes on 2 shared cores; `quick()` a
    fraction of a minute (tests).

    `play_steps`: state-only steps of autonomous play (10 Hz twin time) over `play_workers`
    players; `camera_steps`: steps of the paced camera episode (`camera_size` (H, W));
    `world_minutes` / `world_steps`: the world model's training budget (whichever ends first);
    `policy_minutes` / `policy_steps`: GCBC's; `tether_per_task`: demos per task in the
    library; `eval_tasks` x `eval_episodes`: the evaluation, plus `eval_chains` CALVIN chains of
    5 tasks per policy (0: none); `eval_videos`: videos per task of each learned policy;
    `deploy_episodes` of at most `deploy_seconds` each.
    """

    play_steps: int = 6000
    play_workers: int = 2
    camera_steps: int = 120
    camera_size: tuple[int, int] = (96, 128)
    world_minutes: float = 1.5
    world_steps: int = 4000
    policy_minutes: float = 2.5
    policy_steps: int = 50000
    tether_per_task: int = 5
    eval_tasks: tuple[str, ...] = EVAL_TASKS
    eval_episodes: int = 10
    eval_workers: int = 2
    eval_videos: int = 1
    eval_chains: int = 5
    deploy_episodes: int = 2
    deploy_seconds: float = 15.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        counts = {k: getattr(self, k) for k in ("play_steps", "camera_steps", "eval_episodes")}
        counts |= {k: getattr(self, k) for k in ("play_workers", "eval_workers", "world_steps")}
        counts |= {"policy_steps": self.policy_steps, "deploy_episodes": self.deploy_episodes}
        bad = {k: v for k, v in counts.items() if v < 1}
        if bad:
            raise ConfigError(f"expected demo counts >= 1, found {bad}")
        if self.eval_chains < 0 or self.eval_videos < 0 or self.tether_per_task < 1:
            raise ConfigError("expected eval_chains, eval_videos >= 0 and tether_per_task >= 1")
        if not self.eval_tasks:
            raise ConfigError("expected at least one evaluation task, found none")
        from playworld.sim.tasks import resolve_tasks

        resolve_tasks(list(self.eval_tasks))  # an unknown name fails here, not minutes later

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """Tiny budgets: every stage runs, nothing learns much (tests, a smoke check)."""
        tiny = dict(
            play_steps=1200,
            play_workers=1,
            camera_steps=30,
            camera_size=(48, 64),
            world_minutes=0.1,
            world_steps=30,
            policy_minutes=0.1,
            policy_steps=30,
            tether_per_task=2,
            eval_tasks=("turn_on_light", "open_drawer"),
            eval_episodes=2,
            eval_workers=1,
            eval_chains=1,
            deploy_episodes=1,
            deploy_seconds=6.0,
            progress=False,
        )
        return cls(**{**tiny, **changes})


@dataclass
class Context:
    """What the stages share: the run folder, the config, and each stage's results."""

    out: Path
    config: DemoConfig
    results: dict[str, Any] = field(default_factory=dict)
    say: Any = print

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)


def run(out: str | Path, config: DemoConfig, say: Any = print) -> dict[str, Any]:
    """Run every stage into a fresh `out`; returns {stage: results} plus `timings_s`.

    Raises whatever a stage raises (`main` turns it into one line).
    """
    from playworld.pipeline.stages import STAGES

    out = Path(out)
    for old in (*OUTPUTS, "report_assets"):  # only what a demo writes: `out` may hold more
        shutil.rmtree(out / old, ignore_errors=True)
    for old in (*FILES, *OLD_DEMO_FILES):
        if (out / old).is_file():
            (out / old).unlink()
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(out, config, say=say)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    for i, (name, stage) in enumerate(STAGES.items(), 1):
        say(f"[{i}/{len(STAGES)}] {name}: {(stage.__doc__ or '').strip().splitlines()[0]}")
        t0 = time.perf_counter()
        ctx.results[name] = stage(ctx)
        timings[name] = round(time.perf_counter() - t0, 1)
        say(f"      {name} done in {timings[name]:.0f} s")
    timings["total"] = round(time.perf_counter() - start, 1)
    summary = {**ctx.results, "timings_s": timings, "config": dataclasses.asdict(config)}
    (out / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    say("wall time per stage (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke check)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        config = (DemoConfig.quick if args.quick else DemoConfig)(seed=args.seed)
        run(args.out, config)
    except KeyboardInterrupt:
        print("error: demo interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # one line per failure; the traceback is kept in a file
        log = args.out / "demo_error.log"
        stage = _failed_stage()
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            where = f" (traceback in {log})"
        except OSError:
            where = ""
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: demo stage {stage} failed: {message}{where}", file=sys.stderr)
        raise SystemExit(1) from None


def _failed_stage() -> str:
    """The stage whose function the current exception came out of."""
    from playworld.pipeline import stages

    tb = sys.exc_info()[2]
    name = "setup"
    while tb is not None:
        fn = tb.tb_frame.f_code.co_name
        if tb.tb_frame.f_code.co_filename == stages.__file__ and fn.startswith("stage_"):
            name = fn.removeprefix("stage_")
        tb = tb.tb_next
    return name


if __name__ == "__main__":
    main()
