"""State world models: chunk diffusion (`StateDiffusion`) and deterministic baselines."""

from playworld.world_models.state.base import StateModelConfig, StateWorldModel, fit
from playworld.world_models.state.models import StateChunkMLP, StateDiffusion, StateOneStepMLP

__all__ = [
    "StateChunkMLP",
    "StateDiffusion",
    "StateModelConfig",
    "StateOneStepMLP",
    "StateWorldModel",
    "fit",
]
