"""Checkpoint folders: written atomically, read without executing code.

    OUT/checkpoints/step_000500/
        config.json            format, model kind + config, the run's config, step
        model.safetensors      weights (a state dict)
        ema.safetensors        EMA weights, same keys
        optimizer.safetensors  the optimiser's tensors (``state/<param>/<name>``) and RNG states
        trainer.json           optimiser param groups and scalars, scheduler, step, EMA count,
                               data order, running loss: everything to resume exactly

A folder is written under a hidden temporary name and renamed into place, so a crash or kill
at any moment leaves only complete folders (plus a stray ``.step_*.tmp-*`` that is ignored and
cleaned on the next save). Nothing is pickled: tensors go to safetensors, the rest to JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from playworld.errors import ConfigError
from playworld.training.registry import Trainable, model_class

FORMAT = "playworld.checkpoint/1"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False))


def _contiguous(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(
    folder: Path,
    model: Trainable,
    *,
    step: int,
    run_config: Mapping[str, Any] | None = None,
    ema_state: Mapping[str, torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    trainer_state: Mapping[str, Any] | None = None,
    rng_state: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``folder`` atomically (a temporary sibling renamed into place); return it."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    config = {
        "format": FORMAT,
        "kind": model.kind,
        "model": model.config,
        "run": dict(run_config or {}),
        "step": int(step),
    }
    _write_json(tmp / "config.json", config)
    save_file(_contiguous(model.state_dict()), str(tmp / "model.safetensors"))
    if ema_state is not None:
        save_file(_contiguous(ema_state), str(tmp / "ema.safetensors"))
    if optimizer is not None:
        tensors, scalars = _split_optimizer(optimizer.state_dict())
        tensors.update({f"rng/{k}": v for k, v in (rng_state or {}).items()})
        save_file(_contiguous(tensors), str(tmp / "optimizer.safetensors"))
        _write_json(tmp / "trainer.json", {**dict(trainer_state or {}), "optimizer": scalars})
    for f in tmp.iterdir():  # data on disk before the rename makes the folder visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if folder.exists():  # re-saving a step: swap the old folder out first
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)
    return folder


def _split_optimizer(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser state dict -> (tensors keyed ``state/<param>/<name>``, JSON-native rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{pid}/{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer_state(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict]:
    """(optimizer state dict, RNG state tensors, trainer.json) of a checkpoint folder."""
    tensors = load_file(str(Path(folder) / "optimizer.safetensors"))
    trainer = json.loads((Path(folder) / "trainer.json").read_text())
    state: dict[int, dict[str, Any]] = {}
    rng: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        kind, _, rest = key.partition("/")
        if kind == "rng":
            rng[rest] = value
        else:
            pid, _, name = rest.partition("/")
            state.setdefault(int(pid), {})[name] = value
    for pid, entry in trainer["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": trainer["optimizer"]["param_groups"]}, rng, trainer


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoint folders under ``out/checkpoints``, oldest first."""
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found) if (p / "config.json").is_file()]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder itself, or the newest complete one under a training output folder."""
    p = Path(path)
    if (p / "config.json").is_file():
        return p
    found = checkpoints(p)
    if not found:
        raise ConfigError(
            f"{p} holds no checkpoint (expected a folder with config.json, or a training output "
            "folder with checkpoints/step_*/)"
        )
    return found[-1]


def read_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder, checked for its format."""
    path = resolve_checkpoint(folder) / "config.json"
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a playworld checkpoint (expected format {FORMAT!r})")
    return config


def load_model(folder: str | Path, *, ema: bool = True, device: str = "cpu") -> Trainable:
    """Rebuild a registered model from a checkpoint folder (EMA weights when present), in eval
    mode. The model's package must be imported first (it fills the registry)."""
    folder = resolve_checkpoint(folder)
    config = read_config(folder)
    model = model_class(config["kind"]).from_config(config["model"])
    weights = folder / (
        "ema.safetensors" if ema and (folder / "ema.safetensors").is_file() else "model.safetensors"
    )
    model.load_state_dict(load_file(str(weights), device=device))
    return model.to(device).eval()


def prune(out: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints, and stale temporary folders."""
    found = checkpoints(out)
    for p in found[: max(len(found) - keep, 0)]:
        shutil.rmtree(p, ignore_errors=True)
    root = Path(out) / "checkpoints"
    for p in root.glob(".step_*.*-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
