"""The training loop every playworld model uses (world models and policies).

    result = train(model, dataset, TrainConfig(steps=2000), "out/run")

``model`` follows the `Trainable` contract (``loss(batch) -> (loss, logs)`` + ``config``);
``dataset`` is a map-style torch Dataset. If it defines ``__getitems__(indices) -> batch`` and
``collate`` (an identity for ready batches; `training.data.BatchedDataset` gives both from
``__getitems__``), whole batches are gathered in one call.

accelerate owns devices and mixed precision (the same code runs on CPU, one GPU, or several with
``accelerate launch``). Batches come in a fixed order: epoch ``e`` is the permutation drawn from
``(seed, e)``, so the order is a function of the step alone and ``resume=True`` continues the same
sequence of batches, learning rates, noise (torch RNG state) and EMA as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playworld.errors import ConfigError, PlayworldError
from playworld.training import checkpoint as ckpt
from playworld.training.config import TrainConfig
from playworld.training.ema import EMA
from playworld.training.registry import Trainable


class TrainingDivergedError(PlayworldError):
    """The loss became NaN/inf or exploded; training stopped, earlier checkpoints are kept."""


@dataclass
class TrainResult:
    """What a run did: ``losses`` as (step, loss) for every step of this run; ``precision``: the
    autocast it ran with (``train.mixed_precision`` resolved)."""

    step: int
    checkpoint: Path
    stopped: str  # "steps" or "minutes"
    seconds: float
    samples_per_s: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    precision: str = "no"


class EpochBatchSampler:
    """Batches of indices for steps ``start .. stop - 1``; step ``s`` is batch ``s % nb`` of the
    permutation of epoch ``s // nb`` drawn from ``(seed, epoch)`` (``nb`` full batches/epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int) -> None:
        if n < 1:
            raise ConfigError("the training dataset is empty (no window fits)")
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.start, self.stop = start, stop
        self.per_epoch = n // self.batch_size

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, perm = -1, np.empty(0, np.int64)
        for s in range(self.start, self.stop):
            e, b = divmod(s, self.per_epoch)
            if e != epoch:
                epoch, perm = e, np.random.default_rng([self.seed, e]).permutation(self.n)
            yield perm[b * self.batch_size : (b + 1) * self.batch_size].tolist()


def _schedule(config: TrainConfig) -> Callable[[int], float]:
    """Learning-rate multiplier of step ``s``: linear warm-up, then the configured decay."""
    from diffusers.optimization import get_scheduler

    # diffusers' schedule functions, read off a throwaway optimiser: one source of truth.
    p = torch.nn.Parameter(torch.zeros(1))
    name = {"constant": "constant_with_warmup"}.get(config.schedule, config.schedule)
    sched = get_scheduler(
        name,
        torch.optim.SGD([p], lr=1.0),
        num_warmup_steps=config.warmup_steps,
        num_training_steps=config.steps,
    )
    return sched.lr_lambdas[0]


def native_bf16(device: str = "auto") -> bool:
    """Whether ``device`` (``auto``: a GPU if one is visible, else the CPU) computes bf16 natively:
    a GPU that supports it, or a CPU with AVX512-BF16 or AMX tiles (elsewhere autocast to bf16 is
    emulated and slower than float32)."""
    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    # private probes, hence the fallbacks: no probe, no native bf16
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_precision(mixed_precision: str, device: str = "auto") -> str:
    """accelerate's ``mixed_precision`` for a `TrainConfig` value (``auto``: see `native_bf16`)."""
    if mixed_precision != "auto":
        return mixed_precision
    return "bf16" if native_bf16(device) else "no"


def _loss_logs(logs: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v.detach().item() if isinstance(v, torch.Tensor) else v) for k, v in logs.items()
    }


