"""CLI of the collection package: `playworld record` and `playworld autoplay`.

    playworld record --robot sim --teleop keyboard --store play.zarr [--episode-s 30
        [--reset-s 5]] [--resume] [--task "open the drawer"]
    playworld record --robot rosbridge_panda --teleop replay:src.zarr[:0] --episodes 2 --store out.zarr
    playworld autoplay --store play.zarr --minutes 10 [--tasks all|a,b|a:2,b:1] [--seed 0]
        [--noise 0.1] [--cameras front,wrist|none] [--workers 2] [--realtime]

Registered in `playworld.cli` as plain commands (`app.command("record")(record_command)`).
"""

from __future__ import annotations

from typing import Annotated

import typer


def record_command(
    store: Annotated[str, typer.Option(help="Store path (created, or --resume to append).")],
    robot: Annotated[
        str, typer.Option(help="Robot: sim, rosbridge, a profile name or a YAML path.")
    ] = "sim",
    teleop: Annotated[
        str,
        typer.Option(
            help="Teleop: keyboard, spacemouse, gamepad, a YAML path, or replay:STORE[:EPISODE]."
        ),
    ] = "keyboard",
    fps: Annotated[
        float | None,
        typer.Option(
            help="Control and recording rate, Hz: the robot profile's (checked if given)."
        ),
    ] = None,
    episodes: Annotated[
        int | None,
        typer.Option(help="Record this many episodes, each starting by itself, then exit."),
    ] = None,
    episode_s: Annotated[
        float | None, typer.Option(help="Save each episode when it reaches this length, s.")
    ] = None,
    reset_s: Annotated[
        float | None,
        typer.Option(help="After each full-length episode: reset for this long, then go on, s."),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Append to an existing store (checked).")] = False,
    task: Annotated[str, typer.Option(help="Task label stored with every episode.")] = "",
    notes: Annotated[str, typer.Option(help="Operator notes stored with every episode.")] = "",
) -> None:
    """Teleoperate and record episodes: Enter starts, v saves, x re-records, q quits."""
    from playworld.collection.record import RecordConfig, RecordSession

    config = RecordConfig(
        store=store,
        robot=robot,
        teleop=teleop,
        fps=fps,
        episode_s=episode_s,
        episodes=episodes,
        reset_s=reset_s,
        resume=resume,
        task=task,
        notes=notes,
    )
    session = RecordSession(config)
    session.run()
    if session.interrupted:
        raise typer.Exit(130)


def autoplay_command(
    store: Annotated[str, typer.Option(help="New store path (must not exist).")],
    minutes: Annotated[float, typer.Option(help="Minutes of play (twin time).")] = 10.0,
    tasks: Annotated[str, typer.Option(help="Task mix: all, a,b or weighted a:2,b:1.")] = "all",
    seed: Annotated[int, typer.Option(help="Seed of the players.")] = 0,
    noise: Annotated[
        float, typer.Option(help="Action noise, std as a fraction of the largest step.")
    ] = 0.0,
    cameras: Annotated[
        str, typer.Option(help="Twin cameras to record: front,wrist | front | none.")
    ] = "front,wrist",
    height: Annotated[int, typer.Option(help="Camera image height, pixels.")] = 96,
    width: Annotated[int, typer.Option(help="Camera image width, pixels.")] = 128,
    episode_steps: Annotated[
        int, typer.Option(help="Minimum steps per episode (whole task segments).")
    ] = 200,
    workers: Annotated[int, typer.Option(help="Parallel players (processes), merged.")] = 1,
    realtime: Annotated[
        bool, typer.Option(help="Pace the loop at the control rate (else as fast as possible).")
    ] = False,
) -> None:
    """Autonomous play in the twin: chain feasible tasks with scripted experts, label segments."""
    import playworld.sim  # noqa: F401  (the headless GL backend)
    from playworld.collection.autoplay import AutoplayConfig, autoplay_parallel

    names, weights = AutoplayConfig.parse_mix(tasks)
    cams = () if cameras.strip() in ("", "none") else tuple(c.strip() for c in cameras.split(","))
    config = AutoplayConfig(
        tasks=names,
        weights=weights,
        seed=seed,
        noise=noise,
        cameras=cams,
        height=height,
        width=width,
        episode_steps=episode_steps,
        realtime=realtime,
    )
    from playworld.hardware.profiles import load_profile

    hz = load_profile(config.profile).fps  # the profile owns the rate
    steps = int(round(minutes * 60 * hz))
    out = autoplay_parallel(store, config, steps, workers=workers)
    typer.echo(
        f"wrote {store}: {out['episodes']} episodes, {out['steps']} steps "
        f"({out['steps'] / hz / 60:.1f} min of play) in {out['elapsed_s']:.0f} s, "
        f"{out['resets']} resets"
    )
