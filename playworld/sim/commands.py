"""CLI of the twin: `playworld twin serve` (registered in playworld/cli.py).

playworld twin serve [--port 9090] [--host 127.0.0.1] [--profile rosbridge_panda]
"""

from __future__ import annotations

from typing import Annotated

import typer

from playworld.errors import PlayworldError

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
    from playworld.hardware.rosbridge.netem import NetworkConfig
    from playworld.sim.perception import PoseNoise
    from playworld.sim.twin_server import TwinServer

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
