"""Privileged scripted experts: waypoints from keypoint sites, followed through `ee_delta` actions.

An expert reads the observation dict of the twin (`state` (40,) and `keypoints` (K, 3)), plans a
list of end-effector waypoints for its task on the first call to `act`, and then returns one
`ee_delta` action (7,) per control step. Planners live in `PLANNERS[task_name]`.

    expert = ScriptedExpert()
    expert.reset("open_drawer")
    action = expert.act({"state": state, "keypoints": keypoints})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from playworld.hardware.ee import MAX_POS_STEP, MAX_ROT_STEP
from playworld.hardware.kinematics import quat_error, rotate_quat
from playworld.sim.scene import BLOCKS, DOWN_QUAT, KEYPOINTS, LAYOUT
from playworld.sim.state import STATE_LAYOUT
from playworld.sim.tasks import block_pos, get_task, in_drawer, on_table

TIP = 0.049  # the end-effector site is this far above the fingertips (m)
GRASP_BELOW = 0.019  # fingertips this far below a block's centre when grasping (m)
PUSH_OFFSET = 0.06  # pusher centre from the block centre (m)
HANDLE_SIDE = 0.045  # pusher centre from a door handle's axis (m)


@dataclass(frozen=True)
class Waypoint:
    """Target of the end-effector site: position (3,) m, yaw (rad about z from pointing down)."""

    pos: np.ndarray
    yaw: float = 0.0
    gripper: float = 0.0  # 0 closed .. 1 open
    tol: float = 0.01  # position tolerance, m
    hold: int = 0  # control steps to stay once reached
    max_steps: int = 30  # give up waiting after this many steps and go on


def tip(x: float, y: float, z_tip: float) -> np.ndarray:
    """End-effector target (3,) putting the fingertips at (x, y, z_tip)."""
    return np.array([x, y, z_tip + TIP])


def block_yaw(state: np.ndarray, color: str) -> float:
    """Grasp yaw (rad, in [-pi/4, pi/4)) aligning the fingers with a block's faces."""
    w, _, _, z = STATE_LAYOUT.get(state, f"block_{color}_quat")
    yaw = 2.0 * np.arctan2(z, w)
    return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


Keypoints = dict[str, np.ndarray]
Planner = Callable[[np.ndarray, Keypoints], list[Waypoint]]


def _grasp(state: np.ndarray, color: str, lift_to: float) -> list[Waypoint]:
    p, yaw = block_pos(state, color), block_yaw(state, color)
    return [
        Waypoint(tip(p[0], p[1], p[2] + 0.08), yaw, 1.0, tol=0.012),
        Waypoint(tip(p[0], p[1], p[2] - GRASP_BELOW), yaw, 1.0, tol=0.006, hold=1),
        Waypoint(tip(p[0], p[1], p[2] - GRASP_BELOW), yaw, 0.0, tol=0.01, hold=5),
        Waypoint(tip(p[0], p[1], lift_to), yaw, 0.0, tol=0.015),
    ]


def _release(x: float, y: float, z_centre: float, yaw: float) -> list[Waypoint]:
    return [
        Waypoint(tip(x, y, z_centre - GRASP_BELOW + 0.06), yaw, 0.0, tol=0.01),
        Waypoint(tip(x, y, z_centre - GRASP_BELOW), yaw, 0.0, tol=0.008),
        Waypoint(tip(x, y, z_centre - GRASP_BELOW), yaw, 1.0, hold=4, tol=0.02),
        Waypoint(tip(x, y, z_centre + 0.08), yaw, 1.0, tol=0.02),
    ]


