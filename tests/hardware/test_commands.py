"""`playworld robot check` (hardware) with the sim and rosbridge profiles."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from playworld.hardware.commands import robot_app

pytest.importorskip("playworld.sim", reason="the twin needs mujoco (pip install 'playworld[sim]')")

from playworld.collection.commands import twin_app  # noqa: E402


@pytest.fixture
def cli():
    app = typer.Typer()
    app.add_typer(robot_app, name="robot")
    app.add_typer(twin_app, name="twin")
    return app


def test_robot_check_sim_profile(cli):
    result = CliRunner().invoke(cli, ["robot", "check", "sim_panda", "--seconds", "0.2"])
    assert result.exit_code == 0, result.output
    assert "robot sim_panda: connected (SimRobot)" in result.output
    assert "panda_joint4=-2.5" in result.output and "camera front: 128x96" in result.output
    assert "guard: ok" in result.output


def test_robot_check_rosbridge_reports_latency(cli):
    pytest.importorskip("roslibpy", reason="roslibpy not installed (pip install 'playworld[ros]')")
    from playworld.collection.twin_server import TwinServer

    with TwinServer(port=0) as server:
        result = CliRunner().invoke(
            cli,
            ["robot", "check", "rosbridge_panda", "--port", str(server.port), "--seconds", "0.5"],
        )
    assert result.exit_code == 0, result.output
    assert "latency: round trip" in result.output and "clock offset" in result.output
    assert "joint states:" in result.output and "camera front: 128x96" in result.output


def test_robot_check_no_server_is_one_clear_error(cli):
    pytest.importorskip("roslibpy", reason="roslibpy not installed (pip install 'playworld[ros]')")
    import socket

    from playworld.hardware.errors import RobotConnectionError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(
        cli,
        ["robot", "check", "rosbridge_panda", "--port", str(port), "--timeout", "1"],
        catch_exceptions=True,
    )
    assert isinstance(result.exception, RobotConnectionError)
    message = str(result.exception)
    assert "\n" not in message and f"127.0.0.1:{port}" in message and "twin serve" in message
