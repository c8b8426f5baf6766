"""DIAMOND-style frame world model (`FrameDiffusion`) and its UNet."""

from playworld.world_models.frames.model import FrameDiffusion, FrameModelConfig, fit

__all__ = ["FrameDiffusion", "FrameModelConfig", "fit"]
