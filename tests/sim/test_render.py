"""Rendering: skipped with the reason only when no OpenGL backend can create a context."""

import numpy as np
import pytest

from playworld.sim import RenderError
from playworld.sim.render import TwinRenderer


@pytest.fixture(scope="module")
def renderer(twin):
    try:
        r = TwinRenderer(twin, 96, 128)
    except RenderError as exc:
        pytest.skip(f"no OpenGL backend: {exc}")
    yield r
    r.close()


@pytest.mark.parametrize("camera", ["front", "wrist"])
def test_rgb_and_depth(renderer, camera):
    renderer.twin.reset(seed=0)
    rgb = renderer.rgb(camera)
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 10  # a scene, not a blank frame
    depth = renderer.depth(camera)
    assert depth.shape == (96, 128) and depth.dtype == np.float32
    assert np.all(np.isfinite(depth)) and 0.01 < depth.min() < 2.0


def test_images_follow_the_state(renderer):
    tw = renderer.twin
    tw.reset(seed=0)
    before = renderer.rgb("front").astype(int)
    state = tw.get_state()
    state[-1] = 1.0 - state[-1]  # toggle the light
    state[-4] = 0.2 - state[-4] if state[-4] < 0.1 else 0.0  # move the drawer
    tw.set_state(state)
    after = renderer.rgb("front").astype(int)
    assert np.abs(after - before).sum(axis=2).astype(bool).mean() > 0.002


def test_bad_camera_and_size_raise(twin):
    with pytest.raises(RenderError, match="image size"):
        TwinRenderer(twin, 1000, 1000)
    try:
        r = TwinRenderer(twin, 32, 32)
    except RenderError as exc:
        pytest.skip(f"no OpenGL backend: {exc}")
    with pytest.raises(RenderError, match="camera"):
        r.rgb("top")
    r.close()


def test_env_image_observations():
    from playworld.sim.env import PlayTableEnv

    try:
        env = PlayTableEnv(
            task="open_drawer", cameras=("front", "wrist"), image_size=(64, 80), depth=True
        )
        obs, _ = env.reset(seed=0)
    except RenderError as exc:
        pytest.skip(f"no OpenGL backend: {exc}")
    assert env.observation_space.contains(obs)
    assert obs["wrist_rgb"].shape == (64, 80, 3) and obs["front_depth"].shape == (64, 80)
    assert env.render().shape == (64, 80, 3)
    env.close()
