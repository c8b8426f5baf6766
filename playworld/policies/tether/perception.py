"""Perceived keypoints: an RGB-D camera's point cloud -> objects -> registered object models.

The path a robot without privileged state takes, run on the twin's rendered depth (MuJoCo) and
working the same way on a real RGB-D camera's frames:

1. `back_project`: depth (H, W) m + RGB -> a world-frame point cloud (N, 3) with colours (N, 3),
   from the camera's intrinsics (vertical field of view) and pose.
2. `segment`: the table plane removed (open3d RANSAC plane fit), each object cut out by colour
   (blocks) or by its mount's box (drawer, door, button: they only slide within it), stray
   pixels dropped (open3d DBSCAN, largest cluster).
3. `register`: each object's model cloud (with its keypoints, captured once in a reference
   scene: `Perceiver.calibrate`) aligned to the scene's object cloud by global registration
   (FPFH features + RANSAC) refined by point-to-plane ICP; too few points or a fitness below
   `min_fitness` raise `PerceptionError` (a play attempt records it as its failure reason).
4. The model's keypoints carried by that transform are the scene's perceived keypoints.

open3d is an optional dependency (`pip install playworld[tether]`; it needs Debian's libusb-1.0-0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from playworld.errors import PlayworldError

#: Boxes (x0 x1 y0 y1 z0 z1, m, world) holding each object: the blocks' table region (cut out
#: further by colour) and the mounts the drawer, door and button slide in (their fixed
#: cabinets' faces excluded).
CROPS = {
    "block": (0.2, 0.5, -0.22, 0.22, 0.004, 0.2),
    "drawer": (0.22, 0.497, -0.45, -0.21, 0.012, 0.12),
    "door": (0.38, 0.497, 0.2, 0.46, 0.005, 0.2),
    "button": (0.49, 0.57, -0.04, 0.04, 0.021, 0.05),
}
#: Depth (m, along x from the handle) of the drawer's part that every opening shows alike.
DRAWER_FRONT_DEPTH = 0.08
#: RGB (0..1) tests of the block colours: a dominant channel.
COLOURS = {
    "red": lambda c: (c[:, 0] > c[:, 1] + 0.25) & (c[:, 0] > c[:, 2] + 0.25),
    "green": lambda c: (c[:, 1] > c[:, 0] + 0.2) & (c[:, 1] > c[:, 2] + 0.2),
    "blue": lambda c: (c[:, 2] > c[:, 0] + 0.25) & (c[:, 2] > c[:, 1] + 0.1),
}


class PerceptionError(PlayworldError):
    """An object that could not be found or registered (too few points, poor fit)."""


def _o3d():
    try:
        import open3d as o3d
    except ImportError as exc:
        raise PerceptionError(
            f"expected open3d for perceived keypoints (pip install 'playworld[tether]'; it needs "
            f"apt-get install libusb-1.0-0), found it missing: {exc}"
        ) from None
    # RANSAC on a cube's features often keeps few mutual matches and falls back (it says so
    # on every call); errors still show.
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


def back_project(
    depth: np.ndarray,
    rgb: np.ndarray,
    fovy_deg: float,
    cam_pos: np.ndarray,
    cam_mat: np.ndarray,
    max_depth: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) m and colours (N, 3) 0..1 of the pixels nearer than `max_depth`.

    Pinhole camera looking along its -z axis (MuJoCo's convention: x right, y up), focal
    length f = (H / 2) / tan(fovy / 2) pixels; cam_mat (3, 3) the camera-to-world rotation.
    """
    h, w = depth.shape
    f = 0.5 * h / np.tan(np.radians(fovy_deg) / 2)
    v, u = np.mgrid[0:h, 0:w]
    d = depth.astype(np.float64)
    keep = (d > 0) & (d < max_depth)
    x = (u[keep] + 0.5 - w / 2) / f * d[keep]
    y = -(v[keep] + 0.5 - h / 2) / f * d[keep]
    local = np.stack([x, y, -d[keep]], axis=1)  # (N, 3) camera frame
    points = local @ np.asarray(cam_mat).reshape(3, 3).T + np.asarray(cam_pos)
    return points, rgb[keep].astype(np.float64) / 255.0


