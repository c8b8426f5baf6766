"""The ``playworld`` command. Each subcommand is a thin call into a package.

    playworld --version
    playworld store info PATH [--json]
    playworld store validate PATH [--quick]      exit 0 valid, 1 problems (one per line)
    playworld store repair PATH                  exit 0 repaired, 1 committed data damaged
    playworld store salvage SRC -o DST           exit 0 all kept, 1 damaged episodes dropped
    playworld store merge A B -o OUT
    playworld store drop PATH --episode N [-o OUT]
    playworld store export --format mcap|lerobot PATH OUT [--episode N]
    playworld view PATH [--episode N | --episodes A:B] [--web] [--save FILE.rrd]
    playworld store import --format lerobot|diffusion-policy|robomimic SRC OUT
    playworld train world-model --config FILE --store STORE --out DIR [--steps N] [--minutes M]
    playworld imagine --model DIR --store STORE --episode E [--start T] [--steps N] --out DIR
    playworld score --model DIR --store STORE [--split val]

A package adds its commands as a typer sub-app: define ``app = typer.Typer(...)`` next to the
code it drives and add one line to `SUBAPPS` below. User errors (`PlayworldError`, and OS errors
such as a permission denied) print one line ``error: ...`` on stderr and exit with code 2.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

import playworld
from playworld.collection.commands import autoplay_command, record_command, twin_app
from playworld.errors import PlayworldError
from playworld.hardware.commands import robot_app
from playworld.policies.commands import eval_command, train_policy_command
from playworld.policies.deploy_command import deploy_command
from playworld.policies.tether.commands import play_command, tether_app
from playworld.training.commands import train_app
from playworld.viewer.commands import view_command
from playworld.world_models.commands import (
    imagine_command,
    score_command,
    train_world_model_command,
)

app = typer.Typer(
    name="playworld",
    help="Learning robot skills from play: record, store, simulate, imagine, act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Inspect and maintain play stores.", no_args_is_help=True)

# name -> sub-app; later packages add theirs here (e.g. "sim": playworld.sim.cli.app).
SUBAPPS: dict[str, typer.Typer] = {
    "store": store_app,
    "twin": twin_app,
    "robot": robot_app,
    "train": train_app,
    "tether": tether_app,
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"playworld {playworld.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Learning robot skills from play."""


# -- playworld store ... -----------------------------------------------------------------------
Path_ = Annotated[str, typer.Argument(help="Store path or fsspec URL.", show_default=False)]


@store_app.command("info")
def store_info(
    path: Path_, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Episodes, steps, features, size on disk and compression per feature."""
    from playworld.datasets import maintenance
    from playworld.datasets.summary import print_info

    d = maintenance.info(path)
    if as_json:
        typer.echo(json.dumps(d, indent=2))
    else:
        print_info(d)


@store_app.command("validate")
def store_validate(
    path: Path_,
    quick: Annotated[bool, typer.Option("--quick", help="Do not decode image blocks.")] = False,
) -> None:
    """Check a store; exit 0 if valid, 1 with one problem per line."""
    from playworld.datasets import maintenance

    report = maintenance.validate(path, deep=not quick)
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)


@store_app.command("repair")
def store_repair(path: Path_) -> None:
    """Trim uncommitted rows and delete leftover temp files; exit 1 if committed data is
    damaged (every frame is decoded to find out; `store salvage` keeps the intact episodes)."""
    from playworld.datasets import maintenance

    report = maintenance.repair(path)
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(1 if report.remaining else 0)


@store_app.command("salvage")
def store_salvage(
    src: Path_,
    out: Annotated[str, typer.Option("--out", "-o", help="The new store.", show_default=False)],
) -> None:
    """Copy every intact episode of SRC into a new store; list what was dropped and why.

    SRC is never modified. Exit 0 when every episode was kept, 1 when damaged ones were dropped.
    """
    from playworld.datasets.salvage import salvage

    report = salvage(src, out)
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(1 if report.dropped else 0)


@store_app.command("merge")
def store_merge(
    a: Path_,
    b: Path_,
    out: Annotated[str, typer.Option("--out", "-o", help="The new store.", show_default=False)],
) -> None:
    """Write a new store with the episodes of A, then those of B."""
    from playworld.datasets import maintenance

    merged = maintenance.merge(a, b, out)
    typer.echo(f"wrote {out}: {len(merged)} episodes, {merged.num_steps} steps")


@store_app.command("drop")
def store_drop(
    path: Path_,
    episode: Annotated[
        int, typer.Option("--episode", "-e", help="Episode index.", show_default=False)
    ],
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write here instead of in place.")
    ] = None,
) -> None:
    """Remove one episode, in place (atomic swap) or into a new store."""
    from playworld.datasets import maintenance

    result = maintenance.drop(path, episode, out)
    typer.echo(
        f"dropped episode {episode}: {out or path} has {len(result)} episodes, {result.num_steps} steps"
    )


@store_app.command("export")
def store_export(
    path: Path_,
    out: Annotated[str, typer.Argument(help="The file to write.", show_default=False)],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="Export format: mcap, lerobot (datasets.export.EXPORTERS)."
        ),
    ] = "mcap",
    episode: Annotated[
        int | None, typer.Option("--episode", "-e", help="One episode (default: all).")
    ] = None,
) -> None:
    """Write the store (or one episode) in another format (mcap: Foxglove; lerobot: LeRobot v3.0)."""
    from playworld.datasets.export import export

    s = export(path, out, fmt, episode=episode)
    typer.echo(f"wrote {out}: {s['episodes']} episodes, {s['rows']} steps ({fmt})")


@store_app.command("import")
def store_import(
    src: Annotated[str, typer.Argument(help="The dataset to read.", show_default=False)],
    out: Path_,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="lerobot, diffusion-policy or robomimic (datasets.interop.IMPORTERS).",
        ),
    ] = "lerobot",
    image_codec: Annotated[
        str, typer.Option("--image-codec", help="Codec of the cameras: zstd, h264 (lossy)...")
    ] = "zstd",
    fps: Annotated[
        float | None, typer.Option("--fps", help="Control rate, for formats that record none.")
    ] = None,
) -> None:
    """Write a new play store from a LeRobot v3.0 dataset, a diffusion_policy zarr or a robomimic hdf5."""
    from playworld.datasets import interop

    options = interop.ImportOptions(image_codec=image_codec, fps=fps)
    store = interop.import_store(fmt, src, out, options)
    typer.echo(f"wrote {out}: {len(store)} episodes, {store.num_steps} steps from {fmt} {src}")


for _name, _sub in SUBAPPS.items():
    app.add_typer(_sub, name=_name)
app.command("eval")(eval_command)
app.command("play")(play_command)
app.command("record")(record_command)
app.command("autoplay")(autoplay_command)
app.command("view")(view_command)
app.command("deploy")(deploy_command)

train_app.command("world-model")(train_world_model_command)
train_app.command("policy")(train_policy_command)
app.command("imagine")(imagine_command)
app.command("score")(score_command)


@app.command("report")
def report_command(
    run_dir: Annotated[
        str, typer.Argument(help="A run folder (e.g. out/demo).", show_default=False)
    ],
) -> None:
    """Build RUN_DIR/report.html: stores, world-model scores, evaluations, deployment, videos."""
    from playworld.pipeline.report import build_report

    typer.echo(f"wrote {build_report(run_dir)}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the command; a user error becomes one ``error:`` line, exit 2."""
    try:
        app(args=argv, prog_name="playworld")
    except (PlayworldError, OSError) as e:
        message = " ".join(str(e).splitlines()) or type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
