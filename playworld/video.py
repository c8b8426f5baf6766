"""MP4 video that browsers play: H.264 (yuv420p) through PyAV.

    with Mp4Writer("episode.mp4", fps=10) as video:
        for frame in frames:                 # (H, W, 3) uint8 RGB
            video.write(frame)
    write_mp4("clip.mp4", frames, fps=10)    # the same, for an array (T, H, W, 3)

OpenCV's `mp4v` (MPEG-4 part 2) files do not play in browsers; H.264 does. Odd frame sizes are
padded by one pixel (yuv420p needs even sizes). Needs the `av` package (the `video` extra).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError


class Mp4Writer:
    """Encodes RGB frames into an H.264 mp4 file at `fps` (see the module docstring)."""

    def __init__(self, path: str | Path, fps: float, crf: int = 23) -> None:
        if not fps > 0:
            raise ConfigError(f"expected a video rate fps > 0, found {fps}")
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self._container: Any = None
        self._stream: Any = None
        self.frames = 0

    def _open(self, height: int, width: int) -> None:
        from fractions import Fraction

        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        rate = Fraction(self.fps).limit_denominator(1000)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        import av

        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ConfigError(
                f"expected an (H, W, 3) uint8 frame, found {frame.shape} {frame.dtype}"
            )
        if self._stream is None:
            self._open(frame.shape[0], frame.shape[1])
        h, w = self._stream.height, self._stream.width
        if frame.shape[:2] != (h, w):
            frame = np.pad(
                frame, ((0, h - frame.shape[0]), (0, w - frame.shape[1]), (0, 0)), "edge"
            )
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file (idempotent)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = self._stream = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write frames (each (H, W, 3) uint8 RGB) to an H.264 mp4; returns the path."""
    with Mp4Writer(path, fps) as video:
        for frame in frames:
            video.write(frame)
    return Path(path)


def is_h264(path: str | Path) -> bool:
    """True when the file's first video stream is H.264 (plays in browsers)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "video")
            return stream.codec_context.name == "h264"
    except (av.error.FFmpegError, StopIteration, OSError):
        return False


def transcode_h264(src: str | Path, dst: str | Path) -> Path:
    """Re-encode any video PyAV reads (e.g. OpenCV's mp4v) as H.264 at its own rate."""
    import av

    with av.open(str(src)) as container:
        stream = next(s for s in container.streams if s.type == "video")
        fps = float(stream.average_rate or 10)
        frames = (f.to_ndarray(format="rgb24") for f in container.decode(stream))
        return write_mp4(dst, frames, fps)
