"""playworld.world_models (see README)."""
