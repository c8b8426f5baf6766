"""Tether's demo library: demonstrations cut at gripper events, with the keypoints of their scene.

A `Demo` is one successful execution of one task: the end-effector poses of every control step
(`pos` (T, 3) m, `quat` (T, 4) wxyz, world frame), the gripper command of every step
(`gripper` (T,) 0..1) and the keypoints of the scene when it started (`keypoints` (K, 3) m,
names `playworld.sim.scene.KEYPOINTS`). `segment` cuts it at the gripper's close/open events
and names, for each segment, the object it interacts with (the anchor: the object whose
keypoints lie nearest the gripper where the segment's event happens; for the last segment,
where the gripper comes closest to an object; only the objects the task acts on are candidates,
`task_objects`) and the row where that happens (the keyframe,
where the anchor's transform holds exactly when the demo is warped).

Demos come from stores (`demos_from_store`): autoplay episodes (each successful labelled
segment is a demo), or any episode whose metadata names its `task` and `success`. A library
is saved as the `tether` policy's folder: the index (`DemoInfo`) in config.json, the arrays in
model.safetensors (see `playworld.policies.tether.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from playworld.errors import PlayworldError

#: Gripper commands above this are "open" (1 open .. 0 closed).
OPEN = 0.5
#: Fingertips this close (m) to an anchor at a demo's first row: the demo starts in contact.
CONTACT = 0.02


class DemoError(PlayworldError):
    """A demo that cannot be used (no keypoints, too short, unknown task...)."""


@dataclass(frozen=True)
class ObjectSpec:
    """An object of the scene as keypoints: `names` (in `KEYPOINTS`), whether its yaw may
    change (`yaw`), and its symmetry about z (`period`, rad; None: none)."""

    names: tuple[str, ...]
    yaw: bool = False
    period: float | None = None


def scene_objects() -> dict[str, ObjectSpec]:
    """The twin's movable or actuated objects: the blocks (yaw, a cube's pi/2 symmetry) and the
    drawer, door and button (translation only: they slide in their fixed mounts)."""
    from playworld.sim.scene import BLOCKS

    out = {
        "drawer": ObjectSpec(("drawer_handle", "drawer_inside")),
        "door": ObjectSpec(("door_handle",)),
        "button": ObjectSpec(("button_top",)),
    }
    for c in BLOCKS:
        names = (f"block_{c}", *(f"block_{c}_c{i}" for i in range(8)))
        out[f"block_{c}"] = ObjectSpec(names, yaw=True, period=np.pi / 2)
    return out


def keypoint_index(names: tuple[str, ...]) -> np.ndarray:
    """Rows (n,) of `names` in `KEYPOINTS`."""
    from playworld.sim.scene import KEYPOINTS

    return np.array([KEYPOINTS.index(n) for n in names])


@dataclass(frozen=True)
class DemoInfo:
    """The JSON half of a demo: what it does, where it came from, how it is cut.

    `keyframes` (ascending rows) and `anchors` (object names, `scene_objects`) pair up: the
    anchor's transform holds exactly at its keyframe. `events`: rows where the gripper command
    switches. `length`: T, the rows of the arrays.
    """

    id: str
    task: str
    length: int
    keyframes: tuple[int, ...]
    anchors: tuple[str, ...]
    events: tuple[int, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        from playworld.errors import ConfigError

        objects = scene_objects()
        bad = [a for a in self.anchors if a not in objects]
        if (
            self.length < 2
            or len(self.keyframes) != len(self.anchors)
            or not self.anchors
            or list(self.keyframes) != sorted(self.keyframes)
            or not all(0 <= k < self.length for k in self.keyframes)
            or bad
        ):
            raise ConfigError(
                f"expected demo {self.id!r}: length >= 2, one anchor among {sorted(objects)} per "
                f"ascending keyframe in [0, length), found length {self.length}, keyframes "
                f"{self.keyframes}, anchors {self.anchors}"
            )


@dataclass(frozen=True)
class Demo:
    """One demo: its `info` and arrays pos (T, 3), quat (T, 4), gripper (T,), keypoints (K, 3)."""

    info: DemoInfo
    pos: np.ndarray
    quat: np.ndarray
    gripper: np.ndarray
    keypoints: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "pos": self.pos,
            "quat": self.quat,
            "gripper": self.gripper,
            "keypoints": self.keypoints,
        }


def array_shapes(info: DemoInfo) -> dict[str, tuple[int, ...]]:
    """Shapes of a demo's arrays, from its info alone."""
    from playworld.sim.scene import KEYPOINTS

    t = info.length
    return {"pos": (t, 3), "quat": (t, 4), "gripper": (t,), "keypoints": (len(KEYPOINTS), 3)}


def gripper_events(gripper: np.ndarray) -> list[int]:
    """Rows (ascending) where the gripper command switches between open and closed."""
    g = np.asarray(gripper) > OPEN
    return [int(i) for i in np.flatnonzero(g[1:] != g[:-1]) + 1]


