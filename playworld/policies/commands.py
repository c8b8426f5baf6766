"""CLI of policies: `playworld eval` (registered in playworld/cli.py).

playworld eval --policy NAME|DIR [--tasks all] [--episodes 20] [--workers 2] [--out out/eval]
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from playworld.errors import PlayworldError


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
) -> None:
    """Evaluate a policy on the twin's tasks: success per task with 95% Wilson intervals."""
    import playworld.sim  # noqa: F401 - selects the headless GL backend before mujoco loads
    from playworld.collection.eval_report import run_eval_cli
    from playworld.policies import make_policy

    try:
        make_policy(policy)  # a bad name or folder fails here, in one line, before any worker
        factory = functools.partial(make_policy, policy)
        code = run_eval_cli(
            factory, policy, tasks, episodes, workers, out, seed, chains, max_steps, videos, profile
        )
    except PlayworldError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)
