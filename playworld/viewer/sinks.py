"""Where a view goes: rerun's web viewer served from this machine, an .rrd file, a native viewer.

    target = ViewTarget(web=True, save="run.rrd")      # both at once
    rec, url = open_recording(target, "play.zarr")      # url: open it in a browser (web only)

The web viewer ships inside the rerun-sdk wheel: `--web` needs no internet. It is two servers:
rerun's gRPC log server (the data, `grpc_port`) and an HTTP server for the viewer's page
(`web_port`); the printed URL opens the page connected to the data.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from playworld.errors import ConfigError

APPLICATION_ID = "playworld"
DEFAULT_GRPC_PORT = 9876
DEFAULT_WEB_PORT = 9090


def import_rerun() -> Any:
    """`rerun`, or a one-line error naming the extra to install."""
    try:
        import rerun as rr
    except ImportError:
        raise ConfigError(
            "the viewer needs rerun-sdk: pip install 'playworld[view]' (or pip install rerun-sdk)"
        ) from None
    return rr


@dataclasses.dataclass(frozen=True)
class ViewTarget:
    """Sinks of one view; at least one of `web`, `save`, `spawn`.

    Attributes:
        web: serve rerun's web viewer on `web_port` (HTTP) and the data on `grpc_port`.
        save: write an .rrd file here.
        spawn: start rerun's native viewer (needs a display) and stream to it.
        grpc_port, web_port: TCP ports; 0 picks a free one.
        memory_limit: how much logged data the gRPC server keeps for late viewers (rerun's own
            format: "1GiB", "25%"); past it the oldest data is dropped, so memory stays bounded.
    """

    web: bool = False
    save: str | None = None
    spawn: bool = False
    grpc_port: int = DEFAULT_GRPC_PORT
    web_port: int = DEFAULT_WEB_PORT
    memory_limit: str = "1GiB"

    def __post_init__(self) -> None:
        if not (self.web or self.save or self.spawn):
            raise ConfigError("a view needs a target: web=True, save='FILE.rrd' or spawn=True")
        for name in ("grpc_port", "web_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"expected {name} in 0..65535, found {port}")
        if self.save is not None:
            path = Path(self.save)
            if path.suffix != ".rrd":
                raise ConfigError(f"expected an .rrd file to save the view to, found {self.save!r}")
            if not path.parent.is_dir():
                raise ConfigError(
                    f"cannot save the view to {self.save}: folder {path.parent} does not exist"
                )


def free_port(port: int, what: str, option: str) -> int:
    """`port` if nothing listens on it (0: any free port); else a one-line ConfigError."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(
                f"port {port} for the {what} is in use (another viewer or server?); pass "
                f"{option} with a free port, or 0 for any"
            ) from None
        return int(s.getsockname()[1])


def viewer_url(web_port: int, grpc_uri: str) -> str:
    """The web viewer's page, connected to the gRPC log server at `grpc_uri`."""
    return f"http://127.0.0.1:{web_port}/?url={quote(grpc_uri, safe='')}"


def open_recording(target: ViewTarget, name: str) -> tuple[Any, str | None]:
    """A new rerun recording streaming to `target`'s sinks; (recording, web URL or None).

    Ports are checked first: rerun only logs a busy gRPC port and goes on without a server.
    """
    rr = import_rerun()
    rec = rr.RecordingStream(APPLICATION_ID, recording_id=str(uuid.uuid4()))
    rec.send_recording_name(name)
    sinks: list[Any] = []
    url = None
    if target.spawn:
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise ConfigError(
                "no display for rerun's native viewer (DISPLAY is unset); pass --web to serve "
                "the web viewer, or --save FILE.rrd"
            )
        port = free_port(target.grpc_port, "native viewer", "--grpc-port")
        rr.spawn(port=port, connect=False, memory_limit=target.memory_limit)
        sinks.append(rr.GrpcSink(f"rerun+http://127.0.0.1:{port}/proxy"))
    if target.web:
        grpc_port = free_port(target.grpc_port, "viewer's data (gRPC)", "--grpc-port")
        web_port = free_port(target.web_port, "web viewer", "--web-port")
        # the data stays on this machine; the page (rerun serves it on every interface) is only
        # the viewer, which fetches the data from 127.0.0.1 (the browser's own machine)
        server = rr.GrpcServerSink(
            bind_ip="127.0.0.1", port=grpc_port, server_memory_limit=target.memory_limit
        )
        sinks.append(server)
        rr.serve_web_viewer(web_port=web_port, open_browser=False, connect_to=server.uri)
        url = viewer_url(web_port, server.uri)
    if target.save:
        sinks.append(rr.FileSink(target.save))
    rec.set_sinks(*sinks)
    return rec, url
