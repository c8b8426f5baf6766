"""Evaluation through the ONE control loop: a SimRobot from a profile, the recorder's observations."""

import functools
import json

import numpy as np
import pytest

from playworld.collection.eval_report import run_eval_cli
from playworld.collection.evaluation import (
    _Runner,
    evaluate,
    evaluate_chains,
    policy_cameras,
    wilson_interval,
)
from playworld.errors import ConfigError, PolicyError
from playworld.features import Feature
from playworld.policies import make_policy
from playworld.policies.scripted import ScriptedPolicy
from playworld.policies.simple import ZeroPolicy

SCRIPTED = functools.partial(make_policy, "scripted")
IDLE = functools.partial(make_policy, "zero")  # never moves


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.8 < lo < 0.85
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi < 0.2


def test_evaluate_is_deterministic_across_worker_counts():
    kwargs = dict(tasks="turn_on_light,push_red_block_left", episodes=2, seed=3, max_steps=40)
    one = evaluate(SCRIPTED, workers=1, **kwargs)
    two = evaluate(SCRIPTED, workers=2, **kwargs)
    again = evaluate(SCRIPTED, workers=2, **kwargs)
    for key in ("tasks", "overall", "episodes_detail"):
        assert one[key] == two[key] == again[key]
    assert one["tasks"]["turn_on_light"]["success_rate"] == 1.0
    assert len({e["seed"] for e in one["episodes_detail"]}) == 4
    assert one["policy"] == "scripted" and one["profile"] == "sim_panda"


class CoinFlipExpert(ScriptedPolicy):
    """Solves the task or idles, by a coin flip from numpy's process-wide generator."""

    def reset(self, seed=None, goal=None):
        super().reset(seed, goal)
        self.idle = bool(np.random.random() < 0.5)

    def act(self, obs):
        return np.array([0, 0, 0, 0, 0, 0, 1.0], np.float32) if self.idle else super().act(obs)


def test_evaluate_seeds_the_global_generators_per_episode():
    # Episodes go to whichever process is free, so a policy drawing from the process-wide
    # generators is reproducible only because each episode seeds them from its own seed.
    kwargs = dict(tasks="turn_on_light", episodes=6, seed=5, max_steps=40)
    state = np.random.get_state()[1].copy()
    one = evaluate(CoinFlipExpert.build_default, workers=1, **kwargs)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # the caller's is restored
    two = evaluate(CoinFlipExpert.build_default, workers=2, **kwargs)
    assert one["episodes_detail"] == two["episodes_detail"]
    flips = [e["success"] for e in one["episodes_detail"]]
    assert any(flips) and not all(flips)  # the coin matters, so the equality above means something
    chains = dict(chains=3, length=2, seed=2, max_steps=40)
    assert evaluate_chains(CoinFlipExpert.build_default, workers=1, **chains) == evaluate_chains(
        CoinFlipExpert.build_default, workers=2, **chains
    )


def test_evaluate_reports_failures():
    report = evaluate(IDLE, tasks="open_drawer", episodes=2, max_steps=5)
    r = report["tasks"]["open_drawer"]
    assert r["success_rate"] == 0.0 and r["lengths"] == [5, 5] and r["ci95"][0] == 0.0


def test_chains_protocol():
    report = evaluate_chains(SCRIPTED, chains=2, length=3, seed=1)
    assert set(report["success_at"]) == {"1", "2", "3"}
    assert report["success_at"]["1"] >= report["success_at"]["3"]
    for chain in report["chains"]:
        assert len(set(chain["tasks"])) == len(chain["tasks"]) <= 3
    idle = evaluate_chains(IDLE, chains=1, length=2, max_steps=3)
    assert idle["avg_len"] == 0.0


def test_run_eval_cli_writes_json_png_and_video(tmp_path, capsys):
    code = run_eval_cli(
        SCRIPTED,
        "scripted",
        "turn_off_light",
        episodes=2,
        workers=1,
        out=tmp_path,
        chains=1,
        videos=1,
    )
    assert code == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    r = report["tasks"]["turn_off_light"]
    assert r["success_rate"] == 1.0 and r["episodes"] == 2 and len(r["ci95"]) == 2
    assert "chains" in report
    png = (tmp_path / "eval.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "turn_off_light" in capsys.readouterr().out
    (video,) = r["videos"]
    import av

    with av.open(video) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.codec_context.name == "h264"
    assert frames == r["lengths"][0]


def test_bad_arguments_raise():
    with pytest.raises(PolicyError, match="scripted"):
        evaluate(functools.partial(make_policy, "nope"), tasks="open_drawer", episodes=1)
    with pytest.raises(ConfigError):
        evaluate(SCRIPTED, tasks="open_drawer", episodes=0)


class FlyingCameraPolicy(ZeroPolicy):
    """Reads a feature no sim robot has, and a camera image the loop renders."""

    @classmethod
    def build_default(cls, **overrides):
        policy = super().build_default(**overrides)
        policy.observation_features = {
            "front": Feature((24, 32, 3), "uint8", kind="image"),
            "lidar": Feature((360,), "float32"),
        }
        return policy


def test_policy_reading_what_the_robot_lacks_is_named():
    with pytest.raises(ConfigError, match=r"\['lidar'\]") as err:
        policy_cameras(FlyingCameraPolicy.build_default())
    assert "\n" not in str(err.value)
    policy = FlyingCameraPolicy.build_default()
    del policy.observation_features["lidar"]
    space, cameras = policy_cameras(policy)
    assert space == "ee_delta" and (cameras["front"].height, cameras["front"].width) == (24, 32)


def test_eval_observation_equals_the_autoplay_recording(tmp_path):
    """Step 0 of an autoplay store and the evaluation loop's first observation, same robot seed."""
    from playworld.collection.autoplay import AutoplayConfig, autoplay, worker_seed
    from playworld.datasets import PlayStore

    config = AutoplayConfig(seed=4, cameras=("front",), height=24, width=32, episode_steps=5)
    autoplay(tmp_path / "play.zarr", config, steps=5)
    store = PlayStore.open(tmp_path / "play.zarr")
    recorded = {k: store.episode(0)[k][0] for k in store.features}
    store.close()

    class AllKeys(ZeroPolicy):
        pass

    policy = AllKeys.build_default()
    policy.observation_features = {
        k: f for k, f in store.features.items() if k not in ("action", "command", "expert_action")
    }
    runner = _Runner("t", lambda: policy, "sim_panda")
    seen = []
    try:
        runner.robot.reset(seed=worker_seed(config.seed, 0))
        runner.loop.run(max_ticks=1, on_tick=lambda tick: seen.append(tick.obs))
    finally:
        runner.close()
    obs = seen[0]
    assert set(obs) == set(recorded) - {"action", "command", "expert_action"}
    for key in obs:
        np.testing.assert_array_equal(obs[key], recorded[key], err_msg=key)
        assert np.asarray(obs[key]).dtype == recorded[key].dtype, key


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 340 episodes: about a minute on 2 free cores
def test_scripted_experts_succeed_on_every_task_through_the_loop():
    report = evaluate(SCRIPTED, "all", episodes=20, seed=0, workers=2)
    rates = {t: r["success_rate"] for t, r in report["tasks"].items()}
    assert len(rates) == 17
    assert min(rates.values()) >= 0.95, rates
