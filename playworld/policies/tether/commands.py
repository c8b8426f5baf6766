"""CLI of Tether (registered in playworld/cli.py):

playworld play --demos DIR --store STORE (--episodes N | --hours H) [--profile sim_panda]
playworld tether library --store STORE --out DIR [--per-task 5] [--tasks all]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from playworld.errors import PlayworldError

tether_app = typer.Typer(help="Tether: demo libraries for keypoint warping.", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
    raise typer.Exit(2) from None


def play_command(
    demos: Annotated[Path, typer.Option(help="A tether library folder (grows with successes).")],
    store: Annotated[str, typer.Option(help="Play store: created, or appended to.")],
    episodes: Annotated[int | None, typer.Option(help="Attempts to make.")] = None,
    hours: Annotated[float | None, typer.Option(help="Wall-clock hours to play.")] = None,
    max_steps: Annotated[int, typer.Option(help="Control steps per attempt.")] = 150,
    seed: Annotated[int, typer.Option(help="Seed of the task, demo and reset draws.")] = 0,
    profile: Annotated[str, typer.Option(help="Sim robot profile (e.g. sim_panda_wide).")] = (
        "sim_panda"
    ),
    cameras: Annotated[str, typer.Option(help="Twin cameras to record, comma-separated.")] = "",
    keypoints: Annotated[
        str, typer.Option(help="privileged (the twin's sites) or perceived (open3d, depth).")
    ] = "privileged",
) -> None:
    """Autonomous functional play: warp demos to practise the feasible tasks, judge, learn.

    Ctrl-C stops after discarding the attempt in flight; every committed attempt stays.
    """
    import playworld.sim  # noqa: F401 - the headless GL backend before mujoco loads
    from playworld.policies.tether.play import PlayConfig, play

    def progress(a: dict) -> None:
        rate = 3600.0 * a["attempts"] / max(a["wall_s"], 1e-9)
        typer.echo(
            f"attempt {a['attempts']}: {a['task']} with {a['demo']} -> "
            f"{'success' if a['success'] else 'failed (' + str(a['reason']) + ')'} | "
            f"successes {a['successes']}/{a['attempts']}, library +{a['added']}, "
            f"{rate:.0f} attempts/h wall, twin time {a['twin_s']:.0f} s"
        )

    try:
        config = PlayConfig(
            episodes=episodes,
            hours=hours,
            max_steps=max_steps,
            seed=seed,
            profile=profile,
            cameras=tuple(c for c in cameras.split(",") if c),
            keypoints=keypoints,
        )
        summary = play(demos, store, config, on_attempt=progress)
    except PlayworldError as exc:
        _fail(exc)
    typer.echo(
        f"played {summary['attempts']} attempts ({summary['successes']} successes) into "
        f"{summary['store']}; library {summary['library']} now holds {summary['library_demos']} "
        f"demos; {summary['attempts_per_hour_wall']:.0f} attempts/h wall, "
        f"{summary['attempts_per_hour_twin']:.0f} attempts/h twin time"
    )


@tether_app.command("library")
def library_command(
    store: Annotated[str, typer.Option(help="A store with labelled successful tasks.")],
    out: Annotated[Path, typer.Option(help="The library folder to write.")],
    per_task: Annotated[int, typer.Option(help="At most this many demos per task.")] = 5,
    tasks: Annotated[str, typer.Option(help="'all' or comma-separated task names.")] = "all",
) -> None:
    """Build a tether library from a store's successful labelled tasks (autoplay, teleop, play)."""
    import playworld.sim  # noqa: F401
    from playworld.policies.tether.library import demos_from_store
    from playworld.policies.tether.policy import TetherPolicy
    from playworld.sim.tasks import resolve_tasks

    try:
        names = resolve_tasks(tasks)
        demos = demos_from_store(store, names, per_task)
        if not demos:
            raise PlayworldError(f"expected successful labelled tasks in {store}, found none")
        TetherPolicy.from_demos(demos).save(out)
    except PlayworldError as exc:
        _fail(exc)
    by_task: dict[str, int] = {}
    for d in demos:
        by_task[d.info.task] = by_task.get(d.info.task, 0) + 1
    typer.echo(
        f"wrote {out}: {len(demos)} demos ({', '.join(f'{t} {n}' for t, n in by_task.items())})"
    )
