"""`playworld store export --format mcap`: read back with the mcap library's own reader."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mcap")
imagecodecs = pytest.importorskip("imagecodecs")
from mcap.reader import make_reader  # noqa: E402
from tiny_store import FEATURES, LENGTHS, make_store  # noqa: E402

from playworld.cli import main  # noqa: E402
from playworld.datasets import PlayStore  # noqa: E402


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "tiny.zarr")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    out = capsys.readouterr()
    return code, out.out, out.err


def read(path: Path):
    """topic -> [(schema name, log_time, decoded JSON)] in file order."""
    out = defaultdict(list)
    with open(path, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages():
            out[channel.topic].append((schema.name, message.log_time, json.loads(message.data)))
    return out


def test_one_message_per_row_per_channel(capsys, tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.mcap"
    code, stdout, err = cli(
        capsys, "store", "export", "--format", "mcap", str(tiny_store), str(out)
    )
    assert code == 0, err
    assert f"3 episodes, {sum(LENGTHS)} steps" in stdout
    topics = read(out)
    assert set(topics) == {f"/{k}" for k in FEATURES} | {"/annotations"}
    for key in FEATURES:
        msgs = topics[f"/{key}"]
        assert len(msgs) == sum(LENGTHS), key
        times = np.array([m[1] for m in msgs])
        assert np.all(np.diff(times) > 0), key  # across episodes too (episode 1 restarts its clock)
    # cameras: Foxglove's CompressedImage with a decodable JPEG close to the stored frame
    schema, t, msg = topics["/front"][0]
    assert schema == "foxglove.CompressedImage" and msg["format"] == "jpeg"
    assert msg["timestamp"] == {"sec": t // 10**9, "nsec": t % 10**9}
    frame = imagecodecs.jpeg_decode(base64.b64decode(msg["data"]))
    store = PlayStore.open(tiny_store)
    assert frame.shape == FEATURES["front"].shape
    # cameras sit at their capture times, 40 ms before the robot's
    cam_t = np.array([m[1] for m in topics["/front"]])
    robot_t = np.array([m[1] for m in topics["/t"]])
    assert np.allclose(robot_t - cam_t, 40e6, atol=10)
    # vectors carry their values and names exactly (float32 -> JSON double)
    _, _, joints = topics["/joint_pos"][3]
    assert joints["names"] == list(FEATURES["joint_pos"].names)
    assert np.allclose(joints["values"], store.read("joint_pos", 3, 4)[0])
    _, _, kp = topics["/keypoints"][0]
    assert kp["names"] == ["a", "b", "c", "d"] and len(kp["points"]) == 4
    # annotations: a summary, two logs per segment and the loop figures per episode
    logs = topics["/annotations"]
    assert len(logs) == 3 * (1 + 4 + 1)
    assert any("push_block: failed" in m[2]["message"] and m[2]["level"] == 3 for m in logs)


def test_one_episode_and_bad_input(capsys, tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.mcap"
    code, _, err = cli(capsys, "store", "export", str(tiny_store), str(out), "--episode", "1")
    assert code == 0, err
    assert len(read(out)["/command"]) == LENGTHS[1]
    for args, message in [
        ([str(tiny_store), str(out), "-e", "3"], "has 3 episodes; episode 3 does not exist"),
        ([str(tmp_path / "none.zarr"), str(out)], "does not exist"),
        ([str(tiny_store), str(tmp_path / "x.rrd")], "ending in .mcap"),
        ([str(tiny_store), str(out), "--format", "mcpa"], "Did you mean 'mcap'?"),
        ([str(tiny_store), str(tmp_path / "no" / "x.mcap")], "does not exist"),
    ]:
        code, _, err = cli(capsys, "store", "export", *args)
        assert code == 2 and err.count("\n") == 1 and message in err, (args, err)
