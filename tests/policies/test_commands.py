"""`playworld eval --policy NAME|DIR`: reports, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import typer
from typer.testing import CliRunner

from playworld.policies import make_policy
from playworld.policies.commands import eval_command


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


def test_eval_of_a_checkpoint_folder(tmp_path):
    make_policy("zero").save(tmp_path / "zero")
    out = tmp_path / "out"
    args = ["eval", "--policy", str(tmp_path / "zero"), "--tasks", "open_drawer"]
    args += ["--episodes", "1", "--max-steps", "3", "--workers", "1", "--out", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    assert report["policy"] == str(tmp_path / "zero")
    assert report["tasks"]["open_drawer"]["lengths"] == [3]


def _playworld(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "playworld", *args], capture_output=True, text=True, timeout=120
    )


def test_unknown_policy_and_missing_weights_one_line_exit_2(tmp_path):
    unknown = _playworld("eval", "--policy", "nope", "--out", str(tmp_path / "o"))
    assert unknown.returncode == 2
    lines = unknown.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'nope'" in lines[0]
    assert "scripted" in lines[0] and "Traceback" not in unknown.stderr

    make_policy("zero").save(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    missing = _playworld("eval", "--policy", str(tmp_path / "ckpt"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.safetensors" in lines[0], missing.stderr


def test_policy_reading_features_the_robot_lacks_is_one_line(tmp_path):
    make_policy("zero").save(tmp_path / "ckpt")
    config = tmp_path / "ckpt" / "config.json"
    data = json.loads(config.read_text())
    data["observation_features"]["lidar"] = {"shape": [360], "dtype": "float32"}
    config.write_text(json.dumps(data))
    args = ["eval", "--policy", str(tmp_path / "ckpt"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(_app(), [*args, "--tasks", "open_drawer", "--workers", "1"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "lidar" in lines[0] and "Traceback" not in result.output


def test_eval_goal_cache_is_filled_then_read(tmp_path):
    """`--goal-cache DIR`: one expert goal per episode start is saved, and a second run on the
    same seeds reads them (no file rewritten) and reports the same episodes."""
    make_policy("zero").save(tmp_path / "zero")
    cache = tmp_path / "goals"
    args = ["eval", "--policy", str(tmp_path / "zero"), "--tasks", "turn_on_light"]
    args += ["--episodes", "2", "--max-steps", "3", "--workers", "1", "--goals", "expert"]
    args += ["--goal-cache", str(cache)]
    reports, stamps = [], []
    for run in ("a", "b"):
        result = CliRunner().invoke(_app(), [*args, "--out", str(tmp_path / run)])
        assert result.exit_code == 0, result.output
        reports.append(json.loads((tmp_path / run / "eval.json").read_text()))
        stamps.append({p.name: p.stat().st_mtime_ns for p in cache.iterdir()})
    assert len(stamps[0]) == 2 and stamps[0] == stamps[1]
    assert reports[0]["episodes_detail"] == reports[1]["episodes_detail"]