def task_objects(task: str | None) -> tuple[str, ...] | None:
    """The objects (`scene_objects` names) `task` acts on: its segments' anchor candidates.
    None: any object (no task given).

    Without it, a short segment (autoplay's turn_on_light after a block task: 3-7 steps that
    start next to a block) anchored on whatever object was nearest, and its warp followed that
    object instead of the button.
    """
    from playworld.sim.scene import BLOCKS

    if task is None:
        return None
    blocks = tuple(f"block_{c}" for c in BLOCKS)
    named = tuple(f"block_{c}" for c in BLOCKS if f"_{c}_block" in task)
    if named:
        return named
    if task == "place_block_in_drawer":
        return (*blocks, "drawer")
    if "block" in task:
        return blocks
    for part, obj in (("drawer", "drawer"), ("door", "door"), ("light", "button")):
        if part in task:
            return (obj,)
    return None


def _nearest_object(
    point: np.ndarray, keypoints: np.ndarray, objects: tuple[str, ...] | None = None
) -> tuple[str, float]:
    best, dist = "", np.inf
    for name, spec in scene_objects().items():
        if objects is not None and name not in objects:
            continue
        d = float(np.linalg.norm(keypoints[keypoint_index(spec.names)] - point, axis=1).min())
        if d < dist:
            best, dist = name, d
    return best, dist


def segment(
    pos: np.ndarray,
    gripper: np.ndarray,
    keypoints: np.ndarray,
    objects: tuple[str, ...] | None = None,
) -> tuple[list[int], list[str], list[int]]:
    """(keyframes, anchors, events) of a demo; see the module docstring.

    pos (T, 3) m, gripper (T,) commands, keypoints (K, 3) of the scene at the start; `objects`:
    the anchor candidates (`task_objects`; None: every object).
    """
    pos, keypoints = np.asarray(pos, float), np.asarray(keypoints, float)
    events = gripper_events(gripper)
    keyframes, anchors = [], []
    for e in events:
        keyframes.append(e)
        anchors.append(_nearest_object(pos[e], keypoints, objects)[0])
    start = events[-1] if events else 0
    best = min(
        ((i, *_nearest_object(pos[i], keypoints, objects)) for i in range(start, len(pos))),
        key=lambda r: r[2],
    )
    if not keyframes or best[0] > keyframes[-1]:
        keyframes.append(best[0])
        anchors.append(best[1])
    return keyframes, anchors, events


def make_demo(
    demo_id: str,
    task: str,
    pos: np.ndarray,
    quat: np.ndarray,
    gripper: np.ndarray,
    keypoints: np.ndarray,
    source: str = "",
) -> Demo:
    """A segmented demo from raw arrays (see `Demo`); refuses ones it cannot use."""
    from playworld.sim.scene import KEYPOINTS
    from playworld.sim.tasks import TASKS

    pos, quat = np.asarray(pos, np.float64), np.asarray(quat, np.float64)
    gripper, keypoints = np.asarray(gripper, np.float64), np.asarray(keypoints, np.float64)
    if task not in TASKS:
        raise DemoError(f"expected a task among {list(TASKS)} for demo {demo_id}, found {task!r}")
    t = len(pos)
    if t < 2 or quat.shape != (t, 4) or gripper.shape != (t,) or pos.shape != (t, 3):
        raise DemoError(
            f"expected demo {demo_id} as pos (T, 3), quat (T, 4), gripper (T,) with T >= 2, "
            f"found {pos.shape}, {quat.shape}, {gripper.shape}"
        )
    if keypoints.shape != (len(KEYPOINTS), 3) or not np.all(np.isfinite(keypoints)):
        raise DemoError(
            f"expected the scene's keypoints ({len(KEYPOINTS)}, 3) for demo {demo_id}, found "
            f"{keypoints.shape} (record with a robot that observes `keypoints`)"
        )
    keyframes, anchors, events = segment(pos, gripper, keypoints, task_objects(task))
    info = DemoInfo(demo_id, task, t, tuple(keyframes), tuple(anchors), tuple(events), source)
    return Demo(info, pos, quat, gripper, keypoints)


