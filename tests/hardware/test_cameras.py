"""Cameras: OpenCV from a video file written here (the real decode path), the twin's camera."""

from __future__ import annotations

import time

import numpy as np
import pytest

from playworld.hardware.camera import CAMERAS
from playworld.hardware.errors import ConfigError, HardwareError, NotConnectedError
from playworld.hardware.opencv_camera import OpenCVCamera, OpenCVCameraConfig

cv2 = pytest.importorskip("cv2", reason="OpenCV not installed (pip install 'playworld[sim]')")


def write_video(path, frames=20, size=(48, 64)):
    """An MJPG AVI whose frame i is filled with grey level 10 * i (decodable anywhere)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size[::-1])
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((*size, 3), 10 * i, np.uint8))
    writer.release()
    return path


def test_opencv_camera_reads_a_video_file(tmp_path):
    video = write_video(tmp_path / "clip.avi")
    cam = CAMERAS.from_dict(
        {"type": "opencv", "source": str(video), "height": 24, "width": 32, "fps": 50}
    )
    assert isinstance(cam, OpenCVCamera) and cam.feature.shape == (24, 32, 3)
    with pytest.raises(NotConnectedError):
        cam.read()
    with cam:
        first = cam.read(timeout=2.0)
        assert first.image.shape == (24, 32, 3) and first.image.dtype == np.uint8
        second = cam.read(timeout=2.0)
        assert second.index > first.index and second.t > first.t
        # Frames arrive in order: the grey level grows by 10 per frame (JPEG: give or take 3).
        assert (
            abs(
                int(second.image.mean())
                - int(first.image.mean())
                - 10 * (second.index - first.index)
            )
            <= 3
        )
        t0 = time.monotonic()
        latest = cam.read_latest()
        assert time.monotonic() - t0 < 0.005 and latest is not None
        frames = [cam.read(timeout=2.0) for _ in range(5)]
        period = np.diff([f.t for f in frames]).mean()
        assert 0.01 < period < 0.05  # paced at 50 fps like a camera, not decoded at full speed
        time.sleep(0.6)  # the file ends: read() reports it instead of hanging
        with pytest.raises(HardwareError, match="stopped giving frames"):
            cam.read(timeout=1.0)


def test_a_slow_camera_never_blocks_read_latest(tmp_path):
    video = write_video(tmp_path / "slow.avi", frames=5)
    cam = OpenCVCamera(OpenCVCameraConfig(source=str(video), height=48, width=64, fps=2, loop=True))
    with cam:
        cam.read(timeout=2.0)
        t0 = time.monotonic()
        for _ in range(100):  # a 100 Hz control loop keeps its rate against a 2 Hz camera
            frame = cam.read_latest()
        assert time.monotonic() - t0 < 0.05 and frame is not None
        with pytest.raises(HardwareError, match="within 0.05 s"):
            cam.read(timeout=0.05)


def test_opencv_camera_errors(tmp_path):
    with pytest.raises(HardwareError, match="found none that OpenCV opens"):
        OpenCVCamera(OpenCVCameraConfig(source=str(tmp_path / "missing.avi"))).connect()
    with pytest.raises(ConfigError, match="fps"):
        OpenCVCameraConfig(fps=0)
    with pytest.raises(ConfigError, match="Valid: opencv, rosbridge, sim"):
        CAMERAS.from_dict({"type": "webcam"})


def test_sim_camera_renders_the_twin():
    pytest.importorskip("playworld.sim")  # sets MUJOCO_GL before mujoco loads
    from playworld.sim.robot import SimCamera, SimCameraConfig

    with pytest.raises(HardwareError, match="sim robot"):
        SimCamera(SimCameraConfig()).connect()