def train(
    model: Trainable,
    dataset: Any,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    run_config: Mapping[str, Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset``; checkpoints under ``out/checkpoints``, logs in ``out/logs``.

    Raises:
        ConfigError: ``out`` already has checkpoints and ``resume`` is False, or ``resume`` with
            none, or a dataset that differs from the checkpoint's.
        TrainingDivergedError: a NaN or exploding loss (earlier checkpoints are kept).
    """
    from accelerate import Accelerator
    from accelerate.utils import send_to_device, set_seed

    out = Path(out)
    existing = ckpt.checkpoints(out)
    if existing and not resume:
        raise ConfigError(f"{out} already holds checkpoints; pass --resume or choose a new --out")
    if resume and not existing:
        raise ConfigError(f"nothing to resume: {out} holds no complete checkpoint")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no GPU is visible; use auto or cpu")
    precision = resolve_precision(config.mixed_precision, config.device)
    try:
        accelerator = Accelerator(cpu=config.device == "cpu", mixed_precision=precision)
    except ValueError:
        # accelerate keeps one precision per process; a later run in the same process (a
        # benchmark, a notebook) with another one starts its state afresh, as accelerate's own
        # tests do (the distributed part, PartialState, is kept)
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state()
        accelerator = Accelerator(cpu=config.device == "cpu", mixed_precision=precision)
    set_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    run = {**dict(run_config or {}), "train": config.to_dict()}

    params = [p for p in model.parameters() if p.requires_grad]
    # foreach: one fused update over all tensors (torch picks it by itself only on CUDA). With the
    # fused EMA, a Play-LMP step (GRU, batch 16, one core) took 37.5 ms instead of 43.9, GCBC's
    # 29.5 instead of 30.8; same losses
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, weight_decay=config.weight_decay, foreach=True
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
    step, running = 0, float("nan")
    span = config.steps  # where the schedule ends (schedule_span minutes: fitted to the budget)
    if resume:
        folder = existing[-1]
        model.load_state_dict(ckpt.load_file(str(folder / "model.safetensors")))
        opt_state, rng, trainer = ckpt.load_optimizer_state(folder)
        optimizer.load_state_dict(opt_state)
        scheduler.load_state_dict(trainer["scheduler"])  # (its lambda is not saved: set here)
        span = int(trainer.get("schedule_span", config.steps))
        if span != config.steps:
            scheduler.lr_lambdas[0] = _schedule(replace(config, steps=span))
        step, running = int(trainer["step"]), float(trainer["running_loss"])
        if trainer["data"]["num_samples"] != len(dataset):
            raise ConfigError(
                f"cannot resume: the checkpoint was trained on {trainer['data']['num_samples']} "
                f"samples, this dataset has {len(dataset)}; resume on the same store and split"
            )
        if ema is not None and (folder / "ema.safetensors").is_file():
            ema.load(ckpt.load_file(str(folder / "ema.safetensors")))
            ema.num_updates = int(trainer["ema_updates"])
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])

    sampler = EpochBatchSampler(len(dataset), config.batch_size, config.seed, step, span)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=getattr(dataset, "collate", None),
        # its own generator: a DataLoader iterator draws a base seed, which must not shift the
        # global torch RNG (the model's noise) between an uninterrupted and a resumed run
        generator=torch.Generator().manual_seed(config.seed + step),
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    if accelerator.num_processes > 1:
        loader = accelerator.prepare(loader)
    raw = accelerator.unwrap_model(model)
    last_good = existing[-1] if existing else None

    def save() -> Path:
        nonlocal last_good
        rng_state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng_state["cuda"] = torch.cuda.get_rng_state()
        trainer = {
            "step": step,
            "running_loss": running,
            "scheduler": scheduler.state_dict(),  # JSON-native: step counts, lrs, lambda state
            "schedule_span": span,
            "ema_updates": ema.num_updates if ema else 0,
            "data": {
                "num_samples": len(dataset),
                "seed": config.seed,
                "batch_size": config.batch_size,
            },
        }
        folder = ckpt.save_checkpoint(
            out / "checkpoints" / f"step_{step:07d}",
            raw,
            step=step,
            run_config=run,
            ema_state=ema.state_dict(raw) if ema else None,
            optimizer=optimizer,
            trainer_state=trainer,
            rng_state=rng_state,
        )
        ckpt.prune(out, config.keep_checkpoints)
        last_good = folder
        return folder

    writer = _writer(out) if accelerator.is_main_process else None
    progress = _progress(config, step) if accelerator.is_main_process else None
    losses: list[tuple[int, float]] = []
    t0, start_step, stopped = time.monotonic(), step, "steps"
    # schedule_span minutes: the rate is timed over `probe` steps after `skip` (start-up costs)
    fit = config.schedule_span == "minutes" and config.minutes > 0 and span == config.steps
    skip, probe, t_skip = 10, max(config.warmup_steps, 50), t0
    model.train()
    try:
        for batch in loader:
            batch = send_to_device(batch, accelerator.device)
            with accelerator.autocast():
                loss, logs = model(batch)
            value = float(loss.detach().item())
            if not math.isfinite(value) or (
                step >= config.warmup_steps and value > config.diverge_factor * running
            ):
                where = (
                    f"the last good checkpoint is {last_good}"
                    if last_good
                    else "no checkpoint was written"
                )
                raise TrainingDivergedError(
                    f"training stopped at step {step + 1}: loss {value:.4g} (running mean "
                    f"{running:.4g}); {where}. Lower train.lr or raise train.warmup_steps"
                )
            accelerator.backward(loss)
            if config.grad_clip > 0:
                accelerator.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(raw)
            step += 1
            running = value if not math.isfinite(running) else 0.95 * running + 0.05 * value
            losses.append((step, value))
            if on_step is not None:
                on_step(step, value)
            if progress is not None:
                progress[0].update(progress[1], completed=step, loss=running)
            if writer is not None and (config.log_every and step % config.log_every == 0):
                writer.add_scalar("train/loss", value, step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                for k, v in _loss_logs(logs).items():
                    writer.add_scalar(f"train/{k}", v, step)
            if (
                config.checkpoint_every
                and step % config.checkpoint_every == 0
                and step < config.steps
            ):
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    save()
            if fit and step - start_step == skip:
                t_skip = time.monotonic()
            if fit and step - start_step == skip + probe:
                now = time.monotonic()
                left = config.minutes * 60 - (now - t0)
                span = min(config.steps, step + max(1, int(probe / (now - t_skip) * left)))
                # every process (accelerate launch) ends at the same step: the slowest one's
                span = int(
                    accelerator.gather(torch.tensor([span], device=accelerator.device)).min()
                )
                scheduler.lr_lambdas[0] = _schedule(replace(config, steps=span))
                fit = False
            if (config.minutes and time.monotonic() - t0 > config.minutes * 60) or step >= span:
                stopped = "minutes" if step < config.steps else "steps"
                break
    finally:
        if progress is not None:
            progress[0].stop()
        if writer is not None:
            writer.close()
    seconds = time.monotonic() - t0
    accelerator.wait_for_everyone()
    final = save() if accelerator.is_main_process else out / "checkpoints" / f"step_{step:07d}"
    done = step - start_step
    return TrainResult(
        step=step,
        checkpoint=final,
        stopped=stopped,
        seconds=seconds,
        samples_per_s=done * config.batch_size / max(seconds, 1e-9),
        losses=losses,
        precision=precision,
    )


def _writer(out: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "logs"))


def _progress(config: TrainConfig, step: int) -> tuple[Any, Any] | None:
    if not config.progress:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    task = progress.add_task("train", total=config.steps, completed=step, loss=float("nan"))
    progress.start()
    return progress, task