def demos_from_store(path: str, tasks: list[str] | None = None, limit: int | None = None):
    """Demos of every successful labelled task in a store: autoplay segments, and episodes whose
    metadata has `task` and `success` (teleop, play). `limit`: at most this many per task.

    A segment's demo holds rows start .. end (its final pose included when the episode goes on).
    """
    from playworld.datasets import PlayStore

    store = PlayStore.open(path)
    missing = [k for k in ("ee_pos", "ee_quat", "action", "keypoints") if k not in store.features]
    if missing:
        raise DemoError(
            f"expected features ee_pos, ee_quat, action and keypoints in {path}, found "
            f"{missing} missing (record on the twin: it observes keypoints)"
        )
    out: list[Demo] = []
    count: dict[str, int] = {}
    for ep in store.episodes():
        meta = ep.metadata
        if "segments" in meta:
            segs = meta["segments"]
        elif "task" in meta:
            segs = [
                {"task": meta["task"], "start": 0, "end": len(ep), "success": meta.get("success")}
            ]
        else:
            continue
        for seg in segs:
            task, ok = seg["task"], bool(seg.get("success"))
            if not ok or (tasks and task not in tasks) or count.get(task, 0) >= (limit or 1 << 30):
                continue
            start, end = int(seg["start"]), min(int(seg["end"]) + 1, len(ep))
            if end - start < 2:
                continue
            demo = demo_from_rows(
                ep, start, end, task, f"{task}-{len(out):04d}", f"{path}#{ep.index}:{start}-{end}"
            )
            if demo is None:
                continue
            out.append(demo)
            count[task] = count.get(task, 0) + 1
    return out


def demo_from_rows(
    episode: Any, start: int, end: int, task: str, demo_id: str, source: str
) -> Demo | None:
    """The demo of rows start .. end - 1 of a stored episode; None when it starts in contact."""
    rows = {k: episode[k][start:end] for k in ("ee_pos", "ee_quat", "action", "keypoints")}
    demo = make_demo(
        demo_id,
        task,
        rows["ee_pos"],
        rows["ee_quat"],
        rows["action"][:, 6],
        rows["keypoints"][0],
        source=source,
    )
    return None if starts_in_contact(demo) else demo


def starts_in_contact(demo: Demo) -> bool:
    """Whether the fingertips start within `CONTACT` of an anchor's keypoints: a segment cut from
    a play episode right after another task (a button still pressed, a block still held), whose
    keypoints do not describe the scene at rest."""
    from playworld.sim.experts import TIP

    tips = demo.pos[0] - [0.0, 0.0, TIP]
    objects = scene_objects()
    idx = np.concatenate([keypoint_index(objects[a].names) for a in set(demo.info.anchors)])
    return bool(np.linalg.norm(demo.keypoints[idx] - tips, axis=1).min() < CONTACT)


#: Steps at most that a recorded demo goes on after the task first succeeds (see `record_demo`).
FINISH_STEPS = 15


def record_demo(
    robot: Any,
    task: str,
    seed: int,
    max_steps: int = 150,
    keypoints: Any = None,
    finish_steps: int = FINISH_STEPS,
) -> Demo | None:
    """A demo of `task` by the twin's scripted expert on a connected `SimRobot` (ee_delta) from
    `robot.reset(seed)` (the quick path for examples and benchmarks; stores are the usual
    source). None when the expert fails within `max_steps`. `keypoints(robot, obs)` -> (K, 3):
    where the demo's scene keypoints come from (default: the privileged observation).

    The demo does not stop at the first tick of success: the expert finishes the motion it is
    in (its waypoint; at most `finish_steps` more steps, while the task stays done), as a person
    completes a motion. A warp carries a motion's start and end alike, so a demo cut at the
    threshold fails wherever the new scene needs a little more (a drawer that starts 1 cm
    further out ends 1 cm short of closed): with 1 / 3 / 5 such demos close_drawer succeeded in
    0.90 / 0.61 / 0.61 of 100 wide-twin scenes, with finished demos in 1.0 / 1.0 / 1.0."""
    from playworld.sim.experts import ScriptedExpert
    from playworld.sim.tasks import get_task, prepare_task

    t = get_task(task)
    robot.reset(seed=seed)
    start = prepare_task(robot.twin, t, np.random.default_rng([seed, 1]))
    expert = ScriptedExpert(task)
    obs = robot.get_observation()
    kp = obs["keypoints"] if keypoints is None else keypoints(robot, obs)
    pos, quat, grip = [], [], []
    for _ in range(max_steps):
        action = expert.act(obs)
        pos.append(obs["ee_pos"])
        quat.append(obs["ee_quat"])
        grip.append(float(action[6]))
        robot.send_action(action)
        obs = robot.get_observation()
        if t.success(start, obs["state"]):
            waypoint = expert.index
            for _ in range(finish_steps):
                action = expert.act(obs)
                if expert.done or expert.index != waypoint:
                    break  # the motion in progress is over (this action starts the next one)
                robot.send_action(action)
                after = robot.get_observation()
                if not t.success(start, after["state"]):
                    break  # the finishing move undid the task: keep the demo as it was
                pos.append(obs["ee_pos"])
                quat.append(obs["ee_quat"])
                grip.append(float(action[6]))
                obs = after
            pos.append(obs["ee_pos"])
            quat.append(obs["ee_quat"])
            grip.append(grip[-1])
            return make_demo(f"{task}-s{seed}", task, pos, quat, grip, kp, f"expert seed {seed}")
    return None
