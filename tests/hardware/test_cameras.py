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


def assert_paced(frames, period):
    """Frames a reader saw: never two within half a period (no catch-up burst), and on time on
    average (the mean gap within 3 periods even on a busy machine)."""
    t = np.array([f.t for f in frames])
    index = np.array([f.index for f in frames])
    gaps = np.diff(t) / np.diff(index)  # per emitted frame, when the reader missed some
    assert gaps.min() >= period / 2 - 1e-6, gaps
    assert gaps.mean() < 3 * period, gaps


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
        assert_paced(frames, 1 / 50)  # like a 50 fps camera, not decoded at full speed
        time.sleep(0.6)  # the file ends: read() reports it instead of hanging
        with pytest.raises(HardwareError, match="stopped giving frames"):
            cam.read(timeout=1.0)


def test_missed_slots_are_skipped_and_counted():
    """The slot after a frame emitted at `emitted`: the first at least half a period later."""
    cam = OpenCVCamera(OpenCVCameraConfig(source="unused.avi", fps=50))
    assert cam._next_slot(1.0, 1.001, 0.02) == pytest.approx(1.02) and cam.missed_slots == 0
    assert cam._next_slot(1.0, 1.009, 0.02) == pytest.approx(1.02) and cam.missed_slots == 0
    # 15 ms late: the next slot would come 5 ms after it, so it is skipped
    assert cam._next_slot(1.0, 1.015, 0.02) == pytest.approx(1.04) and cam.missed_slots == 1
    # a 0.5 s stall: 25 slots passed over, the grid kept (no drift)
    assert cam._next_slot(1.0, 1.5, 0.02) == pytest.approx(1.52) and cam.missed_slots == 26


@pytest.fixture
def cpu_load():
    """Busy processes, two per core, for the length of a test (the load of a shared CI box)."""
    import os
    import subprocess
    import sys

    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    yield len(procs)
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.slow
def test_file_pacing_holds_under_cpu_load(tmp_path, cpu_load):
    """50 runs in a row (PLAYWORLD_PACING_RUNS to change) of 30 frames at 50 fps: every frame
    emitted at least half a period after the one before, however late the thread runs."""
    import os

    video = write_video(tmp_path / "clip.avi", frames=25)
    p = 1 / 50
    for run in range(int(os.environ.get("PLAYWORLD_PACING_RUNS", "50"))):
        cam = OpenCVCamera(
            OpenCVCameraConfig(source=str(video), height=24, width=32, fps=50, loop=True)
        )
        seen = []  # (emission time, missed_slots then) of every frame, not just those read
        with cam:
            cam._publish = _recording(cam, seen)
            while len(seen) < 30:
                cam.read(timeout=5.0)
        e, missed = np.array(seen[:30]).T
        gaps = np.diff(e)
        assert gaps.min() >= p / 2 - 1e-6, (run, gaps)  # never a burst, however late
        # Frames 1..n sit on slots k_1..k_n of the grid; k_n - k_1 = (n - 1) + slots skipped.
        # Each frame goes out at or after its slot, and the next slot is the first one at
        # least p/2 after it, so the slots frames and skips account for match the clock:
        covered = (len(e) - 2 + missed[-1] - missed[1]) * p
        assert e[-2] - e[1] + p / 2 - 1e-6 < covered <= e[-1] - e[0] - p / 2 + 1e-6, run
        print(f"run {run}: mean gap {gaps.mean() * 1e3:.1f} ms, {int(missed[-1])} missed slots")


def _recording(cam, seen):
    publish = cam._publish

    def wrapper(image, t):
        seen.append((t, cam.missed_slots))
        publish(image, t)

    return wrapper


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
