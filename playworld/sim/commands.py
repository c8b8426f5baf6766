"""CLI of the twin: `playworld eval` and `playworld twin serve` (registered in playworld/cli.py).

playworld twin serve [--port 9090] [--host 127.0.0.1] [--profile rosbridge_panda]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from playworld.errors import PlayworldError

twin_app = typer.Typer(
    help="The MuJoCo twin as a ROS arm (rosbridge v2 over websocket).", no_args_is_help=True
)


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
) -> None:
    """Serve the twin on the rosbridge protocol until Ctrl-C."""
    from playworld.sim.twin_server import TwinServer

    server = TwinServer(profile=profile, host=host, port=port, twin=twin, seed=seed).start()
    p = server.profile
    typer.echo(
        f"serving the twin at ws://{host}:{server.port} at {server.robot.fps:g} Hz (joint states on {p['joint_state_topic']}, "
        f"commands on {p['command_topic']} [{server.command_type}]); Ctrl-C to stop",
    )
    server.serve_forever()
