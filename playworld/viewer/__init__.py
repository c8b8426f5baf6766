"""See play in rerun: recorded stores (`playworld view`) and running control loops (`LiveView`).

    from playworld.viewer import LiveView, ViewTarget, view_store
    view_store("play.zarr", ViewTarget(save="play.rrd"), episodes=range(0, 3))
    loop = ControlLoop(robot, source, fps, view=LiveView(ViewTarget(web=True)))

rerun-sdk is the `view` extra; modules import it when they run, so the package imports without it.
"""

from __future__ import annotations

from playworld.viewer.live import LiveView
from playworld.viewer.sinks import ViewTarget
from playworld.viewer.store_log import view_store

__all__ = ["LiveView", "ViewTarget", "view_store"]
