"""playworld: learning robot skills from play.

Subpackages, one job each (see README.md for a tour):
    hardware      robots, cameras, teleop devices, the ROS bridge, the safety guard
    collection    the control loop, recording sessions, autonomous play
    datasets      the zarr play store, window sampling, the torch Dataset
    sim           the MuJoCo digital twin
    world_models  action-conditioned diffusion world models
    policies      play policies (Play-LMP, Tether) and baselines
"""

from playworld.errors import PlayworldError

__version__ = "0.1.0"
__all__ = ["PlayworldError", "__version__"]
