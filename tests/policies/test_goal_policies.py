"""GCBC and Play-LMP on a real (tiny) autoplay store: hindsight windows, losses that fall on the
shared training loop, the saved checkpoint acting like the trained one, goal-conditioned
evaluation with expert goals, one-line errors; and (slow) press-the-button success above the
untrained policy's in the twin."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from playworld.collection.autoplay import AutoplayConfig, autoplay
from playworld.collection.evaluation import evaluate
from playworld.errors import ConfigError, FeatureError, PolicyError
from playworld.policies import Policy, make_policy
from playworld.policies.hindsight import HindsightConfig, HindsightWindows, window_length
from playworld.policies.train import train_policy

LIGHT = ("turn_on_light", "turn_off_light")
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "policies"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """~600 steps of state-only play pressing the button (the light toggles)."""
    path = tmp_path_factory.mktemp("play") / "light.zarr"
    autoplay(path, AutoplayConfig(tasks=LIGHT, seed=0, cameras=(), episode_steps=100), 600)
    return path


def test_hindsight_windows_label_each_window_with_its_end(store) -> None:
    data = HindsightWindows(store, HindsightConfig(min_window=16, max_window=32))
    idx = np.arange(0, len(data), 7)
    batch = data.__getitems__(idx)
    rows, _ = data.sampler.batch_indices(idx)
    lengths = batch["length"].numpy()
    assert lengths.min() >= 16 and lengths.max() <= 32 and len(set(lengths)) > 5
    np.testing.assert_array_equal(lengths, window_length(idx, 16, 32))
    state = data.arrays["state"]
    np.testing.assert_array_equal(
        batch["goal.state"].numpy(), state[rows[np.arange(len(idx)), lengths]]
    )
    np.testing.assert_array_equal(batch["state"].numpy(), state[rows[:, :32]])
    assert batch["mask"].sum(1).tolist() == lengths.tolist()
    # every window lies inside one episode: goal and first step share the episode
    ends = data.sampler.episode_ends
    assert (
        np.searchsorted(ends, rows[:, 0], "right") == np.searchsorted(ends, rows[:, -1], "right")
    ).all()


def test_tail_windows_cap_the_length_at_the_episode_end(store) -> None:
    """With tail_windows, windows also start in an episode's last max_window steps: 16 more
    starts per episode, L capped at the steps left, the goal still inside the episode."""
    plain = HindsightWindows(store, HindsightConfig(min_window=16, max_window=32))
    data = HindsightWindows(store, HindsightConfig(min_window=16, max_window=32, tail_windows=True))
    ends = data.sampler.episode_ends
    assert len(data) == len(plain) + 16 * len(ends)
    idx = np.arange(len(data))
    batch = data.__getitems__(idx)
    rows, _ = data.sampler.batch_indices(idx)
    lengths = batch["length"].numpy()
    assert lengths.min() >= 16 and lengths.max() <= 32
    goal_rows = rows[np.arange(len(idx)), lengths]
    episode = np.searchsorted(ends, rows[:, 0], "right")
    assert (np.searchsorted(ends, goal_rows, "right") == episode).all()
    capped = lengths < window_length(idx, 16, 32)
    assert capped.sum() > len(ends)  # windows near every end were shortened...
    assert (goal_rows[capped] == ends[episode[capped]] - 1).all()  # ...to end at its last row
    np.testing.assert_array_equal(batch["goal.state"].numpy(), data.arrays["state"][goal_rows])
    assert batch["mask"].sum(1).tolist() == lengths.tolist()
    # episodes shorter than max_window + 1 steps: refused without tail windows, used with them
    longest = int(np.diff(ends, prepend=0).max())
    with pytest.raises(ConfigError, match=f"at least {longest + 17} steps"):
        HindsightWindows(store, HindsightConfig(min_window=16, max_window=longest + 16))
    long = HindsightConfig(min_window=16, max_window=longest + 16, tail_windows=True)
    assert len(HindsightWindows(store, long)) == len(data)  # a start wherever min_window fits


def test_missing_feature_is_one_line(store) -> None:
    with pytest.raises(FeatureError, match="expected feature 'wrist'") as err:
        HindsightWindows(store, HindsightConfig(obs_keys=("wrist",)))
    assert "\n" not in str(err.value)


def _mean(losses, part: slice) -> float:
    return float(np.mean([v for _, v in losses[part]]))


@pytest.mark.parametrize(
    ("kind", "policy_cfg"),
    [
        ("gcbc", {"hidden": 64, "layers": 2}),
        ("play-lmp", {"hidden": 64, "gru": 32, "latent": 8}),
        ("diffusion", {"channels": [16, 32], "cond_dim": 32, "inference_steps": 3}),
        ("bc-expert", {"hidden": 64, "layers": 2}),
    ],
)
def test_loss_falls_and_the_saved_policy_acts_like_the_trained_one(
    store, tmp_path, kind, policy_cfg
):
    cfg = {"policy": policy_cfg, "train": {"batch_size": 16, "warmup_steps": 5, "log_every": 0}}
    policy, result = train_policy(kind, store, tmp_path, steps=120, config=cfg, progress=False)
    assert _mean(result.losses, slice(100, None)) < 0.8 * _mean(result.losses, slice(0, 10))
    loaded = Policy.load(tmp_path / "policy")
    assert loaded.type == kind and loaded.info["steps"] == 120
    data = HindsightWindows(store, HindsightConfig())
    batch = data.__getitems__([0])
    goal = "turn_on_light" if kind == "bc-expert" else {"state": batch["goal.state"][0].numpy()}
    for p in (policy, loaded):
        p.reset(seed=3, goal=goal)
    for t in range(20):
        obs = {"state": batch["state"][0, t].numpy()}
        np.testing.assert_array_equal(policy.act(obs), loaded.act(obs))


@pytest.mark.parametrize(
    ("kind", "policy_cfg"),
    [
        ("gcbc", {"hidden": 64, "layers": 2}),
        ("diffusion", {"channels": [16, 32], "cond_dim": 32, "inference_steps": 3}),
    ],
)
def test_relative_keypoints_and_expert_action_labels(store, tmp_path, kind, policy_cfg) -> None:
    """GCBC and the diffusion policy on keypoints relative to the end effector, cloning
    `expert_action` (DART labels): the loss falls, the normaliser's action is the label's, and
    the saved policy acts alike."""
    keys = ["state", "keypoints"]
    pcfg = {**policy_cfg, "obs_keys": keys, "goal_keys": keys}
    pcfg |= {"relative_keypoints": True, "action_key": "expert_action"}
    cfg = {"policy": pcfg, "train": {"batch_size": 16, "warmup_steps": 5, "log_every": 0}}
    policy, result = train_policy(kind, store, tmp_path, steps=120, config=cfg, progress=False)
    assert _mean(result.losses, slice(100, None)) < 0.8 * _mean(result.losses, slice(0, 10))
    hc = HindsightConfig(obs_keys=keys, goal_keys=keys, action_key="expert_action")
    data = HindsightWindows(store, hc)
    batch = data.__getitems__([0])
    rows, _ = data.sampler.batch_indices(np.array([0]))
    np.testing.assert_array_equal(batch["action"][0], data.arrays["expert_action"][rows[0, :32]])
    norm = data.normalizer().to_json()["keys"]
    assert policy.normalizer.to_json()["keys"]["action"] == norm["action"]
    lo, hi = (np.asarray(data.stats["expert_action"][k]) for k in ("min", "max"))
    np.testing.assert_allclose(norm["action"]["center"], (lo + hi) / 2, atol=1e-6)
    loaded = Policy.load(tmp_path / "policy")
    goal = {k: batch[f"goal.{k}"][0].numpy() for k in keys}
    for p in (policy, loaded):
        p.reset(seed=3, goal=goal)
    for t in range(10):
        obs = {k: batch[k][0, t].numpy() for k in keys}
        np.testing.assert_array_equal(policy.act(obs), loaded.act(obs))


def test_bc_expert_on_relative_keypoints(store, tmp_path) -> None:
    """Per-task BC sees the sites relative to the end effector: its loss falls, its inputs end
    with `relative_inputs` of the observation, and the saved policy acts like the trained one."""
    from playworld.policies.bc_expert import BCExpertConfig, bc_inputs
    from playworld.policies.goal import relative_inputs

    with pytest.raises(ConfigError, match="keypoints"):
        BCExpertConfig(relative_keypoints=True)
    keys = ["state", "keypoints"]
    pcfg = {"hidden": 64, "layers": 2, "obs_keys": keys, "relative_keypoints": True}
    cfg = {"policy": pcfg, "train": {"batch_size": 16, "warmup_steps": 5, "log_every": 0}}
    policy, result = train_policy(
        "bc-expert", store, tmp_path, steps=120, config=cfg, progress=False
    )
    assert _mean(result.losses, slice(100, None)) < 0.8 * _mean(result.losses, slice(0, 10))
    data = HindsightWindows(store, HindsightConfig(obs_keys=keys, goal_keys=keys))
    batch = data.__getitems__([0, 5])
    obs = {k: batch[k][:, 0] for k in keys}
    x = bc_inputs(policy.config, policy.normalizer, obs)
    kp = obs["keypoints"].float()
    rel = relative_inputs(kp, kp[:, 0])
    assert x.shape[1] == 40 + kp[0].numel() + rel.shape[1] == policy.model.nets[0][0][0].in_features
    torch.testing.assert_close(x[:, -rel.shape[1] :], rel)
    loaded = Policy.load(tmp_path / "policy")
    for p in (policy, loaded):
        p.reset(seed=3, goal="turn_on_light")
    for t in range(10):
        o = {k: batch[k][0, t].numpy() for k in keys}
        np.testing.assert_array_equal(policy.act(o), loaded.act(o))


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_benchmark_configs_train(store, tmp_path, path) -> None:
    """Each of configs/policies/<type>.yaml (what bench/policies.py trains with) is a valid
    config of its policy type and trains on a store: its settings reach the saved policy."""
    from playworld.training.config import load_yaml

    kind = path.stem.replace("_", "-")
    cfg = load_yaml(path)
    cfg["train"] = {**cfg.get("train", {}), "batch_size": 8, "log_every": 0}
    _, result = train_policy(kind, store, tmp_path, steps=3, config=cfg, progress=False)
    loaded = Policy.load(tmp_path / "policy")
    assert result.step == 3 and loaded.type == kind
    for key, value in cfg["policy"].items():
        have = getattr(loaded.config, key)
        assert (list(have) if isinstance(have, tuple) else have) == value, key


def test_relative_inputs_are_sites_minus_the_end_effector() -> None:
    from playworld.policies.goal import RELATIVE_SCALE, relative_inputs

    kp = torch.tensor([[[1.0, 2.0, 3.0], [1.1, 2.0, 2.9], [1.0, 2.05, 3.0]]])  # (1, 3, 3)
    rel = relative_inputs(kp, kp[:, 0])
    expected = torch.tensor([[0.1, 0.0, -0.1, 0.0, 0.05, 0.0]]) / RELATIVE_SCALE
    torch.testing.assert_close(rel, expected)


def test_relative_keypoints_need_keypoints() -> None:
    from playworld.policies.gcbc import GCBCConfig

    with pytest.raises(ConfigError, match="keypoints"):
        GCBCConfig(relative_keypoints=True)


def test_goal_policy_refuses_a_task_name_and_a_missing_goal_key(tmp_path) -> None:
    policy = POLICY_EXAMPLE(tmp_path)
    with pytest.raises(PolicyError, match="goal-conditioned"):
        policy.reset(seed=0, goal="turn_on_light")
    with pytest.raises(PolicyError, match="expected goal keys"):
        policy.reset(seed=0, goal={"keypoints": np.zeros((33, 3))})


def POLICY_EXAMPLE(tmp_path):  # noqa: N802 - a small untrained gcbc
    from playworld.policies.gcbc import GCBCPolicy

    return GCBCPolicy.example(tmp_path)


def test_expert_goal_evaluation_is_reproducible(tmp_path) -> None:
    """An untrained gcbc saved and evaluated twice on the same seeds: identical JSON."""
    POLICY_EXAMPLE(tmp_path).save(tmp_path / "p")
    factory = functools.partial(make_policy, str(tmp_path / "p"))
    runs = [
        evaluate(factory, "turn_on_light", 2, seed=5, max_steps=15, goals="expert")
        for _ in range(2)
    ]
    for r in runs:
        r.pop("elapsed_s")
    assert json.dumps(runs[0], sort_keys=True) == json.dumps(runs[1], sort_keys=True)
    assert runs[0]["goals"] == "expert"


def test_expert_goal_cache(tmp_path) -> None:
    """Cached goals are the rolled-out ones: an evaluation with a goal cache gives the same
    JSON as without, fills one file per episode start, and reads them back on the next run
    (no file rewritten); another start state is another entry; a damaged entry is replaced."""
    from playworld.collection.goals import ExpertGoals
    from playworld.sim.twin import Twin

    POLICY_EXAMPLE(tmp_path).save(tmp_path / "p")
    factory = functools.partial(make_policy, str(tmp_path / "p"))
    cache = tmp_path / "goals"
    kw = dict(seed=5, max_steps=15, goals="expert")
    runs = [evaluate(factory, "turn_on_light", 2, **kw)]
    runs.append(evaluate(factory, "turn_on_light", 2, goal_cache=cache, **kw))
    files = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(files) == 2 and all(n.startswith("turn_on_light-") for n in files)
    runs.append(evaluate(factory, "turn_on_light", 2, goal_cache=cache, **kw))
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == files
    for r in runs:
        r.pop("elapsed_s")
    assert len({json.dumps(r, sort_keys=True) for r in runs}) == 1

    twin = Twin()
    twin.reset(seed=3)
    fresh = ExpertGoals(twin)(twin, 3, "open_drawer")
    cached = ExpertGoals(twin, cache=tmp_path / "g")
    first = cached(twin, 3, "open_drawer")
    (entry,) = (tmp_path / "g").iterdir()
    entry.write_bytes(b"not an npz")
    again = cached(twin, 3, "open_drawer")
    for goal in (first, again):
        assert goal.keys() == fresh.keys()
        for k in fresh:
            np.testing.assert_array_equal(goal[k], fresh[k])
    twin.reset(seed=4)
    cached(twin, 3, "open_drawer")  # the same task and seed from another state
    assert len(list((tmp_path / "g").iterdir())) == 2


def test_train_cli_bad_store_is_one_line(tmp_path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "playworld",
            "train",
            "policy",
            "--type",
            "gcbc",
            "--store",
            str(tmp_path / "none.zarr"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1


@pytest.mark.slow
def test_gcbc_presses_the_button_better_than_untrained(store, tmp_path) -> None:
    """GCBC trained for a few minutes on light play; turn_on_light with expert goals."""
    torch.manual_seed(0)
    cfg = {"policy": {"hidden": 128}, "train": {"log_every": 0}}
    train_policy("gcbc", store, tmp_path / "trained", steps=1500, config=cfg, progress=False)
    untrained = POLICY_EXAMPLE(tmp_path)
    rates = {}
    for name, spec in (("trained", str(tmp_path / "trained" / "policy")), ("untrained", None)):
        if spec is None:
            untrained.save(tmp_path / "untrained")
            spec = str(tmp_path / "untrained")
        report = evaluate(
            functools.partial(make_policy, spec),
            "turn_on_light",
            10,
            seed=0,
            max_steps=80,
            goals="expert",
        )
        rates[name] = report["overall"]["success_rate"]
    assert rates["trained"] > rates["untrained"] and rates["trained"] >= 0.3, rates


def test_expert_steps_take_the_first_n_successful_segments(store) -> None:
    from playworld.datasets import PlayStore
    from playworld.policies.bc_expert import ExpertSteps

    with PlayStore.open(store, "r") as s:
        segs = [(e, seg) for e in range(len(s)) for seg in s.episode_metadata(e)["segments"]]
    ok = [seg for _, seg in segs if seg["success"]]
    assert len(ok) >= 3
    every = ExpertSteps(store)
    first2 = ExpertSteps(store, max_segments=2)
    assert len(every) == sum(seg["end"] - seg["start"] for seg in ok)
    assert len(first2) == sum(seg["end"] - seg["start"] for seg in ok[:2])
    np.testing.assert_array_equal(first2.rows, every.rows[: len(first2)])
    with pytest.raises(ConfigError, match="max_segments"):
        ExpertSteps(store, max_segments=0)
