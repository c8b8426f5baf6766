"""Example: the world-model Python API end to end (data, training, scoring, imagination).

    python scripts/train_world_model.py [--steps 600] [--out out/wm_example]

Plays 2000 steps of noisy autoplay in the twin (state only), trains the state diffusion model
with the shared loop (checkpoints in OUT/model), scores it on held-out episodes and imagines
one of them in a `WorldModelEnv`, as a policy would see it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from playworld.collection.autoplay import AutoplayConfig, autoplay
from playworld.training import apply_overrides, load_yaml
from playworld.world_models.build import load_world_model, train_world_model
from playworld.world_models.imagine import WorldModelEnv
from playworld.world_models.score import score_state, table_lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps")
    ap.add_argument("--out", default="out/wm_example")
    args = ap.parse_args()
    out = Path(args.out)
    store = out / "play.zarr"
    if not store.exists():  # 1. data: seeded autonomous play in the twin
        autoplay(store, AutoplayConfig(seed=0, noise=0.2, cameras=()), 2000)

    # 2. a run config (the same YAML the CLI reads), with overrides
    run = load_yaml(Path(__file__).parents[1] / "configs/world_models/state_diffusion.yaml")
    run = apply_overrides(run, [f"train.steps={args.steps}", "train.checkpoint_every=200"])
    result = train_world_model(run, str(store), out / "model", resume=(out / "model").exists())
    print(f"trained to step {result.step}: {result.samples_per_s:.0f} samples/s")

    # 3. score against the recorded twin states on held-out episodes
    model = load_world_model(out / "model")  # newest checkpoint, EMA weights, no pickle
    print("\n".join(table_lines(score_state(model, str(store)))))

    # 4. imagine: the world model behind the twin's reset/step
    env = WorldModelEnv(model, str(store), seed=0)
    obs = env.reset(episode=0, start=10)
    for _ in range(16):
        obs = env.step(np.array([0.01, 0, 0, 0, 0, 0, 0]))  # ee +x, no rotation, gripper as is
    print("ee_pos after 16 imagined steps:", obs["state"][8:11].round(3))


if __name__ == "__main__":
    main()
