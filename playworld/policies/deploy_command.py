"""`playworld deploy`: build the policy and the robot, hand them to `collection.deploy`.

    playworld deploy --policy scripted_perception --robot rosbridge_panda --mode direct \\
        --task turn_on_light --episodes 3 --record out/deploy/store --max-seconds 20

The policy is built here (collection does not import policies); twin-follow mode also builds
the local twin from the robot profile's `twin_profile` (a sim profile). Every failure is one
`error: ...` line and exit code 2; committed episodes stay in the store.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from playworld.collection.commands import ViewOption, ViewSaveOption, _finish_view, _live_view
from playworld.errors import PlayworldError


def policy_meta(spec: str, policy: Any) -> dict[str, Any]:
    """What a recorded episode says about its policy: type, spec, sha256 of the checkpoint
    (config.json + model.safetensors; of the config JSON for a built-in), its config."""
    data = policy.to_json()
    digest = hashlib.sha256()
    folder = Path(spec)
    if folder.is_dir():
        for name in ("config.json", "model.safetensors"):
            digest.update((folder / name).read_bytes())
    else:
        digest.update(json.dumps(data, sort_keys=True).encode())
    return {
        "type": policy.type,
        "spec": spec,
        "sha256": digest.hexdigest(),
        "config": data["config"],
        "info": data.get("info") or {},
    }


def build_follower(robot: Any, policy: Any) -> Any:
    """The local twin of twin-follow mode: the profile's `twin_profile`, the policy's action
    space, and only the cameras the policy reads."""
    from playworld.collection.deploy import TwinFollower
    from playworld.hardware.profiles import read_profile, robot_from_profile
    from playworld.sim.perception import OBJECTS

    profile = getattr(robot.config, "twin_profile", None) or "sim_panda"
    cams = read_profile(profile).get("cameras") or {}
    action_dim = policy.action_dim
    sim = robot_from_profile(
        profile,
        action_space="ee_delta" if action_dim == 7 else "joint_pos",
        cameras={n: c for n, c in cams.items() if n in policy.observation_features},
        fps=robot.config.fps,
    )
    perception = getattr(robot.config, "perception", None)
    objects = tuple(perception["objects"]) if perception else None
    if objects is not None and objects != OBJECTS:
        from playworld.errors import DeployError

        raise DeployError(
            f"expected the perception objects {list(OBJECTS)} in the profile of {robot.name}, "
            f"found {list(objects)}"
        )
    return TwinFollower(sim, objects)


def deploy_command(
    policy: Annotated[
        str, typer.Option(help="A policy name (e.g. scripted_perception) or a checkpoint folder.")
    ],
    robot: Annotated[
        str, typer.Option(help="Robot profile name or YAML path.")
    ] = "rosbridge_panda",
    mode: Annotated[str, typer.Option(help="direct | twin-follow (Real-is-Sim).")] = "direct",
    task: Annotated[str | None, typer.Option(help="Task the far side sets up and judges.")] = None,
    episodes: Annotated[int, typer.Option(help="Episodes to run.")] = 1,
    record: Annotated[
        Path | None, typer.Option(help="Record the episodes into this store.")
    ] = None,
    max_seconds: Annotated[float, typer.Option(help="Longest episode (s).")] = 30.0,
    port: Annotated[int | None, typer.Option(help="Override the profile's port.")] = None,
    host: Annotated[str | None, typer.Option(help="Override the profile's host.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first episode (+1 per episode).")] = 0,
    ensemble: Annotated[
        float | None,
        typer.Option(help="Temporal ensembling weight m (ACT: exp(-m i)); off if unset."),
    ] = None,
    stall_at: Annotated[
        float | None,
        typer.Option(help="Rehearsal: stall the policy this many s into each episode."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for deploy.json.")] = Path("out/deploy"),
    view: ViewOption = False,
    view_save: ViewSaveOption = None,
) -> None:
    """Deploy a policy to a robot over its profile (rosbridge: `playworld twin serve` rehearses it)."""
    try:
        live = _live_view(view, view_save)
        run_deploy(
            policy,
            robot,
            mode,
            task,
            episodes,
            record,
            max_seconds,
            port,
            host,
            seed,
            ensemble,
            stall_at,
            out,
            view=live,
        )
        _finish_view(live)
    except PlayworldError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def run_deploy(
    policy_spec: str,
    profile: str,
    mode: str,
    task: str | None,
    episodes: int,
    record: Path | None,
    max_seconds: float,
    port: int | None,
    host: str | None,
    seed: int,
    ensemble: float | None,
    stall_at: float | None,
    out: Path,
    say: Any = typer.echo,
    seeds: tuple[int, ...] | None = None,
    view: Any = None,
) -> dict[str, Any]:
    """The command's work (tests and bench/deploy.py call it in process)."""
    import contextlib

    from playworld.collection.deploy import DeployConfig, check_fit, deploy
    from playworld.hardware.profiles import robot_from_profile
    from playworld.policies import make_policy
    from playworld.sim.tasks import get_task

    config = DeployConfig(
        mode=mode,
        task=get_task(task).name if task else None,
        episodes=episodes,
        max_seconds=max_seconds,
        seed=seed,
        ensemble=ensemble,
        stall_at_s=stall_at,
        seeds=seeds,
    )
    pol = make_policy(policy_spec)
    # direct: the robot takes the policy's action space (ee_delta (7,) is solved client side by
    # the profile's kinematics); twin-follow: joint targets from the twin.
    space = "ee_delta" if mode == "direct" and pol.action_dim == 7 else "joint_pos"
    bot = robot_from_profile(profile, port=port, host=host, action_space=space)
    follower = build_follower(bot, pol) if mode == "twin-follow" else None
    check_fit(pol, follower if follower is not None else bot, bot, mode)  # before connecting
    store = None
    with contextlib.ExitStack() as stack:
        if follower is not None:
            stack.enter_context(follower.sim)
        stack.enter_context(bot)
        if record is not None:
            store = stack.enter_context(_open_store(record, bot, follower, pol, policy_spec))
        return deploy(
            bot,
            pol,
            config,
            follower=follower,
            store=store,
            policy_meta=policy_meta(policy_spec, pol),
            out=out,
            say=say,
            view=view,
        )


def _open_store(path: Path, robot: Any, follower: Any, policy: Any, spec: str) -> Any:
    """A new store for the deployment's steps (or an existing one with the same features)."""
    from playworld.collection.loop import ControlLoop
    from playworld.datasets import PlayStore

    features = ControlLoop(robot, lambda obs: None, robot.config.fps).features
    info = {"source": "policy", "robot": robot.name, "policy": spec}
    if (Path(path) / "zarr.json").is_file():
        store = PlayStore.open(path, "a")
        if set(store.features) != set(features):
            store.close()
            from playworld.errors import FeatureError

            raise FeatureError(
                f"expected the store {path} to hold this robot's features, found "
                f"{sorted(store.features)}; record into a new store"
            )
        return store
    return PlayStore.create(path, features, fps=robot.config.fps, info=info)