def twin_cloud(renderer: Any, camera: str = "front") -> tuple[np.ndarray, np.ndarray]:
    """The twin's current point cloud from one camera (a `playworld.sim.render.TwinRenderer`)."""
    twin = renderer.twin
    depth, rgb = renderer.depth(camera), renderer.rgb(camera)
    cam = twin.model.camera(camera).id
    return back_project(
        depth,
        rgb,
        float(twin.model.cam_fovy[cam]),
        twin.data.cam_xpos[cam],
        twin.data.cam_xmat[cam],
    )


def _crop(points: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    x0, x1, y0, y1, z0, z1 = box
    p = points
    return (
        (p[:, 0] > x0)
        & (p[:, 0] < x1)
        & (p[:, 1] > y0)
        & (p[:, 1] < y1)
        & (p[:, 2] > z0)
        & (p[:, 2] < z1)
    )


def _largest_cluster(points: np.ndarray, eps: float = 0.012, min_points: int = 8) -> np.ndarray:
    o3d = _o3d()
    if len(points) < min_points:
        return points
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    labels = np.asarray(pcd.cluster_dbscan(eps=eps, min_points=min_points))
    if labels.max() < 0:
        return points[:0]
    best = np.bincount(labels[labels >= 0]).argmax()
    return points[labels == best]


def remove_table(points: np.ndarray, colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cloud without its dominant plane (the table top, open3d RANSAC), nor what lies below."""
    o3d = _o3d()
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    (a, b, c, d), inliers = pcd.segment_plane(
        distance_threshold=0.004, ransac_n=3, num_iterations=200
    )
    keep = np.ones(len(points), bool)
    keep[inliers] = False
    if abs(c) > 0.9:  # a horizontal plane: drop everything below it too
        keep &= (points @ np.array([a, b, c]) + d) * np.sign(c) > 0.004
    return points[keep], colours[keep]


def segment(points: np.ndarray, colours: np.ndarray) -> dict[str, np.ndarray]:
    """Object clouds by name (`block_<colour>`, `drawer`, `door`, `button`) from a scene cloud."""
    points, colours = remove_table(points, colours)
    out = {}
    in_blocks = _crop(points, CROPS["block"])
    for name, test in COLOURS.items():
        out[f"block_{name}"] = _largest_cluster(points[in_blocks & test(colours)])
    for name in ("drawer", "door", "button"):
        out[name] = _largest_cluster(points[_crop(points, CROPS[name])], eps=0.02)
    # The drawer's handle and front panel look the same at every opening; the box behind them
    # shows more the further it is open, so it is left out of the cloud.
    drawer = out["drawer"]
    if len(drawer):
        out["drawer"] = drawer[drawer[:, 0] < drawer[:, 0].min() + DRAWER_FRONT_DEPTH]
    return out


class Registration(NamedTuple):
    """A rigid transform (4, 4) taking the source cloud onto the target, its fitness (fraction
    of source points with a target point within the ICP distance) and inlier RMSE (m)."""

    transform: np.ndarray
    fitness: float
    rmse: float


def register(
    source: np.ndarray, target: np.ndarray, voxel: float = 0.004, seed: int = 0
) -> Registration:
    """Global registration (FPFH + RANSAC) then point-to-plane ICP of two clouds (N, 3) m."""
    o3d = _o3d()
    reg = o3d.pipelines.registration
    o3d.utility.random.seed(seed)
    if len(source) < 20 or len(target) < 20:
        raise PerceptionError(
            f"expected >= 20 points to register, found {len(source)} and {len(target)}"
        )
    clouds, feats = [], []
    for pts in (source, target):
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts)).voxel_down_sample(voxel)
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=3 * voxel, max_nn=30))
        feats.append(
            reg.compute_fpfh_feature(
                pcd, o3d.geometry.KDTreeSearchParamHybrid(radius=6 * voxel, max_nn=100)
            )
        )
        clouds.append(pcd)
    # Start from the centroids' offset: RANSAC then only has to find the turn.
    init = np.eye(4)
    init[:3, 3] = np.asarray(clouds[1].get_center()) - np.asarray(clouds[0].get_center())
    coarse = reg.registration_ransac_based_on_feature_matching(
        clouds[0],
        clouds[1],
        feats[0],
        feats[1],
        True,
        2.0 * voxel,
        reg.TransformationEstimationPointToPoint(False),
        3,
        [
            reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
            reg.CorrespondenceCheckerBasedOnDistance(2.0 * voxel),
        ],
        reg.RANSACConvergenceCriteria(20000, 0.999),
    )
    best = coarse.transformation if coarse.fitness > 0 else init
    fine = reg.registration_icp(
        clouds[0], clouds[1], 1.5 * voxel, best, reg.TransformationEstimationPointToPlane()
    )
    if fine.fitness < 0.3:  # the centroid start, refined, may do better than a poor RANSAC
        alt = reg.registration_icp(
            clouds[0], clouds[1], 1.5 * voxel, init, reg.TransformationEstimationPointToPlane()
        )
        fine = alt if alt.fitness > fine.fitness else fine
    return Registration(
        np.asarray(fine.transformation), float(fine.fitness), float(fine.inlier_rmse)
    )


@dataclass
class ObjectModel:
    """One object's model: its cloud (N, 3) and keypoints (k, 3) in the same frame, the rows
    of those keypoints in `KEYPOINTS`; `complete`: the cloud covers the whole surface (then the
    partial scene view is registered onto the model, which it lies on, and the transform
    inverted), else it is a view from the same camera (registered onto the scene)."""

    cloud: np.ndarray
    keypoints: np.ndarray
    rows: np.ndarray
    complete: bool = False


def cube_model(half: float, rows: np.ndarray, step: float = 0.002) -> ObjectModel:
    """A cube's surface sampled every `step` m, centred at the origin, with the twin's block
    keypoints: the centre, then corners c0..c7 at (sx, sy, sz) * half, sx slowest."""
    g = np.arange(-half, half + 1e-9, step)
    a, b = np.meshgrid(g, g, indexing="ij")
    a, b = a.ravel(), b.ravel()
    faces = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            face = np.empty((len(a), 3))
            face[:, axis] = sign * half
            others = [i for i in range(3) if i != axis]
            face[:, others[0]], face[:, others[1]] = a, b
            faces.append(face)
    corners = [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    keypoints = np.vstack([[0.0, 0.0, 0.0], np.array(corners, float) * half])
    return ObjectModel(np.unique(np.vstack(faces).round(6), axis=0), keypoints, rows, True)


class Perceiver:
    """Perceived keypoints of the twin's scene from one camera (see the module docstring)."""

    def __init__(
        self, models: dict[str, ObjectModel], camera: str = "front", min_fitness: float = 0.5
    ):
        self.models, self.camera, self.min_fitness = models, camera, min_fitness

    @classmethod
    def calibrate(cls, renderer: Any, camera: str = "front", **kwargs: Any) -> Perceiver:
        """Object models from the renderer's twin as it stands (its privileged keypoints label
        the clouds once, as a scanned model's keypoints would be labelled)."""
        from playworld.policies.tether.library import keypoint_index, scene_objects
        from playworld.sim.scene import LAYOUT

        clouds = segment(*twin_cloud(renderer, camera))
        keypoints = renderer.twin.keypoints()
        models = {}
        for name, spec in scene_objects().items():
            rows = keypoint_index(spec.names)
            if name.startswith("block_"):  # a cube: its model is exact
                models[name] = cube_model(LAYOUT.block_half, rows)
            else:
                models[name] = ObjectModel(clouds[name], keypoints[rows], rows)
        return cls(models, camera, **kwargs)

    def keypoints(
        self, renderer: Any, base: np.ndarray, objects: list[str] | None = None
    ) -> np.ndarray:
        """`base` (K, 3) with the rows of `objects` (default: all modelled) replaced by their
        perceived positions in the renderer's twin; PerceptionError when one fails."""
        clouds = segment(*twin_cloud(renderer, self.camera))
        out = np.array(base, np.float64, copy=True)
        for name in objects or list(self.models):
            model = self.models[name]
            if model.complete:
                result = register(clouds[name], model.cloud)
                t = np.linalg.inv(result.transform)
            else:
                result = register(model.cloud, clouds[name])
                t = result.transform
            if result.fitness < self.min_fitness:
                raise PerceptionError(
                    f"expected a registration fitness >= {self.min_fitness} for {name}, found "
                    f"{result.fitness:.2f} ({len(clouds[name])} scene points)"
                )
            out[model.rows] = model.keypoints @ t[:3, :3].T + t[:3, 3]
        return out
