"""Robot assets: the Franka Panda MJCF and meshes shipped by `gymnasium-robotics` (MIT licence).

Visual meshes are decimated once (quadric edge collapse, `fast-simplification`) and cached as
binary STL under `$PLAYWORLD_CACHE` (default `~/.cache/playworld`), so that software OpenGL renders
the arm at interactive rates. Nothing is downloaded: a missing package raises a `ConfigError`
(`hardware.kinematics.franka_asset_dir`, where every robot finds the arm).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from playworld.hardware.ee import PANDA_LINKS
from playworld.hardware.kinematics import franka_asset_dir
from playworld.sim.errors import AssetError

# The arm's model is found where the kinematics piece finds it (one place for every robot).
_DECIMATION_VERSION = "v1"


def cache_dir() -> Path:
    """Root of playworld's cache (`$PLAYWORLD_CACHE` or `~/.cache/playworld`)."""
    return Path(os.environ.get("PLAYWORLD_CACHE", Path.home() / ".cache" / "playworld"))


def read_stl(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary STL into shared vertices (V, 3) float64 and faces (F, 3) int64."""
    raw = Path(path).read_bytes()
    n = int(np.frombuffer(raw, dtype="<u4", count=1, offset=80)[0])
    if len(raw) != 84 + 50 * n:
        raise AssetError(f"expected a binary STL with {n} triangles at {path}, found {len(raw)} B")
    rec = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    tri = np.frombuffer(raw, dtype=rec, count=n, offset=84)["v"].reshape(-1, 3).astype(np.float64)
    verts, inverse = np.unique(np.round(tri, 7), axis=0, return_inverse=True)
    return verts, inverse.reshape(-1, 3).astype(np.int64)


def write_stl(path: str | Path, verts: np.ndarray, faces: np.ndarray) -> None:
    """Write vertices (V, 3) and faces (F, 3) as a binary STL, atomically (tmp + rename)."""
    tri = verts[faces].astype(np.float32)  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    rec = np.zeros(len(faces), dtype=[("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    rec["normal"], rec["v"] = normal, tri
    path = Path(path)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(b"playworld decimated mesh".ljust(80, b" "))
        f.write(np.uint32(len(faces)).tobytes())
        f.write(rec.tobytes())
    os.replace(tmp, path)


def decimate(verts: np.ndarray, faces: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep about `ratio` of the faces (0 < ratio <= 1) by quadric edge collapse."""
    if ratio >= 1.0:
        return verts, faces
    try:
        import fast_simplification
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise AssetError(
            "expected fast-simplification for mesh decimation, found it not installed; "
            "install the sim extra: pip install 'playworld[sim]'"
        ) from exc
    out_v, out_f = fast_simplification.simplify(
        verts.astype(np.float32), faces.astype(np.int32), target_reduction=1.0 - ratio
    )
    return np.asarray(out_v, np.float64), np.asarray(out_f, np.int64)


def visual_mesh_paths(ratio: float) -> dict[str, Path]:
    """Paths of the Panda visual meshes at the given face ratio, decimating into the cache once.

    ratio=1 returns the original meshes. The cache key holds the ratio, a version and the size of
    the source file, so a new gymnasium-robotics release re-decimates.
    """
    src = franka_asset_dir() / "meshes" / "visual"
    if ratio >= 1.0:
        return {name: src / f"{name}.stl" for name in PANDA_LINKS}
    out = {}
    for name in PANDA_LINKS:
        source = src / f"{name}.stl"
        key = hashlib.sha1(f"{source.stat().st_size}-{ratio:.4f}".encode()).hexdigest()[:10]
        target = cache_dir() / "meshes" / _DECIMATION_VERSION / f"{name}-{key}.stl"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_stl(target, *decimate(*read_stl(source), ratio))
        out[name] = target
    return out
