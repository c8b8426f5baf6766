"""CLI commands of the world models (registered by `playworld.cli`).

playworld train world-model --config FILE --store STORE --out DIR [--steps N] [--minutes M]
                            [--set section.key=value ...] [--resume]
playworld imagine --model DIR --store STORE --episode E [--start T] [--steps N] --out DIR
playworld score --model DIR --store STORE [--split val] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from playworld.errors import ConfigError

_Model = Annotated[
    str,
    typer.Option(
        "--model", help="Checkpoint folder or training output folder.", show_default=False
    ),
]
_Store = Annotated[str, typer.Option("--store", help="Play store path or URL.", show_default=False)]


def train_world_model_command(
    config: Annotated[
        str,
        typer.Option("--config", help="Run config YAML (model/data/train).", show_default=False),
    ],
    store: _Store,
    out: Annotated[
        str, typer.Option("--out", help="Output folder (checkpoints/, logs/).", show_default=False)
    ],
    steps: Annotated[int | None, typer.Option("--steps", help="Override train.steps.")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Wall-clock budget.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="section.key=value override.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint.")
    ] = False,
) -> None:
    """Train a world model (state or frame) on a play store."""
    from playworld.training import apply_overrides, load_yaml
    from playworld.world_models.build import train_world_model

    sets = list(overrides or [])
    if steps is not None:
        sets.append(f"train.steps={steps}")
    if minutes is not None:
        sets.append(f"train.minutes={minutes}")
    run = apply_overrides(load_yaml(config), sets)
    result = train_world_model(run, store, out, resume=resume)
    typer.echo(
        f"trained to step {result.step} ({result.stopped}) in {result.seconds:.0f} s, "
        f"{result.samples_per_s:.0f} samples/s; checkpoint {result.checkpoint}"
    )


def imagine_command(
    model: _Model,
    store: _Store,
    episode: Annotated[
        int, typer.Option("--episode", help="Episode to start from.", show_default=False)
    ],
    out: Annotated[
        str, typer.Option("--out", help="Folder for the plot / video.", show_default=False)
    ],
    start: Annotated[
        int | None, typer.Option("--start", help="Row of the last history step.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Steps to imagine.")] = 64,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Imagine an episode's recorded actions from its recorded history; plot against the truth."""
    from playworld.datasets import PlayStore
    from playworld.world_models.build import load_world_model
    from playworld.world_models.data import read_arrays, require_features
    from playworld.world_models.imagine import history_keys, imagine, is_frame_model
    from playworld.world_models.plots import plot_states, side_by_side, write_strip, write_video

    wm = load_world_model(model)
    c = wm.cfg
    k = c.history
    obs_key = c.camera if is_frame_model(wm) else c.state_key
    with PlayStore.open(store, "r") as s:
        require_features(s, history_keys(wm))
        check_action_dim(s, wm)
        ends, fps = np.asarray(s.episode_ends), s.fps
        if not 0 <= episode < len(ends):
            raise ConfigError(f"episode {episode} does not exist; {store} has 0..{len(ends) - 1}")
        a = int(ends[episode - 1]) if episode > 0 else 0
        length = int(ends[episode]) - a
        t = k - 1 if start is None else start
        n = min(steps, length - 1 - t)
        if t < k - 1 or n < 1:
            raise ConfigError(
                f"--start must be in [{k - 1}, {length - 2}] for episode {episode} ({length} steps)"
            )
        data = read_arrays(s, [obs_key, c.action_key], getattr(c, "image_size", None))
    obs = data[obs_key][a + t - k + 1 : a + t + n + 1]
    acts = data[c.action_key][a + t - k + 1 : a + t + n]
    history = {obs_key: obs[None, :k], c.action_key: acts[None, : k - 1]}
    imagined = imagine(wm, history, acts[None, k - 1 :], seed=seed)[0]
    truth = obs[k:]
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    if is_frame_model(wm):
        both = side_by_side(truth, imagined)
        write_video(both, dest / "imagined.mp4", fps)
        write_strip(both, dest / "imagined.png", every=max(n // 8, 1))
        typer.echo(f"wrote {dest / 'imagined.mp4'} and {dest / 'imagined.png'} ({n} frames)")
    else:
        plot_states(truth, imagined, c.state_key, fps, dest / "imagined.png")
        typer.echo(f"wrote {dest / 'imagined.png'} ({n} steps)")


def score_command(
    model: _Model,
    store: _Store,
    split: Annotated[str, typer.Option("--split", help="train, val or all.")] = "val",
    out: Annotated[
        str | None,
        typer.Option("--out", help="Folder for score.json/png (default: the model folder)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Score a world model against the recorded ground truth on held-out episodes."""
    from playworld.datasets import PlayStore
    from playworld.training import resolve_checkpoint
    from playworld.world_models.build import data_config_of, load_world_model
    from playworld.world_models.data import require_features
    from playworld.world_models.imagine import history_keys, is_frame_model
    from playworld.world_models.score import score_state, write_report

    wm = load_world_model(model)
    with PlayStore.open(store, "r") as s:
        require_features(s, history_keys(wm))
        check_action_dim(s, wm)
    data = data_config_of(model)
    kw = {"split": split, "val_ratio": data.val_ratio, "seed": data.split_seed}
    if is_frame_model(wm):
        from playworld.world_models.frames.score import score_frames

        result = score_frames(wm, store, **kw)
    else:
        result = score_state(wm, store, **kw)
    result["seed"] = seed
    dest = Path(out) if out else resolve_checkpoint(model)
    for line in write_report(result, dest):
        typer.echo(line)
    typer.echo(f"wrote {dest / 'score.json'} and {dest / 'score.png'}")


def check_action_dim(store: object, model: object) -> None:
    """One line if the store's actions differ in size from the model's."""
    c = model.cfg  # type: ignore[attr-defined]
    found = store.features[c.action_key].shape[0]  # type: ignore[attr-defined]
    if found != c.action_dim:
        raise ConfigError(
            f"{store.url}: {c.action_key!r} has {found} dims, the model was trained on {c.action_dim}; "  # type: ignore[attr-defined]
            "score or imagine on a store recorded with the same action space"
        )
