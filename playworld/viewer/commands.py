"""CLI of the viewer: `playworld view`.

    playworld view STORE [--episode E | --episodes A:B] [--web [--web-port P] [--grpc-port G]]
        [--save FILE.rrd]

Without --web or --save it starts rerun's native viewer (needs a display). Registered in
`playworld.cli` as `app.command("view")(view_command)`.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from playworld.viewer.sinks import DEFAULT_GRPC_PORT, DEFAULT_WEB_PORT


def view_command(
    store: Annotated[str, typer.Argument(help="Store path or fsspec URL.", show_default=False)],
    episode: Annotated[
        int | None, typer.Option("--episode", "-e", help="One episode (negative: from the end).")
    ] = None,
    episodes: Annotated[
        str | None, typer.Option(help="A range of episodes A:B (B excluded; A: or :B work).")
    ] = None,
    web: Annotated[
        bool, typer.Option("--web", help="Serve rerun's web viewer here and print its URL.")
    ] = False,
    save: Annotated[str | None, typer.Option(help="Write the view to this .rrd file.")] = None,
    web_port: Annotated[
        int, typer.Option(help="HTTP port of the web viewer (0: any).")
    ] = DEFAULT_WEB_PORT,
    grpc_port: Annotated[
        int, typer.Option(help="Port of rerun's data server (gRPC) (0: any).")
    ] = DEFAULT_GRPC_PORT,
    memory_limit: Annotated[
        str, typer.Option(help="Data the server keeps for viewers, oldest dropped past it.")
    ] = "1GiB",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Scrub through recorded play in rerun: cameras, joints, actions, keypoints, task segments."""
    from playworld.datasets import PlayStore
    from playworld.viewer.sinks import ViewTarget, open_recording
    from playworld.viewer.store_log import log_store, select_episodes

    target = ViewTarget(
        web=web,
        save=save,
        spawn=not (web or save),
        grpc_port=grpc_port,
        web_port=web_port,
        memory_limit=memory_limit,
    )
    play = PlayStore.open(store)
    indices = select_episodes(play, episode, episodes)
    rec, url = open_recording(target, store)
    if url is not None:
        typer.echo(f"web viewer: {url}", err=False)
    rows = log_store(rec, play, indices, progress=progress)
    rec.flush()
    what = f"{len(indices)} episodes, {rows} steps"
    if save:
        if not web:
            rec.disconnect()  # writes the .rrd footer
        typer.echo(f"wrote {save}: {what}")
    if not web:
        return
    typer.echo(f"serving {what} at {url} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        rec.disconnect()
