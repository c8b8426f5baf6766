"""Interop: play store -> LeRobot v3.0 -> play store; diffusion_policy zarr and robomimic hdf5
imports made here with zarr and h5py; bad input through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

pytest.importorskip("av")
pq = pytest.importorskip("pyarrow.parquet")
h5py = pytest.importorskip("h5py")

from playworld.datasets import Feature, PlayStore  # noqa: E402
from playworld.datasets.interop import ImportOptions, export_store, import_store  # noqa: E402
from playworld.errors import (  # noqa: E402
    ConfigError,
    StoreError,
    StoreFormatError,
    StoreNotFoundError,
)

H, W = 48, 64
FEATURES = {
    "observation.images.front": Feature((H, W, 3), "uint8", "image"),
    "observation.images.wrist": Feature((H, W, 3), "uint8", "image", codec="h264"),
    "observation.state": Feature((3,), units="rad", names=("a", "b", "c")),
    "observation.gripper": Feature((1,), units="m"),
    "observation.keypoints": Feature((2, 3), units="m", privileged=True),
    "action": Feature((4,), kind="action"),
}


def smooth_frames(n: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    out = np.empty((n, H, W, 3), dtype=np.uint8)
    for t in range(n):
        out[t, ..., 0] = 128 + 60 * np.sin(xx / 15 + t / 4 + seed)
        out[t, ..., 1] = 128 + 60 * np.cos(yy / 12 - t / 5)
        out[t, ..., 2] = 120
    return out


def make_store(path: Path, lengths=(12, 7, 20)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = sum(lengths)
    data = {
        "observation.images.front": smooth_frames(n, 0),
        "observation.images.wrist": smooth_frames(n, 50),
        "observation.state": rng.normal(size=(n, 3)).astype(np.float32),
        "observation.gripper": rng.uniform(size=(n, 1)).astype(np.float32),
        "observation.keypoints": rng.normal(size=(n, 2, 3)).astype(np.float32),
        "action": rng.normal(size=(n, 4)).astype(np.float32),
    }
    with PlayStore.create(path, FEATURES, fps=15, image_shard_frames=32) as store:
        start = 0
        for i, k in enumerate(lengths):
            meta = {"source": "autoplay", "tasks": [f"task {i % 2}"], "success": bool(i % 2)}
            store.add_episode({key: v[start : start + k] for key, v in data.items()}, meta)
            start += k
    return data


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def test_lerobot_round_trip(tmp_path: Path) -> None:
    data = make_store(tmp_path / "play")
    out = export_store("lerobot", tmp_path / "play", tmp_path / "le")
    # the v3.0 layout
    for rel in (
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "data/chunk-000/file-000.parquet",
        "videos/observation.images.front/chunk-000/file-000.mp4",
        "videos/observation.images.wrist/chunk-000/file-000.mp4",
    ):
        assert (out / rel).is_file(), rel
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 15
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 39, 2)
    assert info["features"]["observation.images.front"]["dtype"] == "video"
    assert info["features"]["observation.state"]["names"] == ["a", "b", "c"]
    table = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert table.num_rows == 39
    assert table.column("episode_index").to_pylist() == [0] * 12 + [1] * 7 + [2] * 20
    assert table.column("frame_index").to_pylist()[12:14] == [0, 1]
    assert table.schema.field("observation.gripper").type == "float"  # shape (1,): a scalar
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["length"] for e in episodes] == [12, 7, 20]
    assert episodes[1]["videos/observation.images.front/from_timestamp"] == pytest.approx(12 / 15)
    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert tasks.column("task").to_pylist() == ["task 0", "task 1"]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    stats = json.loads((out / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)

    back = import_store("lerobot", out, tmp_path / "back", ImportOptions())
    assert back.episode_ends.tolist() == [12, 19, 39]
    for key in ("observation.state", "observation.gripper", "observation.keypoints", "action"):
        np.testing.assert_array_equal(back.read(key, 0, 39), data[key])
        assert back.features[key] == FEATURES[key] or key == "observation.keypoints"
    assert back.features["observation.keypoints"].privileged
    assert back.features["observation.keypoints"].shape == (2, 3)
    for cam in ("observation.images.front", "observation.images.wrist"):
        assert psnr(back.read(cam, 0, 39), data[cam]) >= 35  # two lossy codecs (wrist) at most
    meta = back.episode_metadata(1)
    assert meta["tasks"] == ["task 1"] and meta["success"] is True and meta["source"] == "autoplay"


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_diffusion_policy_replay_buffer(tmp_path: Path, zarr_format: int) -> None:
    rng = np.random.default_rng(1)
    ends = np.array([5, 9, 17], dtype=np.int64)
    img = rng.integers(0, 256, (17, 32, 32, 3), dtype=np.uint8)
    state = rng.normal(size=(17, 2)).astype(np.float32)
    action = rng.normal(size=(17, 2)).astype(np.float32)
    root = zarr.open_group(tmp_path / "pusht.zarr", mode="w", zarr_format=zarr_format)
    for key, value in (("img", img), ("state", state), ("action", action)):
        root.create_array(f"data/{key}", data=value, chunks=(4, *value.shape[1:]))
    root.create_array("meta/episode_ends", data=ends)

    store = import_store(
        "diffusion-policy", tmp_path / "pusht.zarr", tmp_path / "play", ImportOptions()
    )
    assert store.episode_ends.tolist() == ends.tolist() and store.fps == 10
    assert store.features["img"].kind == "image" and store.features["action"].kind == "action"
    assert store.features["state"].kind == "state"
    np.testing.assert_array_equal(store.read("img", 0, 17), img)
    np.testing.assert_array_equal(store.episode(2)["action"][:], action[9:17])


def test_robomimic_hdf5(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    lengths = {"demo_0": 4, "demo_2": 6, "demo_10": 3}
    src = tmp_path / "low_dim.hdf5"
    made = {}
    with h5py.File(src, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift"})
        for demo, n in lengths.items():
            g = data.create_group(demo)
            g.attrs["num_samples"] = n
            made[demo] = {
                "actions": rng.normal(size=(n, 7)),
                "obs/robot0_eef_pos": rng.normal(size=(n, 3)),
                "obs/agentview_image": rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
                "states": rng.normal(size=(n, 10)),
                "rewards": np.arange(n, dtype=np.float64),
                "dones": np.eye(n, dtype=bool)[-1],
            }
            for key, value in made[demo].items():
                g.create_dataset(key, data=value)
        f.create_group("mask").create_dataset("train", data=np.array([b"demo_0", b"demo_10"]))

    store = import_store("robomimic", src, tmp_path / "play", ImportOptions(fps=20))
    assert store.episode_ends.tolist() == [4, 10, 13]  # demo_0, demo_2, demo_10: numeric order
    assert set(store.features) == {
        "action",
        "observation.robot0_eef_pos",
        "observation.agentview_image",
        "observation.sim_state",
        "reward",
        "done",
    }
    assert store.features["observation.agentview_image"].kind == "image"
    assert store.features["observation.sim_state"].privileged
    ep = store.episode(2)
    np.testing.assert_allclose(ep["action"][:], made["demo_10"]["actions"])
    np.testing.assert_array_equal(
        ep["observation.agentview_image"][:], made["demo_10"]["obs/agentview_image"]
    )
    assert ep["done"][:].ravel().tolist() == [0, 0, 1]
    assert store.episode_metadata(2)["splits"] == ["train"]
    assert store.episode_metadata(1)["source_episode"] == "demo_2"
    assert store.info["env_args"] == {"env_name": "Lift"}


def test_bad_input_raises_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'robomimic'"):
        import_store("robomimc", tmp_path, tmp_path / "x")
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        import_store("robomimic", tmp_path / "missing.hdf5", tmp_path / "x")
    (tmp_path / "notlerobot").mkdir()
    with pytest.raises(StoreFormatError, match="no meta/info.json"):
        import_store("lerobot", tmp_path / "notlerobot", tmp_path / "x")
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        export_store("lerobot", tmp_path / "nothere", tmp_path / "le")
    make_store(tmp_path / "play", lengths=(3,))
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        export_store("lerobot", tmp_path / "play", tmp_path / "full")
    (tmp_path / "bad.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(StoreFormatError, match="not an hdf5 file"):
        import_store("robomimic", tmp_path / "bad.hdf5", tmp_path / "x")


def run(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "playworld", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def assert_user_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, r
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for needle in needles:
        assert needle in lines[0]


def test_cli_export_import_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Errors through the real command (one line, exit 2); the happy path through the same
    `main` in this process (a subprocess costs seconds of imports on a loaded machine)."""
    from playworld.cli import main

    make_store(tmp_path / "play", lengths=(5, 4))
    assert_user_error(
        run("store", "export", "--format", "lerobt", tmp_path / "play", tmp_path / "le"),
        "unknown export format 'lerobt'",
        "lerobot",
    )
    assert_user_error(
        run("store", "import", "--format", "lerobot", tmp_path / "nothere", tmp_path / "p2"),
        "does not exist",
    )
    for argv in (
        ["store", "export", "--format", "lerobot", str(tmp_path / "play"), str(tmp_path / "le")],
        [
            "store",
            "import",
            "-f",
            "lerobot",
            "--image-codec",
            "h264",
            str(tmp_path / "le"),
            str(tmp_path / "p2"),
        ],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code in (0, None)
    assert "2 episodes, 9 steps" in capsys.readouterr().out
    assert PlayStore.open(tmp_path / "p2").features["observation.images.front"].codec == "h264"
