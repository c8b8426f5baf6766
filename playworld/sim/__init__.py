"""playworld.sim (see README)."""
