"""Pictures of imagined rollouts: state plots per field, frame strips and side-by-side videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from playworld.world_models.groups import field_slices


def plot_states(truth: np.ndarray, imagined: np.ndarray, key: str, fps: float, path: Path) -> None:
    """truth, imagined (T, D) -> one panel per field of the state vector, PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = field_slices(key, truth.shape[1])
    cols = min(4, len(fields))
    rows = -(-len(fields) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.4 * rows), squeeze=False)
    t = np.arange(1, len(truth) + 1) / fps
    for ax, (name, sl) in zip(axes.flat, fields, strict=False):
        for j in range(sl.start, sl.stop):
            (line,) = ax.plot(t, truth[:, j], lw=1.2)
            ax.plot(t, imagined[:, j], lw=1.2, ls="--", color=line.get_color())
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(fields) :]:
        ax.axis("off")
    fig.suptitle("recorded (solid) vs imagined (dashed); seconds after the start", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: object, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    tmp.replace(path)


def side_by_side(truth: np.ndarray, imagined: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 each -> (T, H, 3W, 3): true | imagined | |error| (amplified x3)."""
    err = np.clip(np.abs(truth.astype(np.int16) - imagined.astype(np.int16)) * 3, 0, 255)
    return np.concatenate([truth, imagined, err.astype(np.uint8)], axis=2)


def write_strip(frames: np.ndarray, path: Path, every: int = 1, max_rows: int = 16) -> None:
    """Side-by-side frames (T, H, W', 3) stacked vertically (every ``every``-th) as a PNG."""
    import cv2

    rows = frames[::every][:max_rows]
    tmp = path.with_name(f".{path.name}.tmp.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(list(rows), axis=0), cv2.COLOR_RGB2BGR))
    tmp.replace(path)


def write_video(frames: np.ndarray, path: Path, fps: float, scale: int = 4) -> None:
    """(T, H, W, 3) uint8 -> H.264 mp4 (PyAV), each pixel ``scale`` x ``scale``, atomically."""
    import av

    big = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = big.shape[1:3]
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=max(int(round(fps)), 1))
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        for f in big:
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(f[: h - h % 2, : w - w % 2]), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.replace(path)