def plan_open_drawer(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
    h = kp["drawer_handle"]
    x = h[0] + 0.009 + 0.5 * (LAYOUT.drawer_handle_out - 0.009)  # middle of the hook gap
    pull = 0.17 - float(STATE_LAYOUT.get(state, "drawer")[0])
    return [
        Waypoint(tip(x, h[1], h[2] + 0.09), tol=0.012),
        Waypoint(tip(x, h[1], h[2] - 0.012), tol=0.006),
        Waypoint(tip(x - pull, h[1], h[2] - 0.012), tol=0.012, max_steps=40),
        Waypoint(tip(x - pull - 0.02, h[1], h[2] + 0.1), tol=0.02),
    ]


def plan_close_drawer(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
    h = kp["drawer_handle"]
    x = h[0] - 0.035
    end = LAYOUT.drawer_front_x - LAYOUT.drawer_handle_out - 0.035 + 0.012
    return [
        Waypoint(tip(x, h[1], h[2] + 0.06), tol=0.012),
        Waypoint(tip(x, h[1], h[2] - 0.012), tol=0.008),
        Waypoint(tip(end, h[1], h[2] - 0.012), tol=0.012, max_steps=40),
        Waypoint(tip(end - 0.04, h[1], h[2] + 0.1), tol=0.02),
    ]


def _plan_door(sign: float) -> Planner:
    def plan(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
        h = kp["door_handle"]
        y0 = h[1] - sign * HANDLE_SIDE
        y1 = y0 + sign * (LAYOUT.door_range + 0.012)
        return [
            Waypoint(tip(h[0], y0, h[2] + 0.12), tol=0.012),
            Waypoint(tip(h[0], y0, h[2] - 0.025), tol=0.008),
            Waypoint(tip(h[0], y1, h[2] - 0.025), tol=0.012, max_steps=40),
            Waypoint(tip(h[0] - 0.06, y1, h[2] + 0.12), tol=0.02),
        ]

    return plan


def plan_button(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
    b = kp["button_top"]
    return [
        Waypoint(tip(b[0], b[1], b[2] + 0.06), tol=0.01),
        Waypoint(tip(b[0], b[1], b[2] - 0.015), tol=0.006, hold=1, max_steps=12),
        Waypoint(tip(b[0], b[1], b[2] + 0.08), tol=0.02),
    ]


def _plan_lift(color: str) -> Planner:
    def plan(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
        p = block_pos(state, color)
        ways = _grasp(state, color, lift_to=p[2] + 0.13)
        return [*ways, Waypoint(ways[-1].pos, ways[-1].yaw, 0.0, tol=0.02, hold=2)]

    return plan


def _plan_push(color: str, sign: float) -> Planner:
    def plan(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
        p = block_pos(state, color)
        y0 = p[1] - sign * PUSH_OFFSET
        yaw = np.pi / 2  # the hand's narrow side leads: its palm stays clear of the drawer
        return [
            Waypoint(tip(p[0], y0, 0.09), yaw, tol=0.012),
            Waypoint(tip(p[0], y0, 0.008), yaw, tol=0.006),
            Waypoint(tip(p[0], y0 + sign * 0.095, 0.008), yaw, tol=0.01, max_steps=30),
            Waypoint(tip(p[0], y0 + sign * 0.07, 0.1), yaw, tol=0.02),
        ]

    return plan


def plan_stack(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
    free = [c for c in BLOCKS if on_table(state, c)]
    pairs = [(a, b) for a in free for b in free if a != b]
    top, bottom = min(
        pairs, key=lambda ab: np.linalg.norm(block_pos(state, ab[0]) - block_pos(state, ab[1]))
    )
    b = block_pos(state, bottom)
    ways = _grasp(state, top, lift_to=b[2] + 0.1)
    return ways + _release(b[0], b[1], b[2] + 2 * LAYOUT.block_half + 0.004, ways[-1].yaw)


def plan_drawer_place(state: np.ndarray, kp: Keypoints) -> list[Waypoint]:
    free = [c for c in BLOCKS if on_table(state, c) and not in_drawer(state, c)]
    color = min(free, key=lambda c: block_pos(state, c)[1])  # nearest to the drawer
    d = kp["drawer_inside"]
    ways = _grasp(state, color, lift_to=0.13)
    return ways + _release(d[0], d[1], d[2] + LAYOUT.block_half + 0.01, ways[-1].yaw)


def _planners() -> dict[str, Planner]:
    out: dict[str, Planner] = {
        "open_drawer": plan_open_drawer,
        "close_drawer": plan_close_drawer,
        "slide_door_left": _plan_door(1.0),
        "slide_door_right": _plan_door(-1.0),
        "turn_on_light": plan_button,
        "turn_off_light": plan_button,
        "stack_blocks": plan_stack,
        "place_block_in_drawer": plan_drawer_place,
    }
    for c in BLOCKS:
        out[f"lift_{c}_block"] = _plan_lift(c)
        out[f"push_{c}_block_left"] = _plan_push(c, 1.0)
        out[f"push_{c}_block_right"] = _plan_push(c, -1.0)
    return out


PLANNERS: dict[str, Planner] = _planners()


def yaw_quat(yaw: float) -> np.ndarray:
    """Pointing-down orientation (4,) wxyz turned by `yaw` rad about the world z axis."""
    return rotate_quat(DOWN_QUAT, np.array([0.0, 0.0, yaw]))


class ScriptedExpert:
    """Follows the planner's waypoints for one task with proportional `ee_delta` actions (7,)."""

    action_space = "ee_delta"

    def __init__(self, task: str | None = None) -> None:
        self.task = task
        self.waypoints: list[Waypoint] | None = None
        self.index = 0
        self._steps = 0
        self._held = 0

    def reset(self, task: str | None = None) -> None:
        """Forget the plan; a new one is made from the next observation."""
        if task is not None:
            self.task = get_task(task).name
        self.waypoints, self.index, self._steps, self._held = None, 0, 0, 0

    @property
    def done(self) -> bool:
        """Whether every waypoint has been visited."""
        return self.waypoints is not None and self.index >= len(self.waypoints)

    def act(self, observation: dict) -> np.ndarray:
        """One `ee_delta` action (7,) float32 for the observation (`state`, `keypoints`)."""
        state = np.asarray(observation["state"], dtype=np.float64)
        if self.waypoints is None:
            if self.task is None:
                raise ValueError("ScriptedExpert.reset(task) must name a task before act()")
            kp = dict(zip(KEYPOINTS, np.asarray(observation["keypoints"]), strict=True))
            self.waypoints = PLANNERS[self.task](state, kp)
        ee = STATE_LAYOUT.get(state, "ee_pos")
        quat = STATE_LAYOUT.get(state, "ee_quat")
        way = self.waypoints[min(self.index, len(self.waypoints) - 1)]
        err = way.pos - ee
        rot = quat_error(yaw_quat(way.yaw), quat)
        if not self.done:
            self._steps += 1
            reached = np.linalg.norm(err) < way.tol and np.linalg.norm(rot) < 0.1
            if reached:
                self._held += 1
            if (reached and self._held > way.hold) or self._steps >= way.max_steps:
                self.index += 1
                self._steps, self._held = 0, 0
                if not self.done:
                    way = self.waypoints[self.index]
                    err = way.pos - ee
                    rot = quat_error(yaw_quat(way.yaw), quat)
        dpos = np.clip(err, -MAX_POS_STEP, MAX_POS_STEP)
        drot = np.clip(rot, -MAX_ROT_STEP, MAX_ROT_STEP)
        return np.concatenate([dpos, drot, [way.gripper]]).astype(np.float32)
