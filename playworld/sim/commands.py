"""CLI of the twin: `playworld twin serve` (registered in playworld/cli.py).

playworld twin serve [--port 9090] [--host 127.0.0.1] [--profile rosbridge_panda]
"""

from __future__ import annotations

from typing import Annotated

import typer

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
) -> None:
    """Serve the twin on the rosbridge protocol until Ctrl-C."""
    from playworld.sim.twin_server import TwinServer

    server = TwinServer(profile=profile, host=host, port=port, twin=twin, seed=seed).start()
    p = server.profile
    typer.echo(
        f"serving the twin at ws://{host}:{server.port} (joint states on {p['joint_state_topic']}, "
        f"commands on {p['command_topic']} [{server.command_type}]); Ctrl-C to stop",
    )
    server.serve_forever()
