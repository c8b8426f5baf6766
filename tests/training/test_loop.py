"""The shared training loop on a tiny regression model: learning, checkpoints, exact resume,
divergence, configs. Real torch + accelerate + safetensors, a few seconds in all."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from playworld.errors import ConfigError
from playworld.training import (
    Trainable,
    TrainConfig,
    TrainingDivergedError,
    apply_overrides,
    load_model,
    load_yaml,
    register_model,
    resolve_checkpoint,
    train,
)
from playworld.training.checkpoint import checkpoints
from playworld.training.loop import native_bf16, resolve_precision


@register_model("test_regressor")
class Regressor(Trainable):
    """y = W x + noise-free target; its loss adds torch-RNG noise (exercises RNG resume)."""

    def __init__(self, width: int = 8, nan_at: float = 0.0) -> None:
        super().__init__()
        self.width, self.nan_at = width, nan_at
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, width), torch.nn.Tanh(), torch.nn.Linear(width, 2)
        )

    @property
    def config(self) -> dict[str, Any]:
        return {"width": self.width, "nan_at": self.nan_at}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Regressor:
        return cls(**config)

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        x = batch["x"] + 0.01 * torch.randn_like(batch["x"])
        loss = torch.nn.functional.mse_loss(self.net(x), batch["y"])
        if self.nan_at and float(batch["x"].abs().max()) > self.nan_at:
            loss = loss * float("nan")
        return loss, {"x_mean": batch["x"].mean()}


class Pairs(torch.utils.data.Dataset):
    def __init__(self, n: int = 256) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 4, generator=g)
        self.y = torch.stack([self.x[:, 0] * 0.5 + self.x[:, 1], self.x[:, 2].tanh()], dim=1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


def cfg(**kw: Any) -> TrainConfig:
    base = dict(steps=20, batch_size=32, lr=1e-2, warmup_steps=2, progress=False, log_every=5,
                checkpoint_every=10, ema_decay=0.9, threads=1)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_loss_falls_and_checkpoint_is_safetensors_and_json(tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = train(Regressor(), Pairs(), cfg(steps=60), tmp_path / "run")
    first = sum(v for _, v in result.losses[:5]) / 5
    last = sum(v for _, v in result.losses[-5:]) / 5
    assert last < 0.5 * first
    folder = resolve_checkpoint(tmp_path / "run")
    assert folder.name == "step_0000060"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "config.json",
        "ema.safetensors",
        "model.safetensors",
        "optimizer.safetensors",
        "trainer.json",
    ]
    for f in folder.glob("*.safetensors"):  # safetensors: 8-byte header length, then JSON
        head = f.read_bytes()[8:9]
        assert head == b"{", f"{f.name} is not a safetensors file"
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "test_regressor" and config["run"]["train"]["steps"] == 60
    assert len(checkpoints(tmp_path / "run")) == 2  # keep_checkpoints=2 pruned step 10..40
    assert (tmp_path / "run" / "logs").is_dir()
    model = load_model(tmp_path / "run", ema=False)
    trained = load_model(folder, ema=True)
    x = torch.randn(3, 4)
    assert not torch.equal(model.net(x), trained.net(x))  # EMA weights differ from raw ones


def test_resume_after_interrupt_reproduces_the_loss_curve(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = train(Regressor(), Pairs(), cfg(), tmp_path / "full")

    def interrupt(step: int, loss: float) -> None:
        if step == 15:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(Regressor(), Pairs(), cfg(), tmp_path / "cut", on_step=interrupt)
    assert [p.name for p in checkpoints(tmp_path / "cut")] == ["step_0000010"]
    torch.manual_seed(123)  # the resumed run must not depend on the caller's RNG
    rest = train(Regressor(), Pairs(), cfg(), tmp_path / "cut", resume=True)
    assert [s for s, _ in rest.losses] == list(range(11, 21))
    expected = [v for s, v in full.losses if s > 10]
    assert [v for _, v in rest.losses] == pytest.approx(expected, rel=1e-5)
    a = load_model(tmp_path / "full")
    b = load_model(tmp_path / "cut")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-6), k


def test_schedule_span_minutes_fits_the_decay_to_the_budget_and_resume_keeps_it(
    tmp_path: Path,
) -> None:
    # a budget of 6 s and steps it cannot reach: spanning steps, the cosine would hardly move
    c = cfg(steps=10_000_000, minutes=0.1, schedule_span="minutes", checkpoint_every=30)

    def interrupt(step: int, loss: float) -> None:
        if step == 95:  # after the rate was timed (steps 10..60): checkpoint 90 holds the span
            raise KeyboardInterrupt

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(Regressor(), Pairs(), c, tmp_path / "run", on_step=interrupt)
    saved = json.loads((checkpoints(tmp_path / "run")[-1] / "trainer.json").read_text())
    assert saved["step"] == 90 and 95 < saved["schedule_span"] < c.steps
    result = train(Regressor(), Pairs(), c, tmp_path / "run", resume=True)
    final = json.loads((result.checkpoint / "trainer.json").read_text())
    assert final["schedule_span"] == saved["schedule_span"]  # kept, not timed again
    assert result.stopped == "minutes" and result.step <= saved["schedule_span"]
    assert final["scheduler"]["_last_lr"][0] < 0.5 * c.lr  # most of the way down the cosine


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    data = Pairs()
    torch.manual_seed(0)
    steps_seen: list[int] = []

    def poison(step: int, loss: float) -> None:
        steps_seen.append(step)
        if step == 12:
            data.x[:] = 100.0  # every later batch trips nan_at

    with pytest.raises(TrainingDivergedError, match=r"step 13: loss nan .*step_0000010"):
        train(Regressor(nan_at=50.0), data, cfg(), tmp_path / "run", on_step=poison)
    assert [p.name for p in checkpoints(tmp_path / "run")] == ["step_0000010"]
    load_model(tmp_path / "run")  # the kept checkpoint loads


def test_an_exploding_loss_stops_training(tmp_path: Path) -> None:
    torch.manual_seed(0)
    with pytest.raises(TrainingDivergedError, match="Lower train.lr"):
        train(Regressor(), Pairs(), cfg(lr=1e6, grad_clip=0.0, steps=40), tmp_path / "run")


def test_out_with_checkpoints_needs_resume_and_resume_needs_checkpoints(tmp_path: Path) -> None:
    torch.manual_seed(0)
    train(Regressor(), Pairs(), cfg(steps=10), tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        train(Regressor(), Pairs(), cfg(steps=10), tmp_path / "run")
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(Regressor(), Pairs(), cfg(steps=10), tmp_path / "other", resume=True)
    with pytest.raises(ConfigError, match="trained on 256 samples"):
        train(Regressor(), Pairs(100), cfg(steps=20), tmp_path / "run", resume=True)


def test_stale_temporary_folders_are_ignored(tmp_path: Path) -> None:
    torch.manual_seed(0)
    train(Regressor(), Pairs(), cfg(steps=10), tmp_path / "run")
    half = tmp_path / "run" / "checkpoints" / ".step_0000020.tmp-999999"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"partial")
    assert resolve_checkpoint(tmp_path / "run").name == "step_0000010"


def test_yaml_config_overrides_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model: {kind: test_regressor}\ntrain: {steps: 5, lr: 1.0e-3}\n")
    run = apply_overrides(
        load_yaml(path), ["train.lr=1e-2", "train.schedule=linear", "data.val_ratio=0.3"]
    )
    assert run["train"] == {"steps": 5, "lr": 1e-2, "schedule": "linear"}
    assert TrainConfig.from_dict(run["train"]).lr == 1e-2
    with pytest.raises(ConfigError, match="unknown key train.lrr.*'lr'"):
        TrainConfig.from_dict({"lrr": 1})
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="cosin")
    with pytest.raises(ConfigError, match="schedule_span"):
        TrainConfig(schedule_span="hours")
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["lr=3"])
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must map section names"):
        load_yaml(tmp_path / "bad.yaml")


def test_mixed_precision_auto_is_bf16_only_where_the_device_computes_it(tmp_path: Path) -> None:
    # a bare `no` in YAML reads as false: still full precision, not a confusing type error
    run = apply_overrides({}, ["train.mixed_precision=no"])
    assert TrainConfig.from_dict(run["train"]).mixed_precision == "no"
    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "no")
    assert resolve_precision("fp16", "cpu") == "fp16"
    torch.manual_seed(0)
    result = train(Regressor(), Pairs(), cfg(steps=60, mixed_precision="auto"), tmp_path / "run")
    assert result.precision == resolve_precision("auto", "cpu")
    first = sum(v for _, v in result.losses[:5]) / 5
    last = sum(v for _, v in result.losses[-5:]) / 5
    assert last < 0.5 * first  # it learns under autocast too
    with pytest.raises(ConfigError, match="mixed_precision 'bf61' is unknown.*'bf16'"):
        TrainConfig(mixed_precision="bf61")
