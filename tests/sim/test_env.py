import gymnasium as gym
import numpy as np
import pytest

import playworld.sim  # noqa: F401 - registers playworld/PlayTable-v0
from playworld.sim import ScriptedExpert, SimError
from playworld.sim.env import PlayTableEnv


def test_env_contract():
    env = gym.make("playworld/PlayTable-v0", task="close_drawer")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info == {"task": "close_drawer", "success": False}
    expert = ScriptedExpert("close_drawer")
    for _ in range(100):
        obs, reward, terminated, truncated, info = env.step(expert.act(obs))
        assert env.observation_space.contains(obs)
        if terminated or truncated:
            break
    assert terminated and info["success"] and reward == 1.0
    env.close()


def test_env_samples_tasks_and_truncates():
    env = PlayTableEnv(tasks=("turn_on_light", "open_drawer"), max_episode_steps=3)
    seen = set()
    for seed in range(6):
        _, info = env.reset(seed=seed)
        seen.add(info["task"])
    assert seen == {"turn_on_light", "open_drawer"}
    for _ in range(3):
        *_, truncated, info = env.step(np.zeros(7, np.float32))
    assert truncated and not info["success"]


def test_joint_action_space_env():
    env = PlayTableEnv(task="open_drawer", action_space="joint_pos")
    obs, _ = env.reset(seed=1)
    assert env.action_space.shape == (8,)
    obs, *_ = env.step(env.action_space.sample())
    assert np.all(np.isfinite(obs["state"]))


def test_goal_conditioned_mode():
    env = PlayTableEnv(task="open_drawer", goal_conditioned=True)
    obs, _ = env.reset(seed=2)
    assert obs["goal"][-4] > 0.12  # the expert's goal: the drawer open
    assert obs["state"][-4] < 0.04
    expert = ScriptedExpert("open_drawer")
    for _ in range(100):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        if terminated or truncated:
            break
    assert info["success"]
    # an explicit goal is passed through; the start state itself is reached at once
    start, _ = env.reset(seed=3)
    obs, _ = env.reset(seed=3, options={"goal": start["state"]})
    np.testing.assert_array_equal(obs["goal"], start["state"])
    *_, info = env.step(np.array([0, 0, 0, 0, 0, 0, 1.0], np.float32))
    assert info["success"]


def test_bad_arguments_raise():
    with pytest.raises(SimError, match="open_drawer"):
        PlayTableEnv(task="open_drawr")
    with pytest.raises(SimError, match="cameras"):
        PlayTableEnv(cameras=("top",))
