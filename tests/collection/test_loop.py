"""The control loop: drift-free rate, self-measurement, and never waiting on cameras or disks."""

from __future__ import annotations

import threading
import time

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from playworld.collection.cameras import CameraTap, StandInCamera
from playworld.collection.loop import ControlLoop
from playworld.collection.step_queue import StepQueue
from playworld.datasets import PlayStore
from playworld.errors import ConfigError
from playworld.hardware.camera import Camera, CameraConfig


class SlowMemoryFS(MemoryFileSystem):
    """An in-memory filesystem whose every file write takes `delay` s: a slow disk at the
    transport seam (the store, its writer and zarr are the real ones)."""

    protocol = "slowmem"
    delay = 0.05

    def pipe_file(self, path, value, **kwargs):
        time.sleep(self.delay)
        return super().pipe_file(path, value, **kwargs)


fsspec.register_implementation("slowmem", SlowMemoryFS, clobber=True)


def test_rate_and_drift_free_schedule(sim_robot, hold):
    fps = 40.0
    stalled = []

    def source(obs):
        if len(stalled) == 10:  # one tick of 2.5 periods: an overrun, one slot skipped
            time.sleep(2.5 / fps)
        stalled.append(1)
        return hold(obs)

    loop = ControlLoop(sim_robot, source, fps)
    m = loop.run(duration=1.0)
    s = m.summary()
    starts = np.asarray(m.starts)
    slots = (starts - starts[0]) * fps
    # Every tick starts on the grid t0 + k / fps (drift-free), within a few ms of its slot;
    # the one after the overrun starts at once, half a period late, in slot 12 (11 is skipped).
    late = [i + 1 for i, _ in m.overrun_ticks]
    assert 11 in late  # (a loaded machine may add overruns of its own)
    assert 12.3 < slots[11] < 13
    on_grid = np.delete(slots, late)
    assert np.abs(on_grid - np.round(on_grid)).max() * 1e3 / fps < 8.0, slots
    assert s["overruns"] >= 1 and s["missed_ticks"] >= 1
    assert s["ticks"] + s["missed_ticks"] == 40
    assert np.round(slots[-1]) == 39
    assert set(s["stage_ms"]) == {"read", "camera", "source", "send", "write"}
    assert np.asarray(m.wall)[10, 2] >= 2.5 / fps  # the stall is timed in the source stage


def test_rate_without_stalls(sim_robot, hold):
    loop = ControlLoop(sim_robot, hold, 50.0)
    s = loop.run(duration=1.0).summary()
    assert s["ticks"] == 50 - s["missed_ticks"]
    assert s["rate_ratio"] >= 0.97, s
    assert s["jitter_p50_ms"] < 5.0, s  # a quarter period, even on a loaded machine


def test_slow_and_fast_cameras_do_not_lower_the_rate(sim_robot, hold, frames):
    slow = StandInCamera(frames, 30.0, name="slow", capture_s=0.25)  # delivers ~4 fps
    fast = StandInCamera(frames, 80.0, name="fast")
    with slow, fast:
        loop = ControlLoop(sim_robot, hold, 20.0, cameras={"slow": slow, "fast": fast})
        s = loop.run(duration=1.5).summary()
    assert s["rate_ratio"] >= 0.97, s
    assert s["ticks"] == 30 - s["missed_ticks"]
    assert s["cameras"]["slow"]["repeated"] > s["ticks"] // 2  # the loop went on without it
    assert s["cameras"]["fast"]["dropped"] >= s["ticks"]  # 4 frames a tick, 3 never recorded
    assert s["dropped_frames"] == s["cameras"]["fast"]["dropped"] + s["cameras"]["slow"]["dropped"]


def test_same_rate_cameras_drop_nothing(sim_robot, hold, frames):
    start = time.monotonic() + 0.05  # two hardware-synchronised cameras
    cams = {n: StandInCamera(frames, 30.0, name=n, start=start) for n in ("front", "wrist")}
    for c in cams.values():
        c.connect()
    try:
        s = ControlLoop(sim_robot, hold, 30.0, cameras=cams).run(duration=1.5).summary()
    finally:
        for c in cams.values():
            c.disconnect()
    # Ticks sit half a frame after each capture: a late capture thread (a loaded machine) can
    # still cost a frame, but same-rate cameras do not lose frames systematically.
    assert s["dropped_frames"] <= 2, s["cameras"]
    for c in s["cameras"].values():
        assert c["repeated"] <= 2 and 0.25 < c["age_ms_p50"] * 30 / 1000 < 0.75, c


