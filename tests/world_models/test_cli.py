"""`playworld train world-model`, `imagine`, `score`: real runs, and one-line errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from playworld.cli import main
from playworld.datasets import PlayStore

from .conftest import small_state_run


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write_config(path: Path, run: dict) -> str:
    path.write_text(yaml.safe_dump(run))
    return str(path)


@pytest.fixture(scope="module")
def cli_model(state_store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    config = write_config(root / "run.yaml", small_state_run("state_chunk_mlp", steps=20))
    out = root / "model"
    try:
        main(
            [
                "train",
                "world-model",
                "--config",
                config,
                "--store",
                state_store,
                "--out",
                str(out),
                "--steps",
                "30",
            ]
        )
    except SystemExit as e:
        assert not e.code
    return out


def test_train_imagine_score(cli_model: Path, state_store: str, tmp_path: Path, capsys) -> None:
    assert (cli_model / "checkpoints" / "step_0000030" / "model.safetensors").is_file()
    code, out, err = run_cli(
        ["imagine", "--model", str(cli_model), "--store", state_store, "--episode", "1", "--steps", "20",
         "--out", str(tmp_path / "im")], capsys)  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "im" / "imagined.png").stat().st_size > 1000
    code, out, err = run_cli(
        ["score", "--model", str(cli_model), "--store", state_store, "--out", str(tmp_path)], capsys
    )
    assert code == 0, err
    assert (
        "rmse arm" in out
        and (tmp_path / "score.json").is_file()
        and (tmp_path / "score.png").is_file()
    )


def one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_frame_config_on_a_store_without_camera(state_store: str, tmp_path: Path, capsys) -> None:
    config = write_config(
        tmp_path / "f.yaml", {"model": {"kind": "frame_diffusion", "camera": "front"}}
    )
    code, _, err = run_cli(
        [
            "train",
            "world-model",
            "--config",
            config,
            "--store",
            state_store,
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    line = one_line_error(code, err)
    assert "'front'" in line and "camera" in line


def test_store_with_other_action_dims(cli_model: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other.zarr"
    features = {"state": {"shape": [40], "dtype": "float64", "kind": "state"},
                "action": {"shape": [6], "dtype": "float32", "kind": "action"}}  # fmt: skip
    with PlayStore.create(other, features, fps=10.0) as s:
        s.add_episode({"state": np.zeros((30, 40)), "action": np.zeros((30, 6), np.float32)})
    for cmd in (["score"], ["imagine", "--episode", "0", "--out", str(tmp_path / "im")]):
        code, _, err = run_cli([*cmd, "--model", str(cli_model), "--store", str(other)], capsys)
        line = one_line_error(code, err)
        assert "6 dims" in line and "trained on 7" in line


def test_exploding_loss_stops_with_one_line(state_store: str, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "r.yaml", small_state_run("state_chunk_mlp", steps=40))
    code, _, err = run_cli(
        ["train", "world-model", "--config", config, "--store", state_store, "--out", str(tmp_path / "o"),
         "--set", "train.lr=1e6", "--set", "train.grad_clip=0", "--set", "train.warmup_steps=0"], capsys)  # fmt: skip
    assert "training stopped at step" in one_line_error(code, err)


def test_unknown_kind_and_bad_override(state_store: str, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "r.yaml", {"model": {"kind": "state_difusion"}})
    code, _, err = run_cli(
        [
            "train",
            "world-model",
            "--config",
            config,
            "--store",
            state_store,
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert "state_diffusion" in one_line_error(code, err)
    code, _, err = run_cli(["train", "world-model", "--config", config, "--store", state_store, "--out", str(tmp_path / "o"),
                            "--set", "nonsense"], capsys)  # fmt: skip
    assert "section.key=value" in one_line_error(code, err)
