"""playworld.policies (see README)."""
