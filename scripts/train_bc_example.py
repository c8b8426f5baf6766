"""Example: train a small behaviour-cloning MLP on a play store (the data path every policy uses).

    python scripts/train_bc_example.py out/demo/play.zarr --steps 200

Random 16-step windows from `PlayWindowDataset` (episode-level train/val split, 2 workers),
normalised with the store's own statistics (`Normalizer`), predicting the action chunk of a
window from the first state. Prints the train and validation losses. A starting point, not a
policy: the real ones will live in `playworld.policies`.
"""

from __future__ import annotations

import argparse

import torch

from playworld.datasets import Normalizer, PlayWindowDataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="play store path or URL (e.g. out/demo/play.zarr from make demo)")
    ap.add_argument("--state", default="joint_pos", help="state feature (default: joint_pos)")
    ap.add_argument("--action", default="action", help="action feature (default: action)")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()

    keys = [args.state, args.action]
    kw = dict(window=args.window, keys=keys, val_ratio=0.2, seed=0)
    train = PlayWindowDataset(args.store, split="train", **kw)
    val = PlayWindowDataset(args.store, split="val", **kw)
    norm = Normalizer.from_stats(train.stats, {args.state: "mean_std", args.action: "min_max"})
    s_dim = train.features[args.state].shape[0]
    a_dim = train.features[args.action].shape[0]

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(s_dim, 256), torch.nn.GELU(), torch.nn.Linear(256, args.window * a_dim)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def loss_of(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        s = norm.normalize(args.state, batch[args.state][:, 0])
        a = norm.normalize(args.action, batch[args.action])
        return torch.nn.functional.mse_loss(model(s).view_as(a), a)

    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True, num_workers=2)
    step = 0
    while step < args.steps:
        for batch in loader:
            loss = loss_of(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 50 == 0 or step == args.steps:
                with torch.no_grad():
                    vl = [loss_of(b).item() for b in torch.utils.data.DataLoader(val, 256)]
                print(f"step {step}: train {loss.item():.4f}  val {sum(vl) / max(len(vl), 1):.4f}")
            if step >= args.steps:
                break


if __name__ == "__main__":
    main()
