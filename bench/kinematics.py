"""Benchmark of the arm kinematics: our damped least-squares IK (DiffIK) against `mink`.

    python bench/kinematics.py [--quick]

The paths are the scripted experts' (the twin with `ee_delta` actions, every task): the pose
target the ee-delta controller integrates at each control step. Each solver then tracks that
target sequence on the arm-only model (playworld.hardware.kinematics.ArmKinematics), kinematically
(the arm is where the last solution put it), starting from the episode's first joints, with one
solve per control step, as a robot does it. Prints `name: value` lines:
- ik_us_per_step_dls / ik_us_per_step_mink: wall-clock µs per control step's solve (median of
  steps); ik_time_ratio_mink_over_dls (same run: the machine is shared, prefer the ratio).
- ik_pos_err_mm_{dls,mink}_{mean,max}, ik_rot_err_deg_{dls,mink}_{mean,max}: tracking error
  of FK(solution) against the target at each step.
mink: Configuration + FrameTask (the site) + PostureTask (the same home posture) solved by
daqp with the joint limits as a ConfigurationLimit, dt = one control period.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from playworld.hardware.ee import KinematicsConfig  # noqa: E402
from playworld.hardware.kinematics import ArmKinematics, Pose, quat_error  # noqa: E402


def expert_paths(episodes: int, seed: int = 0) -> list[tuple[np.ndarray, list[Pose]]]:
    """(first joints (7,), pose targets) of scripted-expert episodes over all tasks."""
    from playworld.sim import Twin, TwinConfig
    from playworld.sim.experts import ScriptedExpert
    from playworld.sim.tasks import TASKS

    twin = Twin(TwinConfig(action_space="ee_delta"))
    rng = np.random.default_rng(seed)
    names = sorted(TASKS)
    out = []
    for i in range(episodes):
        task = TASKS[names[i % len(names)]]
        twin.reset(seed=int(rng.integers(1 << 31)))
        task.prepare(twin, rng)
        expert = ScriptedExpert()
        expert.reset(task.name)
        q0 = twin.data.qpos[twin.arm_qadr].copy()
        targets = []
        for _ in range(120):
            twin.step(expert.act(twin.observe()))
            targets.append(Pose(twin.ee.target.pos.copy(), twin.ee.target.quat.copy()))
            if expert.done:
                break
        out.append((q0, targets))
    return out


def track_dls(kin: ArmKinematics, q0: np.ndarray, targets: list[Pose]):
    q, times, pos_err, rot_err = q0.copy(), [], [], []
    for t in targets:
        start = time.perf_counter()
        q = kin.solve(q, t).qpos
        times.append(time.perf_counter() - start)
        got = kin.fk(q)
        pos_err.append(np.linalg.norm(got.pos - t.pos))
        rot_err.append(np.linalg.norm(quat_error(t.quat, got.quat)))
    return times, pos_err, rot_err


def track_mink(kin: ArmKinematics, q0: np.ndarray, targets: list[Pose], dt: float):
    import mink

    model = kin.model
    config = mink.Configuration(model)
    config.update(kin.full(q0))
    frame = mink.FrameTask(
        kin.config.site, "site", position_cost=1.0, orientation_cost=1.0, lm_damping=1e-3
    )
    posture = mink.PostureTask(model, cost=1e-2)
    posture.set_target(kin.full(np.array(kin.config.posture)))
    limits = [mink.ConfigurationLimit(model)]
    qadr = kin.ik.qadr
    times, pos_err, rot_err = [], [], []
    for t in targets:
        start = time.perf_counter()
        frame.set_target(mink.SE3.from_rotation_and_translation(mink.SO3(t.quat), t.pos))
        vel = mink.solve_ik(config, [frame, posture], dt, "daqp", damping=1e-3, limits=limits)
        config.integrate_inplace(vel, dt)
        times.append(time.perf_counter() - start)
        got = kin.fk(config.q[qadr])
        pos_err.append(np.linalg.norm(got.pos - t.pos))
        rot_err.append(np.linalg.norm(quat_error(t.quat, got.quat)))
    return times, pos_err, rot_err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few episodes")
    args = parser.parse_args()
    paths = expert_paths(6 if args.quick else 34)
    kin = ArmKinematics(KinematicsConfig())
    dt = 0.1
    res = {"dls": ([], [], []), "mink": ([], [], [])}
    for q0, targets in paths:  # interleaved: both solvers see the same machine load
        for name, out in (
            ("dls", track_dls(kin, q0, targets)),
            ("mink", track_mink(kin, q0, targets, dt)),
        ):
            for acc, vals in zip(res[name], out, strict=True):
                acc.extend(vals)
    print(f"ik_steps: {len(res['dls'][0])}")
    for name, (times, pos, rot) in res.items():
        print(f"ik_us_per_step_{name}: {np.median(times) * 1e6:.1f}")
        print(f"ik_pos_err_mm_{name}_mean: {np.mean(pos) * 1e3:.2f}")
        print(f"ik_pos_err_mm_{name}_max: {np.max(pos) * 1e3:.2f}")
        print(f"ik_rot_err_deg_{name}_mean: {np.degrees(np.mean(rot)):.3f}")
        print(f"ik_rot_err_deg_{name}_max: {np.degrees(np.max(rot)):.3f}")
    ratio = np.median(res["mink"][0]) / np.median(res["dls"][0])
    print(f"ik_time_ratio_mink_over_dls: {ratio:.1f}")


if __name__ == "__main__":
    main()
