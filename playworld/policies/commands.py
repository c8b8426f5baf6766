"""CLI of policies: `playworld eval` and `playworld train policy` (registered in playworld/cli.py).

playworld eval --policy NAME|DIR [--tasks all] [--episodes 20] [--workers 2] [--out out/eval]
               [--goals auto|task|expert] [--goal-cache DIR]
playworld train policy --type gcbc|play-lmp|diffusion|bc-expert --store STORE --out DIR [--minutes M] [--steps N]
                       [--config FILE] [--set section.key=value ...] [--resume]
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from playworld.collection.commands import ViewOption, ViewSaveOption, _finish_view, _live_view
from playworld.errors import ConfigError, PlayworldError


def eval_command(
    policy: Annotated[
        str,
        typer.Option(
            help="A registered policy name (scripted, random, zero...) or a checkpoint folder."
        ),
    ] = "scripted",
    tasks: Annotated[str, typer.Option(help="'all' or comma-separated task names.")] = "all",
    episodes: Annotated[int, typer.Option(help="Episodes per task.")] = 20,
    workers: Annotated[
        int, typer.Option(help="Processes running episodes, this one included.")
    ] = 2,
    out: Annotated[Path, typer.Option(help="Folder for eval.json and eval.png.")] = Path(
        "out/eval"
    ),
    seed: Annotated[int, typer.Option(help="Seed; same results for any worker count.")] = 0,
    chains: Annotated[int, typer.Option(help="Also run this many chains of 5 tasks.")] = 0,
    max_steps: Annotated[int, typer.Option(help="Control steps per episode.")] = 100,
    videos: Annotated[int, typer.Option(help="Front-camera MP4 videos per task.")] = 0,
    profile: Annotated[
        str, typer.Option(help="Sim robot profile: the control rate, limits and twin.")
    ] = "sim_panda",
    goals: Annotated[
        str,
        typer.Option(
            help="What the policy is reset with: task (its name), expert (the observation a "
            "scripted expert reaches from the same start), auto (expert for goal-conditioned "
            "policies)."
        ),
    ] = "auto",
    goal_cache: Annotated[
        Path | None,
        typer.Option(
            help="Folder keeping expert goals across runs on the same seeds (each expert "
            "rollout once when several policies are evaluated); a fresh folder per playworld "
            "version."
        ),
    ] = None,
    view: ViewOption = False,
    view_save: ViewSaveOption = None,
) -> None:
    """Evaluate a policy on the twin's tasks: success per task with 95% Wilson intervals."""
    import playworld.sim  # noqa: F401 - selects the headless GL backend before mujoco loads
    from playworld.collection.eval_report import run_eval_cli
    from playworld.policies import make_policy

    try:
        # a bad name or folder fails here, in one line, before any worker
        built = make_policy(policy)
        if goals == "auto":
            goals = "expert" if getattr(built, "goal_conditioned", False) else "task"
        factory = functools.partial(make_policy, policy)
        if (view or view_save) and workers > 1:
            raise ConfigError(
                f"expected --workers 1 with --view/--view-save (one loop to show), found {workers}"
            )
        live = _live_view(view, view_save)
        code = run_eval_cli(
            factory,
            policy,
            tasks,
            episodes,
            workers,
            out,
            seed,
            chains,
            max_steps,
            videos,
            profile,
            goals,
            view=live,
            goal_cache=goal_cache,
        )
        _finish_view(live)
    except PlayworldError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def train_policy_command(
    type_: Annotated[
        str,
        typer.Option(
            "--type",
            help="Policy type: gcbc, play-lmp, diffusion or bc-expert.",
            show_default=False,
        ),
    ],
    store: Annotated[str, typer.Option(help="Play store path or URL.", show_default=False)],
    out: Annotated[
        Path,
        typer.Option(help="Output folder: policy/, checkpoints/, logs/.", show_default=False),
    ],
    minutes: Annotated[float | None, typer.Option(help="Wall-clock budget.")] = None,
    steps: Annotated[int | None, typer.Option(help="Override train.steps.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Run config YAML (policy / data / train sections).")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="section.key=value override.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
    threads: Annotated[int, typer.Option(help="torch threads (0: torch's choice).")] = 1,
) -> None:
    """Train a goal-conditioned policy on a play store's hindsight windows."""
    from playworld.training import apply_overrides, load_yaml

    try:
        from playworld.policies.train import train_policy

        run = apply_overrides(load_yaml(config) if config else {}, list(overrides or []))
        policy, result = train_policy(
            type_,
            store,
            out,
            minutes=minutes,
            steps=steps,
            config=run,
            resume=resume,
            threads=threads,
        )
    except PlayworldError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"trained {type_} to step {result.step} ({result.stopped}) in {result.seconds:.0f} s, "
        f"loss {policy.info['final_loss']:.3f}; policy saved to {out / 'policy'}"
    )
