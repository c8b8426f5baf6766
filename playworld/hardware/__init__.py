"""playworld.hardware (see README)."""