def test_records_steps_with_camera_times(tmp_path, sim_robot, hold, frames):
    cam = StandInCamera(frames, 30.0, name="front")
    with cam:
        loop = ControlLoop(sim_robot, hold, 30.0, cameras={"front": cam})
        store = PlayStore.create(tmp_path / "s.zarr", loop.features, fps=30.0)
        with StepQueue(store) as writer:
            loop.writer = writer
            writer.begin()
            loop.recording = True
            loop.run(max_ticks=20)
            index = writer.commit({"loop": loop.metrics.summary()}).result(timeout=30)
        store.close()
    ep = PlayStore.open(tmp_path / "s.zarr").episode(index)
    assert len(ep) == 20
    assert set(ep.keys()) >= {"joint_pos", "state", "front", "front_t", "action", "command"}
    t = ep["front_t"][:][:, 0]
    assert np.all(np.diff(t) > 0)
    # Each recorded image is the replayed frame with that capture index.
    images = ep["front"][:]
    idx = [int(np.argmin(np.abs(frames.astype(int) - im).sum(axis=(1, 2, 3)))) for im in images]
    assert all(np.array_equal(images[i], frames[k]) for i, k in enumerate(idx))
    np.testing.assert_array_equal(ep["action"][:], ep["command"][:])  # joint targets
    assert ep.metadata["writer_dropped_steps"] == 0
    assert ep.metadata["loop"]["ticks"] == 20


def test_slow_store_drops_steps_not_ticks(sim_robot, hold):
    SlowMemoryFS.store.clear()
    loop = ControlLoop(sim_robot, hold, 50.0)
    store = PlayStore.create("slowmem://slow/s.zarr", loop.features, fps=50.0, vector_chunk_rows=1)
    writer = StepQueue(store, max_queue=5)
    loop.writer = writer
    try:
        writer.begin()
        loop.recording = True
        s = loop.run(duration=1.0).summary()
        dropped = writer.episode_dropped
        future = writer.commit({})
        index = future.result(timeout=120)
    finally:
        writer.close()
        store.close()
    assert s["rate_ratio"] >= 0.97, s
    assert dropped > 0 and writer.dropped == dropped and writer.max_queued == 5
    ep = PlayStore.open("slowmem://slow/s.zarr").episode(index)
    assert len(ep) == s["ticks"] - dropped
    assert ep.metadata["writer_dropped_steps"] == dropped


def test_bad_rate_and_clashing_names(sim_robot, hold, frames):
    with pytest.raises(ConfigError, match="fps > 0"):
        ControlLoop(sim_robot, hold, 0.0)
    with pytest.raises(ConfigError, match="distinct"):
        ControlLoop(sim_robot, hold, 10.0, cameras={"state": StandInCamera(frames)})


class FrameStream(Camera):
    """A camera at its lowest level: the test delivers its frames (`_publish`), as a capture
    thread would."""

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass


def test_an_overdue_frame_is_waited_for_once():
    image = np.zeros((4, 4, 3), np.uint8)
    cam = FrameStream(CameraConfig(height=4, width=4, fps=50.0))
    with cam:
        patient, plain = CameraTap("c", cam, patience=0.05), CameraTap("c", cam)
        cam._publish(image, time.monotonic())
        assert patient.read(time.monotonic()).new == plain.read(time.monotonic()).new == 1
        time.sleep(0.02)  # a period on: the next frame is due; its capture thread is late
        now = time.monotonic()
        assert plain.read(now).new == 0  # without patience: the old frame again...
        threading.Timer(0.01, cam._publish, (image, time.monotonic())).start()
        r = patient.read(now)
        assert (r.new, r.dropped, r.frame.index) == (1, 0, 1) and time.monotonic() - now < 0.04
        assert plain.read(time.monotonic()).new == 1  # ...and this one a tick late
        time.sleep(0.02)  # the camera stops: waited for once, not every tick after
        t0 = time.monotonic()
        assert patient.read(t0).new == 0 and time.monotonic() - t0 >= 0.045
        t0 = time.monotonic()
        assert patient.read(t0).new == 0 and time.monotonic() - t0 < 0.01
