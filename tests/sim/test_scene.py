import numpy as np
import pytest

from playworld.sim import TwinConfig
from playworld.sim.assets import decimate, read_stl, visual_mesh_paths, write_stl
from playworld.sim.config import RandomizationConfig
from playworld.sim.errors import ConfigError
from playworld.sim.scene import ARM_JOINTS, BLOCKS, CAMERAS, KEYPOINTS, build_model


def test_scene_has_every_part(twin):
    m = twin.model
    for name in (*ARM_JOINTS, "drawer", "door", "button", *(f"block_{c}" for c in BLOCKS)):
        assert m.joint(name).id >= 0
    for cam in CAMERAS:
        assert m.camera(cam).id >= 0
    assert len(KEYPOINTS) == len(set(KEYPOINTS)) == twin.keypoints().shape[0]
    assert m.nu == 9 and m.opt.timestep == pytest.approx(0.002)
    # the robot's joints come first in qpos (keyframes and state sync rely on it)
    assert list(twin.arm_qadr) == list(range(7))


def test_block_corner_sites_are_block_corners(twin):
    kp = dict(zip(KEYPOINTS, twin.keypoints(), strict=True))
    centre = kp["block_red"]
    corners = np.array([kp[f"block_red_c{i}"] for i in range(8)])
    np.testing.assert_allclose(
        np.linalg.norm(corners - centre, axis=1), 0.025 * np.sqrt(3), atol=1e-9
    )


def test_reset_puts_blocks_apart_on_the_table(twin):
    for seed in range(5):
        twin.reset(seed=seed)
        pos = np.array([twin.keypoint(f"block_{c}") for c in BLOCKS])
        assert np.allclose(pos[:, 2], 0.025)
        gaps = [np.linalg.norm(pos[i, :2] - pos[j, :2]) for i in range(3) for j in range(i + 1, 3)]
        assert min(gaps) > 0.1


def test_stl_round_trip_and_decimation(tmp_path):
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    write_stl(tmp_path / "t.stl", verts, faces)
    v2, f2 = read_stl(tmp_path / "t.stl")
    assert len(v2) == 4 and len(f2) == 4
    np.testing.assert_allclose(np.sort(v2, axis=0), np.sort(verts, axis=0))
    # a finely tessellated sphere loses most of its faces
    sphere_v, sphere_f = _sphere(20)
    dv, df = decimate(sphere_v, sphere_f, 0.1)
    assert len(df) < 0.2 * len(sphere_f)


def test_decimated_meshes_are_cached_and_smaller(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYWORLD_CACHE", str(tmp_path))
    fast = visual_mesh_paths(0.05)
    assert all(str(p).startswith(str(tmp_path)) for p in fast.values())
    full = visual_mesh_paths(1.0)
    assert len(read_stl(fast["link0"])[1]) < 0.1 * len(read_stl(full["link0"])[1])
    mtime = fast["link0"].stat().st_mtime_ns
    assert visual_mesh_paths(0.05)["link0"].stat().st_mtime_ns == mtime  # not redone


def test_config_derives_substeps_and_rejects_bad_rates():
    assert TwinConfig(control_hz=10).n_substeps == 50
    assert TwinConfig(control_hz=25).dt == pytest.approx(0.04)
    with pytest.raises(ConfigError, match="whole"):
        TwinConfig(control_hz=7)
    with pytest.raises(ConfigError, match="action space"):
        TwinConfig(action_space="torque")
    with pytest.raises(ConfigError, match="friction"):
        RandomizationConfig(friction=(1.5, 0.5))


def test_config_from_yaml(tmp_path):
    path = tmp_path / "twin.yaml"
    path.write_text("control_hz: 20\nrandomization: {friction: [0.8, 1.2], camera_jitter: 0.01}\n")
    cfg = TwinConfig.from_yaml(path)
    assert cfg.n_substeps == 25 and cfg.randomization.friction == [0.8, 1.2]
    path.write_text("control_rate: 20\n")
    with pytest.raises(ConfigError, match="control_rate"):
        TwinConfig.from_yaml(path)


def test_randomization_changes_physics_and_camera():
    from playworld.sim import Twin

    cfg = TwinConfig(
        randomization=RandomizationConfig(
            friction=(0.5, 1.5), mass=(0.5, 2.0), lighting=True, camera_jitter=0.02
        )
    )
    tw = Twin(cfg)
    base = build_model(TwinConfig())
    tw.reset(seed=1)
    g = tw.block_geoms
    assert not np.allclose(tw.model.geom_friction[g, 0], base.geom_friction[g, 0])
    assert not np.allclose(tw.model.body_mass[tw.block_bodies], base.body_mass[tw.block_bodies])
    cam = tw.model.camera("front").id
    assert not np.allclose(tw.model.cam_pos[cam], base.cam_pos[cam])
    friction = tw.model.geom_friction[g, 0].copy()
    tw.reset(seed=1)
    np.testing.assert_array_equal(tw.model.geom_friction[g, 0], friction)  # seeded, not cumulative


def _sphere(n):
    th, ph = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n, endpoint=False))
    v = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    idx = np.arange(v.shape[0]).reshape(2 * n, n)
    f = []
    for i in range(2 * n):
        for j in range(n - 1):
            a, b = idx[i, j], idx[i, j + 1]
            c, d = idx[(i + 1) % (2 * n), j], idx[(i + 1) % (2 * n), j + 1]
            f += [[a, b, d], [a, d, c]]
    return v, np.array(f)
