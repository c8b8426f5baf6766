"""CLI of the hardware layer (typer sub-apps, registered in `playworld.cli.SUBAPPS`).

playworld robot check PROFILE [--port N] [--seconds 1]
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

robot_app = typer.Typer(
    help="Check robots described by profiles (configs/robots/).", no_args_is_help=True
)


@robot_app.command("check")
def robot_check(
    profile: Annotated[
        str, typer.Argument(help="Profile name (configs/robots/NAME.yaml) or path.")
    ],
    port: Annotated[int | None, typer.Option(help="Override the profile's port.")] = None,
    host: Annotated[str | None, typer.Option(help="Override the profile's host.")] = None,
    seconds: Annotated[float, typer.Option(help="How long to count joint states.")] = 1.0,
    timeout: Annotated[float | None, typer.Option(help="Override the connect timeout (s).")] = None,
) -> None:
    """Connect, read joint states and cameras, measure the link latency, disconnect."""
    from playworld.hardware.profiles import load_profile, read_profile
    from playworld.hardware.robot import ROBOTS

    is_ros = read_profile(profile).get("type") == "rosbridge"
    overrides = {"port": port, "host": host, "connect_timeout": timeout} if is_ros else {}
    robot = ROBOTS.build(load_profile(profile, **overrides))
    with robot:
        obs = robot.get_observation()
        t0, stamps = time.monotonic(), set()
        while time.monotonic() - t0 < seconds:
            stamps.add(float(robot.get_observation()["t"][0]))
            time.sleep(0.005)
        typer.echo(f"robot {robot.name}: connected ({type(robot).__name__})")
        q = ", ".join(
            f"{n}={v:+.3f}" for n, v in zip(robot.config.joints, obs["joint_pos"], strict=True)
        )
        typer.echo(f"joints (rad): {q}; gripper {float(obs['gripper'][0]):.2f}")
        typer.echo(f"joint states: {len(stamps) / seconds:.1f} Hz over {seconds:g} s")
        for name, cam in getattr(robot, "cameras", {}).items():
            image = cam.read(timeout=max(2.0, seconds)).image
            typer.echo(f"camera {name}: {image.shape[1]}x{image.shape[0]}, mean {image.mean():.0f}")
        probe = robot.probe()
        if probe is not None:
            typer.echo(
                f"latency: round trip {probe['rtt_s'] * 1e3:.1f} ms (min {probe['rtt_min_s'] * 1e3:.1f}),"
                f" clock offset {probe['clock_offset_s'] * 1e3:+.1f} ms"
            )
        typer.echo(f"guard: {robot.guard.status(robot.clock())}")
