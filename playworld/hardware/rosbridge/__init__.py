"""The ROS bridge: a rosbridge v2 server (serving the twin) and `RosBridgeRobot` (roslibpy)."""

from playworld.hardware.rosbridge.server import RosBridgeServer

__all__ = ["RosBridgeServer"]
