"""Example: Play-LMP end to end through the Python API: play data, training, evaluation.

    python scripts/train_play_lmp.py --out out/play_lmp --play-minutes 10 --train-minutes 5

1. `autoplay_parallel` records state-only play in the twin (every task, scripted experts).
2. `train_policy("play-lmp", ...)` trains on its hindsight windows with the shared loop and
   saves `<out>/run/policy` (config.json + model.safetensors, normaliser inside).
3. The SAVED folder is evaluated on every task with expert goals (the observation a scripted
   expert reaches from the same start); per-task success with Wilson intervals is printed.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # the GL backend before mujoco is first imported

import playworld.sim  # noqa: E402, F401
from playworld.collection.autoplay import AutoplayConfig, autoplay_parallel  # noqa: E402
from playworld.collection.eval_report import print_table  # noqa: E402
from playworld.collection.evaluation import evaluate  # noqa: E402
from playworld.policies import make_policy  # noqa: E402
from playworld.policies.train import train_policy  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/play_lmp")
    ap.add_argument("--play-minutes", type=float, default=10.0, help="twin time, 10 Hz")
    ap.add_argument("--train-minutes", type=float, default=5.0)
    ap.add_argument("--episodes", type=int, default=5, help="per task")
    args = ap.parse_args()
    out = Path(args.out)
    store = out / "play.zarr"
    if not store.exists():
        autoplay_parallel(
            store, AutoplayConfig(seed=0, cameras=()), int(args.play_minutes * 600), 2
        )
    policy, result = train_policy(
        "play-lmp", store, out / "run", minutes=args.train_minutes, steps=100_000
    )
    print(f"trained {result.step} steps in {result.seconds:.0f} s: {policy}")
    factory = functools.partial(make_policy, str(out / "run" / "policy"))
    report = evaluate(factory, "all", args.episodes, workers=2, goals="expert", name="play-lmp")
    print_table(report)


if __name__ == "__main__":
    main()
