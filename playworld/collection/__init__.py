"""playworld.collection (see README)."""
