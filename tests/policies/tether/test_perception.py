"""Perceived keypoints on the twin's rendered depth: back-projection, segmentation, registration."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("open3d", reason="open3d (the `tether` extra) is not installed")

from playworld.policies.tether.library import keypoint_index, scene_objects  # noqa: E402
from playworld.policies.tether.perception import (  # noqa: E402
    Perceiver,
    register,
    segment,
    twin_cloud,
)
from playworld.policies.tether.warp import Rigid, quat_matrix  # noqa: E402
from playworld.sim import Twin  # noqa: E402
from playworld.sim.render import TwinRenderer  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    twin = Twin()
    twin.reset(seed=4)
    renderer = TwinRenderer(twin, 240, 320)
    yield twin, renderer
    renderer.close()


def test_the_cloud_lands_on_the_scene(scene):
    twin, renderer = scene
    clouds = segment(*twin_cloud(renderer))
    for color in ("red", "green", "blue"):
        cloud = clouds[f"block_{color}"]
        centre = twin.keypoint(f"block_{color}")
        assert len(cloud) > 50
        # Every point of a block's cloud lies on the cube (half size 2.5 cm) around its centre.
        assert np.abs(cloud - centre).max() < 0.025 * math.sqrt(3) + 0.004


def test_registration_recovers_a_known_transform_of_a_rendered_object_cloud(scene):
    """Within 5 mm and 3 degrees."""
    twin, renderer = scene
    cloud = segment(*twin_cloud(renderer))["block_green"]
    centre = cloud.mean(0)
    truth = Rigid.from_yaw(math.radians(25), centre, centre + [0.06, -0.04, 0.0])
    result = register(cloud, truth.apply(cloud))
    t = result.transform
    err = np.linalg.norm(cloud @ t[:3, :3].T + t[:3, 3] - truth.apply(cloud), axis=1).max()
    r = t[:3, :3] @ quat_matrix(truth.rot).T
    angle = math.degrees(math.acos(np.clip((np.trace(r) - 1) / 2, -1, 1)))
    assert err < 0.005 and angle < 3.0, (err, angle)


def test_perceived_keypoints_follow_the_moved_objects(scene):
    twin, _ = scene
    reference = Twin()
    reference.reset(seed=4)
    with TwinRenderer(reference, 240, 320) as r0:
        perceiver = Perceiver.calibrate(r0)
    moved = Twin()
    moved.reset(seed=9)
    with TwinRenderer(moved, 240, 320) as r1:
        kp = perceiver.keypoints(r1, np.zeros((33, 3)))
    truth = moved.keypoints()
    for name in ("block_red", "block_green", "block_blue", "drawer", "door"):
        rows = keypoint_index(scene_objects()[name].names)
        centre_err = np.linalg.norm(kp[rows].mean(0) - truth[rows].mean(0))
        assert centre_err < 0.01, (name, centre_err)
