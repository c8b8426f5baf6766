import json

import typer
from typer.testing import CliRunner

from playworld.sim.commands import eval_command


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("noop")(lambda: None)  # two commands: typer keeps the `eval` sub-command name
    return app


def test_eval_command_writes_report(tmp_path):
    result = CliRunner().invoke(
        _app(),
        [
            "eval",
            "--tasks",
            "turn_on_light",
            "--episodes",
            "2",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["tasks"]["turn_on_light"]["episodes"] == 2
    assert (tmp_path / "eval.png").is_file()


def test_eval_command_user_error_is_one_line(tmp_path):
    result = CliRunner().invoke(_app(), ["eval", "--tasks", "fly", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
