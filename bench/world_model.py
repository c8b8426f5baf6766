"""Benchmark of the world models: each trained for a fixed budget on its own autoplay data,
scored on held-out episodes against the twin's recorded ground truth.

    python bench/world_model.py [--quick] [--out DIR] [--threads N]

Generates two seeded autoplay stores (state only for the state models; the front camera at
64x64 for the frame model), trains the three state models for the same steps and batch size,
and the frame model for a wall-clock budget, then prints `name: value` lines:

    state_err_ratio_h1/h4/h16/h64  normalised RMSE of the diffusion model (mean of 8 samples) /
                                   that of the one-step MLP rolled out, at horizon h
    state_chunk_err_ratio_h*       the same for the deterministic chunk MLP (context)
    state_crps_h16                 the diffusion model's CRPS at h=16 (normalised units)
    frame_err_vs_copy              one-step RMSE on moving pixels / copying the last frame
    frame_action_sensitivity       that RMSE with the true actions / with actions shuffled
    frame_psnr_h1/h4/h16, frame_psnr_copy_h*   imagined frames vs the recording (dB)
    imagine_frame_fps_64           frames/s, batch 1, 3 Euler steps (each two network
                                   evaluations with the config's action guidance)
    imagine_state_steps_per_s      imagined steps/s of the diffusion model, batch 64
    train_samples_per_s_<model>    training throughput of each model
    frame_train_steps, frame_train_bf16   the frame model's steps in its budget, and whether
                                   it trained with bf16 autocast (frames.yaml: mixed_precision
                                   auto, bf16 where the CPU computes it natively)
    wall_s                         the whole run

`--threads` (default 1) sets torch's CPU threads: on a machine shared with other work one
thread is several times faster than two (spinning OpenMP threads); on two idle cores use 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from playworld.collection.autoplay import AutoplayConfig, autoplay_parallel  # noqa: E402
from playworld.training import apply_overrides, load_yaml  # noqa: E402
from playworld.world_models.build import load_world_model, train_world_model  # noqa: E402
from playworld.world_models.frames.score import score_frames  # noqa: E402
from playworld.world_models.score import score_state  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "world_models"
STATE_KINDS = ("state_one_step_mlp", "state_chunk_mlp", "state_diffusion")
BUDGETS = {  # quick / full
    "state_steps": (800, 6000),
    "state_data_steps": (4000, 12000),
    "frame_data_steps": (3000, 8000),
    "frame_minutes": (5.0, 30.0),
}


def gen_data(root: Path, quick: bool) -> tuple[str, str]:
    i = 0 if quick else 1
    state, front = root / "state.zarr", root / "front.zarr"
    autoplay_parallel(
        state,
        AutoplayConfig(seed=0, noise=0.2, cameras=()),
        BUDGETS["state_data_steps"][i],
        workers=2,
    )
    # more action noise than the state data: motion the past frames cannot foretell, so that
    # the frame model must read its actions (frame_action_sensitivity)
    cfg = AutoplayConfig(seed=1, noise=0.3, cameras=("front",), height=64, width=64)
    autoplay_parallel(front, cfg, BUDGETS["frame_data_steps"][i], workers=2)
    return str(state), str(front)


def run_config(name: str, sets: list[str]) -> dict:
    return apply_overrides(load_yaml(CONFIGS / f"{name}.yaml"), sets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets (<= 12 min)")
    parser.add_argument("--out", default=None, help="keep stores and checkpoints here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    i = 0 if args.quick else 1
    t_start = time.monotonic()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_wm_"))
    root.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    try:
        t = time.monotonic()
        state_store, front_store = gen_data(root, args.quick)
        figures["data_s"] = time.monotonic() - t
        common = [
            f"train.threads={args.threads}",
            "train.progress=false",
            "train.checkpoint_every=0",
        ]
        scores = {}
        for kind in STATE_KINDS:
            out = root / kind
            shutil.rmtree(out, ignore_errors=True)
            run = run_config(kind, [*common, f"train.steps={BUDGETS['state_steps'][i]}"])
            result = train_world_model(run, state_store, out)
            figures[f"train_samples_per_s_{kind}"] = result.samples_per_s
            model = load_world_model(out)
            scores[kind] = score_state(model, state_store, stride=8)
        base = scores["state_one_step_mlp"]["rmse"]["all"]
        for h, d, c, b in zip(scores["state_diffusion"]["horizons"], scores["state_diffusion"]["rmse"]["all"],
                              scores["state_chunk_mlp"]["rmse"]["all"], base, strict=True):  # fmt: skip
            figures[f"state_err_ratio_h{h}"] = d / b
            figures[f"state_chunk_err_ratio_h{h}"] = c / b
        figures["state_crps_h16"] = scores["state_diffusion"]["crps"]["all"][2]
        figures["state_rmse_h16_diffusion"] = scores["state_diffusion"]["rmse"]["all"][2]
        diffusion = load_world_model(root / "state_diffusion")
        figures["imagine_state_steps_per_s"] = _state_rate(diffusion, state_store)

        out = root / "frames"
        shutil.rmtree(out, ignore_errors=True)
        sets = [
            *common,
            "train.steps=100000",
            "train.schedule=constant",
            f"train.minutes={BUDGETS['frame_minutes'][i]}",
        ]
        if args.quick:  # a smaller UNet and batch: more steps in the budget
            sets += ["model.channels=[32,64]", "train.batch_size=16", "train.lr=2e-3"]
        run = run_config("frames", sets)
        result = train_world_model(run, front_store, out)
        figures["train_samples_per_s_frame_diffusion"] = result.samples_per_s
        figures["frame_train_steps"] = result.step
        figures["frame_train_bf16"] = float(result.precision == "bf16")
        frames = load_world_model(out)
        fs = score_frames(frames, front_store, one_step_starts=256, rollout_starts=16)
        figures["frame_err_vs_copy"] = fs["frame_err_vs_copy"]
        figures["frame_action_sensitivity"] = fs["frame_action_sensitivity"]
        for h, p, c in zip(
            fs["horizons"], fs["psnr"]["model"], fs["psnr_copy"]["copy"], strict=True
        ):
            figures[f"frame_psnr_h{h}"] = p
            figures[f"frame_psnr_copy_h{h}"] = c
        figures["imagine_frame_fps_64"] = _frame_fps(frames)
        (root / "scores.json").write_text(json.dumps({"state": scores, "frames": fs}, indent=2))
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    figures["wall_s"] = time.monotonic() - t_start
    for name, value in figures.items():
        print(f"{name}: {value:.3f}")


def _state_rate(model: torch.nn.Module, store: str, batch: int = 64, steps: int = 64) -> float:
    """Imagined steps per second (batch x steps / s) of a state model from random histories."""

    k, d, a = model.cfg.history, model.cfg.state_dim, model.cfg.action_dim
    hist, acts = torch.randn(batch, k, d) * 0.01, torch.zeros(batch, steps, a)
    g = torch.Generator().manual_seed(0)
    model.imagine(hist, acts[:, :16], generator=g)  # warm-up
    t = time.perf_counter()
    model.imagine(hist, acts, generator=g)
    return batch * steps / (time.perf_counter() - t)


def _frame_fps(model: torch.nn.Module, n: int = 10) -> float:
    """Imagined frames per second, batch 1, 3 Euler steps."""
    k, (h, w) = model.cfg.history, model.cfg.image_size
    frames = torch.zeros(1, k, h, w, 3, dtype=torch.uint8)
    past, acts = (
        torch.zeros(1, k - 1, model.cfg.action_dim),
        torch.zeros(1, n, model.cfg.action_dim),
    )
    model.imagine(frames, past, acts[:, :2], steps=3)  # warm-up
    t = time.perf_counter()
    model.imagine(frames, past, acts, steps=3)
    return n / (time.perf_counter() - t)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
