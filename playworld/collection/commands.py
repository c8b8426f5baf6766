"""CLI of the collection package: `playworld record`, `playworld autoplay`, `playworld twin serve`.

    playworld record --robot sim --teleop keyboard --store play.zarr [--episode-s 30
        [--reset-s 5]] [--resume] [--task "open the drawer"] [--view] [--view-save run.rrd]
    playworld record --robot rosbridge_panda --teleop replay:src.zarr[:0] --episodes 2 --store out.zarr
    playworld autoplay --store play.zarr --minutes 10 [--tasks all|a,b|a:2,b:1] [--seed 0]
        [--noise 0.1] [--cameras front,wrist|none] [--workers 2] [--realtime] [--view]
    playworld twin serve [--port 9090] [--host 127.0.0.1] [--profile rosbridge_panda]
        [--latency-ms 0 --jitter-ms 0 --drop 0] [--pose-noise-m 0 ...]

`--view` logs the running loop to rerun (`playworld.viewer.LiveView`) and serves rerun's web
viewer from this machine (the URL is printed; after the run it stays up until Ctrl-C);
`--view-save FILE.rrd` writes the live view to a file.

Registered in `playworld.cli` as plain commands (`app.command("record")(record_command)`), and
`twin_app` as the `twin` group. The twin server runs the same `ControlLoop` as record, so it lives
here, above `sim`.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from playworld.errors import PlayworldError

#: The live view (`--view`) lives in `playworld.viewer`, a layer above collection: named here as
#: a plugin and loaded only when asked for, never imported.
LIVE_VIEW_PLUGIN = "playworld.viewer.live"

ViewOption = Annotated[
    bool, typer.Option("--view", help="Show the running loop in rerun's web viewer (URL printed).")
]
ViewSaveOption = Annotated[
    str | None, typer.Option(help="Write the live view to this .rrd file.", show_default=False)
]


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
    view: ViewOption = False,
    view_save: ViewSaveOption = None,
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
    live = _live_view(view, view_save)
    session = RecordSession(config, view=live)
    try:
        session.run()
    except BaseException:
        if live is not None:
            live.close()
        raise
    if session.interrupted:
        if live is not None:
            live.close()
        raise typer.Exit(130)
    _finish_view(live)


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
    view: ViewOption = False,
    view_save: ViewSaveOption = None,
) -> None:
    """Autonomous play in the twin: chain feasible tasks with scripted experts, label segments."""
    import playworld.sim  # noqa: F401  (the headless GL backend)
    from playworld.collection.autoplay import AutoplayConfig, autoplay_parallel
    from playworld.errors import ConfigError

    if (view or view_save) and workers != 1:
        raise ConfigError(
            f"--view shows one player's loop; pass --workers 1 with it (found --workers {workers})"
        )

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
    live = _live_view(view, view_save)
    try:
        out = autoplay_parallel(store, config, steps, workers=workers, view=live)
    except BaseException:
        if live is not None:
            live.close()
        raise
    typer.echo(
        f"wrote {store}: {out['episodes']} episodes, {out['steps']} steps "
        f"({out['steps'] / hz / 60:.1f} min of play) in {out['elapsed_s']:.0f} s, "
        f"{out['resets']} resets"
    )
    _finish_view(live)


def _live_view(web: bool, save: str | None) -> Any:
    """The LiveView of `--view` / `--view-save`, or None (its URL printed)."""
    if not (web or save):
        return None
    plugin = importlib.import_module(LIVE_VIEW_PLUGIN)
    return plugin.live_view_from_options(web, save, echo=typer.echo)


def _finish_view(view: Any) -> None:
    if view is not None:
        importlib.import_module(LIVE_VIEW_PLUGIN).finish_view(view, echo=typer.echo)


twin_app = typer.Typer(
    help="The MuJoCo twin as a ROS arm (rosbridge v2 over websocket).", no_args_is_help=True
)


@twin_app.command("serve")
def twin_serve(
    port: Annotated[int, typer.Option(help="TCP port of the rosbridge websocket.")] = 9090,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    profile: Annotated[
        str, typer.Option(help="Robot profile whose topics and limits to serve.")
    ] = "rosbridge_panda",
    twin: Annotated[str | None, typer.Option(help="TwinConfig YAML (default: built-in).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first reset.")] = 0,
    latency_ms: Annotated[
        float, typer.Option(help="Rehearsal: delay of every message, each way (ms).")
    ] = 0.0,
    jitter_ms: Annotated[
        float, typer.Option(help="Rehearsal: uniform +- jitter on that delay (ms).")
    ] = 0.0,
    drop: Annotated[
        float, typer.Option(help="Rehearsal: ratio of topic messages lost, each way.")
    ] = 0.0,
    pose_noise_m: Annotated[
        float, typer.Option(help="Perception stream: position noise (m, Gaussian sigma).")
    ] = 0.0,
    pose_noise_rad: Annotated[
        float, typer.Option(help="Perception stream: rotation noise (rad, Gaussian sigma).")
    ] = 0.0,
    pose_dropout: Annotated[
        float, typer.Option(help="Perception stream: chance an object goes undetected.")
    ] = 0.0,
) -> None:
    """Serve the twin on the rosbridge protocol until Ctrl-C."""
    from playworld.collection.twin_server import TwinServer
    from playworld.hardware.rosbridge.netem import NetworkConfig
    from playworld.sim.perception import PoseNoise

    try:
        network = NetworkConfig(latency_ms=latency_ms, jitter_ms=jitter_ms, drop=drop, seed=seed)
        noise = PoseNoise(pose_noise_m, pose_noise_rad, pose_dropout, seed=seed)
        server = TwinServer(
            profile=profile,
            host=host,
            port=port,
            twin=twin,
            seed=seed,
            network=network,
            pose_noise=noise,
        ).start()
    except PlayworldError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    p = server.profile
    link = f"; network {server.network}" if server.network is not None else ""
    typer.echo(
        f"serving the twin at ws://{host}:{server.port} at {server.robot.fps:g} Hz (joint "
        f"states on {p['joint_state_topic']}, commands on {p['command_topic']} "
        f"[{server.command_type}]{link}); Ctrl-C to stop",
    )
    server.serve_forever()
