"""The `playworld eval` command (registered in playworld/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from playworld.errors import PlayworldError


def eval_command(
    policy: Annotated[
        str, typer.Option(help="Policy name (sim.evaluation.POLICIES).")
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
) -> None:
    """Evaluate a policy on the twin's tasks: success per task with 95% Wilson intervals."""
    import playworld.sim  # noqa: F401 - selects the headless GL backend before mujoco loads
    from playworld.sim.evaluation import run_eval_cli

    try:
        code = run_eval_cli(policy, tasks, episodes, workers, out, seed, chains, max_steps, videos)
    except PlayworldError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(code)
