"""One contract test over every registered Policy: build, reset, act, save / load, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playworld.errors import PolicyError
from playworld.hardware.profiles import robot_from_profile
from playworld.policies import POLICIES, Policy
from playworld.policies.base import CONFIG_FILE, WEIGHTS_FILE

GOAL = "turn_on_light"  # a task every reset of the twin can start
STEPS = 4


@pytest.fixture(scope="module")
def observations():
    """Real SimRobot observations (ee_delta, no cameras) along a short scripted motion."""
    robot = robot_from_profile("sim_panda", cameras={}, action_space="ee_delta", seed=0)
    robot.connect()
    try:
        robot.reset(seed=0)
        out = []
        for i in range(STEPS):
            out.append(robot.get_observation())
            robot.send_action(np.array([0.01, 0.0, -0.01 * i, 0, 0, 0, 1.0]))
        return out
    finally:
        robot.disconnect()


def _complete(policy: Policy, obs: dict[str, np.ndarray], rng) -> dict[str, np.ndarray]:
    """`obs` plus stand-ins for the features the robot does not give (e.g. camera images)."""
    out = dict(obs)
    for key, f in policy.observation_features.items():
        if key not in out:
            if f.kind == "image":
                out[key] = rng.integers(0, 256, f.shape, dtype=np.uint8)
            else:
                out[key] = rng.standard_normal(f.shape).astype(f.dtype)
    return out


def _rollout(policy: Policy, observations, seed: int = 0) -> np.ndarray:
    policy.reset(seed=seed, goal=GOAL)
    rng = np.random.default_rng(seed)
    return np.stack([policy.act(_complete(policy, o, rng)) for o in observations])


def _one_line_error(path) -> str:
    with pytest.raises(PolicyError) as err:
        Policy.load(path)
    message = str(err.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize("name", POLICIES.names())
def test_policy_contract(name, tmp_path, observations):
    cls = POLICIES.entry(name)[1]
    policy = cls.example(tmp_path)
    assert policy.type == name and isinstance(policy, Policy)
    (dim,) = policy.action_features["action"].shape
    assert dim in (7, 8)
    assert policy.privileged == any(f.privileged for f in policy.observation_features.values())

    actions = _rollout(policy, observations)
    assert actions.shape == (STEPS, dim) and actions.dtype == np.float32
    assert np.all(np.isfinite(actions))
    np.testing.assert_array_equal(_rollout(policy, observations), actions)  # reset restarts

    # A batch through predict_chunk: (1, n_obs_steps, *shape) -> (1, n_action_steps, A).
    policy.reset(seed=0, goal=GOAL)
    obs = _complete(policy, observations[0], np.random.default_rng(0))
    batch = {
        k: np.repeat(np.asarray(obs[k])[None, None], policy.n_obs_steps, 1)
        for k in policy.observation_features
    }
    chunk = policy.predict_chunk(batch)
    assert chunk.shape == (1, policy.n_action_steps, dim)

    saved = policy.save(tmp_path / "ckpt")
    assert {p.name for p in saved.iterdir()} == {CONFIG_FILE, WEIGHTS_FILE}
    loaded = Policy.load(saved)
    assert type(loaded) is type(policy) and loaded.config == policy.config
    assert loaded.observation_features == policy.observation_features
    assert loaded.action_features == policy.action_features
    np.testing.assert_array_equal(_rollout(loaded, observations), actions)
    policy.save(saved)  # saving over a checkpoint replaces it
    assert Policy.load(saved).config == policy.config

    good = json.loads((saved / CONFIG_FILE).read_text())

    def tampered(edit) -> str:
        data = json.loads(json.dumps(good))
        edit(data)
        (saved / CONFIG_FILE).write_text(json.dumps(data))
        return _one_line_error(saved)

    assert "bogus" in tampered(lambda d: d["config"].update(bogus=1))
    wrong_type = tampered(lambda d: d["config"].update(n_obs_steps="two"))
    assert "does not describe a valid policy" in wrong_type
    message = tampered(lambda d: d.update(type="no_such_policy"))
    assert "no_such_policy" in message and name in message
    (saved / CONFIG_FILE).write_text(json.dumps(good))
    (saved / WEIGHTS_FILE).unlink()
    assert WEIGHTS_FILE in _one_line_error(saved)


def test_scripted_policy_refuses_goal_observations_and_unknown_tasks():
    from playworld.policies import make_policy

    policy = make_policy("scripted")
    assert policy.privileged
    with pytest.raises(PolicyError, match="task name"):
        policy.reset(goal={"state": np.zeros(40)})
    with pytest.raises(PolicyError, match="open_drawer"):
        policy.reset(goal="open_drawers")


def test_replay_policy_plays_the_stored_actions_then_holds(tmp_path):
    cls = POLICIES.entry("replay")[1]
    policy = cls.example(tmp_path)
    from playworld.datasets import PlayStore

    store = PlayStore.open(tmp_path / "replay_example.zarr")
    stored = store.episode(1)["action"][:]
    store.close()
    policy.reset()
    got = np.stack([policy.act({}) for _ in range(len(stored) + 2)])
    np.testing.assert_array_equal(got[: len(stored)], stored)
    np.testing.assert_array_equal(got[len(stored) :, :6], 0.0)  # then keeps still
    assert np.all(got[len(stored) :, 6] == stored[-1, 6])
    with pytest.raises(PolicyError, match="store"):
        cls.build_default()
